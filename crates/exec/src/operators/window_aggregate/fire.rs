//! Closing panes and emitting windows; taking partials out.

use std::sync::Arc;

use arrow::array::{ArrayRef, TimestampMillisecondArray};
use datafusion::logical_expr::EmitTo;
use sluice_common::{Error, Result};

use super::{
    batch_of, fired, GroupKey, PanePart, PaneState, PartialPane, TakenPane,
    WindowAggregateOperator, WindowRole,
};
use crate::operator::Output;

impl WindowAggregateOperator {
    /// The open panes as partial rows (see [`super::AggInput::Partials`]),
    /// leaving the operator empty.
    pub(crate) fn take_partials(&mut self) -> Result<Vec<PartialPane>> {
        let open = std::mem::take(&mut self.open);
        let mut out = Vec::with_capacity(open.len());
        for (pane, mut state) in open {
            let rows = std::mem::take(&mut state.rows);
            let (keys, num_groups, mut accs) = self.take_pane(state)?;
            let states = accs
                .iter_mut()
                .map(|a| a.state(EmitTo::All))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            out.push(PartialPane {
                pane,
                keys,
                states,
                rows,
                num_groups,
            });
        }
        Ok(out)
    }

    /// Output rows of one window from key arrays and aggregate values.
    pub(super) fn emit(
        &self,
        (start, end): (i64, i64),
        keys: Vec<ArrayRef>,
        aggs: Vec<ArrayRef>,
        num_groups: usize,
        out: &mut Output,
    ) -> Result<()> {
        let mut keys = keys.into_iter();
        let mut cols = Vec::with_capacity(self.cfg.schema.fields().len());
        for k in &self.cfg.keys {
            cols.push(match k {
                GroupKey::Window(role) => {
                    let v = match role {
                        WindowRole::Start => start,
                        WindowRole::End => end,
                        WindowRole::Time => end - 1,
                    };
                    Arc::new(TimestampMillisecondArray::from_value(v, num_groups)) as ArrayRef
                }
                GroupKey::Expr(_) => keys
                    .next()
                    .ok_or_else(|| Error::internal("missing key column"))?,
            });
        }
        cols.extend(aggs);
        out.push(batch_of(&self.cfg.schema, cols)?);
        Ok(())
    }

    fn take_pane(&self, mut state: PaneState) -> Result<TakenPane> {
        let keys = match &mut state.groups {
            Some(g) => g.emit(EmitTo::All)?,
            None => vec![],
        };
        Ok((keys, state.num_groups, state.accumulators))
    }

    /// A pane's partial states, taken out of its accumulators.
    pub(super) fn pane_part(&self, state: PaneState) -> Result<PanePart> {
        let (keys, num_groups, mut accs) = self.take_pane(state)?;
        let states = accs
            .iter_mut()
            .map(|a| a.state(EmitTo::All))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        Ok(PanePart {
            keys,
            states,
            num_groups,
        })
    }

    pub(super) fn close_panes(&mut self, wm: i64, out: &mut Output) -> Result<()> {
        let done: Vec<i64> = self
            .open
            .keys()
            .copied()
            .take_while(|p| fired(p.saturating_add(self.unit), wm))
            .collect();
        for pane in done {
            let Some(state) = self.open.remove(&pane) else {
                continue;
            };
            if self.cfg.panes {
                let part = self.pane_part(state)?;
                self.closed.entry(pane).or_default().push(part);
            } else {
                let (keys, num_groups, mut accs) = self.take_pane(state)?;
                let aggs = accs
                    .iter_mut()
                    .map(|a| a.evaluate(EmitTo::All))
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                let window = if self.unit == 0 {
                    (self.cfg.spec.start_of(pane), pane)
                } else {
                    (pane, pane + self.unit)
                };
                self.emit(window, keys, aggs, num_groups, out)?;
            }
        }
        Ok(())
    }

    /// Pane mode: emit every window that fires at `wm` and holds a closed
    /// pane, then drop panes no window still to fire needs. Windows fire
    /// once, in order of their end; one that was empty when it fired stays
    /// unemitted even if a late row later lands in one of its panes.
    pub(super) fn fire_windows(&mut self, wm: i64, out: &mut Output) -> Result<()> {
        let spec = self.cfg.spec;
        let Some(&first) = self.closed.keys().next() else {
            self.mark_fired(wm);
            return Ok(());
        };
        // Windows by their end, from the first that holds the first pane.
        let mut end = spec.last_end_by(first).saturating_add(spec.slide);
        while fired(end, wm) {
            if end <= self.last_fired_end {
                end += spec.slide;
                continue;
            }
            let start = spec.start_of(end);
            let panes: Vec<i64> = self.closed.range(start..end).map(|(k, _)| *k).collect();
            if panes.is_empty() {
                // Jump to the first window holding the next pane.
                match self.closed.range(end..).next() {
                    Some((&next, _)) => {
                        end = (spec.last_end_by(next) + spec.slide).max(end + spec.slide)
                    }
                    None => break,
                }
                continue;
            }
            self.merge_window((start, end), &panes, out)?;
            self.last_fired_end = end;
            end += spec.slide;
        }
        self.mark_fired(wm);
        // A pane is needed until the last window holding it has fired.
        self.closed
            .retain(|&p, _| !fired(spec.last_end_holding(p), wm));
        Ok(())
    }

    /// Every window ending by `wm + 1` has fired, with rows or without.
    fn mark_fired(&mut self, wm: i64) {
        if wm == i64::MIN || wm == i64::MAX {
            self.last_fired_end = self.last_fired_end.max(wm);
            return;
        }
        let last_end = self.cfg.spec.last_end_by(wm.saturating_add(1));
        self.last_fired_end = self.last_fired_end.max(last_end);
    }

    fn merge_window(&self, window: (i64, i64), panes: &[i64], out: &mut Output) -> Result<()> {
        let mut groups = self.new_groups()?;
        let mut accs = self.new_accumulators()?;
        let mut num_groups = 0;
        for pane in panes.iter().filter_map(|p| self.closed.get(p)).flatten() {
            let mut ids = Vec::new();
            match &mut groups {
                Some(g) => {
                    g.intern(&pane.keys, &mut ids)?;
                    num_groups = g.len();
                }
                None => {
                    ids = vec![0; pane.num_groups];
                    num_groups = 1;
                }
            }
            for (acc, states) in accs.iter_mut().zip(&pane.states) {
                acc.merge_batch(states, &ids, num_groups)?;
            }
        }
        let keys = match &mut groups {
            Some(g) => g.emit(EmitTo::All)?,
            None => vec![],
        };
        let aggs = accs
            .iter_mut()
            .map(|a| a.evaluate(EmitTo::All))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        self.emit(window, keys, aggs, num_groups, out)
    }
}
