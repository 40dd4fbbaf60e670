//! Changelog rows: how updating results travel on an edge.
//!
//! A stream is either *append-only* (every row is an insert) or *updating*
//! (rows insert, retract or replace earlier rows). An updating stream's
//! batches carry one more column, last, named [`OP_COLUMN`]: an `Int8` that
//! holds each row's [`RowKind`] with Flink's byte values (`+I` 0, `-U` 1,
//! `+U` 2, `-D` 3). Append-only batches have no such column, so they pay
//! nothing. Everything that only moves batches (channels, exchanges,
//! gathers) carries the kind along with no change; an update's `-U` and its
//! `+U` are adjacent rows of one batch, so splitting a batch by key keeps
//! them together.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int8Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Int8Type, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::Result;

/// Name of the row-kind column of an updating stream (always last).
pub const OP_COLUMN: &str = "__sluice_op";

/// The kind of a changelog row (Flink's `RowKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum RowKind {
    /// `+I`: a new row.
    Insert = 0,
    /// `-U`: the old content of an updated row (followed by its `+U`).
    UpdateBefore = 1,
    /// `+U`: the new content of an updated row.
    UpdateAfter = 2,
    /// `-D`: a row removed.
    Delete = 3,
}

impl RowKind {
    /// The kind stored as `code`; `None` for a code that is none.
    pub fn from_code(code: i8) -> Option<RowKind> {
        match code {
            0 => Some(RowKind::Insert),
            1 => Some(RowKind::UpdateBefore),
            2 => Some(RowKind::UpdateAfter),
            3 => Some(RowKind::Delete),
            _ => None,
        }
    }

    /// Flink's short string: `+I`, `-U`, `+U`, `-D`.
    pub fn short(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// Whether the row adds to the result (`+I`, `+U`) rather than
    /// retracting from it.
    pub fn is_accumulate(self) -> bool {
        matches!(self, RowKind::Insert | RowKind::UpdateAfter)
    }

    /// The kind's byte.
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// What kinds of rows a stream carries (Flink's changelog modes, with
/// retractions always explicit: an update is a `-U` then a `+U`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ChangelogMode {
    /// Only inserts; batches have no row-kind column.
    #[default]
    AppendOnly,
    /// Any kind. `upsert_key`: columns that identify a row, when known —
    /// at most one row per key value is live, and its changes come in
    /// order on one stream.
    Updating {
        /// Indices of the key columns.
        upsert_key: Option<Vec<usize>>,
    },
}

impl ChangelogMode {
    /// Whether rows may be retracted.
    pub fn is_updating(&self) -> bool {
        matches!(self, ChangelogMode::Updating { .. })
    }

    /// The upsert key, if the stream is updating and has one.
    pub fn upsert_key(&self) -> Option<&[usize]> {
        match self {
            ChangelogMode::Updating { upsert_key } => upsert_key.as_deref(),
            ChangelogMode::AppendOnly => None,
        }
    }
}

/// `+1` for a row that adds to the result, `-1` for one that retracts.
pub fn sign_of_code(code: i8) -> i64 {
    if code == RowKind::Insert as i8 || code == RowKind::UpdateAfter as i8 {
        1
    } else {
        -1
    }
}

/// The row-kind field.
pub fn op_field() -> Field {
    Field::new(OP_COLUMN, DataType::Int8, false)
}

/// Whether batches of `schema` are changelog rows.
pub fn is_changelog(schema: &Schema) -> bool {
    schema
        .fields()
        .last()
        .is_some_and(|f| f.name() == OP_COLUMN && f.data_type() == &DataType::Int8)
}

/// `data` with the row-kind column appended.
pub fn with_op_field(data: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = data.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(op_field());
    Arc::new(Schema::new_with_metadata(fields, data.metadata().clone()))
}

/// `schema` without its row-kind column (unchanged if it has none).
pub fn data_schema(schema: &SchemaRef) -> SchemaRef {
    if !is_changelog(schema) {
        return Arc::clone(schema);
    }
    let n = schema.fields().len() - 1;
    let fields: Vec<Field> = schema.fields()[..n]
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The row kinds of a changelog batch; `None` for an append-only one.
pub fn ops(batch: &RecordBatch) -> Option<&Int8Array> {
    if is_changelog(&batch.schema()) {
        batch.columns().last().map(|c| c.as_primitive::<Int8Type>())
    } else {
        None
    }
}

/// The data columns of `batch` (all of an append-only one).
pub fn data(batch: &RecordBatch) -> Result<RecordBatch> {
    if ops(batch).is_none() {
        return Ok(batch.clone());
    }
    let n = batch.num_columns() - 1;
    let schema = data_schema(&batch.schema());
    let opts = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        schema,
        batch.columns()[..n].to_vec(),
        &opts,
    )?)
}

/// `data` rows with kinds `ops`, as a changelog batch of `schema`.
pub fn with_ops(schema: &SchemaRef, data: Vec<ArrayRef>, ops: Int8Array) -> Result<RecordBatch> {
    let n = ops.len();
    let mut cols = data;
    cols.push(Arc::new(ops));
    let opts = RecordBatchOptions::new().with_row_count(Some(n));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        cols,
        &opts,
    )?)
}

/// Append-only rows as inserts of a changelog (`schema` ends with the
/// row-kind column).
pub fn as_inserts(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let ops = Int8Array::from_value(RowKind::Insert.code(), batch.num_rows());
    with_ops(schema, batch.columns().to_vec(), ops)
}

/// Keep the rows of a changelog batch where `keep` is true, keeping each
/// update whole: when a filter keeps only one half of a `-U`/`+U` pair, the
/// kept `-U` becomes a `-D` and a kept `+U` becomes a `+I` (what a reader
/// of the filtered result saw before and sees after). `keep` has no nulls.
pub fn filter_changelog(batch: &RecordBatch, keep: &BooleanArray) -> Result<RecordBatch> {
    let Some(ops) = ops(batch) else {
        return Ok(filter_record_batch(batch, keep)?);
    };
    let n = batch.num_rows();
    let before = RowKind::UpdateBefore.code();
    let after = RowKind::UpdateAfter.code();
    let codes = ops.values();
    let mut fixed: Option<Vec<i8>> = None;
    let mut i = 0;
    while i < n {
        if codes[i] == before && i + 1 < n && codes[i + 1] == after {
            let (a, b) = (keep.value(i), keep.value(i + 1));
            if a != b {
                let v = fixed.get_or_insert_with(|| codes.to_vec());
                if a {
                    v[i] = RowKind::Delete.code();
                } else {
                    v[i + 1] = RowKind::Insert.code();
                }
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    let batch = match fixed {
        Some(v) => {
            let mut cols = batch.columns().to_vec();
            let last = cols.len() - 1;
            cols[last] = Arc::new(Int8Array::from(v));
            RecordBatch::try_new(batch.schema(), cols)?
        }
        None => batch.clone(),
    };
    if keep.true_count() == n {
        return Ok(batch);
    }
    Ok(filter_record_batch(&batch, keep)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    fn changelog(values: &[i64], kinds: &[RowKind]) -> RecordBatch {
        let data = Schema::new(vec![Field::new("v", DataType::Int64, true)]);
        let schema = with_op_field(&data);
        let ops = Int8Array::from(kinds.iter().map(|k| k.code()).collect::<Vec<_>>());
        with_ops(
            &schema,
            vec![Arc::new(Int64Array::from(values.to_vec()))],
            ops,
        )
        .expect("valid batch")
    }

    fn kinds(batch: &RecordBatch) -> Vec<(&'static str, i64)> {
        let ops = ops(batch).expect("changelog");
        let v = batch
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>();
        (0..batch.num_rows())
            .map(|i| {
                let kind = RowKind::from_code(ops.value(i)).expect("kind");
                (kind.short(), v.value(i))
            })
            .collect()
    }

    #[test]
    fn filter_keeps_updates_consistent() {
        use RowKind::*;
        let b = changelog(
            &[1, 2, 3, 4, 5, 6, 7],
            &[
                Insert,
                UpdateBefore,
                UpdateAfter,
                UpdateBefore,
                UpdateAfter,
                UpdateBefore,
                UpdateAfter,
            ],
        );
        let keep = BooleanArray::from(vec![true, true, false, false, true, true, true]);
        let out = filter_changelog(&b, &keep).expect("filters");
        assert_eq!(
            kinds(&out),
            vec![("+I", 1), ("-D", 2), ("+I", 5), ("-U", 6), ("+U", 7)]
        );
    }

    #[test]
    fn op_column_is_recognised_and_stripped() {
        let b = changelog(&[1], &[RowKind::Delete]);
        assert!(is_changelog(&b.schema()));
        let d = data(&b).expect("data columns");
        assert_eq!(d.num_columns(), 1);
        assert!(ops(&d).is_none());
        assert_eq!(sign_of_code(RowKind::UpdateBefore.code()), -1);
    }
}
