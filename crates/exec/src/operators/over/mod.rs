//! OVER aggregates over event time (Flink's over windows):
//! `AGG(x) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN n PRECEDING AND
//! CURRENT ROW)`, `RANGE BETWEEN INTERVAL '1' MINUTE PRECEDING AND CURRENT
//! ROW`, `UNBOUNDED PRECEDING`, `LAG` and `LEAD`.
//!
//! Rows wait until the watermark passes their time (a row at or behind the
//! watermark when it arrives is late: dropped, counted); then each
//! partition's rows are taken in time order and each gets its frame's
//! values, computed incrementally: the row is added to DataFusion
//! accumulators, rows that leave the frame are retracted (sliding
//! accumulators), and the accumulators are evaluated. In a RANGE frame rows
//! with the same time are peers and share one value, as in SQL. The output
//! is the input row and its values, append-only; the time column stays a
//! time attribute. State per partition is the waiting rows, the frame's
//! argument values (ROWS: the last n rows; RANGE: the last interval) and the
//! accumulators; a partition with nothing waiting and an empty frame is
//! forgotten. With `LEAD(x, n)` a row whose time the watermark passed
//! waits in its partition until `n` later rows have too (or the input
//! ends, when missing rows give the default): see [`lead`]. COUNT, SUM and
//! AVG of numbers run as plain running sums ([`fast`]).

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::compute::concat;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use datafusion::common::{HashMap, ScalarValue};
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::{Error, Result, Watermark};

use super::stored::{Pick, Stored};
use super::window_aggregate::eval_all;

mod checkpoint;
mod fast;
mod lead;

use crate::operator::{Operator, Output};
use crate::time::to_millis;
use fast::{Fast, Running};

/// Which rows before the current one are in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `ROWS BETWEEN n PRECEDING AND CURRENT ROW` (`None`: unbounded).
    Rows(Option<u64>),
    /// `RANGE BETWEEN <ms> PRECEDING AND CURRENT ROW` (`None`: unbounded).
    Range(Option<i64>),
}

/// One function computed over the frame.
#[derive(Debug, Clone)]
pub enum OverFunction {
    /// An aggregate.
    Aggregate(Arc<AggregateFunctionExpr>),
    /// `LAG(arg, offset, default)`: the value `offset` rows before.
    Lag {
        /// The value taken.
        arg: Arc<dyn PhysicalExpr>,
        /// How many rows before.
        offset: usize,
        /// When there is no such row.
        default: ScalarValue,
    },
    /// `LEAD(arg, offset, default)`: the value `offset` rows after.
    Lead {
        /// The value taken.
        arg: Arc<dyn PhysicalExpr>,
        /// How many rows after.
        offset: usize,
        /// When there is no such row.
        default: ScalarValue,
    },
}

/// What an OVER aggregate computes.
#[derive(Debug, Clone)]
pub struct OverConfig {
    /// PARTITION BY expressions.
    pub partition: Vec<Arc<dyn PhysicalExpr>>,
    /// The ORDER BY time column of the input.
    pub time_column: usize,
    /// The frame.
    pub frame: Frame,
    /// The functions, in output order after the input's columns.
    pub functions: Vec<OverFunction>,
    /// Output schema: the input's columns, then one per function.
    pub schema: SchemaRef,
}

/// A row in the frame: its time and each aggregate's argument values (one
/// row slices of the columns they were evaluated in).
type FrameRow = (i64, Vec<Vec<ArrayRef>>);

/// One partition's state.
struct Partition {
    waiting: Vec<(i64, Pick)>,
    /// The earliest waiting time (`i64::MAX`: none).
    min_waiting: i64,
    frame: VecDeque<FrameRow>,
    accs: Vec<Option<Box<dyn Accumulator>>>,
    /// Per LAG: the last values, oldest first.
    lags: Vec<VecDeque<ScalarValue>>,
    /// Per function: its running aggregate (COUNT/SUM/AVG of numbers).
    running: Vec<Option<Running>>,
    /// With LEAD: rows the watermark passed, waiting for the rows after
    /// them, with their values (a LEAD's slot holds the row's own value).
    pending: VecDeque<(Pick, Vec<ScalarValue>)>,
}

/// See the module docs.
pub struct OverAggregate {
    cfg: OverConfig,
    converter: RowConverter,
    partitions: HashMap<Box<[u8]>, Partition>,
    stored: Stored,
    waiting: usize,
    /// Rows pending for LEAD, over all partitions.
    pending: usize,
    /// Reused buffers of the rows a watermark releases and their times.
    scratch: (Vec<Pick>, Vec<i64>),
    /// Per function: the running form it takes, if any.
    fast: Vec<Option<Fast>>,
    watermark: i64,
}

impl OverAggregate {
    /// An OVER aggregate over batches of `input`.
    pub fn try_new(cfg: OverConfig, input: &Schema) -> Result<Self> {
        let fields = cfg
            .partition
            .iter()
            .map(|e| Ok(SortField::new(e.data_type(input)?)))
            .collect::<Result<Vec<_>>>()?;
        let fast = cfg
            .functions
            .iter()
            .map(|f| match f {
                OverFunction::Aggregate(a) => Fast::of(a, input),
                _ => None,
            })
            .collect();
        let op = OverAggregate {
            fast,
            converter: RowConverter::new(fields)?,
            cfg,
            partitions: HashMap::default(),
            stored: Stored::default(),
            waiting: 0,
            pending: 0,
            scratch: Default::default(),
            watermark: i64::MIN,
        };
        // Fail at planning, not on the first row, when a bounded frame
        // needs an aggregate that cannot take rows back.
        op.new_partition()?;
        Ok(op)
    }

    fn bounded(&self) -> bool {
        matches!(self.cfg.frame, Frame::Rows(Some(_)) | Frame::Range(Some(_)))
    }

    fn new_partition(&self) -> Result<Partition> {
        let mut accs = Vec::new();
        let mut lags = Vec::new();
        let running = self.fast.iter().map(|f| f.map(Running::new)).collect();
        for (f, fast) in self.cfg.functions.iter().zip(&self.fast) {
            match f {
                OverFunction::Aggregate(_) if fast.is_some() => accs.push(None),
                OverFunction::Aggregate(a) if self.bounded() => {
                    let acc = a.create_sliding_accumulator()?;
                    if !acc.supports_retract_batch() {
                        return Err(Error::plan(format!(
                            "{} over a bounded frame (ROWS/RANGE ... PRECEDING) is not \
                             supported: it cannot take rows back; use UNBOUNDED PRECEDING",
                            a.name()
                        )));
                    }
                    accs.push(Some(acc));
                }
                OverFunction::Aggregate(a) => accs.push(Some(a.create_accumulator()?)),
                OverFunction::Lag { .. } => {
                    accs.push(None);
                    lags.push(VecDeque::new());
                }
                OverFunction::Lead { .. } => accs.push(None),
            }
        }
        Ok(Partition {
            waiting: Vec::new(),
            min_waiting: i64::MAX,
            frame: VecDeque::new(),
            accs,
            lags,
            running,
            pending: VecDeque::new(),
        })
    }

    /// Each function's argument columns over `rows`.
    fn arguments(&self, rows: &RecordBatch) -> Result<Vec<Vec<ArrayRef>>> {
        self.cfg
            .functions
            .iter()
            .map(|f| match f {
                OverFunction::Aggregate(a) => eval_all(&a.expressions(), rows),
                OverFunction::Lag { arg, .. } | OverFunction::Lead { arg, .. } => {
                    eval_all(std::slice::from_ref(arg), rows)
                }
            })
            .collect()
    }

    /// Rows `range` (of one partition, in time order, the watermark passed
    /// them) enter the frame; each function's value for each is pushed to
    /// `values`.
    fn advance(
        &self,
        part: &mut Partition,
        args: &[Vec<ArrayRef>],
        range: std::ops::Range<usize>,
        times: &[i64],
        values: &mut [Vec<ScalarValue>],
    ) -> Result<()> {
        let peers = matches!(self.cfg.frame, Frame::Range(_));
        // A ROWS frame keeps one-row slices of its last rows' arguments for
        // as long as the partition lives: slices of a copy of this
        // partition's run, so an idle partition does not hold the arrays of
        // every row gathered at this watermark. (A RANGE frame's rows leave
        // as the watermark passes, and with them the arrays.)
        let owned;
        let (args, base) = if matches!(self.cfg.frame, Frame::Rows(Some(_))) {
            owned = args
                .iter()
                .map(|a| {
                    a.iter()
                        .map(|c| Ok(concat(&[c.slice(range.start, range.len()).as_ref()])?))
                        .collect::<Result<Vec<ArrayRef>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            (&owned[..], range.start)
        } else {
            (args, 0)
        };
        let mut i = range.start;
        while i < range.end {
            // A RANGE frame takes all rows of one time together.
            let mut j = i + 1;
            if peers {
                while j < range.end && times[j] == times[i] {
                    j += 1;
                }
            }
            for (r, &t) in times.iter().enumerate().take(j).skip(i) {
                self.add(part, args, r - base, t, values)?;
                if !peers {
                    self.evict(part, t)?;
                    self.evaluate(part, values)?;
                }
            }
            if peers {
                self.evict(part, times[i])?;
                for _ in i..j {
                    self.evaluate(part, values)?;
                }
            }
            i = j;
        }
        Ok(())
    }

    /// Row `r` enters its partition's frame; its LAG values are taken.
    fn add(
        &self,
        part: &mut Partition,
        args: &[Vec<ArrayRef>],
        r: usize,
        t: i64,
        values: &mut [Vec<ScalarValue>],
    ) -> Result<()> {
        let mut kept = Vec::new();
        let mut lag = 0;
        let bounded = self.bounded();
        for (i, ((f, acc), a)) in self
            .cfg
            .functions
            .iter()
            .zip(&mut part.accs)
            .zip(args)
            .enumerate()
        {
            match (f, acc) {
                (OverFunction::Aggregate(_), None) => match &mut part.running[i] {
                    Some(running) => running.add(&a[0], r, bounded),
                    None => return Err(Error::internal("an OVER aggregate without its state")),
                },
                (OverFunction::Aggregate(_), Some(acc)) => {
                    let one: Vec<ArrayRef> = a.iter().map(|c| c.slice(r, 1)).collect();
                    acc.update_batch(&one)?;
                    if self.bounded() {
                        kept.push(one);
                    }
                }
                (
                    OverFunction::Lag {
                        offset, default, ..
                    },
                    _,
                ) => {
                    let q = &mut part.lags[lag];
                    lag += 1;
                    // The value `offset` rows before this one (rows in time
                    // order; a RANGE frame's peers too).
                    let v = match q.len().checked_sub(*offset) {
                        Some(at) if *offset > 0 => q[at].clone(),
                        _ if *offset == 0 => ScalarValue::try_from_array(&a[0], r)?,
                        _ => default.clone(),
                    };
                    values[i].push(v);
                    q.push_back(ScalarValue::try_from_array(&a[0], r)?);
                    while q.len() > *offset {
                        q.pop_front();
                    }
                }
                (OverFunction::Lead { .. }, _) => {
                    values[i].push(ScalarValue::try_from_array(&a[0], r)?);
                }
            }
        }
        if self.bounded() {
            part.frame.push_back((t, kept));
        }
        Ok(())
    }

    /// Retract the rows that left the frame of a row at time `t`.
    fn evict(&self, part: &mut Partition, t: i64) -> Result<()> {
        let leaves = |part: &Partition| match self.cfg.frame {
            Frame::Rows(Some(n)) => part.frame.len() as u64 > n + 1,
            Frame::Range(Some(d)) => part.frame.front().is_some_and(|(ft, _)| *ft < t - d),
            _ => false,
        };
        while leaves(part) {
            let Some((_, gone)) = part.frame.pop_front() else {
                break;
            };
            let mut aggs = part.accs.iter_mut().flatten();
            for cols in gone {
                let Some(acc) = aggs.next() else { break };
                acc.retract_batch(&cols)?;
            }
            for running in part.running.iter_mut().flatten() {
                running.retract();
            }
        }
        Ok(())
    }

    /// Each aggregate's value for the row just added.
    fn evaluate(&self, part: &mut Partition, values: &mut [Vec<ScalarValue>]) -> Result<()> {
        for (i, (acc, running)) in part.accs.iter_mut().zip(&part.running).enumerate() {
            match (acc, running) {
                (Some(acc), _) => values[i].push(acc.evaluate()?),
                (None, Some(running)) => values[i].push(running.value()?),
                (None, None) => {}
            }
        }
        Ok(())
    }

    /// Output rows: `rows` and each function's values for them.
    fn emit(
        &self,
        rows: RecordBatch,
        values: Vec<Vec<ScalarValue>>,
        out: &mut Output,
    ) -> Result<()> {
        let mut cols = rows.columns().to_vec();
        for v in values {
            cols.push(ScalarValue::iter_to_array(v)?);
        }
        out.push(super::window_aggregate::batch_of(&self.cfg.schema, cols)?);
        Ok(())
    }

    /// Rows wait in their partitions; those at or behind the watermark are
    /// late and counted.
    fn accept(&mut self, batch: RecordBatch) -> Result<u64> {
        let times = self.times(&batch)?;
        let cols = eval_all(&self.cfg.partition, &batch)?;
        let keys = if cols.is_empty() {
            None
        } else {
            Some(self.converter.convert_columns(&cols)?)
        };
        let b = self.stored.next_index();
        let mut late = 0;
        for (i, t) in times.iter().enumerate() {
            let Some(t) = t.filter(|t| *t > self.watermark) else {
                late += 1;
                continue;
            };
            let row = keys.as_ref().map(|k| k.row(i));
            let key: &[u8] = row.as_ref().map_or(&[], |r| r.as_ref());
            let part = self.partition(key)?;
            part.waiting.push((t, (b, i)));
            part.min_waiting = part.min_waiting.min(t);
            self.waiting += 1;
        }
        self.stored.push(batch);
        Ok(late)
    }

    /// Partition `key`, made when new.
    fn partition(&mut self, key: &[u8]) -> Result<&mut Partition> {
        if !self.partitions.contains_key(key) {
            let part = self.new_partition()?;
            self.partitions.insert(key.into(), part);
        }
        self.partitions
            .get_mut(key)
            .ok_or_else(|| Error::internal("an OVER partition just made is missing"))
    }

    fn times(&self, batch: &RecordBatch) -> Result<Int64Array> {
        to_millis(batch.column(self.cfg.time_column))
    }
}

impl Operator for OverAggregate {
    fn name(&self) -> &'static str {
        "OverAggregate"
    }

    fn describe(&self) -> String {
        let partition: Vec<String> = self.cfg.partition.iter().map(|e| e.to_string()).collect();
        let funcs: Vec<String> = self
            .cfg
            .functions
            .iter()
            .map(|f| match f {
                OverFunction::Aggregate(a) => {
                    let args: Vec<String> = a.expressions().iter().map(|e| e.to_string()).collect();
                    format!("{}({})", a.fun().name(), args.join(", "))
                }
                OverFunction::Lag { arg, offset, .. } => format!("lag({arg}, {offset})"),
                OverFunction::Lead { arg, offset, .. } => format!("lead({arg}, {offset})"),
            })
            .collect();
        let frame = match self.cfg.frame {
            Frame::Rows(None) => "ROWS UNBOUNDED PRECEDING".to_string(),
            Frame::Rows(Some(n)) => format!("ROWS {n} PRECEDING"),
            Frame::Range(None) => "RANGE UNBOUNDED PRECEDING".to_string(),
            Frame::Range(Some(d)) => {
                format!("RANGE {} PRECEDING", sluice_common::window::fmt_ms(d))
            }
        };
        format!(
            "OverAggregate: partition by [{}] order by #{} {frame} [{}]",
            partition.join(", "),
            self.cfg.time_column,
            funcs.join(", ")
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.cfg.schema)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let late = self.accept(batch)?;
        out.add_late(late);
        Ok(())
    }

    fn on_watermark(&mut self, wm: Watermark, out: &mut Output) -> Result<Option<Watermark>> {
        self.watermark = wm.0;
        let mut parts = std::mem::take(&mut self.partitions);
        // Every partition's rows the watermark passed, in time order within
        // each, gathered and evaluated once.
        let mut runs = Vec::new();
        // Buffers kept from the last watermark (large, so not allocated
        // afresh each time).
        let (mut picks, mut times) = std::mem::take(&mut self.scratch);
        picks.clear();
        times.clear();
        for (key, part) in parts.iter_mut() {
            if part.min_waiting > wm.0 {
                continue;
            }
            // Stable: rows of one time keep their arrival order.
            part.waiting.sort_by_key(|(t, _)| *t);
            let ready = part.waiting.partition_point(|(t, _)| *t <= wm.0);
            let start = picks.len();
            for (t, p) in part.waiting.drain(..ready) {
                times.push(t);
                picks.push(p);
            }
            part.min_waiting = part.waiting.first().map_or(i64::MAX, |(t, _)| *t);
            runs.push((key.clone(), start..picks.len()));
        }
        self.waiting -= picks.len();
        let mut values: Vec<Vec<ScalarValue>> =
            vec![Vec::with_capacity(picks.len()); self.cfg.functions.len()];
        if !picks.is_empty() {
            let rows = self.stored.gather(&picks)?;
            let args = self.arguments(&rows)?;
            for (key, range) in &runs {
                if let Some(part) = parts.get_mut(key) {
                    self.advance(part, &args, range.clone(), &times, &mut values)?;
                }
            }
            if !self.leads() {
                self.emit(rows, values, out)?;
                values = vec![];
            }
        }
        if self.leads() {
            let end = wm == Watermark::MAX;
            let (ready, values) = self.release(&mut parts, &runs, &picks, values, end)?;
            if !ready.is_empty() {
                let rows = self.stored.gather(&ready)?;
                self.emit(rows, values, out)?;
            }
        }
        // A RANGE frame's rows older than the watermark by more than the
        // range are in no later row's frame: retracted now, and a partition
        // left with nothing is forgotten. (ROWS frames, unbounded ones and
        // LAG need their partitions' last rows for as long as rows come.)
        if let Frame::Range(Some(_)) = self.cfg.frame {
            let lags = self
                .cfg
                .functions
                .iter()
                .any(|f| matches!(f, OverFunction::Lag { .. }));
            for part in parts.values_mut() {
                self.evict(part, wm.0.saturating_add(1))?;
            }
            parts.retain(|_, p| {
                lags || !p.waiting.is_empty() || !p.frame.is_empty() || !p.pending.is_empty()
            });
        }
        self.partitions = parts;
        self.scratch = (picks, times);
        let picks = self.partitions.values_mut().flat_map(|p| {
            let waiting = p.waiting.iter_mut().map(|(_, p)| p);
            waiting.chain(p.pending.iter_mut().map(|(p, _)| p))
        });
        self.stored
            .compact(self.waiting + self.pending, 8192, picks)?;
        Ok(Some(wm))
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        self.snapshot_state()
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        self.restore_state(states, keys)
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let frames: usize = self.partitions.values().map(|p| p.frame.len()).sum();
        let bytes = self.stored.bytes() + 64 * frames + 16 * (self.waiting + self.pending);
        Some((self.partitions.len(), bytes))
    }
}

#[cfg(test)]
mod tests;
