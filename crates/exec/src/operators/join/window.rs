//! A window join: two windowed streams (the same TUMBLE or HOP) joined on
//! `window_start`, `window_end` and keys (Flink's window join). Each
//! window's rows are kept per side until the watermark passes the window's
//! end; then the window is joined as a batch (INNER, LEFT, RIGHT, FULL,
//! SEMI or ANTI), emitted, and freed. The output is append-only. A row of
//! a window its own input's watermark has passed is late: dropped and
//! counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::Array;
use arrow::compute::concat_batches;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_common::changelog::RowKind;
use sluice_common::{Error, Result, Watermark};

use super::shape::{emit, take_rows, JoinKind, JoinSpec, Shape};
use super::side::Side;
use crate::operator::{Operator, Output};
use crate::time::to_millis;

/// What a window join computes.
#[derive(Debug, Clone)]
pub struct WindowJoinConfig {
    /// Keys, other conditions, joined columns and kind.
    pub spec: JoinSpec,
    /// The `window_end` column of each input.
    pub ends: [usize; 2],
}

/// See the module docs.
pub struct WindowJoin {
    cfg: WindowJoinConfig,
    shape: Shape,
    inputs: [SchemaRef; 2],
    /// Window end -> each side's rows of that window.
    windows: BTreeMap<i64, [Vec<RecordBatch>; 2]>,
    /// The combined watermark.
    watermark: i64,
    /// Rows kept per input.
    rows: [usize; 2],
    /// Each input's watermark: a row is late by its own input's.
    input_watermarks: [i64; 2],
    bytes: usize,
}

impl WindowJoin {
    /// A window join of batches of `left` and `right`.
    pub fn try_new(cfg: WindowJoinConfig, left: &Schema, right: &Schema) -> Result<Self> {
        let shape = cfg.spec.shape(left);
        Ok(WindowJoin {
            cfg,
            shape,
            inputs: [Arc::new(left.clone()), Arc::new(right.clone())],
            windows: BTreeMap::new(),
            watermark: i64::MIN,
            rows: [0; 2],
            input_watermarks: [i64::MIN; 2],
            bytes: 0,
        })
    }

    /// Join one window's rows and emit the result.
    fn fire(&self, rows: [Vec<RecordBatch>; 2], out: &mut Output) -> Result<()> {
        let [l, r] = rows;
        let l = concat_batches(&self.inputs[0], &l)?;
        let r = concat_batches(&self.inputs[1], &r)?;
        let mut right = Side::try_new(self.cfg.spec.right_keys.clone(), &self.inputs[1], false)?;
        let left = Side::try_new(self.cfg.spec.left_keys.clone(), &self.inputs[0], false)?;
        let r_keys = right.key_rows(&r)?;
        let r_rows = r.num_rows();
        right.insert(r.clone(), r_keys, vec![0; r_rows], None, 0);
        let l_keys = left.key_rows(&l)?;
        let (mine, theirs) = right.lookup(&l_keys);
        let mut matched = [vec![0u32; l.num_rows()], vec![0u32; r_rows]];
        let mut parts = Vec::new();
        if !mine.is_empty() {
            let cols = right.rows(&theirs)?;
            let (joined, mine, theirs) = self.shape.pairs(0, &l, mine, theirs, cols)?;
            out.add_matched(mine.len());
            mine.iter().for_each(|&i| matched[0][i as usize] += 1);
            theirs.iter().for_each(|&(_, i)| matched[1][i] += 1);
            if self.cfg.spec.kind.emits_pairs() {
                parts.push((joined, RowKind::Insert));
            }
        }
        // Semi and anti joins keep left rows with or without matches; an
        // outer side its rows without.
        let kind = self.cfg.spec.kind;
        let lonely: Vec<(usize, &RecordBatch, bool)> = match kind {
            JoinKind::Semi => vec![(0, &l, true)],
            JoinKind::Anti => vec![(0, &l, false)],
            k => [(0, &l), (1, &r)]
                .into_iter()
                .filter(|(s, _)| k.outer()[*s])
                .map(|(s, b)| (s, b, false))
                .collect(),
        };
        for (side, batch, want) in lonely {
            if let Some(rows) = self.shape.lonely_where(side, batch, &matched[side], want)? {
                parts.push((rows, RowKind::Insert));
            }
        }
        emit(&self.shape.data_schema(), false, parts, out)
    }
}

impl Operator for WindowJoin {
    fn name(&self) -> &'static str {
        "WindowJoin"
    }

    fn describe(&self) -> String {
        self.cfg.spec.describe("WindowJoin", "")
    }

    fn output_schema(&self) -> SchemaRef {
        self.shape.data_schema()
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if input > 1 {
            return Err(Error::internal("a join has two inputs"));
        }
        let ends = to_millis(batch.column(self.cfg.ends[input]))?;
        let mut by_end: HashMap<i64, Vec<u32>> = HashMap::new();
        let mut late = 0;
        // A window fires when the watermark reaches its end - 1; a row is
        // late when its own input's watermark has (so whether a row is
        // late does not depend on how the two inputs interleave).
        let wm = self.input_watermarks[input];
        for i in 0..ends.len() {
            if ends.is_null(i) || ends.value(i) - 1 <= wm {
                late += 1;
            } else {
                by_end.entry(ends.value(i)).or_default().push(i as u32);
            }
        }
        out.add_late(late);
        let one = by_end.len() == 1 && late == 0;
        for (end, idx) in by_end {
            let rows = if one {
                batch.clone()
            } else {
                RecordBatch::try_new(batch.schema(), take_rows(&batch, &idx)?)?
            };
            self.bytes += rows.get_array_memory_size();
            self.rows[input] += rows.num_rows();
            self.windows.entry(end).or_default()[input].push(rows);
        }
        Ok(())
    }

    fn on_input_watermark(
        &mut self,
        input: usize,
        wm: Watermark,
        _out: &mut Output,
    ) -> Result<Option<Watermark>> {
        if let Some(w) = self.input_watermarks.get_mut(input) {
            *w = (*w).max(wm.millis());
        }
        Ok(None)
    }

    fn on_watermark(&mut self, wm: Watermark, out: &mut Output) -> Result<Option<Watermark>> {
        self.watermark = self.watermark.max(wm.millis());
        while let Some(entry) = self.windows.first_entry() {
            if *entry.key() - 1 > self.watermark {
                break;
            }
            let rows = entry.remove();
            for (kept, side) in self.rows.iter_mut().zip(&rows) {
                *kept -= side.iter().map(RecordBatch::num_rows).sum::<usize>();
            }
            self.bytes = self.bytes.saturating_sub(
                rows.iter()
                    .flatten()
                    .map(RecordBatch::get_array_memory_size)
                    .sum::<usize>(),
            );
            self.fire(rows, out)?;
        }
        Ok(Some(wm))
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        Some((self.windows.len(), self.bytes))
    }

    fn state_rows(&self) -> Option<[usize; 2]> {
        Some(self.rows)
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    /// Each side's rows of the open windows (their `window_end` column
    /// says which), and the watermarks.
    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        let meta = crate::checkpoint::state::scalars(&[
            ("watermark", self.watermark),
            ("left_watermark", self.input_watermarks[0]),
            ("right_watermark", self.input_watermarks[1]),
        ]);
        let mut state = crate::checkpoint::State::new().with("meta", meta);
        for (s, name) in ["left", "right"].iter().enumerate() {
            let rows: Vec<&RecordBatch> = self.windows.values().flat_map(|w| &w[s]).collect();
            state.add(name, concat_batches(&self.inputs[s], rows)?);
        }
        Ok(state)
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        use crate::checkpoint::state::scalar;
        for state in states {
            let meta = state.require("meta")?;
            self.watermark = self.watermark.max(scalar(meta, "watermark")?);
            for (s, name) in ["left", "right"].iter().enumerate() {
                let w = scalar(meta, &format!("{name}_watermark"))?;
                self.input_watermarks[s] = self.input_watermarks[s].max(w);
                let exprs = if s == 0 {
                    &self.cfg.spec.left_keys
                } else {
                    &self.cfg.spec.right_keys
                };
                let rows = keys.filter(state.require(name)?, exprs)?;
                // Back into their windows, as if they arrived now.
                let mut out = Output::default();
                let wm = std::mem::replace(&mut self.input_watermarks[s], i64::MIN);
                let stored = self.on_batch(s, rows, &mut out);
                self.input_watermarks[s] = wm;
                stored?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::{assert_restores, batch_ts, spec_on_k, Feed};

    /// Rows of windows still open at a checkpoint are joined when their
    /// window fires after the restore, at any parallelism.
    #[test]
    fn restores_open_windows() {
        // `ts` stands for window_end.
        let b = |end: &[i64], k: &[i64], v: &[i64]| batch_ts(end, k, v);
        let s = b(&[], &[], &[]).schema();
        for kind in [JoinKind::Inner, JoinKind::Full, JoinKind::Anti] {
            let make = || -> Box<dyn Operator> {
                let cfg = WindowJoinConfig {
                    spec: spec_on_k(&s, &s, kind),
                    ends: [0, 0],
                };
                Box::new(WindowJoin::try_new(cfg, &s, &s).expect("join"))
            };
            let before = [
                Feed::Rows(0, b(&[10_000, 10_000, 20_000], &[1, 2, 3], &[1, 2, 3])),
                Feed::Rows(1, b(&[10_000, 20_000], &[1, 3], &[4, 5])),
            ];
            let after = [
                Feed::Rows(1, b(&[10_000, 20_000], &[2, 4], &[6, 7])),
                Feed::Watermark(9_999),
                Feed::Rows(0, b(&[20_000], &[4], &[8])),
                Feed::Watermark(i64::MAX),
            ];
            let route = |_: usize, b: &RecordBatch, range: crate::checkpoint::KeyRange| {
                range
                    .filter_by(b, &[Arc::clone(b.column(1))])
                    .expect("routes")
            };
            assert_restores(&make, &before, &after, &route);
        }
    }
}
