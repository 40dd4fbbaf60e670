//! Joins whose state time frees: window joins (both inputs windowed by the
//! same TUMBLE or HOP, joined on `window_end`) and interval joins (the two
//! time attributes within bounds of each other). Both need append-only
//! inputs; anything else is a regular join.

use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::logical_expr::logical_plan::Join;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator as Op};
use sluice_exec::operators::window_aggregate::WindowRole;

use super::Planned;

/// `r.ts + lower <= l.ts <= r.ts + upper` (milliseconds, inclusive) over
/// the left and right time columns `times`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub times: [usize; 2],
    pub lower: i64,
    pub upper: i64,
}

/// The `window_end` columns of a window join: an equality of the two
/// inputs' `window_end` columns of the same window.
pub(crate) fn window_ends(j: &Join, left: &Planned, right: &Planned) -> Option<[usize; 2]> {
    j.on.iter().find_map(|(l, r)| {
        let li = column_index(l, &left.schema)?;
        let ri = column_index(r, &right.schema)?;
        let (lw, rw) = (left.windows[li]?, right.windows[ri]?);
        let ends = lw.role == WindowRole::End && rw.role == WindowRole::End;
        (ends && lw.spec == rw.spec && !lw.panes && !rw.panes).then_some([li, ri])
    })
}

/// The interval join's bounds, if the join's conditions bound the two
/// sides' times both ways.
pub(crate) fn interval_bounds(j: &Join, left: &Planned, right: &Planned) -> Option<Bounds> {
    let mut found: Option<Bounds> = None;
    let mut add = |c: Constraint| {
        let b = found.get_or_insert(Bounds {
            times: c.times,
            lower: i64::MIN,
            upper: i64::MAX,
        });
        if b.times != c.times {
            return;
        }
        match c.op {
            Op::GtEq => b.lower = b.lower.max(c.value),
            Op::Gt => b.lower = b.lower.max(c.value.saturating_add(1)),
            Op::LtEq => b.upper = b.upper.min(c.value),
            Op::Lt => b.upper = b.upper.min(c.value.saturating_sub(1)),
            _ => {}
        }
    };
    let sides = Sides { left, right };
    for (l, r) in &j.on {
        if let Some(c) = sides.constraint(l, Op::Eq, r) {
            add(Constraint { op: Op::GtEq, ..c });
            add(Constraint { op: Op::LtEq, ..c });
        }
    }
    for e in j.filter.iter().flat_map(split_conjunction) {
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left: a,
                op,
                right: b,
            }) => {
                if let Some(c) = sides.constraint(a, *op, b) {
                    add(c);
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                if let Some(c) = sides.constraint(expr, Op::GtEq, low) {
                    add(c);
                }
                if let Some(c) = sides.constraint(expr, Op::LtEq, high) {
                    add(c);
                }
            }
            _ => {}
        }
    }
    found.filter(|b| b.lower != i64::MIN && b.upper != i64::MAX && b.lower <= b.upper)
}

/// `l.ts - r.ts <op> value`.
#[derive(Debug, Clone, Copy)]
struct Constraint {
    times: [usize; 2],
    op: Op,
    value: i64,
}

struct Sides<'a> {
    left: &'a Planned,
    right: &'a Planned,
}

impl Sides<'_> {
    /// `a <op> b` as a constraint on the two sides' times, when one is a
    /// time attribute of the left input and the other of the right (each
    /// plus or minus constant intervals).
    fn constraint(&self, a: &Expr, op: Op, b: &Expr) -> Option<Constraint> {
        if !matches!(op, Op::Eq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq) {
            return None;
        }
        let (sa, ia, oa) = self.time_term(a)?;
        let (sb, ib, ob) = self.time_term(b)?;
        match (sa, sb) {
            // l + oa op r + ob  =>  l - r op ob - oa
            (0, 1) => Some(Constraint {
                times: [ia, ib],
                op,
                value: ob.checked_sub(oa)?,
            }),
            // r + oa op l + ob  =>  l - r (flipped op) oa - ob
            (1, 0) => Some(Constraint {
                times: [ib, ia],
                op: flip(op),
                value: oa.checked_sub(ob)?,
            }),
            _ => None,
        }
    }

    /// `col (+|- interval)*` where `col` is a time attribute: (side, column,
    /// offset in milliseconds).
    fn time_term(&self, e: &Expr) -> Option<(usize, usize, i64)> {
        match e {
            Expr::Column(c) => {
                if let Some(i) = rowtime(c, self.left) {
                    Some((0, i, 0))
                } else {
                    rowtime(c, self.right).map(|i| (1, i, 0))
                }
            }
            Expr::Cast(c) => self.time_term(&c.expr),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (s, i, o) = self.time_term(left)?;
                let ms = interval_millis(right)?;
                match op {
                    Op::Plus => Some((s, i, o.checked_add(ms)?)),
                    Op::Minus => Some((s, i, o.checked_sub(ms)?)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn flip(op: Op) -> Op {
    match op {
        Op::Lt => Op::Gt,
        Op::LtEq => Op::GtEq,
        Op::Gt => Op::Lt,
        Op::GtEq => Op::LtEq,
        other => other,
    }
}

/// The index of column `c` in `p`'s output when it is a time attribute.
fn rowtime(c: &Column, p: &Planned) -> Option<usize> {
    let i = p.schema.index_of_column(c).ok()?;
    p.rowtime[i].then_some(i)
}

fn column_index(e: &Expr, schema: &DFSchema) -> Option<usize> {
    match e {
        Expr::Column(c) => schema.index_of_column(c).ok(),
        _ => None,
    }
}

/// A constant day-time interval in milliseconds (no months: their length
/// varies).
fn interval_millis(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else {
        return None;
    };
    match v {
        ScalarValue::IntervalDayTime(Some(v)) => {
            Some(i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds))
        }
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            Some(i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000)
        }
        _ => None,
    }
}
