//! The [`Source`] trait: async producers at the leaves of a query.

use std::sync::Arc;

use datafusion::physical_expr::PhysicalExpr;

use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::{Barrier, Error, Message, Result, Watermark};
use tokio::sync::mpsc::Sender;

use crate::checkpoint::state::scalars;
use crate::checkpoint::{CheckpointId, State, TaskCheckpoint};
use crate::exchange::Outbox;
use crate::metrics::NodeMetrics;
use crate::row::Chain;
use crate::watermark::WatermarkExpr;

/// The columns a source makes, the ones it emits, and its watermark: the
/// watermark is evaluated on every column made, then the batch is cut down
/// to the emitted ones. A table with computed columns also has an
/// expansion: expressions over the made (physical) columns giving the
/// columns the watermark and the output read.
#[derive(Debug, Clone)]
pub struct ScanColumns {
    made: SchemaRef,
    expand: Option<(Vec<Arc<dyn PhysicalExpr>>, SchemaRef)>,
    output: Option<Vec<usize>>,
    watermark: Option<WatermarkExpr>,
    emitted: SchemaRef,
}

impl ScanColumns {
    /// Batches of `made`, emitted as the columns `output` (all when
    /// `None`), with `watermark` over `made`.
    pub fn try_new(
        made: SchemaRef,
        output: Option<Vec<usize>>,
        watermark: Option<WatermarkExpr>,
    ) -> Result<Self> {
        let emitted = match &output {
            Some(p) => Arc::new(made.project(p)?),
            None => Arc::clone(&made),
        };
        Ok(ScanColumns {
            made,
            expand: None,
            output,
            watermark,
            emitted,
        })
    }

    /// Batches of `made` expanded by `exprs` into `expanded` (computed
    /// columns), emitted as the columns `output` of the expansion, with
    /// `watermark` over the expansion.
    pub fn expanding(
        made: SchemaRef,
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        expanded: SchemaRef,
        output: Vec<usize>,
        watermark: Option<WatermarkExpr>,
    ) -> Result<Self> {
        let emitted = Arc::new(expanded.project(&output)?);
        Ok(ScanColumns {
            made,
            expand: Some((exprs, expanded)),
            output: Some(output),
            watermark,
            emitted,
        })
    }

    /// Schema of the batches the source makes.
    pub fn made(&self) -> &SchemaRef {
        &self.made
    }

    /// Schema of the batches it emits.
    pub fn emitted(&self) -> SchemaRef {
        Arc::clone(&self.emitted)
    }

    /// The emitted columns' names, for EXPLAIN: `a, b, c`.
    pub fn emitted_names(&self) -> String {
        let names: Vec<&str> = self
            .emitted
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        names.join(", ")
    }

    /// Whether the table has a watermark.
    pub fn has_watermark(&self) -> bool {
        self.watermark.is_some()
    }

    /// A made batch as emitted, with the largest watermark it supports.
    pub fn split(&self, batch: RecordBatch) -> Result<(RecordBatch, Option<i64>)> {
        let batch = match &self.expand {
            Some((exprs, schema)) => {
                let n = batch.num_rows();
                let cols = exprs
                    .iter()
                    .map(|e| Ok(e.evaluate(&batch)?.into_array(n)?))
                    .collect::<Result<Vec<_>>>()?;
                crate::operators::window_aggregate::batch_of(schema, cols)?
            }
            None => batch,
        };
        let wm = match &self.watermark {
            Some(w) => w.eval(&batch)?,
            None => None,
        };
        let out = match &self.output {
            Some(p) => batch.project(p)?,
            None => batch,
        };
        Ok((out, wm))
    }
}

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
    checkpoint: Option<SourceCheckpoint>,
}

/// A source's part in checkpoints: its handle and the last barrier it sent.
#[derive(Clone)]
struct SourceCheckpoint {
    handle: TaskCheckpoint,
    sent: Arc<AtomicU64>,
}

/// The state table of a source that read its whole input.
const FINISHED: &str = "finished";

/// The state of a source that read its whole input: restored, it sends
/// only the end.
pub fn finished_state() -> State {
    State::new().with(FINISHED, scalars(&[(FINISHED, 1)]))
}

/// Whether `state` is a [`finished_state`].
pub fn is_finished(state: &State) -> bool {
    state.get(FINISHED).is_some()
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
            checkpoint: None,
        }
    }

    /// This context taking part in the job's checkpoints through `handle`.
    pub fn with_checkpoint(mut self, handle: TaskCheckpoint) -> Self {
        let sent = Arc::new(AtomicU64::new(handle.triggered()));
        self.checkpoint = Some(SourceCheckpoint { handle, sent });
        self
    }

    /// Whether the job takes checkpoints (sources then keep their
    /// positions).
    pub fn checkpointing(&self) -> bool {
        self.checkpoint.is_some()
    }

    /// The checkpoint to take now, if one was triggered since the source
    /// last took one; asking claims it. Sources ask between batches, then
    /// record their position and call [`SourceContext::send_barrier`].
    pub fn barrier_due(&self) -> Option<CheckpointId> {
        let c = self.checkpoint.as_ref()?;
        let want = c.handle.triggered();
        let before = c.sent.fetch_max(want, Ordering::AcqRel);
        (want > before).then_some(want)
    }

    /// Hand over the source's position `state` at checkpoint `id` (claimed
    /// by [`SourceContext::barrier_due`]) and send the barrier after
    /// everything sent so far. `false` when nobody listens any more.
    pub async fn send_barrier(&self, id: CheckpointId, state: State) -> bool {
        let Some(c) = &self.checkpoint else {
            return true;
        };
        c.handle.ack(id, state).await;
        self.out
            .broadcast(Message::Barrier(Barrier { checkpoint_id: id }))
            .await
    }

    /// Pass checkpoint barrier `id` on, after everything sent so far,
    /// without a state of its own (a reader of rows from other workers,
    /// whose upstream checkpoints them). `false` when nobody listens.
    pub async fn forward_barrier(&self, id: CheckpointId) -> bool {
        self.out
            .broadcast(Message::Barrier(Barrier { checkpoint_id: id }))
            .await
    }

    /// A restored source had sent watermark `wm`: it sends only later
    /// ones (its consumers restored their own).
    pub fn resume_watermark(&self, wm: Watermark) {
        self.metrics.set_watermark(wm);
    }

    /// The watermark sent last.
    pub fn watermark(&self) -> Watermark {
        self.metrics.watermark()
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

    /// Tell consumers the source is idle: they leave it out of their
    /// watermark minimum until it sends again.
    pub async fn send_idle(&self) -> bool {
        self.out.broadcast(Message::Idle).await
    }

    /// Send `wm` only if it is ahead of the last watermark sent (`true` when
    /// there is nothing to send).
    pub async fn advance_watermark(&self, wm: Watermark) -> bool {
        if wm <= self.metrics.watermark() {
            return true;
        }
        self.send_watermark(wm).await
    }

    /// Send a made batch as `scan` emits it, then the watermark it supports
    /// if that advanced. `false` when nobody listens any more.
    pub async fn send_with_watermark(
        &self,
        batch: RecordBatch,
        scan: &ScanColumns,
    ) -> Result<bool> {
        let (out, wm) = scan.split(batch)?;
        if !self.send_batch(out).await? {
            return Ok(false);
        }
        Ok(match wm {
            Some(wm) => self.advance_watermark(Watermark(wm)).await,
            None => true,
        })
    }

    /// End a bounded input: the final watermark, then end of stream. In a
    /// checkpointing job the source's state from now on says it finished.
    pub async fn finish(&self) {
        if let Some(c) = &self.checkpoint {
            c.handle.ended(finished_state()).await;
        }
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

    /// Count records kept with NULL in the fields that did not decode.
    pub fn add_nulled_records(&self, n: u64) {
        self.metrics.add_nulled(n);
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

    /// Read only the share of worker `worker` of `workers` (see
    /// [`crate::workers`]). `false` when it cannot split: worker 0 then
    /// reads all of it and the others nothing.
    fn share(&mut self, _worker: usize, _workers: usize) -> bool {
        false
    }

    /// Whether it can resume from a recorded position (see
    /// [`SourceContext::barrier_due`]); a job reading a source that cannot
    /// refuses checkpoints.
    fn checkpoints(&self) -> bool {
        false
    }

    /// Resume from the position `state` held at a checkpoint (before
    /// [`Source::run`]).
    fn restore(&mut self, _state: &State) -> Result<()> {
        Err(Error::Checkpoint(format!(
            "{} cannot resume from a checkpoint",
            self.name()
        )))
    }
}
