//! Incremental checkpoints of a join side. A side's stored batches never
//! change (rows leave its index, match counts change, compaction makes new
//! batches), so each checkpoint groups the batches stored since the last
//! one into a *segment*, handed over as a shared table (written once), and
//! each segment's match counts and liveness as another shared table that
//! is written again only when they changed. A join whose sides only grow
//! (an updating join over append-only inputs) writes per checkpoint about
//! what it stored since the last one.
//!
//! Tables of side `s`: `s.order` (the segments' ids, in order), shared
//! `s.s<id>` (a segment's rows), shared `s.c<id>` (their match counts and
//! whether each is still indexed) and, with a TTL, `s.times` (each key's
//! last write).

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BinaryArray, BooleanArray, UInt32Array, UInt64Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, UInt32Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

use super::side::{Pick, Side, MATCHES, WRITTEN};
use crate::checkpoint::state::with_columns;
use crate::checkpoint::{KeyRange, State};

/// What incremental checkpoints know of a side's stored batches.
#[derive(Debug, Default)]
pub(crate) struct Segments {
    /// Per stored batch: its rows taken out of the index.
    dead: Vec<Vec<u32>>,
    /// Per stored batch: counts or rows changed since the last checkpoint.
    changed: Vec<bool>,
    /// Checkpointed segments, in batch order.
    list: Vec<Segment>,
    next: u64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    batches: Range<usize>,
    /// Bumped when its counts are handed over changed.
    version: u64,
    counts: RecordBatch,
}

impl Segments {
    /// The side's batches were replaced (compaction): every batch is new.
    /// Segment ids go on from where they were: a share key names one
    /// content for the operator's whole life.
    pub fn restart(&mut self) {
        let next = self.next;
        *self = Segments {
            next,
            ..Default::default()
        };
    }

    /// A batch was stored.
    pub fn stored(&mut self) {
        self.dead.push(Vec::new());
        self.changed.push(true);
    }

    /// A match count of batch `b` changed.
    pub fn changed(&mut self, b: usize) {
        if let Some(c) = self.changed.get_mut(b) {
            *c = true;
        }
    }

    /// A stored row left the index.
    pub fn removed(&mut self, (b, r): Pick) {
        if let Some(d) = self.dead.get_mut(b) {
            d.push(r as u32);
        }
        self.changed(b);
    }
}

/// The match counts and liveness of the rows of `batches`.
fn counts(matches: &[Vec<u32>], dead: &[Vec<u32>]) -> Result<RecordBatch> {
    let mut live = Vec::new();
    for (m, d) in matches.iter().zip(dead) {
        let start = live.len();
        live.resize(start + m.len(), true);
        for &r in d {
            live[start + r as usize] = false;
        }
    }
    let counts: UInt32Array = matches.iter().flatten().copied().collect();
    let schema = Schema::new(vec![
        Field::new(MATCHES, DataType::UInt32, false),
        Field::new("__live", DataType::Boolean, false),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(counts), Arc::new(BooleanArray::from(live))],
    )?)
}

/// Hand side `side`'s rows over as `name.*` tables (module docs); `times`
/// adds each key's last write (for a TTL).
pub(crate) fn snapshot(side: &mut Side, name: &str, state: &mut State, times: bool) -> Result<()> {
    let n = side.batches.len();
    if n == 0 {
        return Ok(());
    }
    let Side {
        batches,
        matches,
        segments: segs,
        index,
        ..
    } = side;
    if segs.dead.len() != n {
        return Err(Error::internal(
            "a join side's segments lost track of its batches",
        ));
    }
    let start = segs.list.last().map_or(0, |s| s.batches.end);
    if start < n {
        let counts = counts(&matches[start..n], &segs.dead[start..n])?;
        segs.changed[start..n].fill(false);
        segs.list.push(Segment {
            id: segs.next,
            batches: start..n,
            version: 0,
            counts,
        });
        segs.next += 1;
    }
    let mut order = Vec::with_capacity(segs.list.len());
    for seg in &mut segs.list {
        let r = seg.batches.clone();
        if segs.changed[r.clone()].iter().any(|&c| c) {
            seg.counts = counts(&matches[r.clone()], &segs.dead[r.clone()])?;
            seg.version += 1;
            segs.changed[r.clone()].fill(false);
        }
        order.push(seg.id);
        let id = seg.id;
        state.add_shared(
            &format!("{name}.s{id}"),
            format!("{name}-s{id}"),
            batches[r].to_vec(),
        );
        let key = format!("{name}-c{id}-v{}", seg.version);
        state.add_shared(&format!("{name}.c{id}"), key, vec![seg.counts.clone()]);
    }
    let ids: ArrayRef = Arc::new(UInt64Array::from(order));
    let schema = Schema::new(vec![Field::new("id", DataType::UInt64, false)]);
    state.add(
        &format!("{name}.order"),
        RecordBatch::try_new(Arc::new(schema), vec![ids])?,
    );
    if times {
        let keys: BinaryArray = index.keys().map(|k| Some(k.as_ref())).collect();
        let at: UInt64Array = index.values().map(|(_, t)| *t).collect();
        let schema = Schema::new(vec![
            Field::new("key", DataType::Binary, false),
            Field::new(WRITTEN, DataType::UInt64, false),
        ]);
        let cols: Vec<ArrayRef> = vec![Arc::new(keys), Arc::new(at)];
        state.add(
            &format!("{name}.times"),
            RecordBatch::try_new(Arc::new(schema), cols)?,
        );
    }
    Ok(())
}

fn malformed(what: &str) -> Error {
    Error::Checkpoint(format!("a join's checkpointed {what} is malformed"))
}

/// Take up the rows of a [`snapshot`] whose keys `range` owns. `false`
/// when `state` holds no incremental snapshot of side `name`.
pub(crate) fn restore(side: &mut Side, name: &str, state: &State, range: KeyRange) -> Result<bool> {
    let Some(order) = state.rows(&format!("{name}.order"))? else {
        return Ok(false);
    };
    let ids = order
        .column(0)
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| malformed("segment list"))?;
    for id in ids.values() {
        let rows = state.rows(&format!("{name}.s{id}"))?;
        let counts = state.rows(&format!("{name}.c{id}"))?;
        let (Some(rows), Some(counts)) = (rows, counts) else {
            return Err(malformed("segment"));
        };
        let matches = counts.column(0).as_primitive_opt::<UInt32Type>();
        let live = counts.column(1).as_boolean_opt();
        let (Some(matches), Some(live)) = (matches, live) else {
            return Err(malformed("segment counts"));
        };
        if matches.len() != rows.num_rows() {
            return Err(malformed("segment counts"));
        }
        // The side's own checkpoint layout: rows, counts, last writes.
        let written: ArrayRef = Arc::new(UInt64Array::from(vec![0u64; rows.num_rows()]));
        let all = with_columns(
            &rows,
            vec![
                (
                    Field::new(MATCHES, DataType::UInt32, false),
                    Arc::new(matches.clone()),
                ),
                (Field::new(WRITTEN, DataType::UInt64, false), written),
            ],
        )?;
        let kept = filter_record_batch(&all, live)?;
        if kept.num_rows() > 0 {
            side.restore(&kept, range)?;
        }
    }
    if let Some(times) = state.rows(&format!("{name}.times"))? {
        let keys = times.column(0).as_binary_opt::<i32>();
        let at = times.column(1).as_primitive_opt::<UInt64Type>();
        let (Some(keys), Some(at)) = (keys, at) else {
            return Err(malformed("key times"));
        };
        for (k, t) in keys.iter().zip(at.values()) {
            if let Some(e) = k.and_then(|k| side.index.get_mut(k)) {
                e.1 = e.1.max(*t);
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::shared::SharedFiles;
    use crate::checkpoint::store;
    use crate::operator::Operator;
    use crate::operators::join::{JoinConfig, JoinKind, JoinOperator};
    use crate::operators::test_util::{
        assert_restores, batch_i64, feed, folded, spec_on_k, write_checkpoint, Feed,
    };
    use arrow::array::Int8Array;
    use sluice_common::changelog::{with_op_field, RowKind};

    /// Rows `k, a` of an updating input, each with its kind.
    fn upd(k: &[i64], a: &[i64], kinds: &[RowKind]) -> RecordBatch {
        let data = batch_i64(&[("k", k), ("a", a)]);
        let mut cols = data.columns().to_vec();
        let ops: Int8Array = kinds.iter().map(|r| r.code()).collect();
        cols.push(Arc::new(ops));
        RecordBatch::try_new(with_op_field(&data.schema()), cols).expect("batch")
    }

    fn join(kind: JoinKind) -> Box<dyn Operator> {
        let ls = batch_i64(&[("k", &[]), ("a", &[])]).schema();
        let rs = batch_i64(&[("k", &[]), ("b", &[])]).schema();
        let cfg = JoinConfig {
            spec: spec_on_k(&ls, &rs, kind),
            ttl: None,
            updating: [true, false],
        };
        Box::new(JoinOperator::try_new(cfg, &ls, &rs).expect("join"))
    }

    fn steps() -> (Vec<Feed>, Vec<Feed>) {
        use RowKind::{Delete as D, Insert as I};
        let r = |k: &[i64], b: &[i64]| batch_i64(&[("k", k), ("b", b)]);
        let before = vec![
            Feed::Rows(0, upd(&[1, 2, 3, 4], &[10, 20, 30, 40], &[I, I, I, I])),
            Feed::Rows(1, r(&[1, 2, 9], &[7, 8, 9])),
            Feed::Rows(0, upd(&[2, 5], &[20, 50], &[D, I])),
            Feed::Rows(1, r(&[5, 4], &[1, 2])),
            Feed::Rows(0, upd(&[1, 1], &[10, 11], &[D, I])),
        ];
        let after = vec![
            Feed::Rows(1, r(&[1, 2, 3], &[3, 4, 5])),
            Feed::Rows(0, upd(&[3, 2], &[30, 21], &[D, I])),
            Feed::Rows(1, r(&[2, 5], &[6, 7])),
        ];
        (before, after)
    }

    /// Retractions (rows leaving the index) and changing match counts
    /// across several snapshots restore at any parallelism.
    #[test]
    fn segments_restore_with_retractions() {
        let (before, after) = steps();
        let route = |_: usize, b: &RecordBatch, range: KeyRange| {
            range
                .filter_by(b, &[Arc::clone(b.column(0))])
                .expect("routes")
        };
        for kind in [
            JoinKind::Inner,
            JoinKind::Left,
            JoinKind::Full,
            JoinKind::Anti,
        ] {
            assert_restores(&|| join(kind), &before, &after, &route);
        }
    }

    /// Through the store: each checkpoint writes only the segments stored
    /// since the last one and the counts that changed; the last one, read
    /// back, restores the join.
    #[test]
    fn checkpoints_write_what_changed() {
        let (before, after) = steps();
        let all = |_: usize, b: &RecordBatch| b.clone();
        let mut plain = join(JoinKind::Left);
        let mut expected = feed(plain.as_mut(), &before, &all);
        expected.extend(feed(plain.as_mut(), &after, &all));
        let dir = tempfile::tempdir().expect("temp dir");
        let mut shared = SharedFiles::default();
        let mut op = join(JoinKind::Left);
        let mut got = Vec::new();
        let mut written = Vec::new();
        for (i, step) in before.iter().enumerate() {
            got.extend(feed(op.as_mut(), std::slice::from_ref(step), &all));
            let state = op.snapshot().expect("snapshots");
            let id = i as u64 + 1;
            written.push(write_checkpoint(dir.path(), id, "Join", state, &mut shared));
            store::retain(dir.path(), 1).expect("retains");
        }
        // A snapshot with nothing new refers to the shared files written.
        let files = || {
            std::fs::read_dir(dir.path().join("shared"))
                .expect("dir")
                .count()
        };
        let before_files = files();
        let again = op.snapshot().expect("snapshots");
        write_checkpoint(dir.path(), 9, "Join", again, &mut shared);
        assert_eq!(files(), before_files, "nothing written again ({written:?})");
        let (loaded, _) = store::latest(dir.path());
        let loaded = loaded.expect("a checkpoint");
        let state = &loaded.tasks[0].1;
        let mut restored = join(JoinKind::Left);
        let range = KeyRange {
            instance: 0,
            parallelism: 1,
        };
        restored
            .restore(std::slice::from_ref(state), range)
            .expect("restores");
        got.extend(feed(restored.as_mut(), &after, &all));
        assert_eq!(folded(&got), folded(&expected));
    }
}

#[cfg(test)]
mod compaction_tests {
    use super::*;
    use crate::checkpoint::shared::SharedFiles;
    use crate::checkpoint::store;
    use crate::operators::test_util::{batch_i64, write_checkpoint};
    use datafusion::physical_expr::expressions::Column;

    /// After a compaction the side's rows are a new segment under a new
    /// key, so a checkpoint through the store never refers to the file of
    /// the rows as they were before.
    #[test]
    fn compaction_makes_new_segments() {
        let rows = batch_i64(&[("k", &[1, 2, 3]), ("a", &[10, 20, 30])]);
        let key = Arc::new(Column::new("k", 0));
        let mut side = Side::try_new(vec![key], &rows.schema(), true).expect("side");
        let keys = side.key_rows(&rows).expect("keys");
        let wholes = side.whole_rows(&rows).expect("wholes");
        side.insert(rows.clone(), keys.clone(), vec![0; 3], wholes.clone(), 0);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut shared = SharedFiles::default();
        let mut checkpoint = |side: &mut Side, id: u64| {
            let mut state = State::new();
            snapshot(side, "left", &mut state, false).expect("snapshots");
            write_checkpoint(dir.path(), id, "Join", state, &mut shared);
        };
        checkpoint(&mut side, 1);
        // Take key 2 out and compact: rows 1 and 3 remain.
        let w = wholes.expect("retractable");
        let k2 = keys[1].clone().expect("key");
        side.remove(&k2, &w, 1).expect("removed");
        side.compact().expect("compacts");
        checkpoint(&mut side, 2);
        let (loaded, _) = store::latest(dir.path());
        let loaded = loaded.expect("a checkpoint");
        let mut restored =
            Side::try_new(vec![Arc::new(Column::new("k", 0))], &rows.schema(), true).expect("side");
        let all = KeyRange {
            instance: 0,
            parallelism: 1,
        };
        assert!(restore(&mut restored, "left", &loaded.tasks[0].1, all).expect("restores"));
        assert_eq!(restored.live_rows(), 2);
        assert!(!restored.index.contains_key(&k2), "key 2 was taken out");
    }
}
