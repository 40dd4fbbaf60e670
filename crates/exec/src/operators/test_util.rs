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
