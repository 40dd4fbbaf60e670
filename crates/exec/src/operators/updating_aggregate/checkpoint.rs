//! Snapshot and restore of an updating aggregate: table `groups` (each live
//! group's keys, its net row count, with a TTL when it was last updated,
//! and its group id `gid`) and per aggregate a table `acc0`, ... with its
//! state per group (or, for `COUNT(DISTINCT)`, incremental tables
//! `acc0.*` keyed by `gid`). A restore keeps the groups whose keys its
//! instance owns.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, UInt64Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, UInt64Type};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

use super::acc::{state_column, Restore};
use super::UpdatingAggregateOperator;
use crate::checkpoint::{KeyRange, State};

impl UpdatingAggregateOperator {
    /// The keys of every group, leaving them interned as they were.
    fn all_keys(&mut self) -> Result<Vec<ArrayRef>> {
        match self.groups.as_mut() {
            Some(g) => self.key_log.keys(g, &self.key_schema, self.num_groups),
            None => Ok(vec![]),
        }
    }

    /// Its state (see the module docs).
    pub(super) fn snapshot_groups(&mut self) -> Result<State> {
        let live: Vec<usize> = (0..self.num_groups).filter(|&g| self.rows[g] > 0).collect();
        let idx = UInt64Array::from(live.iter().map(|&g| g as u64).collect::<Vec<_>>());
        let mut fields = Vec::new();
        let mut cols: Vec<ArrayRef> = Vec::new();
        for (i, k) in self.all_keys()?.iter().enumerate() {
            fields.push(Field::new(format!("k{i}"), k.data_type().clone(), true));
            cols.push(take(k, &idx, None)?);
        }
        fields.push(Field::new("rows", DataType::Int64, false));
        cols.push(Arc::new(Int64Array::from_iter_values(
            live.iter().map(|&g| self.rows[g]),
        )));
        if let Some(e) = &self.expiry {
            fields.push(Field::new("updated", DataType::Int64, false));
            let at = e.last_updated(&live);
            cols.push(Arc::new(Int64Array::from_iter_values(
                at.iter().map(|&t| t as i64),
            )));
        }
        fields.push(Field::new("gid", DataType::UInt64, false));
        cols.push(Arc::new(idx));
        let groups = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
        let mut state = State::new().with("groups", groups);
        for (i, acc) in self.accs.iter_mut().enumerate() {
            acc.snapshot(&format!("acc{i}"), &live, &mut state)?;
        }
        Ok(state)
    }

    /// Take up the groups of `states` whose keys `keys` owns.
    pub(super) fn restore_groups(&mut self, states: &[State], keys: KeyRange) -> Result<()> {
        let nk = self.cfg.keys.len();
        for state in states {
            let groups = state.require("groups")?;
            if groups.num_columns() < nk + 1 {
                return Err(Error::Checkpoint(
                    "the checkpointed groups do not fit this aggregate".into(),
                ));
            }
            let mask = keys.mask(&groups.columns()[..nk], groups.num_rows())?;
            let owned: Vec<usize> = (0..groups.num_rows()).filter(|&r| mask.value(r)).collect();
            let idx = UInt64Array::from(owned.iter().map(|&r| r as u64).collect::<Vec<_>>());
            let key_cols = groups.columns()[..nk]
                .iter()
                .map(|c| Ok(take(c, &idx, None)?))
                .collect::<Result<Vec<_>>>()?;
            let mut new_ids = Vec::new();
            match &mut self.groups {
                Some(g) => {
                    let before = g.len();
                    g.intern(&key_cols, &mut new_ids)?;
                    self.num_groups = g.len();
                    self.key_log.record(&key_cols, &new_ids, before)?;
                }
                None => {
                    new_ids = vec![0; owned.len()];
                    self.num_groups = 1;
                }
            }
            self.rows.resize(self.num_groups, 0);
            self.seen.resize(self.num_groups, false);
            let mut ids = vec![usize::MAX; groups.num_rows()];
            let rows = state_column::<Int64Type>(groups, nk)?;
            for (&r, &id) in owned.iter().zip(&new_ids) {
                ids[r] = id;
                if self.rows[id] <= 0 && rows.value(r) > 0 {
                    self.live += 1;
                }
                self.rows[id] = rows.value(r);
            }
            let updated = groups.column_by_name("updated");
            if let (Some(e), Some(at)) = (
                &mut self.expiry,
                updated.and_then(|c| c.as_primitive_opt::<Int64Type>()),
            ) {
                for (&r, &id) in owned.iter().zip(&new_ids) {
                    e.set_last_updated(id, at.value(r) as u64, self.num_groups);
                }
            }
            let by_gid = by_gid(groups, &ids)?;
            let to = Restore {
                ids: &ids,
                by_gid: &by_gid,
                num_groups: self.num_groups,
            };
            for (i, acc) in self.accs.iter_mut().enumerate() {
                acc.restore(&format!("acc{i}"), state, &to)?;
            }
        }
        Ok(())
    }
}

/// Where each group of the checkpointing operator went, by its group id
/// (`gid`; empty for a checkpoint written without it).
fn by_gid(groups: &RecordBatch, ids: &[usize]) -> Result<Vec<usize>> {
    let Some(gids) = groups.column_by_name("gid") else {
        return Ok(Vec::new());
    };
    let gids = gids.as_primitive_opt::<UInt64Type>().ok_or_else(|| {
        Error::Checkpoint("an aggregate's checkpointed group ids are malformed".into())
    })?;
    let len = gids.values().iter().max().map_or(0, |&m| m as usize + 1);
    let mut out = vec![usize::MAX; len];
    for (&gid, &id) in gids.values().iter().zip(ids) {
        out[gid as usize] = id;
    }
    Ok(out)
}
