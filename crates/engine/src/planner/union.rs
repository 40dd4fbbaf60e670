//! UNION ALL: instance i of every input feeds instance i of the union when
//! they all have as many, else one union gathers them. If any input is
//! updating, every input becomes a changelog (inserts get their kind).

use std::sync::Arc;

use datafusion::logical_expr::logical_plan::Union;
use sluice_common::changelog::ChangelogMode;
use sluice_common::Result;
use sluice_exec::exchange::Exchange;
use sluice_exec::graph::StreamNode;
use sluice_exec::operators::changelog::AsInserts;
use sluice_exec::operators::union::UnionOperator;

use super::{Planned, StreamPlanner};

pub(crate) fn plan_union(p: &StreamPlanner, u: &Union) -> Result<Planned> {
    let inputs = u
        .inputs
        .iter()
        .map(|i| p.plan(i))
        .collect::<Result<Vec<_>>>()?;
    let n = u.schema.fields().len();
    let rowtime = (0..n)
        .map(|i| inputs.iter().all(|input| input.rowtime[i]))
        .collect();
    let bounded = inputs.iter().all(|input| input.bounded);
    let updating = inputs.iter().any(|input| input.changelog.is_updating());
    let mut schema = Arc::clone(u.schema.inner());
    let mut nodes: Vec<StreamNode> = inputs.into_iter().map(Planned::materialize).collect();
    if updating {
        // Every input a changelog: inserts get their row kind.
        nodes = nodes
            .into_iter()
            .map(|n| {
                if sluice_common::changelog::is_changelog(&n.schema()) {
                    n
                } else {
                    let f = AsInserts::new(&n.schema());
                    n.then(Arc::new(f))
                }
            })
            .collect();
        schema = sluice_common::changelog::with_op_field(&schema);
    }
    // Instance i of every input feeds instance i of the union
    // when they all have as many; otherwise one union gathers.
    let width = nodes[0].parallelism();
    let width = if nodes.iter().all(|n| n.parallelism() == width) {
        width
    } else {
        1
    };
    let instances = (0..width)
        .map(|_| {
            Box::new(UnionOperator::new(Arc::clone(&schema)))
                as Box<dyn sluice_exec::operator::Operator>
        })
        .collect();
    let exchanges = vec![Exchange::Forward; nodes.len()];
    Ok(Planned {
        node: StreamNode::parallel(instances, nodes, exchanges),
        steps: vec![],
        schema: Arc::clone(&u.schema),
        rowtime,
        windows: vec![None; n],
        bounded,
        changelog: if updating {
            ChangelogMode::Updating { upsert_key: None }
        } else {
            ChangelogMode::AppendOnly
        },
    })
}
