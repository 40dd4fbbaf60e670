//! `COUNT(DISTINCT)` checkpoints through the store: incremental, restored
//! at any parallelism, across compactions.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::tests::{changelog_batch, final_table, operator};
use super::*;
use crate::checkpoint::shared::SharedFiles;
use crate::checkpoint::{store, KeyRange};
use crate::operator::Operator;
use crate::operators::test_util::{batch_i64, write_checkpoint};
use arrow::datatypes::DataType;
use datafusion::functions_aggregate::count::count_udaf;
use sluice_common::changelog::RowKind;

fn shared_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("shared")).map_or(0, |d| d.count())
}

/// Write `state` as checkpoint `id` of a one-task job, keeping two.
fn checkpoint(dir: &Path, id: u64, state: crate::checkpoint::State, shared: &mut SharedFiles) {
    write_checkpoint(dir, id, "UpdatingAggregate", state, shared);
    store::retain(dir, 2).expect("retains");
}

/// The final table of `make`'s operator fed `before` then `after`, and
/// that of operators checkpointed after each batch of `before`, restored
/// from the newest checkpoint at parallelism `p` and fed `after`.
fn run(
    make: &dyn Fn() -> UpdatingAggregateOperator,
    before: &[RecordBatch],
    after: &[RecordBatch],
    p: usize,
) -> (Vec<String>, Vec<String>) {
    let mut plain = make();
    let mut out = Output::default();
    for b in before.iter().chain(after) {
        plain.on_batch(0, b.clone(), &mut out).expect("batch");
    }
    let schema = changelog::data_schema(&plain.output_schema());
    let expected = final_table(out.take_batches(), &schema);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut shared = SharedFiles::default();
    let mut op = make();
    let mut batches = Vec::new();
    for (i, b) in before.iter().enumerate() {
        op.on_batch(0, b.clone(), &mut out).expect("batch");
        let state = op.snapshot().expect("snapshots");
        checkpoint(dir.path(), i as u64 + 1, state, &mut shared);
    }
    batches.extend(out.take_batches());
    let (loaded, skipped) = store::latest(dir.path());
    let loaded = loaded.unwrap_or_else(|| panic!("a checkpoint ({skipped:?})"));
    for instance in 0..p {
        let range = KeyRange {
            instance,
            parallelism: p,
        };
        let mut restored = make();
        restored
            .restore(std::slice::from_ref(&loaded.tasks[0].1), range)
            .expect("restores");
        for b in after {
            let owned = range
                .filter_by(b, &[Arc::clone(b.column(0))])
                .expect("routes");
            restored.on_batch(0, owned, &mut out).expect("batch");
        }
        batches.extend(out.take_batches());
    }
    (final_table(batches, &schema), expected)
}

fn distinct_op(retracts: bool) -> UpdatingAggregateOperator {
    let input = if retracts {
        changelog_batch(&[], &[], &[]).schema()
    } else {
        batch_i64(&[("k", &[]), ("v", &[])]).schema()
    };
    let aggs = [
        (count_udaf(), true, DataType::Int64),
        (count_udaf(), false, DataType::Int64),
    ];
    operator(&aggs, &input, retracts)
}

/// Over an append-only input each checkpoint writes only the pairs seen
/// since the last one (a checkpoint with nothing new writes no file); the
/// newest restores at parallelism 1 to 3.
#[test]
fn append_only_pairs_are_written_once() {
    let rows = |k: &[i64], v: &[i64]| batch_i64(&[("k", k), ("v", v)]);
    let before = [
        rows(&[1, 1, 2, 3], &[5, 6, 5, 7]),
        rows(&[1, 2, 2, 4], &[5, 8, 5, 9]),
        rows(&[3, 3, 1], &[7, 1, 6]),
        rows(&[5, 1, 2], &[2, 9, 8]),
    ];
    let after = [rows(&[1, 2, 3, 5, 6], &[5, 1, 7, 3, 3])];
    for p in 1..=3 {
        let (got, expected) = run(&|| distinct_op(false), &before, &after, p);
        assert_eq!(got, expected, "parallelism {p}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut shared = SharedFiles::default();
    let mut op = distinct_op(false);
    let mut out = Output::default();
    op.on_batch(0, before[0].clone(), &mut out).expect("batch");
    checkpoint(
        dir.path(),
        1,
        op.snapshot().expect("snapshots"),
        &mut shared,
    );
    let files = shared_files(dir.path());
    // Only repeated pairs: no new segment, no new file.
    op.on_batch(0, rows(&[1, 2], &[5, 5]), &mut out)
        .expect("batch");
    checkpoint(
        dir.path(),
        2,
        op.snapshot().expect("snapshots"),
        &mut shared,
    );
    assert_eq!(shared_files(dir.path()), files);
    // Segments merge: many checkpoints, few segments, the same result.
    let mut last = None;
    for i in 0..40 {
        op.on_batch(0, rows(&[i % 3, 7], &[100 + i, i]), &mut out)
            .expect("batch");
        let state = op.snapshot().expect("snapshots");
        let order = state.get("acc0.order").expect("segments");
        assert!(order.num_rows() <= 16, "{} segments", order.num_rows());
        checkpoint(dir.path(), 3 + i as u64, state.clone(), &mut shared);
        last = Some(state);
    }
    let (loaded, _) = store::latest(dir.path());
    let loaded = loaded.expect("a checkpoint");
    assert_eq!(
        loaded.tasks[0].1.rows("acc0.order").ok(),
        last.map(|s| s.get("acc0.order").cloned())
    );
    let mut restored = distinct_op(false);
    let range = KeyRange {
        instance: 0,
        parallelism: 1,
    };
    restored
        .restore(std::slice::from_ref(&loaded.tasks[0].1), range)
        .expect("restores");
    let next = rows(&[0, 1, 7, 8], &[100, 5, 3, 1]);
    let schema = changelog::data_schema(&op.output_schema());
    let (mut a, mut b) = (Output::default(), Output::default());
    op.on_batch(0, next.clone(), &mut a).expect("batch");
    restored.on_batch(0, next, &mut b).expect("batch");
    assert_eq!(
        final_table(b.take_batches(), &schema),
        final_table(a.take_batches(), &schema)
    );
}

/// Over a changelog, counts that change are written again and values
/// retracted to zero rows stay gone; groups expired by the TTL compact the
/// pairs between checkpoints.
#[test]
fn retracting_pairs_restore_across_compaction() {
    use RowKind::{Delete as D, Insert as I};
    let now = Arc::new(AtomicU64::new(0));
    let make = || {
        let mut op = distinct_op(true);
        op.cfg.ttl = Some(std::time::Duration::from_secs(10));
        let clock = Arc::clone(&now);
        op.set_clock(Arc::new(move || clock.load(Ordering::Relaxed)));
        op
    };
    let before = [
        changelog_batch(&[1, 1, 2, 3], &[5, 5, 6, 7], &[I; 4]),
        changelog_batch(&[1, 2, 4], &[5, 6, 1], &[D, D, I]),
        changelog_batch(&[1, 3, 2], &[5, 8, 9], &[D, I, I]),
        // No new pair: the counts of old segments change.
        changelog_batch(&[4, 2, 3], &[1, 9, 8], &[D, D, I]),
    ];
    let after = [
        changelog_batch(&[1, 3, 2, 4], &[5, 7, 9, 2], &[I, D, I, I]),
        changelog_batch(&[3, 2], &[8, 9], &[D, D]),
    ];
    for p in 1..=3 {
        now.store(0, Ordering::Relaxed);
        let (got, expected) = run(&make, &before, &after, p);
        assert_eq!(got, expected, "parallelism {p}");
    }
    // Key 1 expires at 12 s: the groups and pairs are compacted, and the
    // checkpoint after it restores the rest.
    let expire = |now: &AtomicU64| now.store(12_000, Ordering::Relaxed);
    let mut op = make();
    let mut out = Output::default();
    now.store(0, Ordering::Relaxed);
    op.on_batch(0, before[0].clone(), &mut out).expect("batch");
    op.snapshot().expect("snapshots");
    now.store(6_000, Ordering::Relaxed);
    op.on_batch(0, changelog_batch(&[2, 3], &[6, 9], &[I, I]), &mut out)
        .expect("batch");
    expire(&now);
    op.on_batch(0, changelog_batch(&[2], &[1], &[I]), &mut out)
        .expect("batch");
    let state = op.snapshot().expect("snapshots");
    let mut restored = make();
    let range = KeyRange {
        instance: 0,
        parallelism: 1,
    };
    restored
        .restore(std::slice::from_ref(&state), range)
        .expect("restores");
    let next = changelog_batch(&[2, 3, 1], &[6, 9, 5], &[D, I, I]);
    let mut a = Output::default();
    let mut b = Output::default();
    op.on_batch(0, next.clone(), &mut a).expect("batch");
    restored.on_batch(0, next, &mut b).expect("batch");
    let schema = changelog::data_schema(&op.output_schema());
    assert_eq!(
        final_table(b.take_batches(), &schema),
        final_table(a.take_batches(), &schema)
    );
}
