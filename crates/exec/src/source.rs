//! The [`Source`] trait: async producers at the leaves of a query.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::{Message, Result, Watermark};
use tokio::sync::mpsc::Sender;

use crate::exchange::Outbox;
use crate::metrics::NodeMetrics;
use crate::row::Chain;
use crate::watermark::WatermarkExpr;

/// Where a source sends its output.
///
/// Batches pass through the row functions fused onto the source
/// ([`Chain`]) and are routed by the [`Outbox`]. Sources whose work splits
/// into independent chunks (files, the Nexmark generator) run them through
/// a [`ChunkPipeline`](crate::pipeline::ChunkPipeline) on
/// [`SourceContext::parallelism`] threads.
#[derive(Clone)]
pub struct SourceContext {
    out: Outbox,
    metrics: Arc<NodeMetrics>,
    chain: Chain,
    parallelism: usize,
}

impl SourceContext {
    /// A context sending into `out` with no fused chain and parallelism 1.
    pub fn new(out: Sender<Message>, metrics: Arc<NodeMetrics>) -> Self {
        Self::with_chain(Outbox::single(out), metrics, Chain::default(), 1)
    }

    /// A context sending through `chain` into `out`; chunk pipelines use
    /// `parallelism` threads.
    pub fn with_chain(
        out: Outbox,
        metrics: Arc<NodeMetrics>,
        chain: Chain,
        parallelism: usize,
    ) -> Self {
        SourceContext {
            out,
            metrics,
            chain,
            parallelism: parallelism.max(1),
        }
    }

    /// Threads a chunk pipeline may use.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// Count a batch as produced by the source, run the fused chain on it
    /// and split it by destination. Pure apart from counters: runs on any
    /// thread.
    pub(crate) fn prepare(&self, batch: RecordBatch) -> Result<Vec<(usize, RecordBatch)>> {
        if batch.num_rows() == 0 {
            return Ok(vec![]);
        }
        let n = batch.num_rows();
        self.metrics.add_in(n);
        self.metrics.add_out(n);
        let batch = self.chain.apply(batch)?;
        self.out.partition(batch)
    }

    pub(crate) async fn send_parts(&self, parts: Vec<(usize, RecordBatch)>) -> bool {
        self.out.send_parts(parts).await
    }

    /// Send a batch. Returns `false` when nobody listens any more (the query
    /// was cancelled or a LIMIT was satisfied): the source should stop.
    pub async fn send_batch(&self, batch: RecordBatch) -> Result<bool> {
        let parts = self.prepare(batch)?;
        Ok(self.send_parts(parts).await)
    }

    /// Send a watermark.
    pub async fn send_watermark(&self, wm: Watermark) -> bool {
        self.metrics.set_watermark(wm);
        self.chain.set_watermark(wm);
        self.out.broadcast(Message::Watermark(wm)).await
    }

    /// Send `wm` only if it is ahead of the last watermark sent (`true` when
    /// there is nothing to send).
    pub async fn advance_watermark(&self, wm: Watermark) -> bool {
        if wm <= self.metrics.watermark() {
            return true;
        }
        self.send_watermark(wm).await
    }

    /// Send a batch of the table's columns, projected to `output` (all
    /// columns when `None`), then the watermark `watermark` derives from the
    /// whole batch if it advanced. `false` when nobody listens any more.
    pub async fn send_with_watermark(
        &self,
        batch: RecordBatch,
        watermark: Option<&WatermarkExpr>,
        output: Option<&[usize]>,
    ) -> Result<bool> {
        let wm = match watermark {
            Some(w) => w.eval(&batch)?,
            None => None,
        };
        let out = match output {
            Some(p) => batch.project(p)?,
            None => batch,
        };
        if !self.send_batch(out).await? {
            return Ok(false);
        }
        Ok(match wm {
            Some(wm) => self.advance_watermark(Watermark(wm)).await,
            None => true,
        })
    }

    /// End a bounded input: the final watermark, then end of stream.
    pub async fn finish(&self) {
        if self.send_watermark(Watermark::MAX).await {
            let _ = self.out.broadcast(Message::EndOfStream).await;
        }
    }

    /// Progress of a file read: bytes to read in all.
    pub fn set_bytes_total(&self, n: u64) {
        self.metrics.set_bytes_total(n);
    }

    /// Progress of a file read: bytes just read.
    pub fn add_bytes_read(&self, n: u64) {
        self.metrics.add_bytes_read(n);
    }

    /// Records not yet read, per partition (shown in the shell's status line).
    pub fn set_partition_lag(&self, lag: Vec<(i32, i64)>) {
        self.metrics.set_partition_lag(lag);
    }

    /// Whether the query still listens (false once it was cancelled).
    pub fn is_open(&self) -> bool {
        !self.out.is_closed()
    }

    /// Count malformed records skipped.
    pub fn add_bad_records(&self, n: u64) {
        self.metrics.add_bad(n);
    }
}

/// A producer of batches and watermarks.
///
/// A bounded source ends with [`SourceContext::finish`] (watermark `+inf`,
/// then end of stream). An unbounded one runs until its output is closed.
#[async_trait]
pub trait Source: Send + 'static {
    /// Short name, e.g. `FileSource`.
    fn name(&self) -> &'static str;

    /// One line for EXPLAIN.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// Schema of the batches it emits.
    fn output_schema(&self) -> SchemaRef;

    /// Produce until done or until the output closes.
    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()>;
}
