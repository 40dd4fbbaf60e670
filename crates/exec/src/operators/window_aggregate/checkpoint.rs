//! Snapshot and restore of a window aggregate: each open pane and each
//! closed pane part as rows of (pane, part, keys, accumulator states), and
//! the watermark. Accumulator states are DataFusion's own intermediate
//! state (`GroupsAccumulator::state`, merged back with `merge_batch`), so
//! every aggregate is covered and a restore at another parallelism merges
//! the rows of the keys it owns.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{Field, Int32Type, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use sluice_common::{Error, Result};

use super::emit::{EmitWindowAggregate, Emitted};
use super::{GroupKey, PanePart, PaneState, WindowAggregateOperator};
use crate::checkpoint::state::{scalar, scalars};
use crate::checkpoint::{KeyRange, State};
use crate::operators::group_keys::copy_keys;

/// The part number of an open pane's row.
const OPEN: i32 = -1;

/// Keys and states of a pane (keys of `key_schema`), leaving the pane as it
/// was: the keys are copied out ([`copy_keys`]) and each accumulator's
/// state is merged into a fresh one to keep.
pub(crate) fn copy_pane(
    state: &mut PaneState,
    key_schema: &arrow::datatypes::SchemaRef,
    fresh: Vec<Box<dyn GroupsAccumulator>>,
) -> Result<PanePart> {
    let n = state.num_groups;
    let ids: Vec<usize> = (0..n).collect();
    let keys = match &mut state.groups {
        Some(g) => copy_keys(g, key_schema, n)?,
        None => vec![],
    };
    let mut keep = fresh;
    let mut states = Vec::with_capacity(keep.len());
    for (acc, k) in state.accumulators.iter_mut().zip(&mut keep) {
        let parts = acc.state(EmitTo::All)?;
        k.merge_batch(&parts, &ids, n)?;
        states.push(parts);
    }
    state.accumulators = keep;
    Ok(PanePart {
        keys,
        states,
        num_groups: n,
    })
}

/// `part`'s rows as columns: pane, part, keys, states.
fn part_columns(pane: i64, part: i32, p: &PanePart) -> Vec<ArrayRef> {
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_value(pane, p.num_groups)),
        Arc::new(Int32Array::from_value(part, p.num_groups)),
    ];
    cols.extend(p.keys.iter().cloned());
    cols.extend(p.states.iter().flatten().cloned());
    cols
}

impl WindowAggregateOperator {
    /// Its state: table `panes` (see the module docs) and `meta`.
    pub(crate) fn snapshot_panes(&mut self) -> Result<State> {
        let mut parts: Vec<(i64, i32, PanePart)> = Vec::new();
        let panes: Vec<i64> = self.open.keys().copied().collect();
        for pane in panes {
            let fresh = self.new_accumulators()?;
            if let Some(state) = self.open.get_mut(&pane) {
                parts.push((pane, OPEN, copy_pane(state, &self.key_schema, fresh)?));
            }
        }
        for (pane, closed) in &self.closed {
            for (i, p) in closed.iter().enumerate() {
                let copy = PanePart {
                    keys: p.keys.clone(),
                    states: p.states.clone(),
                    num_groups: p.num_groups,
                };
                parts.push((*pane, i as i32, copy));
            }
        }
        let meta = scalars(&[
            ("watermark", self.watermark),
            ("last_fired_end", self.last_fired_end),
        ]);
        let mut state = State::new().with("meta", meta);
        if let Some(batch) = self.parts_batch(&parts)? {
            state.add("panes", batch);
        }
        Ok(state)
    }

    /// Every part as one batch (`None` without any).
    fn parts_batch(&self, parts: &[(i64, i32, PanePart)]) -> Result<Option<RecordBatch>> {
        let Some((pane, part, first)) = parts.first() else {
            return Ok(None);
        };
        let cols = part_columns(*pane, *part, first);
        let fields: Vec<Field> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batches = parts
            .iter()
            .map(|(pane, part, p)| {
                Ok(RecordBatch::try_new(
                    Arc::clone(&schema),
                    part_columns(*pane, *part, p),
                )?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(arrow::compute::concat_batches(&schema, &batches)?))
    }

    /// Take up the panes of `states` whose keys `keys` owns.
    pub(crate) fn restore_panes(&mut self, states: &[State], keys: KeyRange) -> Result<()> {
        for s in states {
            let meta = s.require("meta")?;
            self.watermark = self.watermark.max(scalar(meta, "watermark")?);
            self.last_fired_end = self.last_fired_end.max(scalar(meta, "last_fired_end")?);
            if let Some(panes) = s.get("panes") {
                self.restore_rows(panes, keys)?;
            }
        }
        Ok(())
    }

    fn restore_rows(&mut self, batch: &RecordBatch, keys: KeyRange) -> Result<()> {
        let n_keys = self.key_exprs.len();
        let batch = keys.filter_by(batch, &batch.columns()[2..2 + n_keys])?;
        for ((pane, part), p) in self.group_parts(&batch, n_keys)? {
            if part == OPEN {
                self.merge_into_open(pane, p)?;
            } else {
                self.closed.entry(pane).or_default().push(p);
            }
        }
        Ok(())
    }

    /// The rows of a `panes` table as parts, by (pane, part).
    fn group_parts(
        &self,
        batch: &RecordBatch,
        n_keys: usize,
    ) -> Result<Vec<((i64, i32), PanePart)>> {
        let width = 2 + n_keys + self.state_width()?;
        if batch.num_columns() != width {
            return Err(Error::Checkpoint(format!(
                "the checkpointed window state has {} columns where this query's has {width}",
                batch.num_columns()
            )));
        }
        let panes = batch
            .column(0)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| Error::Checkpoint("checkpointed pane column".into()))?;
        let parts = batch
            .column(1)
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| Error::Checkpoint("checkpointed part column".into()))?;
        let mut groups: BTreeMap<(i64, i32), Vec<u32>> = BTreeMap::new();
        for i in 0..batch.num_rows() {
            groups
                .entry((panes.value(i), parts.value(i)))
                .or_default()
                .push(i as u32);
        }
        let mut out = Vec::with_capacity(groups.len());
        for (at, rows) in groups {
            let idx = UInt32Array::from(rows);
            let cols = batch
                .columns()
                .iter()
                .map(|c| Ok(take(c, &idx, None)?))
                .collect::<Result<Vec<ArrayRef>>>()?;
            out.push((at, self.split_part(&cols, n_keys)?));
        }
        Ok(out)
    }

    /// How many state columns the aggregates have.
    fn state_width(&self) -> Result<usize> {
        let mut n = 0;
        for a in &self.cfg.aggregates {
            n += a.expr.state_fields()?.len();
        }
        Ok(n)
    }

    /// Columns (pane, part, keys, states) as a part.
    fn split_part(&self, cols: &[ArrayRef], n_keys: usize) -> Result<PanePart> {
        let keys = cols[2..2 + n_keys].to_vec();
        let mut states = Vec::with_capacity(self.cfg.aggregates.len());
        let mut at = 2 + n_keys;
        for a in &self.cfg.aggregates {
            let w = a.expr.state_fields()?.len();
            states.push(cols[at..at + w].to_vec());
            at += w;
        }
        Ok(PanePart {
            keys,
            states,
            num_groups: cols.first().map_or(0, |c| c.len()),
        })
    }

    /// Merge a restored open-pane part into its pane.
    fn merge_into_open(&mut self, pane: i64, p: PanePart) -> Result<()> {
        let mut open = std::mem::take(&mut self.open);
        let merged = self.merge_part(&mut open, pane, p);
        self.open = open;
        merged
    }

    /// Merge a restored part into pane `pane` of `target`.
    fn merge_part(
        &self,
        target: &mut BTreeMap<i64, PaneState>,
        pane: i64,
        p: PanePart,
    ) -> Result<()> {
        let state = match target.entry(pane) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(self.new_pane()?),
        };
        let mut ids = Vec::new();
        match &mut state.groups {
            Some(g) => {
                g.intern(&p.keys, &mut ids)?;
                state.num_groups = g.len();
            }
            None => {
                ids = vec![0; p.num_groups];
                state.num_groups = 1;
            }
        }
        for (acc, s) in state.accumulators.iter_mut().zip(&p.states) {
            acc.merge_batch(s, &ids, state.num_groups)?;
        }
        Ok(())
    }
}

impl EmitWindowAggregate {
    /// Its windows' state (as a window aggregate's open panes), what each
    /// window last emitted, and its flags.
    pub(super) fn snapshot_windows(&mut self) -> Result<State> {
        let mut parts = Vec::new();
        let panes: Vec<i64> = self.windows.keys().copied().collect();
        for pane in panes {
            let fresh = self.inner.new_accumulators()?;
            if let Some(state) = self.windows.get_mut(&pane) {
                parts.push((pane, OPEN, copy_pane(state, &self.inner.key_schema, fresh)?));
            }
        }
        let mut state = State::new().with("meta", scalars(&[("watermark", self.watermark)]));
        if let Some(batch) = self.inner.parts_batch(&parts)? {
            state.add("panes", batch);
        }
        let mut rows = Vec::new();
        let (mut panes, mut dirty, mut fired, mut of) = (vec![], vec![], vec![], vec![]);
        for (pane, m) in &self.emitted {
            panes.push(*pane);
            dirty.push(Some(m.dirty));
            fired.push(Some(m.fired));
            if let Some(r) = &m.rows {
                of.extend(std::iter::repeat_n(*pane, r.num_rows()));
                rows.push(r.clone());
            }
        }
        let flags = RecordBatch::try_from_iter(vec![
            ("pane", Arc::new(Int64Array::from(panes)) as ArrayRef),
            (
                "dirty",
                Arc::new(arrow::array::BooleanArray::from(dirty)) as ArrayRef,
            ),
            (
                "fired",
                Arc::new(arrow::array::BooleanArray::from(fired)) as ArrayRef,
            ),
        ])?;
        state.add("flags", flags);
        let shown = arrow::compute::concat_batches(&self.inner.cfg.schema, &rows)?;
        let pane = Field::new("__pane", arrow::datatypes::DataType::Int64, false);
        let of: ArrayRef = Arc::new(Int64Array::from(of));
        let shown = crate::checkpoint::state::with_columns(&shown, vec![(pane, of)])?;
        state.add("shown", shown);
        Ok(state)
    }

    pub(super) fn restore_windows(&mut self, states: &[State], keys: KeyRange) -> Result<()> {
        let key_columns: Vec<usize> = self
            .inner
            .cfg
            .keys
            .iter()
            .enumerate()
            .filter(|(_, k)| matches!(k, GroupKey::Expr(_)))
            .map(|(i, _)| i)
            .collect();
        for s in states {
            self.watermark = self.watermark.max(scalar(s.require("meta")?, "watermark")?);
            if let Some(batch) = s.get("panes") {
                let n_keys = self.inner.key_exprs.len();
                let batch = keys.filter_by(batch, &batch.columns()[2..2 + n_keys])?;
                let parts = self.inner.group_parts(&batch, n_keys)?;
                let mut windows = std::mem::take(&mut self.windows);
                for ((pane, _), p) in parts {
                    self.inner.merge_part(&mut windows, pane, p)?;
                }
                self.windows = windows;
            }
            let flags = s.require("flags")?;
            let bad = || Error::Checkpoint("an emitting window's checkpointed flags".into());
            let panes = flags
                .column(0)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(bad)?;
            let dirty = flags.column(1).as_boolean_opt().ok_or_else(bad)?;
            let fired = flags.column(2).as_boolean_opt().ok_or_else(bad)?;
            for i in 0..flags.num_rows() {
                let m = self.emitted.entry(panes.value(i)).or_insert(Emitted {
                    rows: None,
                    dirty: false,
                    fired: false,
                });
                m.dirty |= dirty.value(i);
                m.fired |= fired.value(i);
            }
            let shown = s.require("shown")?;
            let key_cols: Vec<ArrayRef> = key_columns
                .iter()
                .map(|&i| Arc::clone(shown.column(i)))
                .collect();
            let shown = keys.filter_by(shown, &key_cols)?;
            let n = shown.num_columns();
            let of = shown
                .column(n - 1)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(bad)?
                .clone();
            let mut data = shown;
            data.remove_column(n - 1);
            let data =
                RecordBatch::try_new(Arc::clone(&self.inner.cfg.schema), data.columns().to_vec())?;
            let mut by_pane: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
            for (i, p) in of.values().iter().enumerate() {
                by_pane.entry(*p).or_default().push(i as u32);
            }
            for (pane, rows) in by_pane {
                let idx = UInt32Array::from(rows);
                let cols = data
                    .columns()
                    .iter()
                    .map(|c| Ok(take(c, &idx, None)?))
                    .collect::<Result<Vec<_>>>()?;
                let mine = RecordBatch::try_new(Arc::clone(&self.inner.cfg.schema), cols)?;
                let m = self.emitted.entry(pane).or_insert(Emitted {
                    rows: None,
                    dirty: false,
                    fired: false,
                });
                m.rows = Some(match m.rows.take() {
                    Some(r) => arrow::compute::concat_batches(&self.inner.cfg.schema, &[r, mine])?,
                    None => mine,
                });
            }
        }
        Ok(())
    }
}
