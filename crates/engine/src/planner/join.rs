//! Joins: window joins and interval joins of append-only inputs (see
//! `time_join`), lookup joins of a stream with a bounded table, and
//! otherwise regular INNER, outer, semi and anti equi-joins of append-only
//! or updating inputs (a symmetric hash join). At parallelism N both sides
//! are hashed by the join keys, except a lookup join's (its table is
//! broadcast, its stream stays where it is).

use std::sync::Arc;

use datafusion::common::DFSchema;
use datafusion::logical_expr::logical_plan::Join;
use datafusion::logical_expr::{Expr, JoinType};
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_exec::exchange::Exchange;
use sluice_exec::graph::StreamNode;
use sluice_exec::operator::Operator;
use sluice_exec::operators::join::interval::{IntervalConfig, IntervalJoin};
use sluice_exec::operators::join::lookup::{LookupConfig, LookupJoin, SharedTable};
use sluice_exec::operators::join::null_aware::NullAwareAntiJoin;
use sluice_exec::operators::join::window::{WindowJoin, WindowJoinConfig};
use sluice_exec::operators::join::{JoinConfig, JoinKind, JoinOperator, JoinSpec};
use sluice_exec::operators::window_aggregate::WindowRole;

use super::{temporal, time_join, Planned, StreamPlanner};

/// The join's kind, or why it cannot run.
pub(crate) fn kind_of(j: &Join) -> Result<JoinKind> {
    Ok(match j.join_type {
        JoinType::Inner => JoinKind::Inner,
        JoinType::Left => JoinKind::Left,
        JoinType::Right => JoinKind::Right,
        JoinType::Full => JoinKind::Full,
        JoinType::LeftSemi => JoinKind::Semi,
        JoinType::LeftAnti => JoinKind::Anti,
        other => {
            return Err(Error::plan(format!(
                "{} joins are not supported yet (INNER, LEFT, RIGHT, FULL, and semi and anti \
                 joins from IN and EXISTS are)",
                other.to_string().to_uppercase()
            ))
            .near("JOIN"))
        }
    })
}

pub(crate) fn plan_join(p: &StreamPlanner, j: &Join) -> Result<Planned> {
    let kind = kind_of(j)?;
    if j.on.is_empty() {
        return Err(Error::plan(
            "a join of streams needs an equality between the two sides (ON a.k = b.k); \
             a cross join keeps every pair of rows forever",
        )
        .near("JOIN"));
    }
    if let Some((versioned, alias)) = temporal::as_of(&j.right) {
        return temporal::plan_temporal(p, j, kind, versioned, alias);
    }
    let left = p.plan(&j.left)?;
    let right = p.plan(&j.right)?;
    if j.null_aware {
        return plan_not_in(p, j, left, right);
    }
    // Semi and anti joins emit left rows only, but their conditions see
    // both sides.
    let joined = if kind.emits_pairs() {
        Arc::clone(&j.schema)
    } else {
        Arc::new(left.schema.join(&right.schema)?)
    };
    let spec = join_spec(p, j, kind, &left.schema, &right.schema, &joined)?;
    let updating = [left.changelog.is_updating(), right.changelog.is_updating()];
    let (ls, rs) = (left.schema.inner().clone(), right.schema.inner().clone());
    let n = j.schema.fields().len();
    let mut rowtime = vec![false; n];
    let mut windows = vec![None; n];
    let mut changelog = ChangelogMode::AppendOnly;
    let window = time_join::window_ends(j, &left, &right).filter(|_| updating == [false, false]);
    let interval = time_join::interval_bounds(j, &left, &right)
        .filter(|_| updating == [false, false] && kind.emits_pairs() && window.is_none());
    let lookup = lookup_stream(kind, [left.bounded, right.bounded], updating)
        .filter(|_| window.is_none() && interval.is_none());
    let mut exchanges = vec![
        p.exchange(spec.left_keys.clone(), p.parallelism),
        p.exchange(spec.right_keys.clone(), p.parallelism),
    ];
    let factory: Box<dyn Fn() -> Result<Box<dyn Operator>>> = if let Some(stream) = lookup {
        // The stream keeps its time attributes and window columns: each
        // row is joined and emitted as it arrives.
        let (pieces, offset) = if stream == 0 {
            (&left, 0)
        } else {
            (&right, ls.fields().len())
        };
        for (i, (r, w)) in pieces.rowtime.iter().zip(&pieces.windows).enumerate() {
            if offset + i < n {
                rowtime[offset + i] = *r;
                windows[offset + i] = *w;
            }
        }
        exchanges[stream] = Exchange::Forward;
        exchanges[1 - stream] = Exchange::Broadcast;
        let cfg = LookupConfig {
            spec: spec.clone(),
            stream,
        };
        let table = SharedTable::default();
        Box::new(move || {
            let op = LookupJoin::try_new(cfg.clone(), &ls, &rs, table.clone())?;
            Ok(Box::new(op))
        })
    } else if let Some(ends) = window {
        // Window columns stay window columns; `window_time` stays a time
        // attribute (a window's rows are emitted before the watermark
        // passes it).
        let both: Vec<_> = left.windows.iter().chain(&right.windows).copied().collect();
        for (i, w) in both.into_iter().enumerate().take(n) {
            windows[i] = w;
            rowtime[i] = w.is_some_and(|w| w.role == WindowRole::Time);
        }
        let cfg = WindowJoinConfig {
            spec: spec.clone(),
            ends,
        };
        Box::new(move || Ok(Box::new(WindowJoin::try_new(cfg.clone(), &ls, &rs)?)))
    } else if let Some(b) = interval {
        // Both time columns stay time attributes.
        rowtime[b.times[0]] = true;
        rowtime[ls.fields().len() + b.times[1]] = true;
        let cfg = IntervalConfig {
            spec: spec.clone(),
            times: b.times,
            lower: b.lower,
            upper: b.upper,
        };
        Box::new(move || Ok(Box::new(IntervalJoin::try_new(cfg.clone(), &ls, &rs)?)))
    } else {
        // A semi join of append-only inputs only ever adds rows; every
        // other outer, anti or updating join takes rows back. Time
        // attributes do not survive (as in Flink): a row may join long
        // after its time.
        let retracts = kind.outer().iter().any(|o| *o)
            || kind == JoinKind::Anti
            || updating.iter().any(|u| *u);
        if retracts {
            changelog = ChangelogMode::Updating { upsert_key: None };
        }
        let cfg = JoinConfig {
            spec: spec.clone(),
            ttl: p.state_ttl,
            updating,
        };
        Box::new(move || Ok(Box::new(JoinOperator::try_new(cfg.clone(), &ls, &rs)?)))
    };
    let bounded = left.bounded && right.bounded;
    let (l, r) = (left.materialize(), right.materialize());
    let instances = p.parallelism;
    let ops = (0..instances)
        .map(|_| factory())
        .collect::<Result<Vec<_>>>()?;
    Ok(Planned {
        node: StreamNode::parallel(ops, vec![l, r], exchanges),
        steps: vec![],
        schema: Arc::clone(&j.schema),
        rowtime,
        windows,
        bounded,
        changelog,
    })
}

/// `x NOT IN (SELECT y ...)` where `x` or `y` may be NULL: a null-aware
/// anti join. DataFusion puts the `NOT IN`'s equality first in `on`; the
/// others are the subquery's correlation. Hashed by the correlation keys;
/// without any, one instance sees every row.
fn plan_not_in(p: &StreamPlanner, j: &Join, left: Planned, right: Planned) -> Result<Planned> {
    if j.filter.is_some() {
        return Err(Error::plan(
            "NOT IN over a column that may be NULL, with a correlation other than equalities, \
             is not supported on streams; use NOT EXISTS, or make the column NOT NULL",
        )
        .near("NOT IN"));
    }
    let joined = Arc::new(left.schema.join(&right.schema)?);
    let spec = join_spec(p, j, JoinKind::Anti, &left.schema, &right.schema, &joined)?;
    let (instances, exchanges) = if p.parallelism > 1 && spec.left_keys.len() > 1 {
        let exchanges = vec![
            Exchange::Hash(spec.left_keys[1..].to_vec()),
            Exchange::Hash(spec.right_keys[1..].to_vec()),
        ];
        (p.parallelism, exchanges)
    } else {
        let left = spec.left_keys.get(1..).unwrap_or_default().to_vec();
        let right = spec.right_keys.get(1..).unwrap_or_default().to_vec();
        (1, vec![p.exchange(left, 1), p.exchange(right, 1)])
    };
    let cfg = JoinConfig {
        spec,
        ttl: p.state_ttl,
        updating: [left.changelog.is_updating(), right.changelog.is_updating()],
    };
    let (ls, rs) = (left.schema.inner().clone(), right.schema.inner().clone());
    let ops = (0..instances)
        .map(|_| {
            let op = NullAwareAntiJoin::try_new(cfg.clone(), &ls, &rs)?;
            Ok(Box::new(op) as Box<dyn Operator>)
        })
        .collect::<Result<Vec<_>>>()?;
    let n = j.schema.fields().len();
    let bounded = left.bounded && right.bounded;
    Ok(Planned {
        node: StreamNode::parallel(
            ops,
            vec![left.materialize(), right.materialize()],
            exchanges,
        ),
        steps: vec![],
        schema: Arc::clone(&j.schema),
        rowtime: vec![false; n],
        windows: vec![None; n],
        bounded,
        changelog: ChangelogMode::Updating { upsert_key: None },
    })
}

/// The stream's side of a lookup join: an append-only unbounded input
/// joined with a bounded one (a memory, file or VALUES table) when no
/// unmatched table row is to be kept.
fn lookup_stream(kind: JoinKind, bounded: [bool; 2], updating: [bool; 2]) -> Option<usize> {
    if updating != [false, false] || bounded[0] == bounded[1] {
        return None;
    }
    let stream = usize::from(bounded[0]);
    let ok = match kind {
        JoinKind::Inner => true,
        JoinKind::Semi | JoinKind::Anti => stream == 0,
        k => !k.outer()[1 - stream],
    };
    ok.then_some(stream)
}

/// What the join operator is given: its key expressions over each input,
/// its other conditions over `joined`, `joined` and its kind.
pub(crate) fn join_spec(
    p: &StreamPlanner,
    j: &Join,
    kind: JoinKind,
    left: &DFSchema,
    right: &DFSchema,
    joined: &DFSchema,
) -> Result<JoinSpec> {
    let keys = |side: &DFSchema, pick: fn(&(Expr, Expr)) -> &Expr| {
        j.on.iter()
            .map(|pair| p.physical(pick(pair), side))
            .collect::<Result<Vec<_>>>()
    };
    Ok(JoinSpec {
        left_keys: keys(left, |(l, _)| l)?,
        right_keys: keys(right, |(_, r)| r)?,
        filter: match &j.filter {
            Some(f) => Some(p.physical(f, joined)?),
            None => None,
        },
        joined: Arc::clone(joined.inner()),
        kind,
    })
}
