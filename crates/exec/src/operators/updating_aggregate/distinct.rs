//! `COUNT(DISTINCT x)`: every (group, value) pair is interned once
//! (DataFusion `GroupValues`, vectorised) and counted, so a value leaves a
//! group's count only when its last row is retracted.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, UInt64Array};
use arrow::compute::{filter, take};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt64Type};
use arrow::record_batch::RecordBatch;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use sluice_common::Result;

use super::acc::{restored_groups, state_column, state_table, GroupAcc, Rows};

/// See the module docs.
pub(crate) struct CountDistinct {
    schema: SchemaRef,
    pairs: Box<dyn GroupValues>,
    /// Rows of each pair.
    pair_rows: Vec<i64>,
    /// Distinct values of each group.
    counts: Vec<i64>,
    ids: Vec<usize>,
    /// The pairs, for checkpoints.
    log: crate::operators::group_keys::KeyLog,
}

impl CountDistinct {
    pub fn try_new(data_type: &DataType) -> Result<Self> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("group", DataType::UInt64, false),
            Field::new("value", data_type.clone(), true),
        ]));
        Ok(CountDistinct {
            pairs: new_group_values(Arc::clone(&schema), &GroupOrdering::None)?,
            schema,
            pair_rows: Vec::new(),
            counts: Vec::new(),
            ids: Vec::new(),
            log: Default::default(),
        })
    }
}

impl GroupAcc for CountDistinct {
    fn update(&mut self, rows: &Rows<'_>) -> Result<()> {
        self.counts.resize(rows.num_groups, 0);
        let groups: UInt64Array = rows.groups.iter().map(|&g| g as u64).collect();
        let mut cols: Vec<ArrayRef> = vec![Arc::new(groups), Arc::clone(&rows.args[0])];
        let mut signs: Vec<i8> = rows.signs.map_or_else(Vec::new, <[i8]>::to_vec);
        if let Some(valid) = rows.valid(true) {
            let mask = arrow::array::BooleanArray::from(valid.inner().clone());
            cols = cols
                .iter()
                .map(|c| filter(c, &mask))
                .collect::<std::result::Result<_, _>>()?;
            if !signs.is_empty() {
                signs = (0..mask.len())
                    .filter(|&i| mask.value(i))
                    .map(|i| signs[i])
                    .collect();
            }
        }
        let before = self.pairs.len();
        self.pairs.intern(&cols, &mut self.ids)?;
        self.log.record(&cols, &self.ids, before)?;
        self.pair_rows.resize(self.pairs.len(), 0);
        let groups = cols[0].as_primitive::<UInt64Type>().values();
        for (i, &p) in self.ids.iter().enumerate() {
            let before = self.pair_rows[p];
            let sign = signs.get(i).copied().unwrap_or(1);
            self.pair_rows[p] += i64::from(sign);
            let after = self.pair_rows[p];
            let g = groups[i] as usize;
            if before <= 0 && after > 0 {
                self.counts[g] += 1;
            } else if before > 0 && after <= 0 {
                self.counts[g] -= 1;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, groups: &[usize]) -> Result<ArrayRef> {
        let v: Int64Array = groups.iter().map(|&g| self.counts[g]).collect();
        Ok(Arc::new(v))
    }

    fn retain(&mut self, keep: &[usize]) -> Result<()> {
        let mut new_id = vec![u64::MAX; self.counts.len()];
        for (i, &g) in keep.iter().enumerate() {
            new_id[g] = i as u64;
        }
        let cols = self.pairs.emit(EmitTo::All)?;
        let old_groups = cols[0].as_primitive::<UInt64Type>();
        let live: Vec<u64> = (0..old_groups.len())
            .filter(|&p| self.pair_rows[p] > 0 && new_id[old_groups.value(p) as usize] != u64::MAX)
            .map(|p| p as u64)
            .collect();
        let live = UInt64Array::from(live);
        let groups: UInt64Array = take(old_groups, &live, None)?
            .as_primitive::<UInt64Type>()
            .values()
            .iter()
            .map(|&g| new_id[g as usize])
            .collect();
        let values = take(&cols[1], &live, None)?;
        let pair_rows: Vec<i64> = live
            .values()
            .iter()
            .map(|&p| self.pair_rows[p as usize])
            .collect();
        self.pairs = new_group_values(Arc::clone(&self.schema), &GroupOrdering::None)?;
        let kept: Vec<ArrayRef> = vec![Arc::new(groups), values];
        self.pairs.intern(&kept, &mut self.ids)?;
        self.log.reset(&kept);
        self.pair_rows = pair_rows;
        self.counts = keep.iter().map(|&g| self.counts[g]).collect();
        Ok(())
    }

    fn size(&self) -> usize {
        self.pairs.size() + self.pair_rows.capacity() * 8 + self.counts.capacity() * 8
    }

    /// The live (group, value) pairs of `groups`, with their rows.
    fn snapshot(&mut self, groups: &[usize]) -> Result<RecordBatch> {
        let mut position = vec![u32::MAX; self.counts.len()];
        for (p, &g) in groups.iter().enumerate() {
            position[g] = p as u32;
        }
        let n = self.pair_rows.len();
        let cols = self.log.keys(&mut self.pairs, &self.schema, n)?;
        let pair_groups = cols[0].as_primitive::<UInt64Type>();
        let live: Vec<u64> = (0..pair_groups.len())
            .filter(|&p| {
                self.pair_rows[p] > 0 && position[pair_groups.value(p) as usize] != u32::MAX
            })
            .map(|p| p as u64)
            .collect();
        let g: Vec<u32> = live
            .iter()
            .map(|&p| position[pair_groups.value(p as usize) as usize])
            .collect();
        let live = UInt64Array::from(live);
        let values = take(&cols[1], &live, None)?;
        let rows: Int64Array = live
            .values()
            .iter()
            .map(|&p| self.pair_rows[p as usize])
            .collect();
        state_table(g, vec![("value", values), ("rows", Arc::new(rows))])
    }

    fn restore(&mut self, table: &RecordBatch, ids: &[usize], num_groups: usize) -> Result<()> {
        self.counts.resize(num_groups, 0);
        let rows = state_column::<Int64Type>(table, 2)?;
        let keep: Vec<(usize, usize)> = restored_groups(table, ids)?
            .into_iter()
            .enumerate()
            .filter_map(|(r, g)| g.map(|g| (r, g)))
            .collect();
        let idx = UInt64Array::from(keep.iter().map(|(r, _)| *r as u64).collect::<Vec<_>>());
        let groups: UInt64Array = keep.iter().map(|(_, g)| *g as u64).collect();
        let values = take(table.column(1), &idx, None)?;
        let cols: Vec<ArrayRef> = vec![Arc::new(groups), values];
        let before = self.pairs.len();
        self.pairs.intern(&cols, &mut self.ids)?;
        self.log.record(&cols, &self.ids, before)?;
        self.pair_rows.resize(self.pairs.len(), 0);
        for (i, &(r, g)) in keep.iter().enumerate() {
            self.pair_rows[self.ids[i]] = rows.value(r);
            self.counts[g] += 1;
        }
        Ok(())
    }
}
