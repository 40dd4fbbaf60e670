//! Temporal joins: `stream JOIN table FOR SYSTEM_TIME AS OF stream.ts ON
//! stream.k = table.pk`, the table a versioned table (a changelog with a
//! primary key and a time attribute: an upsert-kafka or debezium-json
//! table, or an updating view with a key).

use std::sync::Arc;

use arrow::datatypes::{Field, Schema};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::logical_plan::{
    Filter, Join, Projection, SubqueryAlias, TableScanBuilder,
};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::expressions::Column as PhysicalColumn;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_exec::graph::StreamNode;
use sluice_exec::operator::Operator;
use sluice_exec::operators::join::temporal::{TemporalConfig, TemporalJoin};
use sluice_exec::operators::join::JoinKind;
use sluice_exec::operators::stateless::Step;
use sluice_sql::temporal::VersionedNode;

use super::join::join_spec;
use super::{Planned, StreamPlanner};

/// The versioned table read when `plan` is one (under an alias and a
/// projection of its columns), and the alias.
pub(crate) fn as_of(plan: &LogicalPlan) -> Option<(&VersionedNode, Option<String>)> {
    match plan {
        LogicalPlan::SubqueryAlias(a) => {
            as_of(&a.input).map(|(v, _)| (v, Some(a.alias.to_string())))
        }
        LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
            as_of(&p.input)
        }
        LogicalPlan::Extension(e) => e
            .node
            .as_any()
            .downcast_ref::<VersionedNode>()
            .map(|v| (v, None)),
        _ => None,
    }
}

pub(crate) fn plan_temporal(
    p: &StreamPlanner,
    j: &Join,
    kind: JoinKind,
    versioned: &VersionedNode,
    alias: Option<String>,
) -> Result<Planned> {
    let as_of = versioned.as_of.clone();
    let near = |e: Error| e.near("SYSTEM_TIME");
    if !matches!(kind, JoinKind::Inner | JoinKind::Left) {
        return Err(near(Error::plan(
            "a temporal join is INNER or LEFT (the stream on the left)",
        )));
    }
    let column = match as_of.as_slice() {
        [name] => Column::new_unqualified(name),
        [rel, name] => Column::new(Some(rel.as_str()), name),
        _ => return Err(near(Error::plan("FOR SYSTEM_TIME AS OF needs a column"))),
    };
    // The query may not select the AS OF column, so the stream's read may
    // have dropped it: read it again.
    let left = if j.left.schema().index_of_column(&column).is_ok() {
        p.plan(&j.left)?
    } else {
        match keep_column(&j.left, &column.name)? {
            Some(widened) => p.plan(&widened)?,
            None => p.plan(&j.left)?,
        }
    };
    // The versioned table's own read, with its time column (which the
    // query may not select), named by the join's alias.
    let mut right = p.plan(&versioned.input)?;
    if let Some(alias) = alias {
        right.schema = Arc::new(DFSchema::try_from_qualified_schema(
            alias.as_str(),
            right.schema.inner(),
        )?);
    }
    if left.changelog.is_updating() {
        return Err(near(Error::plan(
            "a temporal join's stream (left side) must be append-only",
        )));
    }
    let left_time = left
        .schema
        .index_of_column(&column)
        .ok()
        .filter(|&i| left.rowtime[i])
        .ok_or_else(|| {
            near(Error::plan(format!(
                "FOR SYSTEM_TIME AS OF {column} needs a time attribute (a column with a \
                 WATERMARK) of the join's left side; processing-time temporal joins are not \
                 supported"
            )))
        })?;
    let versioned = || {
        near(Error::plan(
            "a temporal join needs a versioned table: a PRIMARY KEY and a WATERMARK \
             (an upsert-kafka or debezium-json table, or a view keeping the last row per key)",
        ))
    };
    let key = right.changelog.upsert_key().ok_or_else(versioned)?.to_vec();
    let right_time = right
        .rowtime
        .iter()
        .position(|r| *r)
        .ok_or_else(versioned)?;
    let right_cols: Vec<usize> =
        j.on.iter()
            .filter_map(|(_, r)| match r {
                Expr::Column(c) => right.schema.index_of_column(c).ok(),
                _ => None,
            })
            .collect();
    if !key.iter().all(|k| right_cols.contains(k)) {
        return Err(near(Error::plan(
            "a temporal join's condition must include an equality on every column of the \
             versioned table's PRIMARY KEY",
        )));
    }
    // The operator joins the stream with the table's whole read; the
    // join's own columns are projected after.
    let joined = joined_schema(&left.schema, &right.schema, kind)?;
    let spec = join_spec(p, j, kind, &left.schema, &right.schema, &joined)?;
    let (ls, rs) = (left.schema.inner().clone(), right.schema.inner().clone());
    let project = output_columns(j, &left.schema, &right.schema)?;
    let cfg = TemporalConfig {
        spec: spec.clone(),
        left_time,
        right_time,
        right_updating: right.changelog.is_updating(),
    };
    let n = j.schema.fields().len();
    let mut rowtime = vec![false; n];
    let mut windows = vec![None; n];
    // The stream's columns come first (a re-read AS OF column last).
    let from_left = j.left.schema().fields().len();
    rowtime[..from_left].copy_from_slice(&left.rowtime[..from_left]);
    windows[..from_left].copy_from_slice(&left.windows[..from_left]);
    let bounded = left.bounded && right.bounded;
    let (l, r) = (left.materialize(), right.materialize());
    let ops = (0..p.parallelism)
        .map(|_| {
            TemporalJoin::try_new(cfg.clone(), &ls, &rs).map(|o| Box::new(o) as Box<dyn Operator>)
        })
        .collect::<Result<Vec<_>>>()?;
    let exchanges = vec![
        p.exchange(spec.left_keys, p.parallelism),
        p.exchange(spec.right_keys, p.parallelism),
    ];
    let exprs = project
        .iter()
        .map(|&i| {
            let name = joined.field(i).name();
            Arc::new(PhysicalColumn::new(name, i)) as Arc<dyn PhysicalExpr>
        })
        .collect();
    Ok(Planned {
        node: StreamNode::parallel(ops, vec![l, r], exchanges),
        steps: vec![Step::Project(exprs, Arc::clone(j.schema.inner()))],
        schema: Arc::clone(&j.schema),
        rowtime,
        windows,
        bounded,
        changelog: ChangelogMode::AppendOnly,
    })
}

/// The stream's columns, then the versioned table's (nullable for a LEFT
/// join).
fn joined_schema(left: &DFSchema, right: &DFSchema, kind: JoinKind) -> Result<DFSchema> {
    let right = if kind == JoinKind::Left {
        let fields: Vec<Field> = right
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let qualifiers: Vec<_> = right.iter().map(|(q, _)| q.cloned()).collect();
        DFSchema::from_field_specific_qualified_schema(qualifiers, &Arc::new(Schema::new(fields)))?
    } else {
        right.clone()
    };
    Ok(left.join(&right)?)
}

/// For each column of the join's result, its index among the stream's
/// columns then the table read's.
fn output_columns(j: &Join, left: &DFSchema, right: &DFSchema) -> Result<Vec<usize>> {
    let n = left.fields().len();
    let from_left = j.left.schema().fields().len();
    j.schema
        .iter()
        .enumerate()
        .map(|(i, (q, f))| {
            let c = Column::new(q.cloned(), f.name());
            let found = if i < from_left {
                left.index_of_column(&c).ok()
            } else {
                right.index_of_column(&c).ok().map(|r| n + r)
            };
            found.ok_or_else(|| Error::internal(format!("temporal join column {c} not read")))
        })
        .collect()
}

/// `plan` (aliases, projections of columns and filters over a table scan)
/// with the table's column `name` kept up to its top; `None` for any
/// other shape.
fn keep_column(plan: &LogicalPlan, name: &str) -> Result<Option<LogicalPlan>> {
    Ok(Some(match plan {
        LogicalPlan::SubqueryAlias(a) => {
            let Some(inner) = keep_column(&a.input, name)? else {
                return Ok(None);
            };
            LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(inner), a.alias.clone())?)
        }
        LogicalPlan::Projection(pr) if pr.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
            let Some(inner) = keep_column(&pr.input, name)? else {
                return Ok(None);
            };
            let (q, f) = inner.schema().qualified_field_with_unqualified_name(name)?;
            let mut exprs = pr.expr.clone();
            exprs.push(Expr::Column(Column::new(q.cloned(), f.name())));
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(inner))?)
        }
        LogicalPlan::Filter(f) => {
            let Some(inner) = keep_column(&f.input, name)? else {
                return Ok(None);
            };
            LogicalPlan::Filter(Filter::try_new(f.predicate.clone(), Arc::new(inner))?)
        }
        LogicalPlan::TableScan(scan) => {
            let Ok(i) = scan.source.schema().index_of(name) else {
                return Ok(None);
            };
            let mut projection = scan.projection.clone().unwrap_or_default();
            if !projection.contains(&i) {
                projection.push(i);
            }
            LogicalPlan::TableScan(
                TableScanBuilder::new(scan.table_name.clone(), Arc::clone(&scan.source))
                    .with_projection(Some(projection))
                    .with_filters(scan.filters.clone())
                    .with_fetch(scan.fetch)
                    .build()?,
            )
        }
        _ => return Ok(None),
    }))
}
