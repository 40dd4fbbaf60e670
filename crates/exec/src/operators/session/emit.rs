//! Emit strategies for session windows (Flink's `table.exec.emit.*`, which
//! Flink itself refuses for sessions beyond allowed lateness).
//!
//! The result is an updating stream keyed by the GROUP BY columns, window
//! bounds included. A session's row changes when rows join it, and its
//! bounds change when it grows or merges, so:
//! * a session whose bounds are those it was shown with updates its row
//!   (`-U` old, `+U` new; nothing when the result is the same);
//! * any other row it was shown with, its own or that of a session merged
//!   into it, is deleted (`-D`), and the new row inserted (`+I`).
//!
//! When a session's changes go out:
//! * early, while the watermark is before its end: after every batch
//!   (delay 0) or every early delay of wall-clock time;
//! * on time, when the watermark passes its end;
//! * late, once it fired: after a row within the allowed lateness changed
//!   it, after the batch (delay 0) or every late delay. A late row that
//!   bridges a shown session with one still open (or grows it past the
//!   watermark) retracts the shown row on that schedule, and the merged
//!   session is emitted when it fires, so a stale session never stays
//!   visible beside the one that replaced it.
//!
//! Sessions are kept until the watermark passes their end plus the
//! lateness, so a late row within it can still join, grow or bridge them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int8Array};
use arrow::compute::interleave;
use arrow::datatypes::SchemaRef;
use arrow::row::{OwnedRow, RowConverter, SortField};
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result};

use super::{Session, SessionAggregate};
use crate::operator::Output;
use crate::operators::window_aggregate::{fired, EmitStrategy};

/// A session's result row as shown downstream.
pub(super) struct Shown {
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) row: OwnedRow,
}

impl Shown {
    /// Its size in memory.
    pub(super) fn bytes(&self) -> usize {
        16 + size_of::<OwnedRow>() + self.row.row().as_ref().len()
    }
}

/// The emit state of a session aggregate.
pub(super) struct SessionEmit {
    strategy: EmitStrategy,
    /// The result schema with the row kind column.
    output: SchemaRef,
    /// Encodes result rows (to compare and keep what was shown).
    pub(super) rows: RowConverter,
    /// Keys whose sessions the current batch changed.
    touched: HashSet<Box<[u8]>>,
    next_early: Option<Instant>,
    next_late: Option<Instant>,
}

/// Which clock a dirty session's changes wait for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Schedule {
    Early,
    Late,
}

/// A session whose changes go out now.
struct Due {
    key: Box<[u8]>,
    index: usize,
    /// (end, start): the order they go out in.
    order: (i64, i64),
    /// Its new row, or only the retraction of what it showed.
    full: bool,
}

impl SessionEmit {
    pub(super) fn try_new(strategy: EmitStrategy, schema: &SchemaRef) -> Result<Self> {
        let fields = schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        Ok(SessionEmit {
            strategy,
            output: changelog::with_op_field(schema),
            rows: RowConverter::new(fields)?,
            touched: HashSet::new(),
            next_early: None,
            next_late: None,
        })
    }

    pub(super) fn lateness(&self) -> i64 {
        self.strategy.lateness
    }

    pub(super) fn describe(&self) -> String {
        self.strategy.to_string()
    }

    pub(super) fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.output)
    }

    /// Note that the current batch changed a session of `key`.
    pub(super) fn touch(&mut self, key: &[u8]) {
        if !self.touched.contains(key) {
            self.touched.insert(key.into());
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        match (self.next_early, self.next_late) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What a session waits for: a schedule, and whether its whole row
    /// goes out or only the retraction of what it showed; `None` when it
    /// has nothing to emit before it fires.
    fn pending(&self, s: &Session) -> Option<(Schedule, bool)> {
        let m = s.meta.as_ref()?;
        if !m.dirty {
            None
        } else if m.done {
            Some((Schedule::Late, true))
        } else if self.strategy.early.is_some() {
            Some((Schedule::Early, true))
        } else if !m.shown.is_empty() {
            Some((Schedule::Late, false))
        } else {
            None
        }
    }

    fn delay(&self, schedule: Schedule) -> Duration {
        match schedule {
            Schedule::Early => self.strategy.early.unwrap_or_default(),
            Schedule::Late => self.strategy.late,
        }
    }

    /// Start every clock with a delay (a restore: sessions may be waiting).
    pub(super) fn arm_all(&mut self) {
        if self.strategy.early.is_some_and(|d| !d.is_zero()) {
            self.arm(Schedule::Early);
        }
        if !self.strategy.late.is_zero() {
            self.arm(Schedule::Late);
        }
    }

    /// Start the clock of `schedule`, unless it runs already.
    fn arm(&mut self, schedule: Schedule) {
        let at = Instant::now() + self.delay(schedule);
        match schedule {
            Schedule::Early => self.next_early.get_or_insert(at),
            Schedule::Late => self.next_late.get_or_insert(at),
        };
    }
}

impl Due {
    fn new(key: &[u8], index: usize, s: &Session, full: bool) -> Self {
        Due {
            key: key.into(),
            index,
            order: (s.end, s.start),
            full,
        }
    }
}

impl SessionAggregate {
    fn emit_state(&mut self) -> Result<&mut SessionEmit> {
        self.emit
            .as_mut()
            .ok_or_else(|| Error::internal("session emit state without a strategy"))
    }

    /// After a batch: the changed sessions whose schedule has no delay go
    /// out now; the others start their clock.
    pub(super) fn after_batch(&mut self, out: &mut Output) -> Result<()> {
        let touched = std::mem::take(&mut self.emit_state()?.touched);
        let emit = self
            .emit
            .as_ref()
            .ok_or_else(|| Error::internal("session emit state without a strategy"))?;
        let mut due = Vec::new();
        let mut arm = Vec::new();
        for key in touched {
            let Some(sessions) = self.keys.get(&key) else {
                continue;
            };
            for (i, s) in sessions.iter().enumerate() {
                let Some((schedule, full)) = emit.pending(s) else {
                    continue;
                };
                if emit.delay(schedule).is_zero() {
                    due.push(Due::new(&key, i, s, full));
                } else {
                    arm.push(schedule);
                }
            }
        }
        let emit = self.emit_state()?;
        for schedule in arm {
            emit.arm(schedule);
        }
        self.refresh(due, out)
    }

    /// The early and late clocks: the sessions waiting for a clock that
    /// ran out go out.
    pub(super) fn on_emit_timer(&mut self, out: &mut Output) -> Result<()> {
        let Some(emit) = self.emit.as_mut() else {
            return Ok(());
        };
        let now = Instant::now();
        let early = emit.next_early.is_some_and(|t| t <= now);
        let late = emit.next_late.is_some_and(|t| t <= now);
        if early {
            emit.next_early = None;
        }
        if late {
            emit.next_late = None;
        }
        let emit: &SessionEmit = emit;
        let mut due = Vec::new();
        for (key, sessions) in &self.keys {
            for (i, s) in sessions.iter().enumerate() {
                match emit.pending(s) {
                    Some((Schedule::Early, full)) if early => due.push(Due::new(key, i, s, full)),
                    Some((Schedule::Late, full)) if late => due.push(Due::new(key, i, s, full)),
                    _ => {}
                }
            }
        }
        self.refresh(due, out)
    }

    /// Every changed session goes out (the input ended).
    pub(super) fn flush_dirty(&mut self, out: &mut Output) -> Result<()> {
        if self.emit.is_none() {
            return Ok(());
        }
        let mut due = Vec::new();
        for (key, sessions) in &self.keys {
            for (i, s) in sessions.iter().enumerate() {
                if s.meta.as_ref().is_some_and(|m| m.dirty) {
                    due.push(Due::new(key, i, s, true));
                }
            }
        }
        self.refresh(due, out)
    }

    /// At a watermark: sessions that fired go out on time; sessions past
    /// the lateness go out if changed, then are freed.
    pub(super) fn fire_and_expire(&mut self, out: &mut Output) -> Result<()> {
        let (wm, lateness) = (self.watermark, self.lateness);
        let mut due = Vec::new();
        for (key, sessions) in &mut self.keys {
            for (i, s) in sessions.iter_mut().enumerate() {
                let (end, expiring) = (s.end, fired(s.end.saturating_add(lateness), wm));
                let Some(m) = s.meta.as_mut() else {
                    continue;
                };
                let firing = !m.done && fired(end, wm);
                m.done |= firing;
                if m.dirty && (firing || expiring) {
                    due.push(Due::new(key, i, s, true));
                }
            }
        }
        self.refresh(due, out)?;
        let mut min_end = i64::MAX;
        let mut freed = 0;
        self.keys.retain(|_, sessions| {
            sessions.retain(|s| {
                let expiry = s.end.saturating_add(lateness);
                if fired(expiry, wm) {
                    freed += s.rows.len();
                    return false;
                }
                let done = s.meta.as_ref().is_some_and(|m| m.done);
                min_end = min_end.min(if done { expiry } else { s.end });
                true
            });
            !sessions.is_empty()
        });
        self.live -= freed;
        self.min_end = min_end;
        Ok(())
    }

    /// Emit the changes of the `due` sessions (see the module docs).
    fn refresh(&mut self, mut due: Vec<Due>, out: &mut Output) -> Result<()> {
        if due.is_empty() {
            return Ok(());
        }
        due.sort_by(|a, b| (a.order, &a.key).cmp(&(b.order, &b.key)));
        let full = due
            .iter()
            .filter(|d| d.full)
            .map(|d| {
                self.keys
                    .get(&d.key)
                    .and_then(|s| s.get(d.index))
                    .ok_or_else(|| Error::internal("a due session is gone"))
            })
            .collect::<Result<Vec<&Session>>>()?;
        let new = self.results(&full)?;
        let emit = self
            .emit
            .as_ref()
            .ok_or_else(|| Error::internal("session emit state without a strategy"))?;
        let new_rows = emit.rows.convert_columns(new.columns())?;
        let mut olds: Vec<OwnedRow> = Vec::new();
        let mut picks = Vec::new();
        let mut kinds = Vec::new();
        let mut j = 0;
        for d in &due {
            let s = self
                .keys
                .get_mut(&d.key)
                .and_then(|s| s.get_mut(d.index))
                .ok_or_else(|| Error::internal("a due session is gone"))?;
            let bounds = (s.start, s.end);
            let m = s
                .meta
                .as_mut()
                .ok_or_else(|| Error::internal("a session without emit state"))?;
            let mut same = None;
            for old in std::mem::take(&mut m.shown) {
                if d.full && (old.start, old.end) == bounds {
                    same = Some(old.row);
                } else {
                    picks.push((0, olds.len()));
                    kinds.push(RowKind::Delete.code());
                    olds.push(old.row);
                }
            }
            if !d.full {
                continue;
            }
            let row = new_rows.row(j);
            match same {
                Some(old) if old.row() == row => {}
                Some(old) => {
                    picks.extend([(0, olds.len()), (1, j)]);
                    kinds.extend([RowKind::UpdateBefore.code(), RowKind::UpdateAfter.code()]);
                    olds.push(old);
                }
                None => {
                    picks.push((1, j));
                    kinds.push(RowKind::Insert.code());
                }
            }
            m.shown.push(Shown {
                start: bounds.0,
                end: bounds.1,
                row: row.owned(),
            });
            m.dirty = false;
            j += 1;
        }
        if picks.is_empty() {
            return Ok(());
        }
        let old_cols = emit.rows.convert_rows(olds.iter().map(OwnedRow::row))?;
        let cols = old_cols
            .iter()
            .zip(new.columns())
            .map(|(o, n)| interleave(&[o.as_ref(), n.as_ref()], &picks))
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
        out.push(changelog::with_ops(
            &emit.output,
            cols,
            Int8Array::from(kinds),
        )?);
        Ok(())
    }
}
