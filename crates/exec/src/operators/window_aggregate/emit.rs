//! A window aggregate with an emit strategy (Flink's `table.exec.emit.*`):
//! results before a window closes (early fire) and updated results for rows
//! that arrive after it fired (allowed lateness), as an updating stream.
//!
//! Each window keeps its own state (no panes: HOP rows are copied per
//! window). A window's result is emitted
//! * early, while the watermark is before its end: every input batch
//!   (delay 0) or every `early` delay of wall-clock time, when it changed;
//! * on time, when the watermark passes its end (as without a strategy);
//! * late, after a row within the allowed lateness updated it: every batch
//!   (delay 0, Flink's default) or every `late` delay.
//!
//! The first result of a group is `+I`; a changed one is `-U` old, `+U`
//! new; an unchanged one emits nothing. A window's state is freed once the
//! watermark passes its end plus the lateness; rows for a freed window are
//! dropped and counted as late.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int8Array};
use arrow::compute::interleave;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use datafusion::logical_expr::EmitTo;
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result, Watermark};

use super::late::fired;
use super::{PaneState, WindowAggConfig, WindowAggregateOperator};
use crate::operator::{Operator, Output};

/// When a window aggregate emits besides when its window closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmitStrategy {
    /// Early results: every batch (zero) or every delay; `None`: none.
    pub early: Option<Duration>,
    /// How long a window's state is kept after it fired, in ms.
    pub lateness: i64,
    /// Late results: every batch (zero) or every delay.
    pub late: Duration,
}

impl std::fmt::Display for EmitStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let every = |d: Duration| match d.as_millis() {
            0 => "batch".to_string(),
            ms => sluice_common::window::fmt_ms(ms as i64),
        };
        if let Some(d) = self.early {
            write!(f, " early={}", every(d))?;
        }
        if self.lateness > 0 {
            let lateness = sluice_common::window::fmt_ms(self.lateness);
            write!(f, " lateness={lateness} late={}", every(self.late))?;
        }
        Ok(())
    }
}

/// What one window emitted last.
pub(super) struct Emitted {
    /// Its output rows (keys and aggregates, in group order).
    pub(super) rows: Option<RecordBatch>,
    /// Changed since it was emitted.
    pub(super) dirty: bool,
    /// The watermark passed its end.
    pub(super) fired: bool,
}

/// See the module docs.
pub struct EmitWindowAggregate {
    pub(super) inner: WindowAggregateOperator,
    strategy: EmitStrategy,
    /// Window state by pane key (start, or end for CUMULATE).
    pub(super) windows: BTreeMap<i64, PaneState>,
    pub(super) emitted: BTreeMap<i64, Emitted>,
    pub(super) watermark: i64,
    output: SchemaRef,
    rows: RowConverter,
    /// When the dirty windows before / after their end are emitted next.
    next_early: Option<Instant>,
    next_late: Option<Instant>,
}

impl std::fmt::Debug for EmitWindowAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmitWindowAggregate")
            .field("strategy", &self.strategy)
            .field("windows", &self.windows.len())
            .finish()
    }
}

impl EmitWindowAggregate {
    /// A window aggregate over rows (not panes or partials) with `strategy`.
    pub fn try_new(cfg: WindowAggConfig, input: &Schema, strategy: EmitStrategy) -> Result<Self> {
        if cfg.panes || !matches!(cfg.input, super::AggInput::Rows) {
            return Err(Error::internal("an emit strategy over panes or partials"));
        }
        let output = changelog::with_op_field(&cfg.schema);
        let rows = RowConverter::new(
            cfg.schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        Ok(EmitWindowAggregate {
            inner: WindowAggregateOperator::try_new(cfg, input)?,
            strategy,
            windows: BTreeMap::new(),
            emitted: BTreeMap::new(),
            watermark: i64::MIN,
            output,
            rows,
            next_early: None,
            next_late: None,
        })
    }

    /// The end of the window kept under `pane`.
    fn end_of(&self, pane: i64) -> i64 {
        pane.saturating_add(self.inner.unit)
    }

    /// The (start, end) of the window kept under `pane`.
    fn bounds(&self, pane: i64) -> (i64, i64) {
        if self.inner.unit == 0 {
            (self.inner.cfg.spec.start_of(pane), pane)
        } else {
            (pane, pane + self.inner.unit)
        }
    }

    /// Whether the state of the window under `pane` is freed at `wm`.
    fn expired(&self, pane: i64, wm: i64) -> bool {
        fired(self.end_of(pane).saturating_add(self.strategy.lateness), wm)
    }

    /// The window's result now, leaving its state as it was (its keys and
    /// accumulator states are copied out, then evaluated apart).
    fn current(&mut self, pane: i64) -> Result<Option<RecordBatch>> {
        let fresh = self.inner.new_accumulators()?;
        let key_schema = Arc::clone(&self.inner.key_schema);
        let Some(state) = self.windows.get_mut(&pane) else {
            return Ok(None);
        };
        let part = super::checkpoint::copy_pane(state, &key_schema, fresh)?;
        let n = part.num_groups;
        let ids: Vec<usize> = (0..n).collect();
        let mut aggs = Vec::with_capacity(part.states.len());
        for (e, parts) in self.inner.new_accumulators()?.iter_mut().zip(&part.states) {
            e.merge_batch(parts, &ids, n)?;
            aggs.push(e.evaluate(EmitTo::All)?);
        }
        let mut out = Output::default();
        self.inner
            .emit(self.bounds(pane), part.keys, aggs, n, &mut out)?;
        Ok(out.take_batches().pop())
    }

    /// Emit the window's changes since it last emitted.
    fn emit_window(&mut self, pane: i64, out: &mut Output) -> Result<()> {
        let Some(new) = self.current(pane)? else {
            return Ok(());
        };
        let Some(meta) = self.emitted.get_mut(&pane) else {
            return Err(Error::internal("a window without emit state"));
        };
        meta.dirty = false;
        let old = meta.rows.replace(new.clone());
        let old_n = old.as_ref().map_or(0, RecordBatch::num_rows);
        let empty = new.slice(0, 0);
        let old = old.unwrap_or(empty);
        let old_rows = self.rows.convert_columns(old.columns())?;
        let new_rows = self.rows.convert_columns(new.columns())?;
        let mut picks = Vec::new();
        let mut kinds = Vec::new();
        for g in 0..new.num_rows() {
            if g >= old_n {
                picks.push((1, g));
                kinds.push(RowKind::Insert.code());
            } else if old_rows.row(g) != new_rows.row(g) {
                picks.extend([(0, g), (1, g)]);
                kinds.extend([RowKind::UpdateBefore.code(), RowKind::UpdateAfter.code()]);
            }
        }
        if picks.is_empty() {
            return Ok(());
        }
        let cols = old
            .columns()
            .iter()
            .zip(new.columns())
            .map(|(o, n)| interleave(&[o.as_ref(), n.as_ref()], &picks))
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
        out.push(changelog::with_ops(
            &self.output,
            cols,
            Int8Array::from(kinds),
        )?);
        Ok(())
    }
}

impl EmitWindowAggregate {
    /// Arm the timer for windows before (`early`) or after their end.
    fn arm(&mut self, early: bool, delay: Duration) {
        let at = if early {
            &mut self.next_early
        } else {
            &mut self.next_late
        };
        at.get_or_insert_with(|| Instant::now() + delay);
    }

    /// Emit every dirty window whose `fired` is `fired`.
    fn emit_dirty(&mut self, fired: bool, out: &mut Output) -> Result<()> {
        let due: Vec<i64> = self
            .emitted
            .iter()
            .filter(|(_, m)| m.dirty && m.fired == fired)
            .map(|(p, _)| *p)
            .collect();
        for pane in due {
            self.emit_window(pane, out)?;
        }
        Ok(())
    }
}

impl Operator for EmitWindowAggregate {
    fn name(&self) -> &'static str {
        "WindowAggregate"
    }

    fn describe(&self) -> String {
        format!("{}{}", self.inner.describe(), self.strategy)
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.output)
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let groups = self.windows.values().map(|w| w.num_groups).sum();
        let bytes = self
            .windows
            .values()
            .map(|w| {
                w.groups.as_ref().map_or(0, |g| g.size())
                    + w.accumulators.iter().map(|a| a.size()).sum::<usize>()
            })
            .chain(self.emitted.values().map(|m| {
                m.rows
                    .as_ref()
                    .map_or(0, RecordBatch::get_array_memory_size)
            }))
            .sum();
        Some((groups, bytes))
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let wm = self.watermark;
        let panes = self.inner.pane_starts(&batch)?;
        // Each row's window, unless its state is freed (late) or its time
        // is NULL.
        let open: Vec<Option<i64>> = panes
            .iter()
            .map(|p| p.filter(|&p| !self.expired(p, wm)))
            .collect();
        let keep: arrow::array::BooleanArray = open.iter().map(|p| Some(p.is_some())).collect();
        let touched: BTreeSet<i64> = open.into_iter().flatten().collect();
        let late = batch.num_rows() - keep.true_count();
        let batch = if late > 0 {
            out.add_late(late as u64);
            arrow::compute::filter_record_batch(&batch, &keep)?
        } else {
            batch
        };
        if batch.num_rows() > 0 {
            let mut windows = std::mem::take(&mut self.windows);
            let result = self.inner.update_panes(&mut windows, &batch);
            self.windows = windows;
            result?;
        }
        for pane in touched {
            let on_time = fired(self.end_of(pane), wm);
            let meta = self.emitted.entry(pane).or_insert(Emitted {
                rows: None,
                dirty: false,
                fired: on_time,
            });
            meta.dirty = true;
            let delay = if meta.fired {
                Some(self.strategy.late)
            } else {
                self.strategy.early
            };
            match delay {
                Some(d) if d.is_zero() => self.emit_window(pane, out)?,
                Some(d) => self.arm(!on_time, d),
                None => {}
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: Watermark, out: &mut Output) -> Result<Option<Watermark>> {
        self.watermark = wm.0;
        let due: Vec<i64> = self
            .emitted
            .iter()
            .filter(|(p, m)| !m.fired && fired(self.end_of(**p), wm.0))
            .map(|(p, _)| *p)
            .collect();
        for pane in due {
            if let Some(m) = self.emitted.get_mut(&pane) {
                m.fired = true;
                if m.dirty {
                    self.emit_window(pane, out)?;
                }
            }
        }
        let gone: Vec<i64> = self
            .windows
            .keys()
            .copied()
            .take_while(|&p| self.expired(p, wm.0))
            .collect();
        for pane in gone {
            if self.emitted.get(&pane).is_some_and(|m| m.dirty) {
                self.emit_window(pane, out)?;
            }
            self.windows.remove(&pane);
            self.emitted.remove(&pane);
        }
        Ok(Some(wm))
    }

    fn deadline(&self) -> Option<Instant> {
        match (self.next_early, self.next_late) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self, out: &mut Output) -> Result<()> {
        let now = Instant::now();
        if self.next_early.is_some_and(|t| t <= now) {
            self.next_early = None;
            self.emit_dirty(false, out)?;
        }
        if self.next_late.is_some_and(|t| t <= now) {
            self.next_late = None;
            self.emit_dirty(true, out)?;
        }
        Ok(())
    }

    fn on_end(&mut self, out: &mut Output) -> Result<()> {
        self.emit_dirty(false, out)?;
        self.emit_dirty(true, out)
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        self.snapshot_windows()
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        self.restore_windows(states, keys)?;
        // Windows changed since they were shown wait for their clocks.
        if self.emitted.values().any(|m| m.dirty) {
            if let Some(d) = self.strategy.early.filter(|d| !d.is_zero()) {
                self.arm(true, d);
            }
            if !self.strategy.late.is_zero() {
                self.arm(false, self.strategy.late);
            }
        }
        Ok(())
    }
}
