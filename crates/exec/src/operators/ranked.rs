//! The state of one Top-N partition, shared by [`super::top_n`] and
//! [`super::window_top_n`]: the best N rows, ordered by their ORDER BY keys
//! in Arrow's row format and, among equal keys, by arrival.

use std::collections::BTreeMap;

use std::sync::Arc;

use arrow::array::{AsArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use arrow::record_batch::RecordBatch;
use arrow::row::{OwnedRow, Row, RowConverter, SortField};
use sluice_common::{Error, Result};

use crate::operators::sort::SortKey;

/// (order key, arrival) -> the row.
pub type Ranked = BTreeMap<(Box<[u8]>, u64), OwnedRow>;

/// Converters of a Top-N over `input`: whole rows, and the ORDER BY keys.
pub fn converters(input: &Schema, order: &[SortKey]) -> Result<(RowConverter, RowConverter)> {
    let rows = RowConverter::new(
        input
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect(),
    )?;
    let keys = RowConverter::new(
        order
            .iter()
            .map(|k| {
                Ok(SortField::new_with_options(
                    k.expr.data_type(input)?,
                    k.options,
                ))
            })
            .collect::<Result<Vec<_>>>()?,
    )?;
    Ok((rows, keys))
}

/// Whether a row with order key `key` would enter `top` (of at most
/// `limit` rows).
pub fn fits(top: &Ranked, limit: usize, key: &[u8]) -> bool {
    top.len() < limit || top.last_key_value().is_some_and(|((k, _), _)| key < &k[..])
}

/// Put a row into `top`, dropping its last row past `limit`; returns the
/// change in bytes held.
pub fn insert(top: &mut Ranked, limit: usize, key: &[u8], seq: u64, row: Row<'_>) -> isize {
    let mut bytes = entry_bytes(key, row.as_ref()) as isize;
    top.insert((key.into(), seq), row.owned());
    if top.len() > limit {
        if let Some(((k, _), r)) = top.pop_last() {
            bytes -= entry_bytes(&k, r.as_ref()) as isize;
        }
    }
    bytes
}

/// Take one row equal to `row` (with order key `key`) out of `top`;
/// returns the change in bytes held (0 when there was none).
pub fn remove(top: &mut Ranked, key: &[u8], row: Row<'_>) -> isize {
    let lo: (Box<[u8]>, u64) = (key.into(), 0);
    let hi: (Box<[u8]>, u64) = (key.into(), u64::MAX);
    let found = top
        .range(lo..=hi)
        .find(|(_, r)| r.row() == row)
        .map(|(k, _)| k.clone());
    match found.and_then(|k| top.remove(&k).map(|r| (k, r))) {
        Some(((k, _), r)) => -(entry_bytes(&k, r.as_ref()) as isize),
        None => 0,
    }
}

/// Approximate bytes one kept row costs.
pub fn entry_bytes(key: &[u8], row: &[u8]) -> usize {
    key.len() + row.len() + 48
}

/// The rows of `tops` (partitions) for a checkpoint: their columns (of
/// `schema`, decoded by `rows`) then `__seq`, each row's arrival number,
/// and `__part`, its partition's position in `tops`.
pub fn snapshot_rows<'a>(
    schema: &SchemaRef,
    rows: &RowConverter,
    tops: impl Iterator<Item = &'a Ranked>,
) -> Result<RecordBatch> {
    let mut kept: Vec<Row<'_>> = Vec::new();
    let mut seqs = Vec::new();
    let mut parts = Vec::new();
    for (p, top) in tops.enumerate() {
        for ((_, seq), r) in top {
            kept.push(r.row());
            seqs.push(*seq);
            parts.push(p as u64);
        }
    }
    let mut cols = if kept.is_empty() {
        schema
            .fields()
            .iter()
            .map(|f| arrow::array::new_empty_array(f.data_type()))
            .collect()
    } else {
        rows.convert_rows(kept)?
    };
    cols.push(Arc::new(UInt64Array::from(seqs)));
    cols.push(Arc::new(UInt64Array::from(parts)));
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("__seq", DataType::UInt64, false));
    fields.push(Field::new("__part", DataType::UInt64, false));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// A [`snapshot_rows`] table split: its data columns, each row's arrival
/// number and partition position.
pub fn split_rows(table: &RecordBatch) -> Result<(RecordBatch, Vec<u64>, Vec<u64>)> {
    let n = table.num_columns();
    let bad = || Error::Checkpoint("a Top-N's checkpointed rows are malformed".into());
    if n < 2 {
        return Err(bad());
    }
    let seqs = table
        .column(n - 2)
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(bad)?;
    let parts = table
        .column(n - 1)
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(bad)?;
    let (seqs, parts) = (seqs.values().to_vec(), parts.values().to_vec());
    let mut data = table.clone();
    data.remove_column(n - 1);
    data.remove_column(n - 2);
    Ok((data, seqs, parts))
}
