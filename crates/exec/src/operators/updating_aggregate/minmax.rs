//! `MIN(x)` / `MAX(x)` of any orderable type, compared in Arrow's row
//! format (bytes that sort as the values do).
//!
//! Over an append-only input a group keeps its best value. Over an updating
//! input a retracted minimum must give way to the next one, so every group
//! keeps its values with their multiplicities, ordered.

use std::collections::BTreeMap;

use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, AsArray, BinaryArray, Int64Array};
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, SortField};
use sluice_common::{Error, Result};

use super::acc::{put_table, restored_groups, state_column, GroupAcc, Restore, Rows};
use crate::checkpoint::State;

/// (group, value in row format) -> how many rows hold it.
type Multiset = BTreeMap<(usize, Box<[u8]>), i64>;

/// See the module docs.
pub(crate) struct MinMax {
    converter: RowConverter,
    max: bool,
    /// Append-only: each group's best value (empty: none yet).
    best: Vec<Box<[u8]>>,
    /// Retracting: (group, value) -> how many times.
    values: Option<Multiset>,
    /// The row of a NULL value (a group without values).
    null_row: Box<[u8]>,
    bytes: usize,
}

impl MinMax {
    pub fn try_new(data_type: &DataType, max: bool, retracts: bool) -> Result<Self> {
        let converter = RowConverter::new(vec![SortField::new(data_type.clone())])?;
        let null_row = converter
            .convert_columns(&[new_null_array(data_type, 1)])?
            .row(0)
            .as_ref()
            .into();
        Ok(MinMax {
            converter,
            max,
            best: Vec::new(),
            values: retracts.then(BTreeMap::new),
            null_row,
            bytes: 0,
        })
    }

    fn group_best(&self, g: usize) -> Option<&[u8]> {
        match &self.values {
            None => Some(&self.best[g])
                .filter(|b| !b.is_empty())
                .map(|b| &b[..]),
            Some(values) => {
                let mut range = values.range((g, Box::default())..(g + 1, Box::default()));
                let found = if self.max {
                    range.next_back()
                } else {
                    range.next()
                };
                found.map(|((_, v), _)| &v[..])
            }
        }
    }
}

impl GroupAcc for MinMax {
    fn update(&mut self, rows: &Rows<'_>) -> Result<()> {
        let valid = rows.valid(true);
        let converted = self.converter.convert_columns(rows.args)?;
        if self.best.len() < rows.num_groups {
            self.best.resize(rows.num_groups, Box::default());
        }
        for (i, &g) in rows.groups.iter().enumerate() {
            if valid.as_ref().is_some_and(|v| v.is_null(i)) {
                continue;
            }
            let v = converted.row(i);
            let v = v.as_ref();
            match &mut self.values {
                None => {
                    let b = &mut self.best[g];
                    let better = b.is_empty() || if self.max { v > &b[..] } else { v < &b[..] };
                    if better {
                        self.bytes += v.len();
                        *b = v.into();
                    }
                }
                Some(values) => {
                    let n = values.entry((g, v.into())).or_insert(0);
                    if *n == 0 {
                        self.bytes += v.len() + 24;
                    }
                    *n += i64::from(rows.sign(i));
                    if *n == 0 {
                        values.remove(&(g, v.into()));
                    }
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, groups: &[usize]) -> Result<ArrayRef> {
        let parser = self.converter.parser();
        let rows: Vec<_> = groups
            .iter()
            .map(|&g| parser.parse(self.group_best(g).unwrap_or(&self.null_row)))
            .collect();
        let mut cols = self.converter.convert_rows(rows)?;
        Ok(cols.remove(0))
    }

    fn retain(&mut self, keep: &[usize]) -> Result<()> {
        match &mut self.values {
            None => {
                let best = std::mem::take(&mut self.best);
                let mut best: Vec<Option<Box<[u8]>>> = best.into_iter().map(Some).collect();
                self.best = keep
                    .iter()
                    .map(|&g| best[g].take().unwrap_or_default())
                    .collect();
            }
            Some(values) => {
                let mut new_id = vec![usize::MAX; keep.last().map_or(0, |&g| g + 1)];
                for (i, &g) in keep.iter().enumerate() {
                    new_id[g] = i;
                }
                let old = std::mem::take(values);
                for ((g, v), n) in old {
                    if let Some(&i) = new_id.get(g).filter(|&&i| i != usize::MAX) {
                        values.insert((i, v), n);
                    }
                }
            }
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.best.capacity() * 16 + self.bytes
    }

    /// Each group's best value (append-only) or its values with their
    /// counts (retracting), in row format.
    fn snapshot(&mut self, name: &str, groups: &[usize], state: &mut State) -> Result<()> {
        let mut g = Vec::new();
        let mut values: Vec<&[u8]> = Vec::new();
        let mut counts = Vec::new();
        for (p, &group) in groups.iter().enumerate() {
            match &self.values {
                None => {
                    if let Some(b) = self.best.get(group).filter(|b| !b.is_empty()) {
                        g.push(p as u32);
                        values.push(b);
                        counts.push(1);
                    }
                }
                Some(all) => {
                    let range = all.range((group, Box::default())..(group + 1, Box::default()));
                    for ((_, v), n) in range {
                        g.push(p as u32);
                        values.push(v);
                        counts.push(*n);
                    }
                }
            }
        }
        put_table(
            state,
            name,
            g,
            vec![
                ("value", Arc::new(BinaryArray::from_vec(values))),
                ("count", Arc::new(Int64Array::from(counts))),
            ],
        )
    }

    fn restore(&mut self, name: &str, state: &State, to: &Restore<'_>) -> Result<()> {
        let (table, ids, num_groups) = (state.require(name)?, to.ids, to.num_groups);
        if self.best.len() < num_groups {
            self.best.resize(num_groups, Box::default());
        }
        let values = table
            .column(1)
            .as_binary_opt::<i32>()
            .ok_or_else(|| Error::Checkpoint("MIN/MAX checkpointed state is malformed".into()))?;
        let counts = state_column::<Int64Type>(table, 2)?;
        for (r, id) in restored_groups(table, ids)?.into_iter().enumerate() {
            let Some(g) = id else {
                continue;
            };
            let v: Box<[u8]> = values.value(r).into();
            self.bytes += v.len() + 24;
            match &mut self.values {
                None => self.best[g] = v,
                Some(all) => {
                    all.insert((g, v), counts.value(r));
                }
            }
        }
        Ok(())
    }
}
