//! A lookup (dimension) join: an unbounded append-only stream joined with
//! a bounded table. The table input is read first, to its end (the stream
//! input is paused meanwhile, held back by its bounded channel), and
//! indexed by the join key; then every stream row is joined with it and
//! forgotten. INNER or the stream side outer (LEFT), SEMI or ANTI (the
//! stream on the left); the output is append-only and no per-row state is
//! kept. At parallelism N the table is broadcast (each instance indexes the
//! same Arrow buffers) and the stream is not reshuffled. The stream's time
//! attributes stay time attributes: each row is emitted as it arrives.

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_common::changelog::RowKind;
use sluice_common::{Error, Result, Watermark};

use super::shape::{emit, JoinKind, JoinSpec, Shape};
use super::side::Side;
use crate::operator::{Operator, Output};

/// What a lookup join computes.
#[derive(Debug, Clone)]
pub struct LookupConfig {
    /// Keys, other conditions, joined columns and kind.
    pub spec: JoinSpec,
    /// Which input is the stream (the other is the table).
    pub stream: usize,
}

/// See the module docs.
pub struct LookupJoin {
    cfg: LookupConfig,
    shape: Shape,
    /// The stream side (its keys) and the table side (keys and rows).
    sides: [Side; 2],
    /// The table has been read to its end.
    built: bool,
}

impl LookupJoin {
    /// A lookup join of batches of `left` and `right`.
    pub fn try_new(cfg: LookupConfig, left: &Schema, right: &Schema) -> Result<Self> {
        let table = 1 - cfg.stream;
        let ok = match cfg.spec.kind {
            JoinKind::Inner => true,
            JoinKind::Semi | JoinKind::Anti => cfg.stream == 0,
            k => !k.outer()[table],
        };
        if !ok || cfg.stream > 1 {
            return Err(Error::internal(
                "a lookup join keeps no unmatched table rows",
            ));
        }
        let sides = [
            Side::try_new(cfg.spec.left_keys.clone(), left, false)?,
            Side::try_new(cfg.spec.right_keys.clone(), right, false)?,
        ];
        let shape = cfg.spec.shape(left);
        Ok(LookupJoin {
            cfg,
            shape,
            sides,
            built: false,
        })
    }

    /// Join a stream batch with the whole table.
    fn probe(&self, batch: &RecordBatch, out: &mut Output) -> Result<()> {
        let s = self.cfg.stream;
        let table = &self.sides[1 - s];
        let keys = self.sides[s].key_rows(batch)?;
        let (mine, theirs) = table.lookup(&keys);
        let mut matched = vec![0u32; batch.num_rows()];
        let mut parts = Vec::new();
        if !mine.is_empty() {
            let cols = table.rows(&theirs)?;
            let (joined, mine, _) = self.shape.pairs(s, batch, mine, theirs, cols)?;
            mine.iter().for_each(|&i| matched[i as usize] += 1);
            if self.cfg.spec.kind.emits_pairs() {
                parts.push((joined, RowKind::Insert));
            }
        }
        let want = match self.cfg.spec.kind {
            JoinKind::Semi => Some(true),
            JoinKind::Anti => Some(false),
            k if k.outer()[s] => Some(false),
            _ => None,
        };
        if let Some(want) = want {
            if let Some(rows) = self.shape.lonely_where(s, batch, &matched, want)? {
                parts.push((rows, RowKind::Insert));
            }
        }
        emit(&self.shape.data_schema(), false, parts, out)
    }
}

impl Operator for LookupJoin {
    fn name(&self) -> &'static str {
        "LookupJoin"
    }

    fn describe(&self) -> String {
        let side = if self.cfg.stream == 0 {
            "right"
        } else {
            "left"
        };
        let extra = format!(", the {side} input is the table (broadcast)");
        self.cfg.spec.describe("LookupJoin", &extra)
    }

    fn output_schema(&self) -> SchemaRef {
        self.shape.data_schema()
    }

    fn is_paused(&self, input: usize) -> bool {
        input == self.cfg.stream && !self.built
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if input > 1 {
            return Err(Error::internal("a join has two inputs"));
        }
        if input == self.cfg.stream {
            if !self.built {
                return Err(Error::internal("a lookup join read its stream early"));
            }
            return self.probe(&batch, out);
        }
        let table = &mut self.sides[input];
        let keys = table.key_rows(&batch)?;
        let n = batch.num_rows();
        table.insert(batch, keys, vec![0; n], None, 0);
        Ok(())
    }

    fn on_input_watermark(
        &mut self,
        input: usize,
        wm: Watermark,
        _out: &mut Output,
    ) -> Result<Option<Watermark>> {
        // A bounded input ends with the final watermark: the table is whole.
        if input != self.cfg.stream && wm == Watermark::MAX {
            self.built = true;
        }
        Ok(None)
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let t = &self.sides[1 - self.cfg.stream];
        Some((t.index.len(), t.bytes))
    }

    fn state_rows(&self) -> Option<[usize; 2]> {
        let mut rows = [0; 2];
        rows[1 - self.cfg.stream] = self.sides[1 - self.cfg.stream].live;
        Some(rows)
    }
}
