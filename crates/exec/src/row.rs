//! Row-wise functions: operators without state (filters, projections,
//! window assignment) that may run on any thread, in any number of copies.
//!
//! Behind a source they are fused into the source's [`Chain`] and run where
//! its rows are made (on the decode workers of a parallel source); anywhere
//! else a [`RowOperator`] runs one as an ordinary operator.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::{Result, Watermark};

use crate::metrics::NodeMetrics;
use crate::operator::{Operator, Output};

/// A stateless batch-to-batch function that forwards watermarks unchanged.
pub trait RowFunction: Send + Sync + 'static {
    /// Short name, e.g. `Stateless`.
    fn name(&self) -> &'static str;

    /// One line for EXPLAIN.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// Schema of the batches it returns.
    fn output_schema(&self) -> SchemaRef;

    /// Transform one batch.
    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch>;

    /// Transform one batch; also how many of its rows were dropped as late
    /// (a window TVF drops rows without event time).
    fn apply_counting_late(&self, batch: RecordBatch) -> Result<(RecordBatch, u64)> {
        Ok((self.apply(batch)?, 0))
    }
}

/// A [`RowFunction`] run as an operator.
pub struct RowOperator(pub Arc<dyn RowFunction>);

impl Operator for RowOperator {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn describe(&self) -> String {
        self.0.describe()
    }

    fn output_schema(&self) -> SchemaRef {
        self.0.output_schema()
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateless
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let (batch, late) = self.0.apply_counting_late(batch)?;
        if late > 0 {
            out.add_late(late);
        }
        out.push(batch);
        Ok(())
    }
}

/// Row functions fused onto a source, in order, each with its own counters
/// (so EXPLAIN ANALYZE shows them as if they were nodes).
#[derive(Clone, Default)]
pub struct Chain {
    steps: Vec<(Arc<dyn RowFunction>, Arc<NodeMetrics>)>,
}

impl Chain {
    /// Append `f`; returns its counters.
    pub fn push(&mut self, f: Arc<dyn RowFunction>) -> Arc<NodeMetrics> {
        let metrics = Arc::new(NodeMetrics::default());
        self.steps.push((f, Arc::clone(&metrics)));
        metrics
    }

    /// The functions with their counters, first applied first.
    pub fn steps(&self) -> &[(Arc<dyn RowFunction>, Arc<NodeMetrics>)] {
        &self.steps
    }

    /// Schema after the chain, given the source's.
    pub fn output_schema(&self, source: SchemaRef) -> SchemaRef {
        match self.steps.last() {
            Some((f, _)) => f.output_schema(),
            None => source,
        }
    }

    /// Run every function on `batch`.
    pub fn apply(&self, mut batch: RecordBatch) -> Result<RecordBatch> {
        for (f, m) in &self.steps {
            m.add_in(batch.num_rows());
            let (out, late) = f.apply_counting_late(batch)?;
            batch = out;
            if late > 0 {
                m.add_late(late);
            }
            m.add_out(batch.num_rows());
        }
        Ok(batch)
    }

    /// Record a watermark passing through.
    pub fn set_watermark(&self, wm: Watermark) {
        for (_, m) in &self.steps {
            m.set_watermark(wm);
        }
    }
}
