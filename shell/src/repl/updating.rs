//! An updating result on screen: rows kept in place by their upsert key
//! (or, without one, as a multiset), so a changed row is redrawn where it
//! is and a deleted row disappears. Rows changed since the last frame are
//! marked.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use sluice_common::changelog::{self, RowKind};
use sluice_engine::format;

/// See the module docs.
#[derive(Default)]
pub struct UpdatingRows {
    key: Option<Vec<usize>>,
    /// Rows in order of first insertion; `None` once deleted.
    slots: Vec<Option<(Vec<String>, bool)>>,
    /// Key (or whole row) -> its slots.
    index: HashMap<Vec<String>, Vec<usize>>,
    live: usize,
}

impl UpdatingRows {
    /// Rows keyed by the columns `key` (`None`: a multiset).
    pub fn new(key: Option<Vec<usize>>) -> Self {
        UpdatingRows {
            key,
            ..Default::default()
        }
    }

    fn key_of(&self, row: &[String]) -> Vec<String> {
        match &self.key {
            Some(k) => k.iter().map(|&i| row[i].clone()).collect(),
            None => row.to_vec(),
        }
    }

    /// Apply a changelog batch.
    pub fn apply(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        let codes: Vec<i8> = match changelog::ops(batch) {
            Some(ops) => ops.values().to_vec(),
            None => vec![RowKind::Insert.code(); batch.num_rows()],
        };
        let rows = format::rows_as_strings(&[changelog::data(batch)?])?;
        for (row, code) in rows.into_iter().zip(codes) {
            let kind = RowKind::from_code(code).unwrap_or(RowKind::Insert);
            let key = self.key_of(&row);
            let keyed = self.key.is_some();
            if kind.is_accumulate() {
                match self.index.get(&key).and_then(|s| s.last()) {
                    Some(&slot) if keyed => self.slots[slot] = Some((row, true)),
                    _ => {
                        self.index.entry(key).or_default().push(self.slots.len());
                        self.slots.push(Some((row, true)));
                        self.live += 1;
                    }
                }
            } else if !(keyed && kind == RowKind::UpdateBefore) {
                let slot = self.index.get_mut(&key).and_then(Vec::pop);
                if let Some(slot) = slot {
                    self.slots[slot] = None;
                    self.live -= 1;
                }
                if self.index.get(&key).is_some_and(Vec::is_empty) {
                    self.index.remove(&key);
                }
            }
        }
        self.compact();
        Ok(())
    }

    fn compact(&mut self) {
        if self.slots.len() < 2 * self.live + 1024 {
            return;
        }
        let mut moved = vec![usize::MAX; self.slots.len()];
        let mut slots = Vec::with_capacity(self.live);
        for (i, s) in self.slots.drain(..).enumerate() {
            if s.is_some() {
                moved[i] = slots.len();
                slots.push(s);
            }
        }
        self.slots = slots;
        for v in self.index.values_mut() {
            for s in v.iter_mut() {
                *s = moved[*s];
            }
        }
    }

    /// The current rows with whether each changed since [`Self::seen`].
    pub fn rows(&self) -> impl Iterator<Item = (&Vec<String>, bool)> {
        self.slots.iter().flatten().map(|(r, c)| (r, *c))
    }

    /// The frame showing the changes was drawn: clear the marks.
    pub fn seen(&mut self) {
        for (_, changed) in self.slots.iter_mut().flatten() {
            *changed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, Int8Array};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn updates_in_place_and_deletes() {
        use RowKind::*;
        let data = Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("n", DataType::Int64, false),
        ]);
        let schema = changelog::with_op_field(&data);
        let kinds = [Insert, Insert, UpdateBefore, UpdateAfter, Delete];
        let ops = Int8Array::from(kinds.iter().map(|k| k.code()).collect::<Vec<_>>());
        let batch = changelog::with_ops(
            &schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 1, 1, 2])),
                Arc::new(Int64Array::from(vec![1, 1, 1, 2, 1])),
            ],
            ops,
        )
        .expect("batch");
        let mut rows = UpdatingRows::new(Some(vec![0]));
        rows.apply(&batch).expect("applies");
        let shown: Vec<_> = rows.rows().map(|(r, c)| (r.join(","), c)).collect();
        assert_eq!(shown, vec![("1,2".to_string(), true)]);
        rows.seen();
        assert!(rows.rows().all(|(_, c)| !c));
        assert_eq!(rows.live, 1);
    }
}
