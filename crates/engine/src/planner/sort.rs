//! ORDER BY: only over bounded inputs, where it sorts at end of input.

use arrow::compute::SortOptions;
use datafusion::common::DFSchema;
use datafusion::logical_expr::logical_plan::Sort;
use datafusion::logical_expr::SortExpr;
use sluice_common::{Error, Result};
use sluice_exec::operators::sort::{SortKey, SortOperator};

use super::{Planned, StreamPlanner};

pub(crate) fn plan_sort(p: &StreamPlanner, sort: &Sort) -> Result<Planned> {
    let input = p.plan(&sort.input)?;
    let input = p.folded(input, "ORDER BY")?;
    if !input.bounded {
        return Err(Error::plan(
            "ORDER BY on an unbounded stream is not supported: it would never emit a row",
        )
        .near("ORDER"));
    }
    let keys = sort_keys(p, &sort.expr, &input.schema)?;
    let op = SortOperator::new(input.schema.inner().clone(), keys, sort.fetch);
    Ok(p.wrap_global(input, Box::new(op)))
}

/// ORDER BY keys over `schema` as the operators take them.
pub(crate) fn sort_keys(
    p: &StreamPlanner,
    exprs: &[SortExpr],
    schema: &DFSchema,
) -> Result<Vec<SortKey>> {
    exprs
        .iter()
        .map(|s| {
            Ok(SortKey {
                expr: p.physical(&s.expr, schema)?,
                options: SortOptions {
                    descending: !s.asc,
                    nulls_first: s.nulls_first,
                },
            })
        })
        .collect()
}
