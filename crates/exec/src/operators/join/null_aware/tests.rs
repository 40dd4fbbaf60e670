use super::*;
use crate::operators::join::JoinKind;
use crate::operators::test_util::{batch_i64, spec_on_k, Feed};
use arrow::array::Int64Array;

fn join() -> NullAwareAntiJoin {
    let l = batch_i64(&[("k", &[0]), ("a", &[0])]).schema();
    let r = batch_i64(&[("k", &[0])]).schema();
    let cfg = JoinConfig {
        spec: spec_on_k(&l, &r, JoinKind::Anti),
        ttl: None,
        updating: [false, true],
    };
    NullAwareAntiJoin::try_new(cfg, &l, &r).expect("join")
}

fn nullable(name: &str, v: &[Option<i64>]) -> RecordBatch {
    let a: ArrayRef = Arc::new(Int64Array::from(v.to_vec()));
    RecordBatch::try_from_iter(vec![(name, a)]).expect("batch")
}

/// (op, a) of every row emitted.
fn emitted(out: &mut Output) -> Vec<(i8, i64)> {
    let mut rows = Vec::new();
    for b in out.take_batches() {
        let ops = changelog::ops(&b).expect("ops");
        let a = b
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("a");
        rows.extend((0..b.num_rows()).map(|i| (ops.value(i), a.value(i))));
    }
    rows
}

fn right(op: &mut NullAwareAntiJoin, k: &[Option<i64>], kinds: &[RowKind]) -> Vec<(i8, i64)> {
    let data = nullable("k", k);
    let ops = Int8Array::from_iter_values(kinds.iter().map(|k| k.code()));
    let schema = changelog::with_op_field(&data.schema());
    let batch = changelog::with_ops(&schema, data.columns().to_vec(), ops).expect("batch");
    let mut out = Output::default();
    op.on_batch(1, batch, &mut out).expect("right");
    emitted(&mut out)
}

/// With a TTL, groups of right rows alone expire (nothing to compact),
/// and a retraction of a row counted before the expiry is ignored.
#[test]
fn expiry_with_only_subquery_rows_and_stale_retractions() {
    let mut op = join();
    op.cfg.ttl = Some(std::time::Duration::from_millis(100));
    let now = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let t = Arc::clone(&now);
    op.set_clock(Arc::new(move || {
        t.load(std::sync::atomic::Ordering::Relaxed)
    }));
    assert!(right(&mut op, &[Some(1)], &[RowKind::Insert]).is_empty());
    now.store(1_000, std::sync::atomic::Ordering::Relaxed);
    // The group expired: a new row 2 counts afresh; retracting the old
    // 1 must not empty the group.
    assert!(right(&mut op, &[Some(2)], &[RowKind::Insert]).is_empty());
    assert!(right(&mut op, &[Some(1)], &[RowKind::Delete]).is_empty());
    let k: ArrayRef = Arc::new(Int64Array::from(vec![Some(2), Some(3)]));
    let a: ArrayRef = Arc::new(Int64Array::from(vec![20, 30]));
    let left = RecordBatch::try_from_iter(vec![("k", k), ("a", a)]).expect("left");
    let mut out = Output::default();
    op.on_batch(0, left, &mut out).expect("left");
    assert_eq!(
        emitted(&mut out),
        [(RowKind::Insert.code(), 30)],
        "2 is in the subquery"
    );
}

#[test]
fn a_null_in_the_subquery_takes_every_row_back_until_it_goes() {
    let (ins, del) = (RowKind::Insert.code(), RowKind::Delete.code());
    let mut op = join();
    let k: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(2)]));
    let a: ArrayRef = Arc::new(Int64Array::from(vec![10, 20, 30]));
    let left = RecordBatch::try_from_iter(vec![("k", k), ("a", a)]).expect("left");
    let mut out = Output::default();
    op.on_batch(0, left, &mut out).expect("left");
    assert_eq!(
        emitted(&mut out),
        [(ins, 10), (ins, 20), (ins, 30)],
        "empty subquery"
    );
    // The first subquery row: the NULL x is no longer known to be out,
    // and neither is 1.
    let got = right(&mut op, &[Some(1)], &[RowKind::Insert]);
    assert_eq!(got.len(), 2);
    assert!(got.contains(&(del, 10)) && got.contains(&(del, 20)));
    // A NULL: 2 goes too; when it is retracted, 2 comes back.
    assert_eq!(right(&mut op, &[None], &[RowKind::Insert]), [(del, 30)]);
    assert_eq!(right(&mut op, &[None], &[RowKind::Delete]), [(ins, 30)]);
    // The subquery empties: all pass again.
    let mut got = right(&mut op, &[Some(1)], &[RowKind::Delete]);
    got.sort();
    assert_eq!(got, [(ins, 10), (ins, 20)]);
    assert_eq!(op.state_rows(), Some([3, 0]));
}

/// A changelog batch of nullable BIGINT columns.
fn changes(cols: &[(&str, &[Option<i64>])], kinds: &[RowKind]) -> RecordBatch {
    let cols: Vec<(&str, ArrayRef, bool)> = cols
        .iter()
        .map(|(n, v)| (*n, Arc::new(Int64Array::from(v.to_vec())) as ArrayRef, true))
        .collect();
    let data = RecordBatch::try_from_iter_with_nullable(cols).expect("batch");
    let ops = Int8Array::from_iter_values(kinds.iter().map(|k| k.code()));
    let schema = changelog::with_op_field(&data.schema());
    changelog::with_ops(&schema, data.columns().to_vec(), ops).expect("changelog")
}

/// `x NOT IN (SELECT y FROM r WHERE r.k = l.k)` (`correlated`) or
/// `x NOT IN (SELECT y FROM r)`, both inputs updating.
fn not_in(correlated: bool) -> Box<dyn Operator> {
    use datafusion::physical_expr::expressions::col;
    let l = changes(&[("x", &[]), ("k", &[]), ("a", &[])], &[]).schema();
    let r = changes(&[("y", &[]), ("k", &[])], &[]).schema();
    let (l, r) = (changelog::data_schema(&l), changelog::data_schema(&r));
    let mut spec = spec_on_k(&l, &r, JoinKind::Anti);
    spec.left_keys = vec![col("x", &l).expect("x")];
    spec.right_keys = vec![col("y", &r).expect("y")];
    if correlated {
        spec.left_keys.push(col("k", &l).expect("k"));
        spec.right_keys.push(col("k", &r).expect("k"));
    }
    let cfg = JoinConfig {
        spec,
        ttl: Some(std::time::Duration::from_secs(3600)),
        updating: [true, true],
    };
    Box::new(NullAwareAntiJoin::try_new(cfg, &l, &r).expect("join"))
}

/// Left rows (by `x`, `k`, `a`) and subquery rows (by `y`, `k`), with NULL
/// values, NULL correlation keys and retractions on both sides before and
/// after the checkpoint.
fn restore_feeds() -> (Vec<Feed>, Vec<Feed>) {
    let (ins, del) = (RowKind::Insert, RowKind::Delete);
    let left = |x: &[Option<i64>], k: &[Option<i64>], a: &[Option<i64>], kinds: &[RowKind]| {
        Feed::Rows(0, changes(&[("x", x), ("k", k), ("a", a)], kinds))
    };
    let right = |y: &[Option<i64>], k: &[Option<i64>], kinds: &[RowKind]| {
        Feed::Rows(1, changes(&[("y", y), ("k", k)], kinds))
    };
    let before = vec![
        left(
            &[Some(1), None, Some(2), Some(3), Some(1), Some(4)],
            &[Some(1), Some(1), Some(2), Some(2), None, Some(3)],
            &[Some(10), Some(11), Some(12), Some(13), Some(14), Some(15)],
            &[ins; 6],
        ),
        right(
            &[Some(2), Some(2), None, Some(5)],
            &[Some(1), Some(2), Some(3), Some(1)],
            &[ins; 4],
        ),
        left(&[Some(3)], &[Some(2)], &[Some(13)], &[del]),
    ];
    let after = vec![
        right(&[Some(2), None], &[Some(2), Some(3)], &[del, del]),
        right(&[Some(1), None], &[Some(1), Some(2)], &[ins, ins]),
        left(
            &[Some(2), Some(5), None],
            &[Some(2), Some(1), Some(3)],
            &[Some(16), Some(17), Some(18)],
            &[ins; 3],
        ),
        left(
            &[None, Some(4)],
            &[Some(1), Some(3)],
            &[Some(11), Some(15)],
            &[del, del],
        ),
        right(&[Some(5), Some(2)], &[Some(1), Some(1)], &[del, del]),
        right(&[None], &[Some(2)], &[del]),
    ];
    (before, after)
}

/// Stored left rows and the subquery's counts (per value, NULLs) survive
/// a restore at any parallelism, correlated or not.
#[test]
fn restores_left_rows_and_subquery_counts() {
    use crate::operators::test_util::assert_restores;
    let (before, after) = restore_feeds();
    let by_k = |_: usize, b: &RecordBatch, range: crate::checkpoint::KeyRange| {
        range
            .filter_by(b, &[Arc::clone(b.column(1))])
            .expect("routes")
    };
    assert_restores(&|| not_in(true), &before, &after, &by_k);
    // Uncorrelated: one group, so a single instance sees every row.
    let first = |_: usize, b: &RecordBatch, range: crate::checkpoint::KeyRange| {
        if range.instance == 0 {
            b.clone()
        } else {
            b.slice(0, 0)
        }
    };
    assert_restores(&|| not_in(false), &before, &after, &first);
}
