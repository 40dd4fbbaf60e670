//! OVER aggregates on a stream (Flink's over windows): every OVER in the
//! SELECT shares one `PARTITION BY`, an `ORDER BY` of the input's time
//! attribute (ascending), and a frame ending at the current row.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::logical_plan::Window;
use datafusion::logical_expr::{
    Expr, WindowFrame, WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition,
};
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_exec::operators::over::{Frame, OverAggregate, OverConfig, OverFunction};

use super::{Planned, StreamPlanner};

pub(crate) fn plan_over(p: &StreamPlanner, w: &Window) -> Result<Planned> {
    let input = p.plan(&w.input)?;
    if input.changelog.is_updating() {
        return Err(Error::plan(
            "an OVER aggregate needs an append-only input, but its input is an updating result",
        )
        .near("OVER"));
    }
    let mut shape = None;
    let mut calls = Vec::with_capacity(w.window_expr.len());
    for e in &w.window_expr {
        let Expr::WindowFunction(f) = e.clone().unalias() else {
            return Err(Error::internal(
                "a window expression that is not a function",
            ));
        };
        let params = &f.params;
        let this = (&params.partition_by, &params.order_by, &params.window_frame);
        match &shape {
            None => {
                shape = Some((
                    params.partition_by.clone(),
                    params.order_by.clone(),
                    params.window_frame.clone(),
                ))
            }
            Some((pb, ob, fr)) if (pb, ob, fr) != this => {
                return Err(Error::plan(
                    "all OVER windows of one SELECT must have the same PARTITION BY, ORDER BY \
                     and frame on a stream (as in Flink)",
                )
                .near("OVER"))
            }
            Some(_) => {}
        }
        calls.push(f);
    }
    let Some((partition_by, order_by, frame)) = shape else {
        return Err(Error::internal("a window node without window expressions"));
    };
    let time_column = match order_by.as_slice() {
        [s] if s.asc => input.rowtime_column(&s.expr),
        _ => None,
    };
    let Some(time_column) = time_column else {
        return Err(Error::plan(
            "an OVER window on a stream must be ORDER BY its time attribute, ascending (the \
             WATERMARK FOR column, or a window_time)",
        )
        .near("ORDER"));
    };
    let frame = frame_of(&frame)?;
    let in_schema = Arc::clone(input.schema.inner());
    let n_in = in_schema.fields().len();
    let mut functions = Vec::with_capacity(calls.len());
    for (i, f) in calls.iter().enumerate() {
        let params = &f.params;
        let args = p.physical_all(&params.args, &input.schema)?;
        let name = w.schema.field(n_in + i).name().clone();
        functions.push(match &f.fun {
            WindowFunctionDefinition::AggregateUDF(udf) => {
                if params.filter.is_some() {
                    return Err(
                        Error::plan("FILTER in an OVER aggregate is not supported").near("FILTER")
                    );
                }
                let mut b = AggregateExprBuilder::new(Arc::clone(udf), args)
                    .schema(Arc::clone(&in_schema))
                    .alias(name);
                if params.distinct {
                    b = b.distinct();
                }
                OverFunction::Aggregate(Arc::new(b.build()?))
            }
            WindowFunctionDefinition::WindowUDF(u) if matches!(u.name(), "lag" | "lead") => {
                let ty = w.schema.field(n_in + i).data_type().clone();
                shift(u.name() == "lead", &params.args, args, &ty)?
            }
            WindowFunctionDefinition::WindowUDF(u) => {
                return Err(Error::plan(format!(
                    "{}() OVER is not supported: OVER on a stream takes aggregates, LAG and LEAD",
                    u.name().to_uppercase()
                ))
                .near(u.name().to_uppercase()));
            }
        });
    }
    let partition = p.physical_all(&partition_by, &input.schema)?;
    let cfg = OverConfig {
        partition: partition.clone(),
        time_column,
        frame,
        functions,
        schema: Arc::clone(w.schema.inner()),
    };
    let mut rowtime = input.rowtime.clone();
    let mut windows = input.windows.clone();
    rowtime.extend(calls.iter().map(|_| false));
    windows.extend(calls.iter().map(|_| None));
    let bounded = input.bounded;
    let node = super::aggregate::keyed(p, partition, input.materialize(), || {
        Ok(Box::new(OverAggregate::try_new(cfg.clone(), &in_schema)?))
    })?;
    Ok(Planned {
        node,
        steps: vec![],
        schema: Arc::clone(&w.schema),
        rowtime,
        windows,
        bounded,
        changelog: ChangelogMode::AppendOnly,
    })
}

/// The frame, which must end at the current row.
fn frame_of(f: &WindowFrame) -> Result<Frame> {
    if !matches!(f.end_bound, WindowFrameBound::CurrentRow) {
        return Err(Error::plan(
            "an OVER window on a stream must end at CURRENT ROW (later rows have not arrived)",
        )
        .near("FOLLOWING"));
    }
    let bound = match &f.start_bound {
        WindowFrameBound::Preceding(v) if v.is_null() => None,
        WindowFrameBound::Preceding(v) => Some(v.clone()),
        WindowFrameBound::CurrentRow => None.or(Some(ScalarValue::UInt64(Some(0)))),
        WindowFrameBound::Following(_) => {
            return Err(
                Error::plan("an OVER window cannot start after the current row").near("FOLLOWING"),
            )
        }
    };
    match f.units {
        WindowFrameUnits::Rows => Ok(Frame::Rows(match bound {
            None => None,
            Some(v) => Some(match v {
                ScalarValue::UInt64(Some(n)) => n,
                other => {
                    return Err(Error::plan(format!(
                        "ROWS {other} PRECEDING: the count must be a constant integer"
                    ))
                    .near("ROWS"))
                }
            }),
        })),
        WindowFrameUnits::Range => Ok(Frame::Range(match bound {
            None => None,
            Some(ScalarValue::UInt64(Some(0))) => Some(0),
            Some(v) => Some(interval_ms(&v).ok_or_else(|| {
                Error::plan(format!(
                    "RANGE {v} PRECEDING: the range must be a day-time interval such as \
                     INTERVAL '1' MINUTE"
                ))
                .near("RANGE")
            })?),
        })),
        WindowFrameUnits::Groups => {
            Err(Error::plan("GROUPS frames are not supported on streams").near("GROUPS"))
        }
    }
}

fn interval_ms(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::IntervalMonthDayNano(Some(i)) if i.months == 0 => {
            Some(i.days as i64 * 86_400_000 + i.nanoseconds / 1_000_000)
        }
        ScalarValue::IntervalDayTime(Some(i)) => {
            Some(i.days as i64 * 86_400_000 + i.milliseconds as i64)
        }
        _ => None,
    }
}

/// `LAG(x [, offset [, default]])` or `LEAD(...)`.
fn shift(
    lead: bool,
    logical: &[Expr],
    mut args: Vec<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
    ty: &arrow::datatypes::DataType,
) -> Result<OverFunction> {
    let name = if lead { "LEAD" } else { "LAG" };
    let literal = |i: usize| match logical.get(i).map(|e| e.clone().unalias()) {
        Some(Expr::Literal(v, _)) => Ok(Some(v)),
        Some(other) => Err(Error::plan(format!("{name}: {other} must be a constant")).near(name)),
        None => Ok(None),
    };
    let offset = match literal(1)? {
        None => 1,
        Some(v) => match v.cast_to(&arrow::datatypes::DataType::Int64)? {
            ScalarValue::Int64(Some(n)) if n >= 0 => n as usize,
            other => {
                return Err(
                    Error::plan(format!("{name} offset {other} must be 0 or more")).near(name),
                )
            }
        },
    };
    let default = match literal(2)? {
        Some(v) if !v.is_null() => v.cast_to(ty)?,
        _ => ScalarValue::try_from(ty)?,
    };
    if args.is_empty() {
        return Err(Error::plan(format!("{name} needs a value")).near(name));
    }
    let arg = args.swap_remove(0);
    Ok(if lead {
        OverFunction::Lead {
            arg,
            offset,
            default,
        }
    } else {
        OverFunction::Lag {
            arg,
            offset,
            default,
        }
    })
}
