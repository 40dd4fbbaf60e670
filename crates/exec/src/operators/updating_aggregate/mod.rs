//! `GROUP BY` without a window: a result that changes as rows arrive.
//!
//! Keys are interned by DataFusion `GroupValues` (vectorised) into group
//! ids; each aggregate keeps its state per group id ([`acc`]). After each
//! input batch the operator reads the groups the batch touched, before and
//! after, and emits at most one net change per group: `+I` for a group that
//! appeared, `-U`/`+U` (adjacent) for one whose result changed, `-D` for
//! one whose last row was retracted; a group whose result did not change
//! emits nothing. The output is an updating stream whose upsert key is the
//! GROUP BY keys. Over an updating input, `-U`/`-D` rows are retracted.
//! Groups that fell to zero rows are dropped from the state once they
//! outnumber the live ones.

mod acc;
mod changes;
mod checkpoint;
mod distinct;
mod fallback;
mod minmax;
mod pair_segments;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int8Array, UInt32Array, UInt64Array};
use arrow::compute::{interleave, prep_null_mask_filter, take};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use datafusion::logical_expr::EmitTo;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use sluice_common::changelog;
use sluice_common::{Error, Result};

use crate::operator::{Operator, Output};
use crate::operators::expiry::{wall_clock, Clock, Expiry};
use crate::operators::window_aggregate::{batch_of, describe_aggregates, AggregateCall};
use acc::{GroupAcc, Rows};
use changes::{positions, Changes};

/// What an updating aggregate computes.
#[derive(Debug, Clone)]
pub struct UpdatingAggConfig {
    /// GROUP BY keys (none: one global group).
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Aggregates, in output order after the keys.
    pub aggregates: Vec<AggregateCall>,
    /// Output data schema: keys then aggregates (the row-kind column is
    /// added).
    pub schema: SchemaRef,
    /// The input is a changelog (rows may be retracted).
    pub retracts: bool,
    /// Forget keys not updated for this long (`table.exec.state.ttl`).
    pub ttl: Option<std::time::Duration>,
}

/// See the module docs.
pub struct UpdatingAggregateOperator {
    cfg: UpdatingAggConfig,
    output: SchemaRef,
    groups: Option<Box<dyn GroupValues>>,
    key_schema: SchemaRef,
    accs: Vec<Box<dyn GroupAcc>>,
    /// Input rows of each group (net of retractions).
    rows: Vec<i64>,
    num_groups: usize,
    live: usize,
    results: RowConverter,
    ids: Vec<usize>,
    seen: Vec<bool>,
    expiry: Option<Expiry>,
    /// The groups' keys, for checkpoints.
    key_log: crate::operators::group_keys::KeyLog,
}

/// The accumulator for one call, vectorised where one exists.
fn accumulator(call: &AggregateCall, input: &Schema, retracts: bool) -> Result<Box<dyn GroupAcc>> {
    let e = &call.expr;
    let args = e
        .expressions()
        .iter()
        .map(|a| a.data_type(input))
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let name = e.fun().name().to_ascii_lowercase();
    let out = e.field().data_type().clone();
    match acc::native(&name, e.is_distinct(), &args, &out, retracts)? {
        Some(a) => Ok(a),
        None => Ok(Box::new(fallback::Fallback::try_new(
            Arc::clone(e),
            retracts,
        )?)),
    }
}

impl UpdatingAggregateOperator {
    /// An operator over input batches of `input` (data columns, then the
    /// row-kind column when `cfg.retracts`).
    pub fn try_new(cfg: UpdatingAggConfig, input: &Schema) -> Result<Self> {
        let key_fields = cfg
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| Ok(Field::new(format!("k{i}"), k.data_type(input)?, true)))
            .collect::<Result<Vec<_>>>()?;
        let key_schema = Arc::new(Schema::new(key_fields));
        let groups = if cfg.keys.is_empty() {
            None
        } else {
            Some(new_group_values(
                Arc::clone(&key_schema),
                &GroupOrdering::None,
            )?)
        };
        let accs = cfg
            .aggregates
            .iter()
            .map(|c| accumulator(c, input, cfg.retracts))
            .collect::<Result<Vec<_>>>()?;
        let nk = cfg.keys.len();
        let results = RowConverter::new(
            cfg.schema.fields()[nk..]
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        let expiry = cfg.ttl.map(|ttl| Expiry::new(ttl, wall_clock()));
        Ok(UpdatingAggregateOperator {
            expiry,
            output: changelog::with_op_field(&cfg.schema),
            cfg,
            groups,
            key_schema,
            accs,
            rows: Vec::new(),
            num_groups: 0,
            live: 0,
            results,
            ids: Vec::new(),
            seen: Vec::new(),
            key_log: Default::default(),
        })
    }

    /// Replace the clock idle keys are timed by (tests).
    pub fn set_clock(&mut self, clock: Clock) {
        if let Some(ttl) = self.cfg.ttl {
            self.expiry = Some(Expiry::new(ttl, clock));
        }
    }

    /// Forget groups idle for the TTL (no retraction is emitted, as in
    /// Flink).
    fn expire(&mut self, touched: &[usize]) -> Result<bool> {
        let Some(expiry) = self.expiry.as_mut() else {
            return Ok(false);
        };
        expiry.touch(touched, self.num_groups);
        let expired = expiry.expired();
        for &g in &expired {
            if self.rows[g] > 0 {
                self.live -= 1;
            }
            self.rows[g] = 0;
        }
        Ok(!expired.is_empty())
    }

    /// Groups held and approximate bytes of state.
    pub fn state_size(&self) -> (usize, usize) {
        let bytes = self.groups.as_ref().map_or(0, |g| g.size())
            + self.accs.iter().map(|a| a.size()).sum::<usize>()
            + self.rows.capacity() * 8;
        (self.live, bytes)
    }

    /// Group ids of the batch's rows, in `self.ids`.
    fn intern(&mut self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let n = batch.num_rows();
        let keys = self
            .cfg
            .keys
            .iter()
            .map(|k| k.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        match &mut self.groups {
            Some(g) => {
                let before = g.len();
                g.intern(&keys, &mut self.ids)?;
                self.num_groups = g.len();
                self.key_log.record(&keys, &self.ids, before)?;
            }
            None => {
                self.ids.clear();
                self.ids.resize(n, 0);
                self.num_groups = 1;
            }
        }
        self.rows.resize(self.num_groups, 0);
        self.seen.resize(self.num_groups, false);
        Ok(keys)
    }

    /// The groups the batch touched, in order of first row, with that row.
    fn touched(&mut self) -> (Vec<usize>, Vec<u32>) {
        let mut groups = Vec::new();
        let mut first = Vec::new();
        for (i, &g) in self.ids.iter().enumerate() {
            if !self.seen[g] {
                self.seen[g] = true;
                groups.push(g);
                first.push(i as u32);
            }
        }
        for &g in &groups {
            self.seen[g] = false;
        }
        (groups, first)
    }

    fn evaluate(&mut self, groups: &[usize]) -> Result<Vec<ArrayRef>> {
        self.accs.iter_mut().map(|a| a.evaluate(groups)).collect()
    }

    fn update(&mut self, batch: &RecordBatch, signs: Option<&[i8]>) -> Result<()> {
        let n = batch.num_rows();
        for (call, acc) in self.cfg.aggregates.iter().zip(self.accs.iter_mut()) {
            let args = call
                .expr
                .expressions()
                .iter()
                .map(|a| a.evaluate(batch).and_then(|v| v.into_array(n)))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let filter = match &call.filter {
                Some(f) => {
                    let v = f.evaluate(batch)?.into_array(n)?;
                    let mask = v.as_boolean_opt().ok_or_else(|| {
                        Error::execution(format!("FILTER is {}, not BOOLEAN", v.data_type()))
                    })?;
                    Some(if mask.null_count() > 0 {
                        prep_null_mask_filter(mask)
                    } else {
                        mask.clone()
                    })
                }
                None => None,
            };
            acc.update(&Rows {
                args: &args,
                groups: &self.ids,
                signs,
                filter: filter.as_ref(),
                num_groups: self.num_groups,
            })?;
        }
        for (i, &g) in self.ids.iter().enumerate() {
            self.rows[g] += signs.map_or(1, |s| i64::from(s[i]));
        }
        Ok(())
    }

    /// Drop groups without rows once they outnumber the live ones (or
    /// now, with `force`).
    fn compact(&mut self, force: bool) -> Result<()> {
        let dead = self.num_groups - self.live;
        if self.groups.is_none() && force && self.live == 0 {
            // The global group expired: start afresh.
            for a in &mut self.accs {
                a.retain(&[])?;
            }
            self.num_groups = 0;
            self.rows.clear();
            self.seen.clear();
            if let Some(e) = self.expiry.as_mut() {
                e.retain(&[]);
            }
            return Ok(());
        }
        let Some(groups) = self.groups.as_mut() else {
            return Ok(());
        };
        if !force && (dead < 4096 || dead < self.live) {
            return Ok(());
        }
        let keep: Vec<usize> = (0..self.num_groups).filter(|&g| self.rows[g] > 0).collect();
        let keys = groups.emit(EmitTo::All)?;
        let idx = UInt64Array::from(keep.iter().map(|&g| g as u64).collect::<Vec<_>>());
        let keys = keys
            .iter()
            .map(|k| take(k, &idx, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut fresh = new_group_values(Arc::clone(&self.key_schema), &GroupOrdering::None)?;
        fresh.intern(&keys, &mut self.ids)?;
        self.key_log.reset(&keys);
        self.groups = Some(fresh);
        for a in &mut self.accs {
            a.retain(&keep)?;
        }
        self.rows = keep.iter().map(|&g| self.rows[g]).collect();
        self.num_groups = keep.len();
        self.seen = vec![false; self.num_groups];
        if let Some(e) = self.expiry.as_mut() {
            e.retain(&keep);
        }
        Ok(())
    }
}

impl Operator for UpdatingAggregateOperator {
    fn name(&self) -> &'static str {
        "UpdatingAggregate"
    }

    fn describe(&self) -> String {
        let keys: Vec<String> = self.cfg.keys.iter().map(|k| k.to_string()).collect();
        format!(
            "UpdatingAggregate: keys=[{}], aggregates=[{}]",
            keys.join(", "),
            describe_aggregates(&self.cfg.aggregates)
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.output)
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        Some(UpdatingAggregateOperator::state_size(self))
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        self.snapshot_groups()
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        self.restore_groups(states, keys)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let signs: Option<Vec<i8>> = changelog::ops(&batch).map(|o| {
            o.values()
                .iter()
                .map(|&c| changelog::sign_of_code(c) as i8)
                .collect()
        });
        let keys = self.intern(&batch)?;
        let (touched, first) = self.touched();
        let old_present: Vec<bool> = touched.iter().map(|&g| self.rows[g] > 0).collect();
        let old_groups: Vec<usize> = touched
            .iter()
            .zip(&old_present)
            .filter_map(|(&g, &p)| p.then_some(g))
            .collect();
        let old_values = self.evaluate(&old_groups)?;
        self.update(&batch, signs.as_deref())?;
        let new_present: Vec<bool> = touched.iter().map(|&g| self.rows[g] > 0).collect();
        let new_groups: Vec<usize> = touched
            .iter()
            .zip(&new_present)
            .filter_map(|(&g, &p)| p.then_some(g))
            .collect();
        let new_values = self.evaluate(&new_groups)?;
        self.live = self.live + new_groups.len() - old_groups.len();
        let old_rows = self.results.convert_columns(&old_values)?;
        let new_rows = self.results.convert_columns(&new_values)?;
        let changes = Changes::plan(
            &positions(&old_present),
            &positions(&new_present),
            // Without aggregates (SELECT DISTINCT) a present row is the same.
            &|o, n| self.accs.is_empty() || old_rows.row(o) == new_rows.row(n),
        );
        if !changes.rows.is_empty() {
            let first = UInt32Array::from(first);
            let touched_idx: UInt32Array = changes.rows.iter().map(|r| first.value(r.0)).collect();
            let mut cols = keys
                .iter()
                .map(|k| take(k, &touched_idx, None))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let picks: Vec<(usize, usize)> = changes.rows.iter().map(|r| (r.1, r.2)).collect();
            for (o, n) in old_values.iter().zip(&new_values) {
                cols.push(interleave(&[o.as_ref(), n.as_ref()], &picks)?);
            }
            let data = batch_of(&self.cfg.schema, cols)?;
            let ops: Int8Array = changes.rows.iter().map(|r| r.3.code()).collect();
            out.push(changelog::with_ops(
                &self.output,
                data.columns().to_vec(),
                ops,
            )?);
        }
        let expired = self.expire(&touched)?;
        self.compact(expired)
    }
}

#[cfg(test)]
mod distinct_tests;
#[cfg(test)]
mod tests;
