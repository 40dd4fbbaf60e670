//! A lookup (dimension) join: an unbounded append-only stream joined with
//! a bounded table. The table input is read first, to its end (the stream
//! input is paused meanwhile, held back by its bounded channel), and
//! indexed by the join key; then every stream row is joined with it and
//! forgotten. INNER or the stream side outer (LEFT), SEMI or ANTI (the
//! stream on the left); the output is append-only and no per-row state is
//! kept. At parallelism N the table is broadcast (every instance receives
//! the same Arrow buffers, not copies) and the stream is not reshuffled;
//! the first instance to have the whole table indexes it, once, and the
//! others share that index ([`SharedTable`]). The stream's time attributes
//! stay time attributes: each row is emitted as it arrives.

use std::sync::{Arc, Mutex};

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

/// The table's index, shared by a lookup join's instances: built by the
/// first instance that has read the whole table; the others wait for it
/// (once, while it is built) and use it.
#[derive(Clone, Default)]
pub struct SharedTable(Arc<Mutex<Option<Arc<Side>>>>);

/// See the module docs.
pub struct LookupJoin {
    cfg: LookupConfig,
    shape: Shape,
    /// Keys of stream rows.
    stream: Side,
    /// The table's batches, until it has been read to its end.
    pending: Vec<RecordBatch>,
    table_schema: SchemaRef,
    /// The indexed table, once read to its end.
    table: Option<Arc<Side>>,
    shared: SharedTable,
    /// Whether this instance built the index (and reports its size).
    owner: bool,
}

impl LookupJoin {
    /// A lookup join of batches of `left` and `right`; its instances share
    /// `shared`.
    pub fn try_new(
        cfg: LookupConfig,
        left: &Schema,
        right: &Schema,
        shared: SharedTable,
    ) -> Result<Self> {
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
        let (stream_keys, stream_schema, table_schema) = if cfg.stream == 0 {
            (&cfg.spec.left_keys, left, right)
        } else {
            (&cfg.spec.right_keys, right, left)
        };
        Ok(LookupJoin {
            stream: Side::try_new(stream_keys.clone(), stream_schema, false)?,
            shape: cfg.spec.shape(left),
            table_schema: Arc::new(table_schema.clone()),
            cfg,
            pending: Vec::new(),
            table: None,
            shared,
            owner: false,
        })
    }

    /// The table has been read: index it, or take the index another
    /// instance built.
    fn build(&mut self) -> Result<()> {
        let mut slot = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        let table = match slot.as_ref() {
            Some(t) => Arc::clone(t),
            None => {
                let keys = if self.cfg.stream == 0 {
                    &self.cfg.spec.right_keys
                } else {
                    &self.cfg.spec.left_keys
                };
                let mut side = Side::try_new(keys.clone(), &self.table_schema, false)?;
                for batch in self.pending.drain(..) {
                    let keys = side.key_rows(&batch)?;
                    let n = batch.num_rows();
                    side.insert(batch, keys, vec![0; n], None, 0);
                }
                let t = Arc::new(side);
                *slot = Some(Arc::clone(&t));
                self.owner = true;
                t
            }
        };
        self.pending.clear();
        self.table = Some(table);
        Ok(())
    }

    /// Join a stream batch with the whole table.
    fn probe(&self, batch: &RecordBatch, out: &mut Output) -> Result<()> {
        let s = self.cfg.stream;
        let Some(table) = &self.table else {
            return Err(Error::internal("a lookup join read its stream early"));
        };
        let keys = self.stream.key_rows(batch)?;
        let (mine, theirs) = table.lookup(&keys);
        let mut matched = vec![0u32; batch.num_rows()];
        let mut parts = Vec::new();
        if !mine.is_empty() {
            let cols = table.rows(&theirs)?;
            let (joined, mine, _) = self.shape.pairs(s, batch, mine, theirs, cols)?;
            out.add_matched(mine.len());
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
        input == self.cfg.stream && self.table.is_none()
    }

    /// The table is read again (to its end, before the stream) whenever the
    /// job starts or resumes; nothing else is kept.
    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateless
    }

    fn replayed_inputs(&self) -> Vec<usize> {
        vec![1 - self.cfg.stream]
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if input > 1 {
            return Err(Error::internal("a join has two inputs"));
        }
        if input == self.cfg.stream {
            return self.probe(&batch, out);
        }
        if self.table.is_some() {
            return Err(Error::internal("a lookup join's table grew after its end"));
        }
        self.pending.push(batch);
        Ok(())
    }

    fn on_input_watermark(
        &mut self,
        input: usize,
        wm: Watermark,
        _out: &mut Output,
    ) -> Result<Option<Watermark>> {
        // A bounded input ends with the final watermark: the table is whole.
        if input != self.cfg.stream && wm == Watermark::MAX && self.table.is_none() {
            self.build()?;
        }
        Ok(None)
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        // The index is counted once, by the instance that built it.
        let t = self.table.as_ref().filter(|_| self.owner);
        Some(t.map_or((0, 0), |t| (t.index.len(), t.bytes)))
    }

    fn state_rows(&self) -> Option<[usize; 2]> {
        let mut rows = [0; 2];
        if let Some(t) = self.table.as_ref().filter(|_| self.owner) {
            rows[1 - self.cfg.stream] = t.live;
        }
        Some(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::{batch_i64, spec_on_k};

    /// Two instances given the same table index it once: the second uses
    /// the first's index, and only the first counts it as state.
    #[test]
    fn instances_share_one_index() {
        let stream = batch_i64(&[("k", &[1, 2, 3]), ("a", &[10, 20, 30])]);
        let table = batch_i64(&[("k", &[1, 3, 3]), ("b", &[7, 8, 9])]);
        let (ss, ts) = (stream.schema(), table.schema());
        let cfg = LookupConfig {
            spec: spec_on_k(&ss, &ts, JoinKind::Inner),
            stream: 0,
        };
        let shared = SharedTable::default();
        let mut ops: Vec<LookupJoin> = (0..2)
            .map(|_| LookupJoin::try_new(cfg.clone(), &ss, &ts, shared.clone()).expect("join"))
            .collect();
        let mut out = Output::default();
        for op in &mut ops {
            assert!(op.is_paused(0), "the stream waits for the table");
            op.on_batch(1, table.clone(), &mut out).expect("table");
            op.on_input_watermark(1, Watermark::MAX, &mut out)
                .expect("end");
            assert!(!op.is_paused(0));
        }
        let [a, b] = [&ops[0], &ops[1]].map(|op| op.table.clone().expect("built"));
        assert!(Arc::ptr_eq(&a, &b), "one index");
        assert_eq!(ops[0].state_rows(), Some([0, 3]));
        assert_eq!(ops[1].state_rows(), Some([0, 0]));
        for op in &mut ops {
            op.on_batch(0, stream.clone(), &mut out).expect("stream");
        }
        let rows: usize = out.take_batches().iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 6, "each instance: key 1 once, key 3 twice");
        assert_eq!(out.matched_rows, 6);
    }
}
