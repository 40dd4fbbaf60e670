//! Regular joins: INNER and outer equi-joins of append-only inputs, as a
//! symmetric hash join hashed by the join keys.

use std::sync::Arc;

use datafusion::logical_expr::logical_plan::Join;
use datafusion::logical_expr::JoinType;
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_exec::exchange::Exchange;
use sluice_exec::graph::StreamNode;
use sluice_exec::operator::Operator;
use sluice_exec::operators::join::{JoinConfig, JoinOperator};

use super::{Planned, StreamPlanner};

pub(crate) fn plan_join(p: &StreamPlanner, j: &Join) -> Result<Planned> {
    let outer = match j.join_type {
        JoinType::Inner => [false, false],
        JoinType::Left => [true, false],
        JoinType::Right => [false, true],
        JoinType::Full => [true, true],
        other => {
            return Err(Error::plan(format!(
                "{} joins are not supported yet (INNER, LEFT, RIGHT and FULL equi-joins are)",
                other.to_string().to_uppercase()
            ))
            .near("JOIN"))
        }
    };
    if j.on.is_empty() {
        return Err(Error::plan(
            "a join of streams needs an equality between the two sides (ON a.k = b.k); \
             a cross join keeps every pair of rows forever",
        )
        .near("JOIN"));
    }
    let left = p.plan(&j.left)?;
    let right = p.plan(&j.right)?;
    if left.changelog.is_updating() || right.changelog.is_updating() {
        return Err(Error::plan(
            "a join over an updating input is not supported yet; join append-only inputs",
        )
        .near("JOIN"));
    }
    let left_keys =
        j.on.iter()
            .map(|(l, _)| p.physical(l, &left.schema))
            .collect::<Result<Vec<_>>>()?;
    let right_keys =
        j.on.iter()
            .map(|(_, r)| p.physical(r, &right.schema))
            .collect::<Result<Vec<_>>>()?;
    let filter = match &j.filter {
        Some(f) => Some(p.physical(f, &j.schema)?),
        None => None,
    };
    let cfg = JoinConfig {
        left_keys: left_keys.clone(),
        right_keys: right_keys.clone(),
        filter,
        schema: Arc::clone(j.schema.inner()),
        ttl: p.state_ttl,
        outer,
    };
    let bounded = left.bounded && right.bounded;
    let (l, r) = (left.materialize(), right.materialize());
    let (ls, rs) = (l.schema(), r.schema());
    let instances = p.parallelism;
    let ops = (0..instances)
        .map(|_| {
            JoinOperator::try_new(cfg.clone(), &ls, &rs).map(|o| Box::new(o) as Box<dyn Operator>)
        })
        .collect::<Result<Vec<_>>>()?;
    let exchanges = if instances > 1 {
        vec![Exchange::Hash(left_keys), Exchange::Hash(right_keys)]
    } else {
        vec![Exchange::Forward, Exchange::Forward]
    };
    let n = j.schema.fields().len();
    // Time attributes do not survive a regular join (as in Flink): a row
    // may join long after its time.
    Ok(Planned {
        node: StreamNode::parallel(ops, vec![l, r], exchanges),
        steps: vec![],
        schema: Arc::clone(&j.schema),
        rowtime: vec![false; n],
        windows: vec![None; n],
        bounded,
        // An outer join takes back a NULL-padded row when its match
        // arrives: a retracting changelog without a key.
        changelog: if outer.iter().any(|o| *o) {
            ChangelogMode::Updating { upsert_key: None }
        } else {
            ChangelogMode::AppendOnly
        },
    })
}
