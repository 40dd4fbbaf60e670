//! Top-N and deduplication: `ROW_NUMBER() OVER (PARTITION BY .. ORDER BY
//! ..) AS rn` under a filter `rn <= N` (or `rn < N`, `rn = 1`), Flink's
//! forms, planned as one TopN operator per partition key.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::logical_plan::{Filter, Projection, Window};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator as Op, WindowFunctionDefinition};
use sluice_common::changelog::ChangelogMode;
use sluice_common::window::WindowKind;
use sluice_common::{Error, Result};
use sluice_exec::exchange::Exchange;
use sluice_exec::graph::StreamNode;
use sluice_exec::operator::Operator;
use sluice_exec::operators::sort::SortKey;
use sluice_exec::operators::top_n::{TopNConfig, TopNOperator};
use sluice_exec::operators::window_aggregate::WindowRole;
use sluice_exec::operators::window_top_n::{WindowTopNConfig, WindowTopNOperator};

use super::{Planned, StreamPlanner};

/// Largest N a Top-N keeps per partition.
const MAX_N: u64 = 100_000;

/// The N that `predicate` bounds the row number column `rn` by, if it is
/// one of the Top-N forms.
fn bound(predicate: &Expr, rn: &str) -> Option<u64> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = predicate else {
        return None;
    };
    let (col, op, lit) = match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => (c, *op, v),
        (Expr::Literal(v, _), Expr::Column(c)) => (c, op.swap()?, v),
        _ => return None,
    };
    if col.name != rn {
        return None;
    }
    let n = match lit {
        ScalarValue::UInt64(Some(n)) => *n,
        ScalarValue::Int64(Some(n)) if *n >= 0 => *n as u64,
        ScalarValue::Int32(Some(n)) if *n >= 0 => *n as u64,
        _ => return None,
    };
    match op {
        Op::LtEq => Some(n),
        Op::Lt => Some(n.saturating_sub(1)),
        Op::Eq if n == 1 => Some(1),
        _ => None,
    }
}

/// A filter over ROW_NUMBER() in the shape the Top-N planner reads: the
/// rank bound directly over the window (other conjuncts are applied after
/// the ranking; a projection of plain columns between them is moved on
/// top). `None` when the filter is not over a ROW_NUMBER().
pub(crate) fn normalize(f: &Filter) -> Result<Option<LogicalPlan>> {
    let (window, projection) = match f.input.as_ref() {
        LogicalPlan::Window(w) => (w, None),
        LogicalPlan::Projection(p) => match p.input.as_ref() {
            LogicalPlan::Window(w) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                (w, Some(p))
            }
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    if !is_row_number(window) {
        return Ok(None);
    }
    let rn = window
        .schema
        .field(window.schema.fields().len() - 1)
        .name()
        .clone();
    let conjuncts = split_conjunction(&f.predicate);
    let Some(pos) = conjuncts.iter().position(|c| bound(c, &rn).is_some()) else {
        return Ok(None);
    };
    let rank = conjuncts[pos].clone();
    let rest: Vec<Expr> = conjuncts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != pos)
        .map(|(_, e)| (*e).clone())
        .collect();
    let window_plan = Arc::new(LogicalPlan::Window(window.clone()));
    let mut plan = LogicalPlan::Filter(Filter::try_new(rank, window_plan)?);
    if let Some(e) = conjunction(rest) {
        plan = LogicalPlan::Filter(Filter::try_new(e, Arc::new(plan))?);
    }
    if let Some(p) = projection {
        plan = LogicalPlan::Projection(Projection::try_new(p.expr.clone(), Arc::new(plan))?);
    }
    Ok(Some(plan))
}

/// Whether `predicate` is exactly a rank bound of `w`'s row number.
pub(crate) fn is_rank_bound(w: &Window, predicate: &Expr) -> bool {
    let rn = w.schema.field(w.schema.fields().len() - 1).name();
    bound(predicate, rn).is_some()
}

/// Whether `w` is a single ROW_NUMBER(), the Top-N shape.
pub(crate) fn is_row_number(w: &Window) -> bool {
    matches!(w.window_expr.as_slice(), [Expr::WindowFunction(f)]
        if matches!(&f.fun, WindowFunctionDefinition::WindowUDF(u) if u.name() == "row_number"))
}

pub(crate) fn plan_top_n(p: &StreamPlanner, w: &Window, predicate: &Expr) -> Result<Planned> {
    let [Expr::WindowFunction(f)] = w.window_expr.as_slice() else {
        return Err(Error::internal("Top-N without its ROW_NUMBER"));
    };
    let rn_index = w.schema.fields().len() - 1;
    let rn = w.schema.field(rn_index).name().clone();
    let Some(n) = bound(predicate, &rn) else {
        return Err(Error::plan(
            "ROW_NUMBER() on a stream is a Top-N: filter it as `WHERE rn <= N` (or `rn < N`, \
             `rn = 1`) with a constant N, and nothing else in that WHERE",
        )
        .near("ROW_NUMBER"));
    };
    if n == 0 || n > MAX_N {
        return Err(
            Error::plan(format!("a Top-N keeps 1 to {MAX_N} rows per key, not {n}"))
                .near("ROW_NUMBER"),
        );
    }
    let input = p.plan(&w.input)?;
    let params = &f.params;
    let partition = p.physical_all(&params.partition_by, &input.schema)?;
    let order = super::sort::sort_keys(p, &params.order_by, &input.schema)?;
    if order.is_empty() {
        return Err(Error::plan("a Top-N needs ORDER BY inside OVER (..)").near("OVER"));
    }
    if let Some(window) = window_partition(w, &input) {
        if input.changelog.is_updating() {
            return Err(Error::plan(
                "a window Top-N needs an append-only input, but its input is an updating result",
            )
            .near("ROW_NUMBER"));
        }
        return window_top_n(p, w, input, window, partition, order, n);
    }
    // The upsert key: the partition columns and rn (the partition alone
    // when one row per partition is kept), when they are plain columns.
    let key_columns: Option<Vec<usize>> = params
        .partition_by
        .iter()
        .map(|e| match e {
            Expr::Column(c) => input.schema.index_of_column(c).ok(),
            _ => None,
        })
        .collect();
    let upsert_key = key_columns.map(|mut k| {
        if n > 1 {
            k.push(rn_index);
        }
        k
    });
    // Keeping the last row per key by its time attribute (Flink's
    // deduplication keeping the last row) keeps the time attribute: the
    // result is a versioned table, which a temporal join can read.
    let version_time = match params.order_by.as_slice() {
        [s] if n == 1 && !s.asc && !input.changelog.is_updating() => input.rowtime_column(&s.expr),
        _ => None,
    };
    let cfg = TopNConfig {
        partition: partition.clone(),
        order,
        limit: n as usize,
        schema: Arc::clone(w.schema.inner()),
        ttl: p.state_ttl,
        retracts: input.changelog.is_updating(),
    };
    let bounded = input.bounded;
    let node = input.materialize();
    let input_schema = node.schema();
    let instances = if partition.is_empty() {
        1
    } else {
        p.parallelism
    };
    let ops = (0..instances)
        .map(|_| {
            TopNOperator::try_new(cfg.clone(), &input_schema)
                .map(|op| Box::new(op) as Box<dyn Operator>)
        })
        .collect::<Result<Vec<_>>>()?;
    let exchange = p.exchange(partition, instances);
    let width = w.schema.fields().len();
    let mut rowtime = vec![false; width];
    if let Some(i) = version_time {
        rowtime[i] = true;
    }
    let planned = Planned {
        node: StreamNode::parallel(ops, vec![node], vec![exchange]),
        steps: vec![],
        schema: Arc::clone(&w.schema),
        rowtime,
        windows: vec![None; width],
        bounded,
        changelog: ChangelogMode::Updating { upsert_key },
    };
    Ok(planned.with_named_key())
}

/// The window column a Top-N is partitioned by (its `window_end`, or its
/// `window_start` with the window size to add), if any.
fn window_partition(w: &Window, input: &Planned) -> Option<(usize, i64)> {
    let Expr::WindowFunction(f) = &w.window_expr[0] else {
        return None;
    };
    f.params.partition_by.iter().find_map(|e| match e {
        Expr::Column(c) => {
            let i = input.schema.index_of_column(c).ok()?;
            let col = input.windows[i]?;
            match col.role {
                WindowRole::End => Some((i, 0)),
                // CUMULATE windows of one period share their start, and a
                // session's end is not its start plus a size.
                WindowRole::Start
                    if matches!(col.spec.kind, WindowKind::Cumulate | WindowKind::Session) =>
                {
                    None
                }
                WindowRole::Start => Some((i, col.spec.size)),
                WindowRole::Time => None,
            }
        }
        _ => None,
    })
}

/// A Top-N partitioned by a window: ranked once per window when it
/// closes, append-only.
fn window_top_n(
    p: &StreamPlanner,
    w: &Window,
    input: Planned,
    (window_column, end_offset): (usize, i64),
    partition: Vec<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
    order: Vec<SortKey>,
    n: u64,
) -> Result<Planned> {
    let cfg = WindowTopNConfig {
        partition: partition.clone(),
        order,
        limit: n as usize,
        window_column,
        end_offset,
        schema: Arc::clone(w.schema.inner()),
    };
    let width = w.schema.fields().len();
    let mut rowtime = input.rowtime.clone();
    rowtime.push(false);
    let mut windows = input.windows.clone();
    windows.push(None);
    debug_assert_eq!(windows.len(), width);
    let bounded = input.bounded;
    let node = input.materialize();
    let input_schema = node.schema();
    let ops = (0..p.parallelism)
        .map(|_| {
            WindowTopNOperator::try_new(cfg.clone(), &input_schema)
                .map(|op| Box::new(op) as Box<dyn Operator>)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Planned {
        node: StreamNode::parallel(ops, vec![node], vec![Exchange::Hash(partition)]),
        steps: vec![],
        schema: Arc::clone(&w.schema),
        rowtime,
        windows,
        bounded,
        changelog: ChangelogMode::AppendOnly,
    })
}
