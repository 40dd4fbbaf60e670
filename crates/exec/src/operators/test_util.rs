//! Fixtures for operator unit tests.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

/// A batch of nullable BIGINT columns.
pub fn batch_i64(cols: &[(&str, &[i64])]) -> RecordBatch {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, _)| Field::new(*n, DataType::Int64, true))
        .collect();
    let arrays: Vec<ArrayRef> = cols
        .iter()
        .map(|(_, v)| Arc::new(Int64Array::from(v.to_vec())) as ArrayRef)
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid batch")
}

/// A batch with a `ts` TIMESTAMP(3) column (milliseconds) and BIGINT `k`, `v`.
pub fn batch_ts(ts: &[i64], k: &[i64], v: &[i64]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(TimestampMillisecondArray::from(ts.to_vec())),
            Arc::new(Int64Array::from(k.to_vec())),
            Arc::new(Int64Array::from(v.to_vec())),
        ],
    )
    .expect("valid batch")
}

/// `schema` plus the window TVF's columns (what WindowAssign emits).
pub fn windowed_schema(schema: &Schema) -> Arc<Schema> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for n in ["window_start", "window_end", "window_time"] {
        fields.push(Field::new(n, ts.clone(), false));
    }
    Arc::new(Schema::new(fields))
}

/// Pretty-print batches as a table.
pub fn pretty(batches: &[RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches)
        .expect("formats")
        .to_string()
}

/// A `kind` join on column `k` of batches of `left` and `right`.
pub fn spec_on_k(
    left: &SchemaRef,
    right: &SchemaRef,
    kind: crate::operators::join::JoinKind,
) -> crate::operators::join::JoinSpec {
    use datafusion::physical_expr::expressions::col;
    let fields: Vec<Field> = left
        .fields()
        .iter()
        .chain(right.fields().iter())
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    crate::operators::join::JoinSpec {
        left_keys: vec![col("k", left).expect("k")],
        right_keys: vec![col("k", right).expect("k")],
        filter: None,
        joined: Arc::new(Schema::new(fields)),
        kind,
    }
}

/// What goes into an operator at one step of a restore test.
pub enum Feed {
    /// A batch on an input.
    Rows(usize, RecordBatch),
    /// A watermark (every input's).
    Watermark(i64),
}

/// The rows an operator's outputs describe (a changelog folded, or
/// append-only rows), sorted, as strings.
pub fn folded(batches: &[RecordBatch]) -> Vec<String> {
    let Some(first) = batches.first() else {
        return vec![];
    };
    let schema = sluice_common::changelog::data_schema(&first.schema());
    let mut fold = sluice_common::Fold::try_new(schema, None).expect("fold");
    for b in batches {
        fold.apply(b).expect("applies");
    }
    assert_eq!(fold.unmatched(), 0, "retracted a row never emitted");
    let t = fold.table().expect("table");
    let mut rows: Vec<String> = (0..t.num_rows())
        .map(|r| {
            t.columns()
                .iter()
                .map(|c| arrow::util::display::array_value_to_string(c, r).expect("cell"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    rows.sort();
    rows
}

pub(crate) fn feed(
    op: &mut dyn crate::operator::Operator,
    steps: &[Feed],
    keep: &dyn Fn(usize, &RecordBatch) -> RecordBatch,
) -> Vec<RecordBatch> {
    let mut out = crate::operator::Output::default();
    for s in steps {
        match s {
            Feed::Rows(input, b) => op
                .on_batch(*input, keep(*input, b), &mut out)
                .expect("batch"),
            Feed::Watermark(wm) => {
                // As the run loop does: each input's, then the combined.
                let wm = sluice_common::Watermark(*wm);
                for input in 0..2 {
                    op.on_input_watermark(input, wm, &mut out)
                        .expect("input watermark");
                }
                op.on_watermark(wm, &mut out).expect("watermark");
            }
        }
    }
    out.take_batches()
}

/// An operator (made by `make`) snapshotted after `before` and restored at
/// parallelism 1 to 3 — each instance fed the rows of `after` whose keys
/// it owns (`route`) — gives, with what came before, the result of one
/// operator fed everything; and taking the snapshot changed nothing.
pub fn assert_restores(
    make: &dyn Fn() -> Box<dyn crate::operator::Operator>,
    before: &[Feed],
    after: &[Feed],
    route: &dyn Fn(usize, &RecordBatch, crate::checkpoint::KeyRange) -> RecordBatch,
) {
    let all = |_: usize, b: &RecordBatch| b.clone();
    let mut plain = make();
    let mut expected = feed(plain.as_mut(), before, &all);
    expected.extend(feed(plain.as_mut(), after, &all));
    let expected = folded(&expected);
    // A snapshot after every step (the later ones read what the first
    // started to keep); the last is restored.
    let mut whole = make();
    let mut first = Vec::new();
    let mut state = None;
    for step in before {
        first.extend(feed(whole.as_mut(), std::slice::from_ref(step), &all));
        state = Some(whole.snapshot().expect("snapshots"));
    }
    let state = state.unwrap_or_else(|| whole.snapshot().expect("snapshots"));
    let mut same = first.clone();
    same.extend(feed(whole.as_mut(), after, &all));
    assert_eq!(
        folded(&same),
        expected,
        "taking the snapshot changed the result"
    );
    for p in 1..=3 {
        let mut got = first.clone();
        for i in 0..p {
            let range = crate::checkpoint::KeyRange {
                instance: i,
                parallelism: p,
            };
            let mut op = make();
            op.restore(std::slice::from_ref(&state), range)
                .expect("restores");
            got.extend(feed(op.as_mut(), after, &|input, b| route(input, b, range)));
        }
        assert_eq!(folded(&got), expected, "restored at parallelism {p}");
    }
}

/// Write `state` as checkpoint `id` of a one-task job (an operator of
/// `kind`) into `dir`, its shared tables through `shared`; the bytes
/// written.
pub(crate) fn write_checkpoint(
    dir: &std::path::Path,
    id: u64,
    kind: &str,
    state: crate::checkpoint::State,
    shared: &mut crate::checkpoint::shared::SharedFiles,
) -> u64 {
    let task = crate::checkpoint::TaskInfo {
        ordinal: 0,
        instance: 0,
        instances: 1,
        kind: kind.into(),
    };
    let w = crate::checkpoint::store::write(dir, id, "fp", false, &[(task, state)], shared)
        .expect("writes");
    shared.settle();
    w.bytes
}
