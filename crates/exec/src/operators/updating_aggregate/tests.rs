use super::*;
use crate::operators::test_util::batch_i64;
use arrow::array::{Int64Array, Int8Array};
use arrow::datatypes::DataType;
use arrow::util::display::array_value_to_string;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::functions_aggregate::stddev::stddev_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::AggregateUDF;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::{cast, col};
use sluice_common::changelog::RowKind;

/// `SELECT k, f(v) FROM t GROUP BY k` for each `(udaf, distinct, type)`.
pub(super) fn operator(
    aggs: &[(Arc<AggregateUDF>, bool, DataType)],
    input: &SchemaRef,
    retracts: bool,
) -> UpdatingAggregateOperator {
    let mut fields = vec![Field::new("k", DataType::Int64, true)];
    let mut calls = Vec::new();
    for (i, (f, distinct, t)) in aggs.iter().enumerate() {
        // As the analyzer would: STDDEV reads DOUBLE.
        let mut v = col("v", input).expect("v");
        if f.name() == "stddev" {
            v = cast(v, input, DataType::Float64).expect("cast");
        }
        let e = AggregateExprBuilder::new(Arc::clone(f), vec![v])
            .schema(Arc::clone(input))
            .alias(format!("a{i}"))
            .with_distinct(*distinct)
            .build()
            .expect("aggregate");
        calls.push(AggregateCall {
            expr: Arc::new(e),
            filter: None,
        });
        fields.push(Field::new(format!("a{i}"), t.clone(), true));
    }
    let cfg = UpdatingAggConfig {
        keys: vec![col("k", input).expect("k")],
        aggregates: calls,
        schema: Arc::new(Schema::new(fields)),
        retracts,
        ttl: None,
    };
    UpdatingAggregateOperator::try_new(cfg, input).expect("operator")
}

/// Each output row as `+I[k, a0, ..]`.
fn changes(out: &mut Output) -> Vec<String> {
    let mut lines = Vec::new();
    for b in out.take_batches() {
        let ops = changelog::ops(&b).expect("changelog").clone();
        for i in 0..b.num_rows() {
            let cells: Vec<String> = (0..b.num_columns() - 1)
                .map(|c| array_value_to_string(b.column(c), i).expect("cell"))
                .collect();
            let kind = RowKind::from_code(ops.value(i)).expect("kind");
            lines.push(format!("{}[{}]", kind.short(), cells.join(", ")));
        }
    }
    lines
}

#[test]
fn emits_one_net_change_per_key_and_batch() {
    let b1 = batch_i64(&[("k", &[1, 2, 1]), ("v", &[5, 7, 3])]);
    let input = b1.schema();
    let aggs = [
        (count_udaf(), false, DataType::Int64),
        (sum_udaf(), false, DataType::Int64),
        (min_udaf(), false, DataType::Int64),
        (max_udaf(), false, DataType::Int64),
    ];
    let mut op = operator(&aggs, &input, false);
    let mut out = Output::default();
    op.on_batch(0, b1, &mut out).expect("batch");
    assert_eq!(
        changes(&mut out),
        ["+I[1, 2, 8, 3, 5]", "+I[2, 1, 7, 7, 7]"]
    );
    // Key 2 changes; key 1 does not appear.
    let b2 = batch_i64(&[("k", &[2, 2]), ("v", &[1, 9])]);
    op.on_batch(0, b2, &mut out).expect("batch");
    assert_eq!(
        changes(&mut out),
        ["-U[2, 1, 7, 7, 7]", "+U[2, 3, 17, 1, 9]"]
    );
    assert_eq!(op.state_size().0, 2);
}

/// Rows of `k, v` with kinds, as an updating input.
pub(super) fn changelog_batch(k: &[i64], v: &[i64], kinds: &[RowKind]) -> RecordBatch {
    let data = batch_i64(&[("k", k), ("v", v)]);
    let schema = changelog::with_op_field(&data.schema());
    let ops = Int8Array::from(kinds.iter().map(|k| k.code()).collect::<Vec<_>>());
    changelog::with_ops(&schema, data.columns().to_vec(), ops).expect("batch")
}

#[test]
fn retracts_and_deletes() {
    use RowKind::*;
    let b1 = changelog_batch(&[1, 1, 1], &[5, 3, 5], &[Insert, Insert, Insert]);
    let input = b1.schema();
    let aggs = [
        (count_udaf(), false, DataType::Int64),
        (min_udaf(), false, DataType::Int64),
        (count_udaf(), true, DataType::Int64),
        (stddev_udaf(), false, DataType::Float64),
    ];
    let mut op = operator(&aggs, &input, true);
    let mut out = Output::default();
    op.on_batch(0, b1, &mut out).expect("batch");
    assert_eq!(changes(&mut out), ["+I[1, 3, 3, 2, 1.1547005383792517]"]);
    // Retracting the minimum gives way to the next value; one 5 stays.
    let b2 = changelog_batch(&[1, 1], &[3, 5], &[UpdateBefore, Delete]);
    op.on_batch(0, b2, &mut out).expect("batch");
    assert_eq!(
        changes(&mut out),
        ["-U[1, 3, 3, 2, 1.1547005383792517]", "+U[1, 1, 5, 1, ]"]
    );
    let b3 = changelog_batch(&[1], &[5], &[Delete]);
    op.on_batch(0, b3, &mut out).expect("batch");
    assert_eq!(changes(&mut out), ["-D[1, 1, 5, 1, ]"]);
    assert_eq!(op.state_size().0, 0);
}

#[test]
fn unchanged_results_emit_nothing_and_dead_groups_are_dropped() {
    let aggs = [(max_udaf(), false, DataType::Int64)];
    let first = batch_i64(&[("k", &[1]), ("v", &[10])]);
    let input = first.schema();
    let mut op = operator(&aggs, &input, false);
    let mut out = Output::default();
    op.on_batch(0, first, &mut out).expect("batch");
    op.on_batch(0, batch_i64(&[("k", &[1]), ("v", &[3])]), &mut out)
        .expect("batch");
    assert_eq!(changes(&mut out), ["+I[1, 10]"]);

    // Many keys inserted then deleted: the state shrinks.
    use RowKind::*;
    let keys: Vec<i64> = (0..10_000).collect();
    let ins = changelog_batch(&keys, &keys, &vec![Insert; keys.len()]);
    let del = changelog_batch(&keys, &keys, &vec![Delete; keys.len()]);
    let mut op = operator(&aggs, &ins.schema(), true);
    op.on_batch(0, ins, &mut out).expect("batch");
    op.on_batch(0, del, &mut out).expect("batch");
    assert_eq!(
        out.take_batches()
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>(),
        20_000
    );
    assert_eq!(op.num_groups, 0);
    let again = changelog_batch(&[7], &[1], &[Insert]);
    op.on_batch(0, again, &mut out).expect("batch");
    assert_eq!(changes(&mut out), ["+I[7, 1]"]);
    let _ = Int64Array::from(vec![1]);
}

#[test]
fn idle_keys_expire_without_retraction() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let aggs = [(count_udaf(), false, DataType::Int64)];
    let first = batch_i64(&[("k", &[1, 2]), ("v", &[1, 1])]);
    let input = first.schema();
    let mut op = operator(&aggs, &input, false);
    op.cfg.ttl = Some(std::time::Duration::from_secs(10));
    let now = Arc::new(AtomicU64::new(0));
    let clock = Arc::clone(&now);
    op.set_clock(Arc::new(move || clock.load(Ordering::Relaxed)));
    let mut out = Output::default();
    op.on_batch(0, first, &mut out).expect("batch");
    assert_eq!(changes(&mut out), ["+I[1, 1]", "+I[2, 1]"]);
    // Key 2 is updated at 6 s; at 12 s key 1 has been idle for 12 s.
    now.store(6_000, Ordering::Relaxed);
    op.on_batch(0, batch_i64(&[("k", &[2]), ("v", &[1])]), &mut out)
        .expect("batch");
    now.store(12_000, Ordering::Relaxed);
    op.on_batch(0, batch_i64(&[("k", &[2]), ("v", &[1])]), &mut out)
        .expect("batch");
    assert_eq!(op.state_size().0, 1, "key 1 is forgotten");
    // Key 1 starts afresh: an insert, not an update of the old count.
    op.on_batch(0, batch_i64(&[("k", &[1]), ("v", &[1])]), &mut out)
        .expect("batch");
    assert_eq!(
        changes(&mut out),
        ["-U[2, 1]", "+U[2, 2]", "-U[2, 2]", "+U[2, 3]", "+I[1, 1]"]
    );
}

/// Folded output rows (the final table), sorted.
pub(super) fn final_table(batches: Vec<RecordBatch>, schema: &SchemaRef) -> Vec<String> {
    let mut fold = sluice_common::Fold::try_new(Arc::clone(schema), Some(vec![0])).expect("fold");
    for b in &batches {
        fold.apply(b).expect("applies");
    }
    let t = fold.table().expect("table");
    let mut rows: Vec<String> = (0..t.num_rows())
        .map(|r| {
            (0..t.num_columns())
                .map(|c| array_value_to_string(t.column(c), r).expect("cell"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    rows.sort();
    rows
}

/// Every kind of accumulator (native, MIN/MAX over retractions, COUNT
/// DISTINCT, DataFusion's through the fallback) snapshotted mid-stream and
/// restored at parallelism 1 to 3 folds to the uninterrupted result.
#[test]
fn snapshot_and_restore_continue_every_aggregate() {
    use crate::checkpoint::KeyRange;
    use datafusion::functions_aggregate::average::avg_udaf;
    let first = changelog_batch(
        &[1, 2, 1, 3, 2, 4],
        &[5, 7, 3, 9, 7, 1],
        &[RowKind::Insert; 6],
    );
    let input = first.schema();
    let aggs = [
        (count_udaf(), false, DataType::Int64),
        (sum_udaf(), false, DataType::Int64),
        (min_udaf(), false, DataType::Int64),
        (max_udaf(), false, DataType::Int64),
        (count_udaf(), true, DataType::Int64),
        (avg_udaf(), false, DataType::Float64),
        (stddev_udaf(), false, DataType::Float64),
    ];
    let rest = [
        changelog_batch(&[1, 2, 4], &[5, 7, 1], &[RowKind::Delete; 3]),
        changelog_batch(&[1, 3, 5, 2], &[1, 2, 8, 4], &[RowKind::Insert; 4]),
    ];
    let mut whole = operator(&aggs, &input, true);
    let mut out = Output::default();
    whole.on_batch(0, first.clone(), &mut out).expect("batch");
    // A first snapshot starts keeping the keys; new keys come after it.
    whole.snapshot().expect("snapshots");
    let second = changelog_batch(&[6, 1, 7], &[3, 2, 9], &[RowKind::Insert; 3]);
    whole.on_batch(0, second, &mut out).expect("batch");
    let mut before = out.take_batches();
    let state = whole.snapshot().expect("snapshots");
    for b in &rest {
        whole.on_batch(0, b.clone(), &mut out).expect("batch");
    }
    let schema = changelog::data_schema(&whole.output_schema());
    let mut all = before.clone();
    all.extend(out.take_batches());
    let expected = final_table(all, &schema);
    assert_eq!(expected.len(), 6, "{expected:?}");
    for p in [1, 2, 3] {
        let mut batches = std::mem::take(&mut before);
        for i in 0..p {
            let mut op = operator(&aggs, &input, true);
            let range = KeyRange {
                instance: i,
                parallelism: p,
            };
            op.restore(std::slice::from_ref(&state), range)
                .expect("restores");
            let mut out = Output::default();
            for b in &rest {
                let owned = range
                    .filter_by(b, &[Arc::clone(b.column(0))])
                    .expect("filters");
                op.on_batch(0, owned, &mut out).expect("batch");
            }
            batches.extend(out.take_batches());
        }
        assert_eq!(
            final_table(batches.clone(), &schema),
            expected,
            "parallelism {p}"
        );
        before = batches.into_iter().take(2).collect();
    }
}

/// Taking a snapshot leaves every accumulator as it was, even those whose
/// DataFusion `state()` hands its values over (MEDIAN).
#[test]
fn snapshots_leave_consuming_accumulators_intact() {
    use datafusion::functions_aggregate::median::median_udaf;
    let aggs = [(median_udaf(), false, DataType::Int64)];
    let batches = [
        batch_i64(&[("k", &[1, 1, 2]), ("v", &[5, 9, 4])]),
        batch_i64(&[("k", &[1, 2]), ("v", &[7, 6])]),
        batch_i64(&[("k", &[1]), ("v", &[1])]),
    ];
    let input = batches[0].schema();
    let run = |snapshots: bool| {
        let mut op = operator(&aggs, &input, false);
        let mut out = Output::default();
        for b in &batches {
            op.on_batch(0, b.clone(), &mut out).expect("batch");
            if snapshots {
                op.snapshot().expect("snapshots");
            }
        }
        let schema = changelog::data_schema(&op.output_schema());
        final_table(out.take_batches(), &schema)
    };
    let plain = run(false);
    assert_eq!(plain, ["1 6", "2 5"]);
    assert_eq!(run(true), plain);
}
