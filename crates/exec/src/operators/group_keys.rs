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
