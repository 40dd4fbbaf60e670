//! Session window aggregation (`SESSION(TABLE t PARTITION BY k,
//! DESCRIPTOR(ts), gap)`, `GROUP BY SESSION(ts, gap), k`).
//!
//! Flink's rule: each row's own window is `[ts, ts + gap)`; windows of one
//! key that touch (`a.start <= b.end && a.end >= b.start`) merge into a
//! session `[first ts, last ts + gap)`, so a row arriving between two
//! sessions bridges them. A session fires when the watermark reaches
//! `end - 1`: its row is emitted once and its state freed. A row whose own
//! window has fired and that merges with no open session is late (dropped,
//! counted); one that joins an open session is not.
//!
//! With an emit strategy (`emit.rs`) the result is updating instead: early
//! results before a session fires, and sessions kept for the allowed
//! lateness after it, so a late row can still join, extend or bridge them.
//!
//! The rows of open sessions are kept as the batches they came in (a key's
//! sessions hold `(batch, row)` picks); when sessions fire their rows are
//! gathered (`interleave`) and aggregated in one pass with DataFusion's
//! vectorised accumulators, one group per session. Any aggregate works,
//! with `DISTINCT` and `FILTER`, since each session is aggregated once
//! from its rows. Keys with no open session are forgotten and the stored
//! batches are compacted once most of their rows are gone, so memory is
//! bounded by the open sessions.

mod checkpoint;
mod emit;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use datafusion::logical_expr::EmitTo;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::{Error, Result, Watermark};

use self::emit::{SessionEmit, Shown};
use super::stored::{Pick, Stored};
use super::window_aggregate::{
    batch_of, describe_aggregates, describe_keys, eval_all, fired, new_accumulators, AggregateCall,
    EmitStrategy, GroupKey, WindowRole,
};
use crate::operator::{Operator, Output};
use crate::time::to_millis;

/// What a session aggregate computes.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The gap, in milliseconds.
    pub gap: i64,
    /// Input column holding each row's own window start, end or time.
    pub window_column: usize,
    /// Which one it holds.
    pub window_role: WindowRole,
    /// GROUP BY keys, in output order: window columns and the partition
    /// keys (sessions are per partition key).
    pub keys: Vec<GroupKey>,
    /// Aggregates, in output order after the keys.
    pub aggregates: Vec<AggregateCall>,
    /// Output schema: keys then aggregates.
    pub schema: SchemaRef,
}

/// One session of a key.
struct Session {
    start: i64,
    /// Last row time + gap.
    end: i64,
    rows: Vec<Pick>,
    /// Emit strategies only (boxed: sessions stay small without one).
    meta: Option<Box<Meta>>,
}

/// What an emit strategy keeps of a session.
#[derive(Default)]
struct Meta {
    /// Its rows shown downstream (those of the sessions merged into it that
    /// are not retracted yet).
    shown: Vec<Shown>,
    /// Changed since its result last went out.
    dirty: bool,
    /// The watermark passed its end (its result is on time, or a late
    /// update).
    done: bool,
}

impl Session {
    /// Take in the rows (and shown rows) of `other`, which touches it.
    fn absorb(&mut self, other: Session) {
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
        self.rows.extend(other.rows);
        if let (Some(m), Some(o)) = (&mut self.meta, other.meta) {
            m.shown.extend(o.shown);
        }
    }

    /// It changed at watermark `wm`.
    fn changed(&mut self, wm: i64) {
        if let Some(m) = &mut self.meta {
            m.dirty = true;
            m.done = fired(self.end, wm);
        }
    }
}

/// See the module docs.
pub struct SessionAggregate {
    cfg: SessionConfig,
    partition: Vec<Arc<dyn PhysicalExpr>>,
    converter: RowConverter,
    /// Sessions per partition key, by start.
    keys: HashMap<Box<[u8]>, Vec<Session>>,
    stored: Stored,
    live: usize,
    /// Nothing happens to any session before the watermark reaches this.
    min_end: i64,
    watermark: i64,
    /// How long a session is kept after it fired, in ms.
    lateness: i64,
    emit: Option<SessionEmit>,
}

impl SessionAggregate {
    /// A session aggregate over batches of `input`, emitting each session
    /// once (`emit` is `None`) or by an emit strategy.
    pub fn try_new(cfg: SessionConfig, input: &Schema, emit: Option<EmitStrategy>) -> Result<Self> {
        if cfg.gap <= 0 {
            return Err(Error::plan("a SESSION gap must be a positive interval"));
        }
        let partition: Vec<Arc<dyn PhysicalExpr>> = cfg
            .keys
            .iter()
            .filter_map(|k| match k {
                GroupKey::Expr(e) => Some(Arc::clone(e)),
                GroupKey::Window(_) => None,
            })
            .collect();
        let fields = partition
            .iter()
            .map(|e| Ok(SortField::new(e.data_type(input)?)))
            .collect::<Result<Vec<_>>>()?;
        let emit = emit
            .map(|s| SessionEmit::try_new(s, &cfg.schema))
            .transpose()?;
        Ok(SessionAggregate {
            converter: RowConverter::new(fields)?,
            partition,
            cfg,
            keys: HashMap::new(),
            stored: Stored::default(),
            live: 0,
            min_end: i64::MAX,
            watermark: i64::MIN,
            lateness: emit.as_ref().map_or(0, SessionEmit::lateness),
            emit,
        })
    }

    /// Each row's event time (from its own window column).
    fn times(&self, batch: &RecordBatch) -> Result<arrow::array::Int64Array> {
        let v = to_millis(batch.column(self.cfg.window_column))?;
        let shift = match self.cfg.window_role {
            WindowRole::Start => 0,
            WindowRole::End => -self.cfg.gap,
            WindowRole::Time => 1 - self.cfg.gap,
        };
        Ok(arrow::compute::kernels::arity::unary(&v, |x: i64| {
            x + shift
        }))
    }

    /// Each row's partition key, encoded.
    /// (`None` without a partition: every row has the empty key).
    fn key_rows(&self, batch: &RecordBatch) -> Result<Option<arrow::row::Rows>> {
        let cols = eval_all(&self.partition, batch)?;
        if cols.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.converter.convert_columns(&cols)?))
    }

    /// Whether a session ending at `end` is gone (fired, and past the
    /// allowed lateness) at the watermark.
    fn expired(&self, end: i64) -> bool {
        fired(end.saturating_add(self.lateness), self.watermark)
    }

    /// Put row `pick` (time `t`) into its key's sessions; `false` when it
    /// is late.
    fn add(&mut self, key: &[u8], t: i64, pick: Pick) -> bool {
        let gap = self.cfg.gap;
        let (start, end) = (t, t.saturating_add(gap));
        let (wm, late) = (self.watermark, self.expired(end));
        let sessions = match self.keys.get_mut(key) {
            Some(s) => s,
            None if late => return false,
            None => self.keys.entry(key.into()).or_default(),
        };
        // The sessions this row's window touches: a run, by start.
        let first = sessions.partition_point(|s| s.end < start);
        let last = sessions[first..].partition_point(|s| s.start <= end) + first;
        if first == last {
            if late {
                if sessions.is_empty() {
                    self.keys.remove(key);
                }
                return false;
            }
            let meta = self.emit.is_some().then(Box::default);
            let mut session = Session {
                start,
                end,
                rows: vec![pick],
                meta,
            };
            session.changed(wm);
            sessions.insert(first, session);
            self.min_end = self.min_end.min(end);
        } else {
            // Merge the run into its first session.
            if last > first + 1 {
                let merged: Vec<Session> = sessions.drain(first + 1..last).collect();
                for m in merged {
                    sessions[first].absorb(m);
                }
            }
            let s = &mut sessions[first];
            s.start = s.start.min(start);
            s.end = s.end.max(end);
            s.rows.push(pick);
            s.changed(wm);
            // A kept session that grew past the watermark fires again.
            self.min_end = self.min_end.min(s.end);
        }
        if let Some(e) = &mut self.emit {
            e.touch(key);
        }
        true
    }

    /// Take every session that fired by `wm` out of the state, by end.
    fn take_fired(&mut self, wm: i64) -> Vec<Session> {
        let mut done = Vec::new();
        let mut min_end = i64::MAX;
        self.keys.retain(|_, sessions| {
            let mut i = 0;
            while i < sessions.len() {
                if fired(sessions[i].end, wm) {
                    done.push(sessions.remove(i));
                } else {
                    min_end = min_end.min(sessions[i].end);
                    i += 1;
                }
            }
            !sessions.is_empty()
        });
        self.min_end = min_end;
        done.sort_by_key(|s| (s.end, s.start));
        done
    }

    /// One result row per session, in order: its keys (from its first
    /// row), window columns and aggregates over its rows.
    fn results(&self, sessions: &[&Session]) -> Result<RecordBatch> {
        if sessions.is_empty() {
            return Ok(RecordBatch::new_empty(Arc::clone(&self.cfg.schema)));
        }
        let mut picks = Vec::new();
        let mut groups = Vec::new();
        let mut firsts = Vec::with_capacity(sessions.len());
        for (g, s) in sessions.iter().enumerate() {
            firsts.push(picks.len() as u32);
            picks.extend_from_slice(&s.rows);
            groups.extend(std::iter::repeat_n(g, s.rows.len()));
        }
        let rows = self.stored.gather(&picks)?;
        let n = sessions.len();
        let mut aggs = Vec::with_capacity(self.cfg.aggregates.len());
        for (a, mut acc) in self
            .cfg
            .aggregates
            .iter()
            .zip(new_accumulators(&self.cfg.aggregates)?)
        {
            let args = eval_all(&a.expr.expressions(), &rows)?;
            let filter = match &a.filter {
                Some(f) => Some(f.evaluate(&rows)?.into_array(rows.num_rows())?),
                None => None,
            };
            let filter = filter.as_ref().map(arrow::array::AsArray::as_boolean);
            acc.update_batch(&args, &groups, filter, n)?;
            aggs.push(acc.evaluate(EmitTo::All)?);
        }
        let first_rows = UInt32Array::from(firsts);
        let mut keys = eval_all(&self.partition, &rows)?
            .into_iter()
            .map(|k| Ok(take(&k, &first_rows, None)?))
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let window = |f: &dyn Fn(&Session) -> i64| -> ArrayRef {
            let v: Vec<i64> = sessions.iter().map(|s| f(s)).collect();
            Arc::new(TimestampMillisecondArray::from(v))
        };
        let mut cols = Vec::with_capacity(self.cfg.schema.fields().len());
        for k in &self.cfg.keys {
            cols.push(match k {
                GroupKey::Window(WindowRole::Start) => window(&|s| s.start),
                GroupKey::Window(WindowRole::End) => window(&|s| s.end),
                GroupKey::Window(WindowRole::Time) => window(&|s| s.end - 1),
                GroupKey::Expr(_) => keys
                    .next()
                    .ok_or_else(|| Error::internal("missing session key column"))?,
            });
        }
        cols.extend(aggs);
        batch_of(&self.cfg.schema, cols)
    }

    /// Keep the stored batches to about the rows still held.
    fn compact(&mut self) -> Result<()> {
        let picks = self
            .keys
            .values_mut()
            .flat_map(|s| s.iter_mut())
            .flat_map(|s| s.rows.iter_mut());
        self.stored.compact(self.live, 8192, picks)
    }
}

impl Operator for SessionAggregate {
    fn name(&self) -> &'static str {
        "SessionAggregate"
    }

    fn describe(&self) -> String {
        let strategy = self.emit.as_ref().map(SessionEmit::describe);
        format!(
            "SessionAggregate: SESSION(gap={}) keys=[{}] aggs=[{}]{}",
            sluice_common::window::fmt_ms(self.cfg.gap),
            describe_keys(&self.cfg.keys),
            describe_aggregates(&self.cfg.aggregates),
            strategy.unwrap_or_default()
        )
    }

    fn output_schema(&self) -> SchemaRef {
        match &self.emit {
            Some(e) => e.output_schema(),
            None => Arc::clone(&self.cfg.schema),
        }
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let times = self.times(&batch)?;
        let keys = self.key_rows(&batch)?;
        let b = self.stored.next_index();
        let mut late = 0;
        for (i, t) in times.iter().enumerate() {
            let Some(t) = t else {
                late += 1;
                continue;
            };
            let row = keys.as_ref().map(|k| k.row(i));
            let key: &[u8] = row.as_ref().map_or(&[], |r| r.as_ref());
            if self.add(key, t, (b, i)) {
                self.live += 1;
            } else {
                late += 1;
            }
        }
        out.add_late(late);
        self.stored.push(batch);
        if self.emit.is_some() {
            self.after_batch(out)?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: Watermark, out: &mut Output) -> Result<Option<Watermark>> {
        self.watermark = wm.0;
        if !fired(self.min_end, wm.0) {
            return Ok(Some(wm));
        }
        if self.emit.is_some() {
            self.fire_and_expire(out)?;
        } else {
            let done = self.take_fired(wm.0);
            if !done.is_empty() {
                self.live -= done.iter().map(|s| s.rows.len()).sum::<usize>();
                let sessions: Vec<&Session> = done.iter().collect();
                out.push(self.results(&sessions)?);
            }
        }
        self.compact()?;
        Ok(Some(wm))
    }

    fn deadline(&self) -> Option<std::time::Instant> {
        self.emit.as_ref().and_then(SessionEmit::deadline)
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        self.snapshot_sessions()
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        self.restore_sessions(states, keys)
    }

    fn on_timer(&mut self, out: &mut Output) -> Result<()> {
        self.on_emit_timer(out)
    }

    fn on_end(&mut self, out: &mut Output) -> Result<()> {
        self.flush_dirty(out)
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let shown: usize = self
            .keys
            .values()
            .flatten()
            .flat_map(|s| s.meta.iter().flat_map(|m| m.shown.iter()))
            .map(Shown::bytes)
            .sum();
        let bytes = self.stored.bytes()
            + 16 * self.live
            + shown
            + self.keys.keys().map(|k| k.len() + 48).sum::<usize>();
        Some((self.keys.len(), bytes))
    }
}
