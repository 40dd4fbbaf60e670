//! Joins of two streams.
//!
//! - [`JoinOperator`]: a regular equi-join (INNER, LEFT, RIGHT, FULL, SEMI,
//!   ANTI) of append-only or updating inputs, as a symmetric hash join.
//! - [`interval::IntervalJoin`]: rows joined only within a time bound of
//!   each other; state freed as watermarks pass.
//! - [`window::WindowJoin`]: rows of the same window joined when the
//!   window closes.
//! - [`lookup::LookupJoin`]: a stream joined with a bounded table read
//!   first; no per-row state.
//! - [`temporal::TemporalJoin`]: each stream row joined with the version of
//!   a versioned table valid at its time.
//! - [`null_aware::NullAwareAntiJoin`]: `NOT IN` over columns that may be
//!   NULL (SQL's three-valued logic).
//!
//! A regular join keeps every row each side has seen ([`side::Side`]). A
//! batch from one side probes the other side's index, then joins its own:
//! so each matching pair is emitted once, when the later of its two rows
//! arrives. Rows with a NULL in a key never match (SQL equality). The
//! output rows are built a column at a time (`take` for the probing batch,
//! `interleave` over the stored batches), then the join's other conditions
//! filter them. Every stored row counts its matches: an outer side's row
//! with none is emitted padded with NULLs (`+I`) and taken back (`-D`) when
//! its first match arrives; a semi join emits a left row at its first match
//! and an anti join while it has none. A retraction from an updating input
//! removes an equal stored row and retracts what it was joined into.
//!
//! Without a TTL the state grows with the input, as in Flink. With
//! `table.exec.state.ttl` a key not written for that long (processing
//! time) is forgotten on its side, and the side's batches are compacted to
//! the rows still indexed.

pub mod interval;
pub mod lookup;
pub mod null_aware;
mod segments;
mod shape;
mod side;
pub mod temporal;
pub mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result};

use shape::{emit, Shape};
pub use shape::{JoinKind, JoinSpec};
use side::{Pick, Side};

use crate::operator::{Operator, Output};
use crate::operators::expiry::{wall_clock, Clock, Sweep};

/// What a regular join computes.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// Keys, other conditions, joined columns and kind.
    pub spec: JoinSpec,
    /// Forget keys not written for this long (`table.exec.state.ttl`).
    pub ttl: Option<Duration>,
    /// Which inputs are updating (carry row kinds).
    pub updating: [bool; 2],
}

/// See the module docs.
pub struct JoinOperator {
    cfg: JoinConfig,
    shape: Shape,
    sides: [Side; 2],
    sweep: Option<Sweep>,
    schema: SchemaRef,
}

/// Output parts of one input batch, each with its row kind.
type Parts = Vec<(RecordBatch, RowKind)>;

impl JoinOperator {
    /// A join of batches of `left` and `right` (their data columns).
    pub fn try_new(cfg: JoinConfig, left: &Schema, right: &Schema) -> Result<Self> {
        let sides = [
            Side::try_new(cfg.spec.left_keys.clone(), left, cfg.updating[0])?,
            Side::try_new(cfg.spec.right_keys.clone(), right, cfg.updating[1])?,
        ];
        let shape = cfg.spec.shape(left);
        let data = shape.data_schema();
        let changelog = is_changelog(&cfg);
        Ok(JoinOperator {
            sweep: cfg.ttl.map(|ttl| Sweep::new(ttl, wall_clock())),
            schema: if changelog {
                changelog::with_op_field(&data)
            } else {
                data
            },
            cfg,
            shape,
            sides,
        })
    }

    /// Measure idle time by `clock` (tests).
    pub fn set_clock(&mut self, clock: Clock) {
        self.sweep = self.cfg.ttl.map(|ttl| Sweep::new(ttl, clock));
    }

    /// With a TTL, expire idle keys when a sweep is due.
    fn expire(&mut self, now: u64) -> Result<()> {
        let Some(sweep) = self.sweep.as_mut() else {
            return Ok(());
        };
        if !sweep.due(now) {
            return Ok(());
        }
        for side in &mut self.sides {
            side.expire(now, sweep)?;
        }
        Ok(())
    }

    /// The pairs of `batch`'s rows (from side `input`, keyed by `keys`)
    /// with the other side's stored rows that pass the join's conditions.
    fn probe(
        &self,
        input: usize,
        batch: &RecordBatch,
        keys: &[Option<Box<[u8]>>],
    ) -> Result<Option<shape::Pairs>> {
        let other = &self.sides[1 - input];
        let (mine, theirs) = other.lookup(keys);
        if mine.is_empty() {
            return Ok(None);
        }
        let cols = other.rows(&theirs)?;
        Ok(Some(self.shape.pairs(input, batch, mine, theirs, cols)?))
    }

    /// Rows of the other side (`picks`) whose match count went from none
    /// to some (`first`) or back to none: what changes for them.
    fn other_changed(
        &self,
        input: usize,
        picks: &[Pick],
        first: bool,
        parts: &mut Parts,
    ) -> Result<()> {
        let other = 1 - input;
        if picks.is_empty() {
            return Ok(());
        }
        let kind = self.cfg.spec.kind;
        let on = if kind.outer()[other] || (kind == JoinKind::Anti && other == 0) {
            // The padded (or anti) row goes when the first match comes.
            Some(if first {
                RowKind::Delete
            } else {
                RowKind::Insert
            })
        } else if kind == JoinKind::Semi && other == 0 {
            Some(if first {
                RowKind::Insert
            } else {
                RowKind::Delete
            })
        } else {
            None
        };
        if let Some(k) = on {
            let cols = self.sides[other].rows(picks)?;
            parts.push((self.shape.lonely(other, cols)?, k));
        }
        Ok(())
    }

    /// Rows of `batch` (from side `input`) arriving (`kind` `+I`) or going
    /// (`-D`) with `matched` matches: their own unmatched or semi rows.
    fn own_changed(
        &self,
        input: usize,
        batch: &RecordBatch,
        matched: &[u32],
        kind: RowKind,
        parts: &mut Parts,
    ) -> Result<()> {
        let k = self.cfg.spec.kind;
        let want = if k.outer()[input] || (k == JoinKind::Anti && input == 0) {
            Some(false)
        } else if k == JoinKind::Semi && input == 0 {
            Some(true)
        } else {
            None
        };
        let Some(want) = want else {
            return Ok(());
        };
        if let Some(rows) = self.shape.lonely_where(input, batch, matched, want)? {
            parts.push((rows, kind));
        }
        Ok(())
    }

    /// New rows from side `input`: join, then store them. Returns the
    /// pairs matched.
    fn accumulate(
        &mut self,
        input: usize,
        batch: RecordBatch,
        now: u64,
        parts: &mut Parts,
    ) -> Result<usize> {
        let side = &self.sides[input];
        let keys = side.key_rows(&batch)?;
        let wholes = side.whole_rows(&batch)?;
        let mut matched = vec![0u32; batch.num_rows()];
        let mut pairs = 0;
        if let Some((joined, mine, theirs)) = self.probe(input, &batch, &keys)? {
            pairs = mine.len();
            mine.iter().for_each(|&i| matched[i as usize] += 1);
            let other = &mut self.sides[1 - input];
            let mut first = Vec::new();
            for &pick in &theirs {
                if other.add_match(pick, true) == 1 {
                    first.push(pick);
                }
            }
            self.other_changed(input, &first, true, parts)?;
            if self.cfg.spec.kind.emits_pairs() {
                parts.push((joined, RowKind::Insert));
            }
        }
        self.own_changed(input, &batch, &matched, RowKind::Insert, parts)?;
        self.sides[input].insert(batch, keys, matched, wholes, now);
        Ok(pairs)
    }

    /// Rows retracted from side `input`: take equal stored rows out and
    /// retract what they were in. A retraction of a row not stored (its
    /// key expired) changes nothing.
    fn retract(&mut self, input: usize, batch: RecordBatch, parts: &mut Parts) -> Result<()> {
        let side = &mut self.sides[input];
        let keys = side.key_rows(&batch)?;
        let Some(wholes) = side.whole_rows(&batch)? else {
            return Err(Error::internal("a retraction on an append-only join input"));
        };
        let mut found = Vec::new();
        let mut matched = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let stored = match key {
                // A row with a NULL key was never stored: it never matched.
                None => Some(0),
                Some(k) => side.remove(k, &wholes, i).map(|(b, r)| side.matches[b][r]),
            };
            if let Some(m) = stored {
                found.push(i as u32);
                matched.push(m);
            }
        }
        if side.stored_rows() > 2 * side.live_rows() + 1024 {
            side.compact()?;
        }
        let idx = UInt32Array::from(found.clone());
        let gone = take_record_batch(&batch, &idx)?;
        let keys: Vec<_> = found.iter().map(|&i| keys[i as usize].clone()).collect();
        if let Some((joined, _, theirs)) = self.probe(input, &gone, &keys)? {
            let other = &mut self.sides[1 - input];
            let mut last = Vec::new();
            for &pick in &theirs {
                if other.add_match(pick, false) == 0 {
                    last.push(pick);
                }
            }
            if self.cfg.spec.kind.emits_pairs() {
                parts.push((joined, RowKind::Delete));
            }
            self.other_changed(input, &last, false, parts)?;
        }
        self.own_changed(input, &gone, &matched, RowKind::Delete, parts)
    }

    /// Split an updating batch into its retractions and its new rows (both
    /// without row kinds), dropping a row added and retracted in the same
    /// batch. Retractions are applied first: the result is the same.
    fn split(&self, input: usize, batch: &RecordBatch) -> Result<[RecordBatch; 2]> {
        let ops = changelog::ops(batch)
            .ok_or_else(|| Error::internal("an updating join input without row kinds"))?;
        let data = changelog::data(batch)?;
        let wholes = self.sides[input]
            .whole_rows(&data)?
            .ok_or_else(|| Error::internal("an updating join input kept without whole rows"))?;
        let mut pending: HashMap<arrow::row::Row<'_>, Vec<usize>> = HashMap::new();
        let mut keep = vec![true; data.num_rows()];
        for i in 0..data.num_rows() {
            let accumulate = RowKind::from_code(ops.value(i)).is_some_and(RowKind::is_accumulate);
            let row = wholes.row(i);
            if accumulate {
                pending.entry(row).or_default().push(i);
            } else if let Some(j) = pending.get_mut(&row).and_then(Vec::pop) {
                keep[i] = false;
                keep[j] = false;
            }
        }
        let pick = |acc: bool| -> Result<RecordBatch> {
            let idx: Vec<u32> = (0..data.num_rows())
                .filter(|&i| {
                    keep[i]
                        && RowKind::from_code(ops.value(i)).is_some_and(RowKind::is_accumulate)
                            == acc
                })
                .map(|i| i as u32)
                .collect();
            Ok(take_record_batch(&data, &UInt32Array::from(idx))?)
        };
        Ok([pick(false)?, pick(true)?])
    }
}

/// Whether a join's output is a changelog: an outer or anti join takes
/// rows back when matches arrive, and retractions in pass through.
fn is_changelog(cfg: &JoinConfig) -> bool {
    cfg.spec.kind.outer().iter().any(|o| *o)
        || cfg.spec.kind == JoinKind::Anti
        || cfg.updating.iter().any(|u| *u)
}

impl Operator for JoinOperator {
    fn name(&self) -> &'static str {
        "Join"
    }

    fn describe(&self) -> String {
        self.cfg.spec.describe("Join", "")
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if input > 1 {
            return Err(Error::internal("a join has two inputs"));
        }
        let now = self.sweep.as_ref().map_or(0, Sweep::now);
        self.expire(now)?;
        let mut parts = Vec::new();
        if self.cfg.updating[input] {
            let [gone, new] = self.split(input, &batch)?;
            if gone.num_rows() > 0 {
                self.retract(input, gone, &mut parts)?;
            }
            if new.num_rows() > 0 {
                out.add_matched(self.accumulate(input, new, now, &mut parts)?);
            }
        } else {
            out.add_matched(self.accumulate(input, batch, now, &mut parts)?);
        }
        emit(&self.schema, is_changelog(&self.cfg), parts, out)
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let keys = self.sides.iter().map(|s| s.index.len()).sum();
        let bytes = self.sides.iter().map(|s| s.bytes).sum();
        Some((keys, bytes))
    }

    fn state_rows(&self) -> Option<[usize; 2]> {
        Some([self.sides[0].live, self.sides[1].live])
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    /// Each side's stored rows, incrementally (`segments`).
    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        let mut state = crate::checkpoint::State::new();
        let times = self.cfg.ttl.is_some();
        for (name, side) in ["left", "right"].iter().zip(&mut self.sides) {
            segments::snapshot(side, name, &mut state, times)?;
        }
        Ok(state)
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        for state in states {
            for (name, side) in ["left", "right"].iter().zip(&mut self.sides) {
                if segments::restore(side, name, state, keys)? {
                    continue;
                }
                // A checkpoint of the whole side (written before segments).
                if let Some(rows) = state.get(name) {
                    side.restore(rows, keys)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::{batch_i64, spec_on_k};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A `kind` join on `k` of batches like `left` and `right`, with a
    /// 100 ms TTL measured by the returned clock.
    fn ttl_join(
        left: &RecordBatch,
        right: &RecordBatch,
        kind: JoinKind,
    ) -> (JoinOperator, Arc<AtomicU64>) {
        let (ls, rs) = (left.schema(), right.schema());
        let cfg = JoinConfig {
            spec: spec_on_k(&ls, &rs, kind),
            ttl: Some(Duration::from_millis(100)),
            updating: [false, false],
        };
        let mut op = JoinOperator::try_new(cfg, &ls, &rs).expect("join");
        let now = Arc::new(AtomicU64::new(0));
        let t = Arc::clone(&now);
        op.set_clock(Arc::new(move || t.load(Ordering::Relaxed)));
        (op, now)
    }

    #[test]
    fn pairs_once_and_forgets_idle_keys() {
        let left = batch_i64(&[("k", &[1, 2]), ("a", &[10, 20])]);
        let right = batch_i64(&[("k", &[1, 1]), ("b", &[7, 8])]);
        let (mut op, now) = ttl_join(&left, &right, JoinKind::Inner);
        let mut out = Output::default();
        op.on_batch(0, left.clone(), &mut out).expect("left");
        op.on_batch(1, right.clone(), &mut out).expect("right");
        let rows: usize = out.take_batches().iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 2, "key 1: one left row, two right rows");
        assert_eq!(op.state_size().map(|s| s.0), Some(3));
        // Past the TTL every key is forgotten: the same right rows find
        // nothing, and the state holds only what came since.
        now.store(1_000, Ordering::Relaxed);
        op.on_batch(1, right, &mut out).expect("right again");
        assert!(out.take_batches().is_empty());
        assert_eq!(op.state_size().map(|s| s.0), Some(1));
    }

    /// Compaction keeps each surviving row's match count: a LEFT row that
    /// outlives an expired key still has its padded row taken back once.
    #[test]
    fn outer_rows_keep_their_matches_through_expiry() {
        let l1 = batch_i64(&[("k", &[1]), ("a", &[10])]);
        let l2 = batch_i64(&[("k", &[2]), ("a", &[20])]);
        let r1 = batch_i64(&[("k", &[1]), ("b", &[7])]);
        let r2 = batch_i64(&[("k", &[2]), ("b", &[8])]);
        let (mut op, now) = ttl_join(&l1, &r1, JoinKind::Left);
        let mut out = Output::default();
        op.on_batch(0, l1, &mut out).expect("left 1");
        op.on_batch(1, r1, &mut out).expect("right 1");
        now.store(60, Ordering::Relaxed);
        op.on_batch(0, l2, &mut out).expect("left 2");
        out.take_batches();
        // Key 1 expires on both sides; left key 2 (unmatched) survives.
        now.store(120, Ordering::Relaxed);
        op.on_batch(1, r2, &mut out).expect("right 2");
        let kinds: Vec<i8> = out
            .take_batches()
            .iter()
            .flat_map(|b| changelog::ops(b).expect("changelog").values().to_vec())
            .collect();
        assert_eq!(
            kinds,
            vec![RowKind::Delete.code(), RowKind::Insert.code()],
            "the padded row of left key 2 is retracted, then the joined row"
        );
    }
}

#[cfg(test)]
mod checkpoint_tests {
    use super::*;
    use crate::operators::test_util::{assert_restores, batch_i64, spec_on_k, Feed};

    /// Every kind of regular join restored mid-stream (at any
    /// parallelism, rows routed by key) continues as if uninterrupted:
    /// stored rows, their match counts and padded rows included.
    #[test]
    fn joins_restore_their_sides() {
        let l = |k: &[i64], a: &[i64]| batch_i64(&[("k", k), ("a", a)]);
        let r = |k: &[i64], b: &[i64]| batch_i64(&[("k", k), ("b", b)]);
        let before = [
            Feed::Rows(0, l(&[1, 2, 3, 4], &[10, 20, 30, 40])),
            Feed::Rows(1, r(&[1, 1, 5], &[7, 8, 9])),
        ];
        let after = [
            Feed::Rows(1, r(&[2, 3, 6], &[1, 2, 3])),
            Feed::Rows(0, l(&[5, 6, 1, 7], &[50, 60, 11, 70])),
            Feed::Rows(1, r(&[4, 7, 8], &[4, 5, 6])),
        ];
        for kind in [
            JoinKind::Inner,
            JoinKind::Left,
            JoinKind::Right,
            JoinKind::Full,
            JoinKind::Semi,
            JoinKind::Anti,
        ] {
            let (ls, rs) = (l(&[], &[]).schema(), r(&[], &[]).schema());
            let make = || -> Box<dyn Operator> {
                let cfg = JoinConfig {
                    spec: spec_on_k(&ls, &rs, kind),
                    ttl: None,
                    updating: [false, false],
                };
                Box::new(JoinOperator::try_new(cfg, &ls, &rs).expect("join"))
            };
            let route = |_: usize, b: &RecordBatch, range: crate::checkpoint::KeyRange| {
                range
                    .filter_by(b, &[Arc::clone(b.column(0))])
                    .expect("routes")
            };
            assert_restores(&make, &before, &after, &route);
        }
    }
}
