//! Whether a column is processing time: made by `PROCTIME()`, in a
//! projection or as a table's computed column, and passed through plain
//! column references (projections, aliases, filters) since.

use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::logical_expr::{Expr, LogicalPlan};
use sluice_sql::table::StreamTable;

/// The name `PROCTIME()` plans to.
const PROCTIME: &str = "proctime";

fn is_proctime_call(e: &Expr) -> bool {
    matches!(e.clone().unalias(), Expr::ScalarFunction(f) if f.name() == PROCTIME)
}

/// Whether column `name` of `plan`'s output is processing time.
pub(crate) fn is_proctime(plan: &LogicalPlan, name: &str) -> bool {
    match plan {
        LogicalPlan::Projection(p) => {
            let Some(i) = p.schema.fields().iter().position(|f| f.name() == name) else {
                return false;
            };
            match p.expr[i].clone().unalias() {
                Expr::Column(c) => is_proctime(&p.input, &c.name),
                e => is_proctime_call(&e),
            }
        }
        LogicalPlan::SubqueryAlias(a) => is_proctime(&a.input, name),
        LogicalPlan::Filter(f) => is_proctime(&f.input, name),
        LogicalPlan::TableScan(scan) => {
            let Ok(provider) = source_as_provider(&scan.source) else {
                return false;
            };
            let Some(table) = provider.downcast_ref::<StreamTable>() else {
                return false;
            };
            let Ok(i) = table.schema.index_of(name) else {
                return false;
            };
            table.computed[i].as_ref().is_some_and(is_proctime_call)
        }
        _ => false,
    }
}
