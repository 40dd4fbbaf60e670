//! Mini-batches (Flink's `table.exec.mini-batch.*`): input rows collected
//! for up to a latency (or a row count) and passed on as one batch, so the
//! updating operator after it emits one net change per key per mini-batch
//! instead of one per input batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::{Barrier, Result};

use crate::operator::{Operator, Output};

/// See the module docs. Watermarks pass at once (what follows an updating
/// operator does not read event time); a barrier and the end of input
/// release what is held.
pub struct MiniBatch {
    schema: SchemaRef,
    latency: Duration,
    size: usize,
    held: Vec<RecordBatch>,
    rows: usize,
    since: Option<Instant>,
}

impl MiniBatch {
    /// Batches of `schema`, held up to `latency` or `size` rows.
    pub fn new(schema: SchemaRef, latency: Duration, size: usize) -> Self {
        MiniBatch {
            schema,
            latency,
            size: size.max(1),
            held: Vec::new(),
            rows: 0,
            since: None,
        }
    }

    fn release(&mut self, out: &mut Output) -> Result<()> {
        self.since = None;
        self.rows = 0;
        let held = std::mem::take(&mut self.held);
        match held.len() {
            0 => {}
            1 => held.into_iter().for_each(|b| out.push(b)),
            _ => out.push(concat_batches(&self.schema, &held)?),
        }
        Ok(())
    }
}

impl Operator for MiniBatch {
    fn name(&self) -> &'static str {
        "MiniBatch"
    }

    fn describe(&self) -> String {
        format!(
            "MiniBatch: up to {} ms or {} rows",
            self.latency.as_millis(),
            self.size
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// It releases what it holds at every barrier: nothing to keep.
    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateless
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.since.get_or_insert_with(Instant::now);
        self.rows += batch.num_rows();
        self.held.push(batch);
        if self.rows >= self.size {
            self.release(out)?;
        }
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        self.since.map(|s| s + self.latency)
    }

    fn on_timer(&mut self, out: &mut Output) -> Result<()> {
        self.release(out)
    }

    fn on_barrier(&mut self, _barrier: Barrier, out: &mut Output) -> Result<()> {
        self.release(out)
    }

    fn on_end(&mut self, out: &mut Output) -> Result<()> {
        self.release(out)
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let bytes = self.held.iter().map(|b| b.get_array_memory_size()).sum();
        Some((0, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(schema: &SchemaRef, v: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![Arc::new(Int64Array::from(v.to_vec()))],
        )
        .expect("test input")
    }

    #[test]
    fn holds_until_size_timer_or_end() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let mut op = MiniBatch::new(Arc::clone(&schema), Duration::from_secs(60), 4);
        let mut out = Output::default();
        assert!(op.deadline().is_none());
        op.on_batch(0, batch(&schema, &[1, 2]), &mut out)
            .expect("test input");
        assert!(out.take_batches().is_empty());
        assert!(op.deadline().is_some());
        op.on_batch(0, batch(&schema, &[3, 4, 5]), &mut out)
            .expect("test input");
        let got = out.take_batches();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].num_rows(), 5);
        assert!(op.deadline().is_none());
        op.on_batch(0, batch(&schema, &[6]), &mut out)
            .expect("test input");
        op.on_timer(&mut out).expect("test input");
        assert_eq!(out.take_batches()[0].num_rows(), 1);
        op.on_batch(0, batch(&schema, &[7]), &mut out)
            .expect("test input");
        op.on_end(&mut out).expect("test input");
        assert_eq!(out.take_batches()[0].num_rows(), 1);
    }
}
