//! Folding a changelog into the table it describes.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::{OwnedRow, RowConverter, SortField};

use crate::changelog::{self, RowKind};
use crate::{Error, Result};

/// Rows a batch changed, with how.
type Changes = Vec<(RowKind, OwnedRow)>;

/// The current rows of a changelog, in the order they were first inserted.
///
/// Without a key it is a multiset: `+I`/`+U` add a row, `-U`/`-D` remove
/// one equal row. With a key (a primary key or the upsert key) it is an
/// upsert table: `+I`/`+U` set the row of their key (keeping its place),
/// `-D` removes it and `-U` is skipped (its `+U` follows). A retraction
/// of a row that is not there is counted in [`Fold::unmatched`].
pub struct Fold {
    schema: SchemaRef,
    rows: RowConverter,
    key: Option<(Vec<usize>, RowConverter)>,
    slots: Vec<Option<OwnedRow>>,
    /// Slots of each row (multiset) or the one slot of each key (upsert).
    index: HashMap<Box<[u8]>, Vec<usize>>,
    live: usize,
    unmatched: u64,
}

impl Fold {
    /// A fold of rows with `schema` (data columns only); `key` are the
    /// indices of the upsert key columns, if any.
    pub fn try_new(schema: SchemaRef, key: Option<Vec<usize>>) -> Result<Self> {
        let sort = |i: usize| SortField::new(schema.field(i).data_type().clone());
        let rows = RowConverter::new((0..schema.fields().len()).map(sort).collect())?;
        let key = match key {
            Some(k) => {
                let conv = RowConverter::new(k.iter().map(|&i| sort(i)).collect())?;
                Some((k, conv))
            }
            None => None,
        };
        Ok(Fold {
            schema,
            rows,
            key,
            slots: Vec::new(),
            index: HashMap::new(),
            live: 0,
            unmatched: 0,
        })
    }

    /// Apply a batch: a changelog batch, or append-only rows (inserts).
    pub fn apply(&mut self, batch: &RecordBatch) -> Result<()> {
        self.apply_into(batch, None)
    }

    /// Apply a batch and return what it changed in the table as a full
    /// changelog (data columns and the row kind): a row replaced by its key
    /// is `-U` of the old row and `+U` of the new one (nothing when they
    /// are equal), a delete carries the whole deleted row, and a retraction
    /// that found no row gives nothing.
    pub fn apply_diff(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut changes = Vec::new();
        self.apply_into(batch, Some(&mut changes))?;
        let ops = Int8Array::from_iter_values(changes.iter().map(|(k, _)| k.code()));
        let cols = self
            .rows
            .convert_rows(changes.iter().map(|(_, r)| r.row()))?;
        changelog::with_ops(&changelog::with_op_field(&self.schema), cols, ops)
    }

    fn apply_into(&mut self, batch: &RecordBatch, mut diff: Option<&mut Changes>) -> Result<()> {
        let ops = changelog::ops(batch).cloned();
        let data = changelog::data(batch)?;
        if data.num_columns() != self.schema.fields().len() {
            return Err(Error::internal(format!(
                "changelog of {} columns applied to a table of {}",
                data.num_columns(),
                self.schema.fields().len()
            )));
        }
        let rows = self.rows.convert_columns(data.columns())?;
        // An empty key (a result of at most one row) is the same for all.
        let keys = match &self.key {
            Some((k, _)) if k.is_empty() => Some(None),
            Some((k, conv)) => {
                let cols: Vec<ArrayRef> = k.iter().map(|&i| Arc::clone(data.column(i))).collect();
                Some(Some(conv.convert_columns(&cols)?))
            }
            None => None,
        };
        for i in 0..data.num_rows() {
            let kind = match &ops {
                Some(o) => RowKind::from_code(o.value(i))
                    .ok_or_else(|| Error::internal("unknown row kind"))?,
                None => RowKind::Insert,
            };
            let row = rows.row(i);
            let diff = diff.as_deref_mut();
            match &keys {
                Some(Some(keys)) => self.upsert(keys.row(i).as_ref(), row.owned(), kind, diff),
                Some(None) => self.upsert(&[], row.owned(), kind, diff),
                None => self.multiset(row.as_ref(), row, kind, diff),
            }
        }
        self.compact();
        Ok(())
    }

    fn upsert(&mut self, key: &[u8], row: OwnedRow, kind: RowKind, diff: Option<&mut Changes>) {
        match kind {
            RowKind::Insert | RowKind::UpdateAfter => match self.index.get(key) {
                Some(slots) => {
                    let old = self.slots[slots[0]].replace(row);
                    if let (Some(diff), Some(old)) = (diff, old) {
                        let new = self.slots[slots[0]].as_ref();
                        if let Some(new) = new.filter(|n| **n != old) {
                            let new = new.clone();
                            diff.push((RowKind::UpdateBefore, old));
                            diff.push((RowKind::UpdateAfter, new));
                        }
                    }
                }
                None => {
                    if let Some(diff) = diff {
                        diff.push((RowKind::Insert, row.clone()));
                    }
                    self.index.insert(key.into(), vec![self.slots.len()]);
                    self.slots.push(Some(row));
                    self.live += 1;
                }
            },
            RowKind::UpdateBefore => {}
            RowKind::Delete => match self.index.remove(key) {
                Some(slots) => {
                    let old = self.slots[slots[0]].take();
                    if let (Some(diff), Some(old)) = (diff, old) {
                        diff.push((RowKind::Delete, old));
                    }
                    self.live -= 1;
                }
                None => self.unmatched += 1,
            },
        }
    }

    fn multiset(
        &mut self,
        bytes: &[u8],
        row: arrow::row::Row<'_>,
        kind: RowKind,
        diff: Option<&mut Changes>,
    ) {
        if let Some(diff) = diff {
            let found = kind.is_accumulate() || self.index.contains_key(bytes);
            if found {
                diff.push((kind, row.owned()));
            }
        }
        if kind.is_accumulate() {
            let slot = self.slots.len();
            self.slots.push(Some(row.owned()));
            self.index.entry(bytes.into()).or_default().push(slot);
            self.live += 1;
            return;
        }
        let found = self.index.get_mut(bytes).and_then(|slots| slots.pop());
        match found {
            Some(slot) => {
                self.slots[slot] = None;
                self.live -= 1;
                if self.index.get(bytes).is_some_and(Vec::is_empty) {
                    self.index.remove(bytes);
                }
            }
            None => self.unmatched += 1,
        }
    }

    /// Drop empty slots once they outnumber the rows.
    fn compact(&mut self) {
        let dead = self.slots.len() - self.live;
        if dead < 1024 || dead < self.live {
            return;
        }
        let mut moved = vec![usize::MAX; self.slots.len()];
        let mut slots = Vec::with_capacity(self.live);
        for (i, s) in self.slots.drain(..).enumerate() {
            if let Some(row) = s {
                moved[i] = slots.len();
                slots.push(Some(row));
            }
        }
        self.slots = slots;
        for v in self.index.values_mut() {
            for s in v.iter_mut() {
                *s = moved[*s];
            }
        }
    }

    /// Number of rows in the table.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Retractions that found no row to remove.
    pub fn unmatched(&self) -> u64 {
        self.unmatched
    }

    /// The current rows as one batch.
    pub fn table(&self) -> Result<RecordBatch> {
        let rows: Vec<arrow::row::Row<'_>> =
            self.slots.iter().flatten().map(OwnedRow::row).collect();
        let cols = self.rows.convert_rows(rows)?;
        let opts = RecordBatchOptions::new().with_row_count(Some(self.live));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            cols,
            &opts,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changelog::{with_op_field, with_ops};
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::pretty::pretty_format_batches;

    fn batch(k: &[i64], v: &[i64], kinds: &[RowKind]) -> RecordBatch {
        let data = Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]);
        let ops = Int8Array::from(kinds.iter().map(|k| k.code()).collect::<Vec<_>>());
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(k.to_vec())),
            Arc::new(Int64Array::from(v.to_vec())),
        ];
        with_ops(&with_op_field(&data), cols, ops).expect("batch")
    }

    fn shown(f: &Fold) -> String {
        pretty_format_batches(&[f.table().expect("table")])
            .expect("prints")
            .to_string()
    }

    #[test]
    fn upsert_keeps_place_and_deletes() {
        use RowKind::*;
        let b = batch(
            &[1, 2, 1, 1, 3, 2],
            &[10, 20, 10, 11, 30, 20],
            &[Insert, Insert, UpdateBefore, UpdateAfter, Insert, Delete],
        );
        let schema = changelog::data_schema(&b.schema());
        let mut f = Fold::try_new(schema, Some(vec![0])).expect("fold");
        f.apply(&b).expect("applies");
        assert_eq!(f.len(), 2);
        assert!(
            shown(&f).contains("| 1 | 11 |\n| 3 | 30 |"),
            "{}",
            shown(&f)
        );
    }

    #[test]
    fn multiset_removes_one_equal_row() {
        use RowKind::*;
        let b = batch(
            &[1, 1, 1, 2],
            &[5, 5, 5, 6],
            &[Insert, Insert, Delete, Delete],
        );
        let schema = changelog::data_schema(&b.schema());
        let mut f = Fold::try_new(schema, None).expect("fold");
        f.apply(&b).expect("applies");
        assert_eq!(f.len(), 1);
        assert_eq!(f.unmatched(), 1);
    }

    fn kinds_and_rows(b: &RecordBatch) -> Vec<(i8, i64, i64)> {
        let ops = changelog::ops(b).expect("changelog");
        let col = |c: usize| b.column(c).as_any().downcast_ref::<Int64Array>().cloned();
        let (k, v) = (col(0).expect("k"), col(1).expect("v"));
        (0..b.num_rows())
            .map(|i| (ops.value(i), k.value(i), v.value(i)))
            .collect()
    }

    #[test]
    fn diff_by_key_shows_old_rows() {
        use RowKind::*;
        let b = batch(&[1, 2], &[10, 20], &[Insert, Insert]);
        let schema = changelog::data_schema(&b.schema());
        let mut f = Fold::try_new(schema, Some(vec![0])).expect("fold");
        let d = f.apply_diff(&b).expect("applies");
        let ins = Insert.code();
        assert_eq!(kinds_and_rows(&d), vec![(ins, 1, 10), (ins, 2, 20)]);
        // An upsert without -U, an unchanged row, a delete carrying only
        // the key and a delete of a missing key.
        let b = batch(
            &[1, 2, 2, 3],
            &[11, 20, 0, 0],
            &[UpdateAfter, UpdateAfter, Delete, Delete],
        );
        let d = f.apply_diff(&b).expect("applies");
        assert_eq!(
            kinds_and_rows(&d),
            vec![
                (UpdateBefore.code(), 1, 10),
                (UpdateAfter.code(), 1, 11),
                (Delete.code(), 2, 20)
            ]
        );
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn diff_of_multiset_drops_unmatched_retractions() {
        use RowKind::*;
        let b = batch(&[1, 1, 2], &[5, 6, 6], &[Insert, Delete, Delete]);
        let schema = changelog::data_schema(&b.schema());
        let mut f = Fold::try_new(schema, None).expect("fold");
        let d = f.apply_diff(&b).expect("applies");
        assert_eq!(kinds_and_rows(&d), vec![(Insert.code(), 1, 5)]);
    }
}
