//! CURRENT_WATERMARK(rowtime) in filters and projections: the call becomes
//! the watermark column of a [`CurrentWatermarkOperator`], which runs as an
//! operator of its own after the steps planned so far (never fused onto a
//! source, whose chunks are decoded ahead of the watermark).

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::logical_expr::{cast, Expr, ExprSchemable};
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_exec::exchange::Exchange;
use sluice_exec::graph::StreamNode;
use sluice_exec::operator::Operator;
use sluice_exec::operators::current_watermark::{
    watermark_field, CurrentWatermarkOperator, WATERMARK_COLUMN,
};
use sluice_exec::operators::stateless::Step;

use super::{Planned, StreamPlanner};
use crate::functions::CURRENT_WATERMARK;

fn is_call(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.name() == CURRENT_WATERMARK)
}

/// Whether any of `exprs` calls CURRENT_WATERMARK.
pub(crate) fn calls_current_watermark<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> bool {
    exprs
        .into_iter()
        .any(|e| e.exists(|e| Ok(is_call(e))).unwrap_or(false))
}

/// A step (a filter or a projection) whose expressions read the watermark.
pub(crate) enum WatermarkStep<'a> {
    Filter(&'a Expr),
    Project(&'a [Expr], arrow::datatypes::SchemaRef),
}

/// Plan `step` over `input` as a CurrentWatermarkOperator per instance.
pub(crate) fn plan_step(
    p: &StreamPlanner,
    input: Planned,
    step: WatermarkStep<'_>,
) -> Result<Planned> {
    if input.changelog.is_updating() {
        return Err(
            Error::plan("CURRENT_WATERMARK over an updating result is not supported")
                .near("CURRENT_WATERMARK"),
        );
    }
    let extended = extended_schema(&input.schema)?;
    let rewrite = |e: &Expr| -> Result<Arc<dyn datafusion::physical_expr::PhysicalExpr>> {
        let e = replace_calls(e, &input)?;
        p.physical(&e, &extended)
    };
    let step = match step {
        WatermarkStep::Filter(pred) => Step::Filter(rewrite(pred)?),
        WatermarkStep::Project(exprs, schema) => Step::Project(
            exprs.iter().map(rewrite).collect::<Result<Vec<_>>>()?,
            schema,
        ),
    };
    let arrow_schema = input.arrow_schema();
    let (schema, rowtime, windows, bounded) = (
        Arc::clone(&input.schema),
        input.rowtime.clone(),
        input.windows.clone(),
        input.bounded,
    );
    let node = input.materialize();
    let instances = (0..node.parallelism())
        .map(|_| {
            Box::new(CurrentWatermarkOperator::new(
                vec![step.clone()],
                &arrow_schema,
            )) as Box<dyn Operator>
        })
        .collect();
    Ok(Planned {
        node: StreamNode::parallel(instances, vec![node], vec![Exchange::Forward]),
        steps: vec![],
        schema,
        rowtime,
        windows,
        bounded,
        changelog: ChangelogMode::AppendOnly,
    })
}

/// The input's schema plus the watermark column.
fn extended_schema(schema: &DFSchema) -> Result<DFSchema> {
    let wm = DFSchema::from_unqualified_fields(vec![watermark_field()].into(), Default::default())?;
    let mut out = schema.clone();
    out.merge(&wm);
    Ok(out)
}

/// Every CURRENT_WATERMARK(col) in `e` as the watermark column, after
/// checking that `col` is an event-time column of the input.
fn replace_calls(e: &Expr, input: &Planned) -> Result<Expr> {
    let out = e.clone().transform_up(|e| {
        let Expr::ScalarFunction(f) = &e else {
            return Ok(Transformed::no(e));
        };
        if f.name() != CURRENT_WATERMARK {
            return Ok(Transformed::no(e));
        }
        let is_rowtime = match f.args.as_slice() {
            [Expr::Column(c)] => input
                .schema
                .index_of_column(c)
                .is_ok_and(|i| input.rowtime[i]),
            _ => false,
        };
        if !is_rowtime {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "CURRENT_WATERMARK takes an event-time column (the WATERMARK FOR column of a \
                 table, or a window's window_time), not {}",
                f.args.first().map(|a| a.to_string()).unwrap_or_default()
            )));
        }
        let ty = e.get_type(&input.schema)?;
        let wm = Expr::Column(Column::new_unqualified(WATERMARK_COLUMN));
        Ok(Transformed::yes(cast(wm, ty)))
    });
    out.map(|t| t.data)
        .map_err(|e| Error::from(e).near("CURRENT_WATERMARK"))
}
