//! `t FOR SYSTEM_TIME AS OF o.ts`: the versioned side of a temporal join
//! (Flink's syntax). Planned by [`TemporalRelationPlanner`] as a
//! [`VersionedNode`] over the table's scan, which records the time the
//! versions are looked up at (a column of the other side, resolved when
//! the join is planned). Anything but a join's right side is refused then.

use std::cmp::Ordering;
use std::fmt;
use std::hash::Hash;

use datafusion::common::{plan_err, DFSchemaRef, Result};
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, TableFactor, TableVersion};
use std::sync::Arc;

/// A versioned table read for a temporal join.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionedNode {
    /// The table's scan.
    pub input: LogicalPlan,
    /// The other side's time column, as written (`o.ts` is `["o", "ts"]`).
    pub as_of: Vec<String>,
}

impl PartialOrd for VersionedNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.as_of.partial_cmp(&other.as_of)
    }
}

impl UserDefinedLogicalNodeCore for VersionedNode {
    fn name(&self) -> &str {
        "Versioned"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Versioned: FOR SYSTEM_TIME AS OF {}",
            self.as_of.join(".")
        )
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let Some(input) = inputs.pop() else {
            return plan_err!("Versioned needs one input");
        };
        Ok(VersionedNode {
            input,
            as_of: self.as_of.clone(),
        })
    }
}

/// Plans `t FOR SYSTEM_TIME AS OF <column>` in FROM.
#[derive(Debug, Default)]
pub struct TemporalRelationPlanner;

impl RelationPlanner for TemporalRelationPlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        ctx: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let TableFactor::Table {
            name,
            alias,
            args,
            with_hints,
            version: Some(version),
            with_ordinality,
            partitions,
            json_path,
            sample,
            index_hints,
        } = relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let as_of = match version {
            TableVersion::ForSystemTimeAsOf(SqlExpr::Identifier(i)) => vec![ctx.normalize_ident(i)],
            TableVersion::ForSystemTimeAsOf(SqlExpr::CompoundIdentifier(parts)) => {
                parts.into_iter().map(|i| ctx.normalize_ident(i)).collect()
            }
            TableVersion::ForSystemTimeAsOf(e) => {
                return plan_err!(
                    "FOR SYSTEM_TIME AS OF needs a time attribute column of the other side of the join, found {e}"
                )
            }
            other => return plan_err!("{other} is not supported; a temporal join is FOR SYSTEM_TIME AS OF a time column"),
        };
        let table = TableFactor::Table {
            name,
            alias: None,
            args,
            with_hints,
            version: None,
            with_ordinality,
            partitions,
            json_path,
            sample,
            index_hints,
        };
        let input = ctx.plan(table)?;
        let plan = LogicalPlan::Extension(Extension {
            node: Arc::new(VersionedNode { input, as_of }),
        });
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation {
            plan,
            alias,
        })))
    }
}
