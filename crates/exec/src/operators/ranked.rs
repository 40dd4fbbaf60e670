//! The state of one Top-N partition, shared by [`super::top_n`] and
//! [`super::window_top_n`]: the best N rows, ordered by their ORDER BY keys
//! in Arrow's row format and, among equal keys, by arrival.

use std::collections::BTreeMap;

use arrow::datatypes::Schema;
use arrow::row::{OwnedRow, Row, RowConverter, SortField};
use sluice_common::Result;

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
