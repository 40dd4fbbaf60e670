//! Reading the keys of a DataFusion [`GroupValues`] without losing it.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::SchemaRef;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use sluice_common::{Error, Result};

/// The keys of `groups` (of `schema`, holding groups `0..n`), leaving an
/// equal one behind: the keys are taken out and interned into a fresh one,
/// where they get the same ids (DataFusion's multi-column `GroupValues`
/// cannot be used again once it emitted everything).
pub(crate) fn copy_keys(
    groups: &mut Box<dyn GroupValues>,
    schema: &SchemaRef,
    n: usize,
) -> Result<Vec<ArrayRef>> {
    let keys = groups.emit(EmitTo::All)?;
    let mut fresh = new_group_values(Arc::clone(schema), &GroupOrdering::None)?;
    let mut ids = Vec::with_capacity(n);
    fresh.intern(&keys, &mut ids)?;
    if ids.len() != n || ids.iter().enumerate().any(|(i, &id)| i != id) {
        return Err(Error::internal("group ids changed when re-interned"));
    }
    *groups = fresh;
    Ok(keys)
}

/// The keys of a [`GroupValues`] in group id order, kept beside it from the
/// first checkpoint on: later checkpoints read them here instead of
/// emptying and refilling the `GroupValues` (which costs a rehash of every
/// key). Jobs without checkpoints never pay for it.
#[derive(Default)]
pub(crate) struct KeyLog {
    /// `None`: not kept (no checkpoint asked yet).
    batches: Option<Vec<Vec<ArrayRef>>>,
}

impl KeyLog {
    /// `keys` (one array per key column) were interned into `ids`, when
    /// `before` groups existed: keep the new groups' keys.
    pub(crate) fn record(&mut self, keys: &[ArrayRef], ids: &[usize], before: usize) -> Result<()> {
        let Some(log) = &mut self.batches else {
            return Ok(());
        };
        // New ids are given in order of first appearance.
        let mut rows = Vec::new();
        let mut next = before;
        for (i, &id) in ids.iter().enumerate() {
            if id == next {
                rows.push(i as u32);
                next += 1;
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let idx = arrow::array::UInt32Array::from(rows);
        let taken = keys
            .iter()
            .map(|k| Ok(arrow::compute::take(k, &idx, None)?))
            .collect::<Result<Vec<_>>>()?;
        log.push(taken);
        Ok(())
    }

    /// Every group's keys (of `groups`, of `schema`, holding `n` groups),
    /// in id order.
    pub(crate) fn keys(
        &mut self,
        groups: &mut Box<dyn GroupValues>,
        schema: &SchemaRef,
        n: usize,
    ) -> Result<Vec<ArrayRef>> {
        let Some(log) = &mut self.batches else {
            let keys = copy_keys(groups, schema, n)?;
            self.batches = Some(vec![keys.clone()]);
            return Ok(keys);
        };
        let cols = concat_columns(log, schema)?;
        if cols.first().is_some_and(|c| c.len() != n) {
            return Err(Error::internal("the key log lost track of the groups"));
        }
        *log = vec![cols.clone()];
        Ok(cols)
    }

    /// The keys of groups `start..n` (of `groups`, of `schema`), the
    /// groups interned since the last call; none are kept after it.
    pub(crate) fn take_new(
        &mut self,
        groups: &mut Box<dyn GroupValues>,
        schema: &SchemaRef,
        start: usize,
        n: usize,
    ) -> Result<Vec<ArrayRef>> {
        let keys = match self.batches.replace(Vec::new()) {
            None => copy_keys(groups, schema, n)?
                .iter()
                .map(|k| k.slice(start, n - start))
                .collect(),
            Some(log) => concat_columns(&log, schema)?,
        };
        if keys.first().is_some_and(|c| c.len() != n - start) {
            return Err(Error::internal("the key log lost track of the groups"));
        }
        Ok(keys)
    }

    /// The groups were rebuilt from `keys`, in id order.
    pub(crate) fn reset(&mut self, keys: &[ArrayRef]) {
        if let Some(log) = &mut self.batches {
            *log = vec![keys.to_vec()];
        }
    }
}

/// Each column of `batches` (one array per column of `schema`) in one array.
fn concat_columns(batches: &[Vec<ArrayRef>], schema: &SchemaRef) -> Result<Vec<ArrayRef>> {
    (0..schema.fields().len())
        .map(|c| {
            let parts: Vec<&dyn arrow::array::Array> =
                batches.iter().map(|b| b[c].as_ref()).collect();
            if parts.is_empty() {
                Ok(arrow::array::new_empty_array(schema.field(c).data_type()))
            } else {
                Ok(arrow::compute::concat(&parts)?)
            }
        })
        .collect()
}
