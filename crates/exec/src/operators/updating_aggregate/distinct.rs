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

use super::acc::{restored_groups, state_column, GroupAcc, Restore, Rows};
use super::pair_segments::{self, PairSegments};
use crate::checkpoint::State;

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
    segments: PairSegments,
}

impl CountDistinct {
    /// Over values of `data_type`; `retracts`: the input is a changelog.
    pub fn try_new(data_type: &DataType, retracts: bool) -> Result<Self> {
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
            segments: PairSegments::new(retracts),
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
        self.segments.record(&cols, &self.ids, before)?;
        self.segments.touched(&self.ids);
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
        self.segments.restart(&kept);
        self.pair_rows = pair_rows;
        self.counts = keep.iter().map(|&g| self.counts[g]).collect();
        Ok(())
    }

    fn size(&self) -> usize {
        self.pairs.size() + self.pair_rows.capacity() * 8 + self.counts.capacity() * 8
    }

    /// The pairs as segments (see [`super::pair_segments`]); a restore
    /// keeps the pairs of the groups it restored.
    fn snapshot(&mut self, name: &str, _groups: &[usize], state: &mut State) -> Result<()> {
        self.segments
            .snapshot(name, &mut self.pairs, &self.schema, &self.pair_rows, state)
    }

    fn restore(&mut self, name: &str, state: &State, to: &Restore<'_>) -> Result<()> {
        self.counts.resize(to.num_groups, 0);
        let Some(segments) = pair_segments::read(name, state)? else {
            return self.restore_table(state.require(name)?, to.ids);
        };
        for seg in segments {
            let groups = seg.gids.values().iter().map(|&gid| {
                to.by_gid
                    .get(gid as usize)
                    .copied()
                    .filter(|&g| g != usize::MAX)
            });
            let rows = (0..seg.gids.len()).map(|r| seg.rows.as_ref().map_or(1, |c| c.value(r)));
            let kept: Vec<(usize, usize, i64)> = groups
                .zip(rows)
                .enumerate()
                .filter_map(|(r, (g, n))| g.filter(|_| n > 0).map(|g| (r, g, n)))
                .collect();
            self.take_up(&seg.values, &kept)?;
        }
        Ok(())
    }
}

impl CountDistinct {
    /// Take up a table of the layout written before segments: positions,
    /// values, rows.
    fn restore_table(&mut self, table: &RecordBatch, ids: &[usize]) -> Result<()> {
        let rows = state_column::<Int64Type>(table, 2)?;
        let kept: Vec<(usize, usize, i64)> = restored_groups(table, ids)?
            .into_iter()
            .enumerate()
            .filter_map(|(r, g)| g.map(|g| (r, g, rows.value(r))))
            .collect();
        self.take_up(table.column(1), &kept)
    }

    /// Intern the pairs (row `r` of `values` in group `g`, with `n` rows)
    /// of `kept`.
    fn take_up(&mut self, values: &ArrayRef, kept: &[(usize, usize, i64)]) -> Result<()> {
        let idx = UInt64Array::from(kept.iter().map(|k| k.0 as u64).collect::<Vec<_>>());
        let groups: UInt64Array = kept.iter().map(|k| k.1 as u64).collect();
        let values = take(values, &idx, None)?;
        let cols: Vec<ArrayRef> = vec![Arc::new(groups), values];
        let before = self.pairs.len();
        self.pairs.intern(&cols, &mut self.ids)?;
        self.segments.record(&cols, &self.ids, before)?;
        self.pair_rows.resize(self.pairs.len(), 0);
        for (i, &(_, g, n)) in kept.iter().enumerate() {
            self.pair_rows[self.ids[i]] = n;
            self.counts[g] += 1;
        }
        Ok(())
    }
}
