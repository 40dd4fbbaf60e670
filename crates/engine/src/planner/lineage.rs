//! Which HOP, CUMULATE and SESSION TVFs can be aggregated by panes (a
//! SESSION by each row's own window, merged by the aggregate): those whose
//! rows reach a window aggregate through filters and projections that only
//! pass the window columns through (and, for a SESSION, that group by its
//! PARTITION BY columns).

use std::collections::HashSet;

use datafusion::logical_expr::{Expr, LogicalPlan};
use sluice_sql::window::{WindowKind, WindowTvfNode};

/// Per output column: is it a window column of the TVF below; the TVF; and
/// whether everything between it and here is transparent.
struct Lineage<'a> {
    window: Vec<bool>,
    tvf: Option<&'a WindowTvfNode>,
    transparent: bool,
}

/// Addresses of the HOP, CUMULATE and SESSION TVF nodes to plan in pane
/// mode.
pub fn pane_candidates(plan: &LogicalPlan) -> HashSet<usize> {
    let mut out = HashSet::new();
    visit(plan, &mut out);
    out
}

fn visit(plan: &LogicalPlan, out: &mut HashSet<usize>) {
    if let LogicalPlan::Aggregate(agg) = plan {
        let l = lineage(&agg.input);
        if let (Some(tvf), true) = (l.tvf, l.transparent) {
            let schema = agg.input.schema();
            let refs_window = |e: &Expr| {
                e.column_refs()
                    .iter()
                    .any(|c| schema.index_of_column(c).is_ok_and(|i| l.window[i]))
            };
            let keys_ok = agg
                .group_expr
                .iter()
                .all(|e| matches!(e, Expr::Column(_)) || !refs_window(e));
            let has_window_key = agg
                .group_expr
                .iter()
                .any(|e| matches!(e, Expr::Column(_)) && refs_window(e));
            let aggs_ok = agg.aggr_expr.iter().all(|e| !refs_window(e));
            // A SESSION's other keys must be its PARTITION BY columns.
            let session_ok = tvf.spec.kind != WindowKind::Session || {
                let others: Vec<&Expr> =
                    agg.group_expr.iter().filter(|e| !refs_window(e)).collect();
                let mut keys: Vec<&str> = others
                    .iter()
                    .filter_map(|e| match e {
                        Expr::Column(c) => Some(c.name.as_str()),
                        _ => None,
                    })
                    .collect();
                let mut want: Vec<&str> = tvf.partition.iter().map(String::as_str).collect();
                keys.sort_unstable();
                want.sort_unstable();
                keys.len() == others.len() && keys == want
            };
            if keys_ok && aggs_ok && has_window_key && session_ok {
                out.insert(tvf as *const WindowTvfNode as usize);
            }
        }
    }
    for input in plan.inputs() {
        visit(input, out);
    }
}

fn lineage(plan: &LogicalPlan) -> Lineage<'_> {
    let opaque = |n: usize| Lineage {
        window: vec![false; n],
        tvf: None,
        transparent: false,
    };
    match plan {
        LogicalPlan::Extension(ext) => match ext.node.as_any().downcast_ref::<WindowTvfNode>() {
            Some(tvf) if tvf.spec.kind != WindowKind::Tumble => {
                let n = plan.schema().fields().len();
                let mut window = vec![false; n];
                window[n - 3..].iter_mut().for_each(|w| *w = true);
                Lineage {
                    window,
                    tvf: Some(tvf),
                    transparent: true,
                }
            }
            _ => opaque(plan.schema().fields().len()),
        },
        LogicalPlan::SubqueryAlias(a) => lineage(&a.input),
        LogicalPlan::Filter(f) => {
            let mut l = lineage(&f.input);
            let schema = f.input.schema();
            let touches = f
                .predicate
                .column_refs()
                .iter()
                .any(|c| schema.index_of_column(c).is_ok_and(|i| l.window[i]));
            if touches {
                l.transparent = false;
            }
            l
        }
        LogicalPlan::Projection(p) => {
            let l = lineage(&p.input);
            let schema = p.input.schema();
            let mut transparent = l.transparent;
            let window = p
                .expr
                .iter()
                .map(|e| match e.clone().unalias() {
                    Expr::Column(c) => schema.index_of_column(&c).is_ok_and(|i| l.window[i]),
                    other => {
                        let touches = other
                            .column_refs()
                            .iter()
                            .any(|c| schema.index_of_column(c).is_ok_and(|i| l.window[i]));
                        if touches {
                            transparent = false;
                        }
                        false
                    }
                })
                .collect();
            Lineage {
                window,
                tvf: l.tvf,
                transparent,
            }
        }
        other => opaque(other.schema().fields().len()),
    }
}
