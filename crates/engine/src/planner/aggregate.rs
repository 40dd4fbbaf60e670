//! GROUP BY on a stream: a window aggregate, keyed by a window column.

use std::sync::Arc;

use datafusion::logical_expr::logical_plan::Aggregate;
use datafusion::logical_expr::Expr;
use sluice_common::changelog::ChangelogMode;
use sluice_common::window::WindowKind;
use sluice_common::{Error, Result};
use sluice_exec::graph::StreamNode;
use sluice_exec::operators::partial_aggregate::PartialAggregate;
use sluice_exec::operators::session::{SessionAggregate, SessionConfig};
use sluice_exec::operators::window_aggregate::{
    AggInput, AggregateCall, EmitWindowAggregate, GroupKey, WindowAggConfig,
    WindowAggregateOperator, WindowRole,
};

use super::{Planned, StreamPlanner, WindowCol};

/// Where a GROUP BY error points: GROUP, else the first aggregate call.
pub(crate) fn first_aggregate_or_group(agg: &Aggregate) -> Vec<String> {
    let mut near = vec!["GROUP".to_string()];
    if let Some(Expr::AggregateFunction(f)) = agg.aggr_expr.first().map(|e| e.clone().unalias()) {
        near.push(f.func.name().to_string());
    }
    near
}

/// The physical aggregate calls of `agg` over `input`.
pub(crate) fn aggregate_calls(
    p: &StreamPlanner,
    agg: &Aggregate,
    input: &Planned,
) -> Result<Vec<AggregateCall>> {
    let input_schema = Arc::clone(input.schema.inner());
    let mut aggregates = Vec::with_capacity(agg.aggr_expr.len());
    for e in &agg.aggr_expr {
        #[allow(deprecated)]
        let (expr, filter, order) =
            datafusion::physical_planner::create_aggregate_expr_and_maybe_filter(
                e,
                &input.schema,
                &input_schema,
                p.state.execution_props(),
            )?;
        if !order.is_empty() {
            return Err(Error::plan(format!(
                "ORDER BY inside an aggregate ({e}) is not supported on streams"
            ))
            .near("ORDER"));
        }
        aggregates.push(AggregateCall { expr, filter });
    }
    Ok(aggregates)
}

pub(crate) fn plan_aggregate(p: &StreamPlanner, agg: &Aggregate) -> Result<Planned> {
    let input = p.plan(&agg.input)?;
    if agg
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Err(
            Error::plan("GROUPING SETS, CUBE and ROLLUP are not supported on streams")
                .near("GROUP"),
        );
    }
    let window_of = |e: &Expr| match e {
        Expr::Column(c) => input
            .schema
            .index_of_column(c)
            .ok()
            .and_then(|i| input.windows[i].map(|w| (i, w))),
        _ => None,
    };
    let Some((mut window_column, mut window)) = agg.group_expr.iter().find_map(window_of) else {
        return super::updating::plan_updating_aggregate(p, agg, input);
    };
    if window.spec.kind == WindowKind::Session && !window.panes {
        return Err(Error::plan(
            "grouping by the window columns of a SESSION window aggregate is not supported; \
             window its window_time instead",
        )
        .near_any(first_aggregate_or_group(agg)));
    }
    if window.spec.kind == WindowKind::Cumulate && !window.panes {
        // CUMULATE windows of one period share their start: each is known
        // by its end.
        let by_end = agg
            .group_expr
            .iter()
            .filter_map(window_of)
            .find(|(_, w)| w.role != WindowRole::Start);
        let Some((c, w)) = by_end else {
            return Err(Error::plan(
                "a CUMULATE window aggregate must group by window_end (its windows of one \
                 period share their window_start)",
            )
            .near_any(first_aggregate_or_group(agg)));
        };
        (window_column, window) = (c, w);
    }
    if input.changelog.is_updating() {
        return Err(Error::plan(
            "a window aggregate needs an append-only input, but its input is an updating \
             result; aggregate it without a window (GROUP BY its keys) instead",
        )
        .near_any(first_aggregate_or_group(agg)));
    }
    let mut keys = Vec::with_capacity(agg.group_expr.len());
    let mut hash_keys = Vec::new();
    let mut rowtime = Vec::with_capacity(agg.schema.fields().len());
    // Window keys stay window columns (one row per window now, not per
    // pane), so a window aggregate can follow on them (Flink's cascading
    // window aggregation).
    let mut windows = Vec::with_capacity(agg.schema.fields().len());
    for e in &agg.group_expr {
        match window_of(e) {
            Some((_, w)) => {
                keys.push(GroupKey::Window(w.role));
                rowtime.push(w.role == WindowRole::Time);
                windows.push(Some(WindowCol { panes: false, ..w }));
            }
            None => {
                windows.push(None);
                let key = p.physical(e, &input.schema)?;
                hash_keys.push(Arc::clone(&key));
                keys.push(GroupKey::Expr(key));
                rowtime.push(false);
            }
        }
    }
    let input_schema = Arc::clone(input.schema.inner());
    let aggregates = aggregate_calls(p, agg, &input)?;
    rowtime.extend(aggregates.iter().map(|_| false));
    windows.extend(aggregates.iter().map(|_| None));
    let upsert_key = emit_upsert_key(&keys);
    if window.spec.kind == WindowKind::Session {
        let cfg = SessionConfig {
            gap: window.spec.size,
            window_column,
            window_role: window.role,
            keys,
            aggregates,
            schema: Arc::clone(agg.schema.inner()),
        };
        let strategy = p.emit;
        let make = move || -> Result<Box<dyn sluice_exec::operator::Operator>> {
            Ok(Box::new(SessionAggregate::try_new(
                cfg.clone(),
                &input_schema,
                strategy,
            )?))
        };
        if strategy.is_some() {
            return plan_emitting(
                p,
                (Arc::clone(&agg.schema), upsert_key),
                input,
                hash_keys,
                make,
            );
        }
        let bounded = input.bounded;
        let node = keyed(p, hash_keys, input.materialize(), make)?;
        return Ok(Planned {
            bounded,
            node,
            steps: vec![],
            schema: Arc::clone(&agg.schema),
            rowtime,
            windows,
            changelog: ChangelogMode::AppendOnly,
        });
    }
    let cfg = WindowAggConfig {
        spec: window.spec,
        panes: window.panes,
        window_column,
        window_role: window.role,
        keys,
        aggregates,
        schema: Arc::clone(agg.schema.inner()),
        input: AggInput::Rows,
    };
    if let Some(strategy) = p.emit {
        let schema = Arc::clone(&agg.schema);
        let make = move || -> Result<Box<dyn sluice_exec::operator::Operator>> {
            Ok(Box::new(EmitWindowAggregate::try_new(
                cfg.clone(),
                &input_schema,
                strategy,
            )?))
        };
        return plan_emitting(p, (schema, upsert_key), input, hash_keys, make);
    }
    let bounded = input.bounded;
    let mut node = input.materialize();
    let (cfg, agg_input_schema, hash_keys) = if p.parallelism > 1 && node.is_source() {
        // Two phases: each chunk is aggregated on the source's workers;
        // the instances merge the partials, hashed by the partial keys.
        let (first, second) = PartialAggregate::split(cfg, Arc::clone(&input_schema))?;
        node = node.then(Arc::new(first));
        let partial_schema = node.schema();
        let keys = second.key_exprs();
        (second, partial_schema, keys)
    } else {
        (cfg, input_schema, hash_keys)
    };
    let node = keyed(p, hash_keys, node, || {
        Ok(Box::new(WindowAggregateOperator::try_new(
            cfg.clone(),
            &agg_input_schema,
        )?))
    })?;
    Ok(Planned {
        node,
        steps: vec![],
        schema: Arc::clone(&agg.schema),
        rowtime,
        windows,
        bounded,
        changelog: ChangelogMode::AppendOnly,
    })
}

/// A window aggregate with an emit strategy (made by `make`): an updating
/// result keyed by its GROUP BY columns (window columns included), with no
/// time attribute. Without a window column among them (a legacy group
/// window that selects none) there is no key: the rows of one group's
/// windows would share it.
fn plan_emitting(
    p: &StreamPlanner,
    (schema, upsert_key): (datafusion::common::DFSchemaRef, Option<Vec<usize>>),
    input: Planned,
    hash_keys: Vec<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
    make: impl Fn() -> Result<Box<dyn sluice_exec::operator::Operator>>,
) -> Result<Planned> {
    let width = schema.fields().len();
    let bounded = input.bounded;
    let node = keyed(p, hash_keys, input.materialize(), make)?;
    Ok(Planned {
        node,
        steps: vec![],
        schema,
        rowtime: vec![false; width],
        windows: vec![None; width],
        bounded,
        changelog: ChangelogMode::Updating { upsert_key },
    })
}

/// The upsert key of a window aggregate's updating result: its GROUP BY
/// columns, if a window column is among them.
fn emit_upsert_key(keys: &[GroupKey]) -> Option<Vec<usize>> {
    let windowed = keys.iter().any(|k| matches!(k, GroupKey::Window(_)));
    windowed.then(|| (0..keys.len()).collect())
}

/// Instances of an operator made by `make` over `input`, hashed by `keys`.
/// Rows are spread over instances by their non-window keys, so every window
/// of a key is in one instance; without keys (a global aggregate per
/// window) there is one instance.
pub(crate) fn keyed(
    p: &StreamPlanner,
    keys: Vec<Arc<dyn datafusion::physical_expr::PhysicalExpr>>,
    input: StreamNode,
    make: impl Fn() -> Result<Box<dyn sluice_exec::operator::Operator>>,
) -> Result<StreamNode> {
    let instances = if keys.is_empty() { 1 } else { p.parallelism };
    let ops = (0..instances).map(|_| make()).collect::<Result<Vec<_>>>()?;
    let exchange = p.exchange(keys, instances);
    Ok(StreamNode::parallel(ops, vec![input], vec![exchange]))
}
