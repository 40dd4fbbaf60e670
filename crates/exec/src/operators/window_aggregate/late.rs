//! Flink's lateness rule, per window: each input row is aggregated into its
//! open pane, into a closed pane whose last window has not fired (HOP), or
//! dropped and counted.

use std::collections::BTreeMap;

use arrow::array::{AsArray, BooleanArray};
use arrow::compute::filter;
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

use super::{AggInput, WindowAggregateOperator};

/// Whether a window (or pane) ending at `end` has fired at watermark `wm`:
/// Flink fires a window once the watermark reaches its last millisecond.
pub(crate) fn fired(end: i64, wm: i64) -> bool {
    end.saturating_sub(1) <= wm
}

/// What happens to an input row, by Flink's lateness rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Its pane is open.
    Open,
    /// Its pane closed, but a window holding it has not fired (pane mode).
    IntoClosedPane,
    /// Every window holding it has fired (or its event time is NULL).
    Dropped,
}

/// The rows of `batch` whose fate is `which`.
pub(super) fn pick_rows(batch: &RecordBatch, fate: &[Fate], which: Fate) -> Result<RecordBatch> {
    let mask: BooleanArray = fate.iter().map(|f| Some(*f == which)).collect();
    let cols = batch
        .columns()
        .iter()
        .map(|c| filter(c, &mask))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(batch.schema(), cols)?)
}

impl WindowAggregateOperator {
    /// Each row's fate at the current watermark.
    pub(super) fn row_fates(&self, batch: &RecordBatch) -> Result<Vec<Fate>> {
        let panes = self.pane_starts(batch)?;
        let (wm, unit, spec) = (self.watermark, self.unit, self.cfg.spec);
        Ok(panes
            .iter()
            .map(|p| match p {
                None => Fate::Dropped,
                Some(p) if !fired(p.saturating_add(unit), wm) => Fate::Open,
                Some(p) if self.cfg.panes && !fired(spec.last_end_holding(p), wm) => {
                    Fate::IntoClosedPane
                }
                Some(_) => Fate::Dropped,
            })
            .collect())
    }

    /// How many input rows the rows of fate `which` stand for (a partial
    /// row stands for as many rows as it counted).
    pub(super) fn rows_of(&self, batch: &RecordBatch, fate: &[Fate], which: Fate) -> Result<u64> {
        let AggInput::Partials { rows, .. } = &self.cfg.input else {
            return Ok(fate.iter().filter(|f| **f == which).count() as u64);
        };
        let counts = batch
            .column(*rows)
            .as_primitive_opt::<arrow::datatypes::UInt64Type>()
            .ok_or_else(|| Error::internal("partial row counts are not UInt64"))?;
        Ok(counts
            .iter()
            .zip(fate)
            .filter(|(_, f)| **f == which)
            .map(|(c, _)| c.unwrap_or(0))
            .sum())
    }

    /// Late rows for windows still to fire: aggregated on their own and
    /// kept as another part of their (closed) pane.
    pub(super) fn add_to_closed_panes(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut late = BTreeMap::new();
        self.update_panes(&mut late, batch)?;
        for (pane, state) in late {
            let part = self.pane_part(state)?;
            self.closed.entry(pane).or_default().push(part);
        }
        Ok(())
    }
}
