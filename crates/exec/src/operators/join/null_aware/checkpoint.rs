//! Snapshot and restore of a null-aware anti join. Three tables: `left`,
//! the stored left rows as they arrived; `groups`, each group's
//! correlation keys with its count of right rows with a NULL `y` and its
//! last update; `values`, each group's right rows per `y` (`right`). A
//! restore re-encodes them and keeps the groups whose correlation keys
//! its instance owns.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use arrow::row::RowConverter;
use sluice_common::{Error, Result};

use super::{left_rows, NullAwareAntiJoin};
use crate::checkpoint::state::named_table;
use crate::checkpoint::{KeyRange, State};

/// The arrays of the encoded rows `rows` (none for a converter of no
/// columns).
fn decode(converter: &RowConverter, width: usize, rows: &[&[u8]]) -> Result<Vec<ArrayRef>> {
    if width == 0 {
        return Ok(Vec::new());
    }
    let parser = converter.parser();
    Ok(converter.convert_rows(rows.iter().map(|r| parser.parse(r)))?)
}

/// Column `name` of a checkpointed table as numbers.
fn numbers<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a [i64]> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .map(|a| a.values().as_ref())
        .ok_or_else(|| Error::Checkpoint(format!("checkpointed column '{name}' is missing")))
}

impl NullAwareAntiJoin {
    fn group_names(&self) -> Vec<String> {
        (0..self.keys[0].group.len())
            .map(|i| format!("g{i}"))
            .collect()
    }

    fn decode_groups(&self, groups: &[&[u8]]) -> Result<Vec<ArrayRef>> {
        let k = &self.keys[0];
        decode(&k.group_rows, k.group.len(), groups)
    }

    /// Each row's group (its encoded correlation keys, the table's first
    /// columns), for the groups of the instance's key groups only.
    fn owned_groups(&self, batch: &RecordBatch, keys: KeyRange) -> Result<Vec<Option<Box<[u8]>>>> {
        let n = self.keys[0].group.len();
        if batch.num_columns() < n + 2 {
            return Err(Error::Checkpoint(
                "a checkpointed NOT IN table has too few columns".into(),
            ));
        }
        let (cols, rows) = (&batch.columns()[..n], batch.num_rows());
        let mask = keys.mask(cols, rows)?;
        if cols.is_empty() {
            return Ok(vec![Some(Box::default()); rows]);
        }
        let encoded = self.keys[0].group_rows.convert_columns(cols)?;
        Ok((0..rows)
            .map(|i| mask.value(i).then(|| encoded.row(i).as_ref().into()))
            .collect())
    }

    pub(super) fn snapshot_state(&mut self) -> Result<State> {
        let mut picks = Vec::new();
        let (mut groups, mut nulls, mut last) = (Vec::new(), Vec::new(), Vec::new());
        let (mut value_groups, mut values, mut counts) = (Vec::new(), Vec::new(), Vec::new());
        for (key, g) in &self.groups {
            groups.push(key.as_ref());
            nulls.push(g.nulls as i64);
            last.push(g.last as i64);
            picks.extend_from_slice(&g.null_left);
            for (v, e) in &g.by_value {
                picks.extend_from_slice(&e.left);
                if e.right > 0 {
                    value_groups.push(key.as_ref());
                    values.push(v.as_ref());
                    counts.push(e.right as i64);
                }
            }
        }
        let mut names = self.group_names();
        let mut cols = self.decode_groups(&groups)?;
        names.extend(["nulls".to_string(), "last".to_string()]);
        cols.push(Arc::new(Int64Array::from(nulls)));
        cols.push(Arc::new(Int64Array::from(last)));
        let groups = named_table(&names, cols)?;

        let mut names = self.group_names();
        let mut cols = self.decode_groups(&value_groups)?;
        names.extend(["value".to_string(), "right".to_string()]);
        cols.extend(decode(&self.keys[1].column_rows, 1, &values)?);
        cols.push(Arc::new(Int64Array::from(counts)));
        let values = named_table(&names, cols)?;

        let mut state = State::new().with("groups", groups).with("values", values);
        if !self.batches.is_empty() {
            let left = RecordBatch::try_new(Arc::clone(&self.data), self.rows(&picks)?)?;
            state.add("left", left);
        }
        Ok(state)
    }

    pub(super) fn restore_state(&mut self, states: &[State], keys: KeyRange) -> Result<()> {
        for state in states {
            self.restore_groups(state.require("groups")?, keys)?;
            self.restore_values(state.require("values")?, keys)?;
            if let Some(left) = state.get("left") {
                self.restore_left(left, keys)?;
            }
        }
        self.live = self.groups.values().map(left_rows).sum();
        self.right_rows = self.groups.values().map(|g| g.total as usize).sum();
        Ok(())
    }

    fn restore_groups(&mut self, batch: &RecordBatch, keys: KeyRange) -> Result<()> {
        let owned = self.owned_groups(batch, keys)?;
        let (nulls, last) = (numbers(batch, "nulls")?, numbers(batch, "last")?);
        for (i, group) in owned.into_iter().enumerate() {
            let Some(group) = group else { continue };
            let g = self.groups.entry(group).or_default();
            g.nulls += nulls[i] as u64;
            g.total += nulls[i] as u64;
            g.last = g.last.max(last[i] as u64);
        }
        Ok(())
    }

    fn restore_values(&mut self, batch: &RecordBatch, keys: KeyRange) -> Result<()> {
        let owned = self.owned_groups(batch, keys)?;
        let value = Arc::clone(batch.column(self.keys[0].group.len()));
        let encoded = self.keys[1]
            .column_rows
            .convert_columns(std::slice::from_ref(&value))?;
        let counts = numbers(batch, "right")?;
        for (i, group) in owned.into_iter().enumerate() {
            let Some(group) = group else { continue };
            let g = self.groups.entry(group).or_default();
            let v: Box<[u8]> = encoded.row(i).as_ref().into();
            g.by_value.entry(v).or_default().right += counts[i] as u64;
            g.total += counts[i] as u64;
        }
        Ok(())
    }

    fn restore_left(&mut self, batch: &RecordBatch, keys: KeyRange) -> Result<()> {
        let data = keys.filter(batch, &self.keys[0].group)?;
        if data.num_rows() == 0 {
            return Ok(());
        }
        let data = RecordBatch::try_new(Arc::clone(&self.data), data.columns().to_vec())?;
        let (groups, values) = self.keys[0].encode(&data)?;
        let b = self.batches.len();
        for (i, (group, value)) in groups.into_iter().zip(values).enumerate() {
            let Some(group) = group else { continue };
            let g = self.groups.entry(group).or_default();
            match value {
                Some(v) => g.by_value.entry(v).or_default().left.push((b, i)),
                None => g.null_left.push((b, i)),
            }
        }
        if let Some(c) = &self.whole {
            self.wholes.push(c.convert_columns(data.columns())?);
        }
        self.batches.push(data);
        Ok(())
    }
}
