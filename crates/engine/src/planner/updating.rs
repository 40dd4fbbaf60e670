//! GROUP BY without a window: an updating aggregate, keyed by the GROUP BY
//! keys (the upsert key of its output).

use std::sync::Arc;

use datafusion::logical_expr::logical_plan::Aggregate;
use sluice_common::changelog::ChangelogMode;
use sluice_common::Result;
use sluice_exec::graph::StreamNode;
use sluice_exec::operator::Operator;
use sluice_exec::operators::mini_batch::MiniBatch;
use sluice_exec::operators::updating_aggregate::{UpdatingAggConfig, UpdatingAggregateOperator};

use super::aggregate::{aggregate_calls, first_aggregate_or_group};
use super::{Planned, StreamPlanner};

pub(crate) fn plan_updating_aggregate(
    p: &StreamPlanner,
    agg: &Aggregate,
    input: Planned,
) -> Result<Planned> {
    let keys = agg
        .group_expr
        .iter()
        .map(|e| p.physical(e, &input.schema))
        .collect::<Result<Vec<_>>>()?;
    let aggregates = aggregate_calls(p, agg, &input)?;
    let cfg = UpdatingAggConfig {
        keys: keys.clone(),
        aggregates,
        schema: Arc::clone(agg.schema.inner()),
        retracts: input.changelog.is_updating(),
        ttl: p.state_ttl,
    };
    let bounded = input.bounded;
    let mut node = input.materialize();
    if let Some((latency, size)) = p.mini_batch {
        let op = MiniBatch::new(node.schema(), latency, size);
        node = StreamNode::operator(Box::new(op), vec![node]);
    }
    let input_schema = node.schema();
    // Every row of a key reaches one instance; without keys, one instance.
    let instances = if keys.is_empty() { 1 } else { p.parallelism };
    let ops = (0..instances)
        .map(|_| {
            UpdatingAggregateOperator::try_new(cfg.clone(), &input_schema)
                .map(|op| Box::new(op) as Box<dyn Operator>)
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| e.near_any(first_aggregate_or_group(agg)))?;
    let exchange = p.exchange(keys.clone(), instances);
    let n = agg.schema.fields().len();
    let planned = Planned {
        node: StreamNode::parallel(ops, vec![node], vec![exchange]),
        steps: vec![],
        schema: Arc::clone(&agg.schema),
        rowtime: vec![false; n],
        windows: vec![None; n],
        bounded,
        changelog: ChangelogMode::Updating {
            // A global aggregate is one row: no key columns to name.
            upsert_key: (!keys.is_empty()).then(|| (0..keys.len()).collect()),
        },
    };
    Ok(planned.with_named_key())
}
