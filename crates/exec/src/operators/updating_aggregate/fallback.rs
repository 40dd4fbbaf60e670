//! Any DataFusion aggregate, through its per-group `Accumulator` (whose
//! `evaluate` leaves the state as it was). A batch's rows are sorted by
//! group and each group's run is handed over as one slice, so the calls are
//! per group per batch, not per row. Over an updating input only
//! aggregates that can retract in any order are allowed (see
//! [`can_retract`]).

use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::take;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::scalar::ScalarValue;
use sluice_common::{Error, Result};

use crate::checkpoint::state::accumulator_state;

use super::acc::{put_table, restored_groups, GroupAcc, Restore, Rows};
use crate::checkpoint::State;

/// Aggregates whose DataFusion retraction is correct whatever row is
/// retracted (sums and moments; not e.g. a sliding MIN, which assumes the
/// oldest row leaves first).
pub(crate) fn can_retract(name: &str, distinct: bool) -> bool {
    !distinct
        && matches!(
            name,
            "sum"
                | "count"
                | "avg"
                | "mean"
                | "stddev"
                | "stddev_pop"
                | "stddev_samp"
                | "var"
                | "var_pop"
                | "var_samp"
                | "var_population"
                | "var_sample"
        )
}

/// See the module docs.
pub(crate) struct Fallback {
    expr: Arc<AggregateFunctionExpr>,
    retracts: bool,
    accs: Vec<Option<Box<dyn Accumulator>>>,
}

impl Fallback {
    pub fn try_new(expr: Arc<AggregateFunctionExpr>, retracts: bool) -> Result<Self> {
        if retracts && !can_retract(expr.fun().name(), expr.is_distinct()) {
            let name = expr.fun().name().to_ascii_uppercase();
            let distinct = if expr.is_distinct() {
                "(DISTINCT ..)"
            } else {
                ""
            };
            return Err(Error::plan(format!(
                "{name}{distinct} cannot take back rows, so it cannot aggregate an updating \
                 input (COUNT, SUM, AVG, MIN, MAX, COUNT(DISTINCT ..), STDDEV and VAR can)"
            ))
            .near(name));
        }
        Ok(Fallback {
            expr,
            retracts,
            accs: Vec::new(),
        })
    }

    fn new_acc(&self) -> Result<Box<dyn Accumulator>> {
        Ok(if self.retracts {
            self.expr.create_sliding_accumulator()?
        } else {
            self.expr.create_accumulator()?
        })
    }
}

impl GroupAcc for Fallback {
    fn update(&mut self, rows: &Rows<'_>) -> Result<()> {
        self.accs.resize_with(rows.num_groups, || None);
        // Rows to hand over, in (group, sign) runs; nulls are the
        // accumulator's business.
        let valid = rows.valid(false);
        let mut order: Vec<u32> = (0..rows.groups.len() as u32)
            .filter(|&i| valid.as_ref().is_none_or(|v| v.is_valid(i as usize)))
            .collect();
        order.sort_by_key(|&i| (rows.groups[i as usize], rows.sign(i as usize)));
        let indices = UInt32Array::from(order);
        let args = rows
            .args
            .iter()
            .map(|a| take(a, &indices, None))
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
        let idx = indices.values();
        let mut start = 0;
        while start < idx.len() {
            let key = |k: usize| {
                let i = idx[k] as usize;
                (rows.groups[i], rows.sign(i))
            };
            let (g, sign) = key(start);
            let mut end = start + 1;
            while end < idx.len() && key(end) == (g, sign) {
                end += 1;
            }
            let slice: Vec<ArrayRef> = args.iter().map(|a| a.slice(start, end - start)).collect();
            if self.accs[g].is_none() {
                self.accs[g] = Some(self.new_acc()?);
            }
            let acc = self.accs[g]
                .as_mut()
                .ok_or_else(|| Error::internal("accumulator"))?;
            if sign > 0 {
                acc.update_batch(&slice)?;
            } else {
                acc.retract_batch(&slice)?;
            }
            start = end;
        }
        Ok(())
    }

    fn evaluate(&mut self, groups: &[usize]) -> Result<ArrayRef> {
        let mut values = Vec::with_capacity(groups.len());
        for &g in groups {
            if self.accs[g].is_none() {
                self.accs[g] = Some(self.new_acc()?);
            }
            let acc = self.accs[g]
                .as_mut()
                .ok_or_else(|| Error::internal("accumulator"))?;
            values.push(acc.evaluate()?);
        }
        let data_type = self.expr.field().data_type().clone();
        if values.is_empty() {
            return Ok(arrow::array::new_empty_array(&data_type));
        }
        Ok(ScalarValue::iter_to_array(values)?)
    }

    fn retain(&mut self, keep: &[usize]) -> Result<()> {
        let mut old = std::mem::take(&mut self.accs);
        self.accs = keep.iter().map(|&g| old[g].take()).collect();
        Ok(())
    }

    fn size(&self) -> usize {
        // One accumulator's size for all: an estimate that does not walk
        // every group.
        let each = self.accs.iter().flatten().next().map_or(0, |a| a.size());
        each * self.accs.len() + self.accs.capacity() * 16
    }

    /// Each group's DataFusion intermediate state (`Accumulator::state`),
    /// merged back into a fresh accumulator on restore.
    fn snapshot(&mut self, name: &str, groups: &[usize], state: &mut State) -> Result<()> {
        let width = self.expr.state_fields()?.len();
        let mut g = Vec::new();
        let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); width];
        for (p, &group) in groups.iter().enumerate() {
            if !self.accs.get(group).is_some_and(Option::is_some) {
                continue;
            }
            let fresh = self.new_acc()?;
            let Some(acc) = self.accs.get_mut(group).and_then(Option::as_mut) else {
                continue;
            };
            g.push(p as u32);
            for (c, v) in columns.iter_mut().zip(accumulator_state(acc, fresh)?) {
                c.push(v);
            }
        }
        let fields = self.expr.state_fields()?;
        let names: Vec<String> = (0..width).map(|i| format!("state{i}")).collect();
        let mut cols = Vec::with_capacity(width);
        for ((values, f), name) in columns.into_iter().zip(&fields).zip(&names) {
            let array = if values.is_empty() {
                arrow::array::new_empty_array(f.data_type())
            } else {
                ScalarValue::iter_to_array(values)?
            };
            cols.push((name.as_str(), array));
        }
        put_table(state, name, g, cols)
    }

    fn restore(&mut self, name: &str, state: &State, to: &Restore<'_>) -> Result<()> {
        let (table, ids, num_groups) = (state.require(name)?, to.ids, to.num_groups);
        self.accs.resize_with(num_groups, || None);
        for (r, id) in restored_groups(table, ids)?.into_iter().enumerate() {
            let Some(g) = id else {
                continue;
            };
            let mut acc = self.new_acc()?;
            let states: Vec<ArrayRef> =
                table.columns()[1..].iter().map(|c| c.slice(r, 1)).collect();
            acc.merge_batch(&states)?;
            self.accs[g] = Some(acc);
        }
        Ok(())
    }
}
