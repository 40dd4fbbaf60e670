//! The [`Operator`] trait: one synchronous hook per message kind.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::{Barrier, Error, Result, Watermark};

use crate::checkpoint::{KeyRange, Snapshots, State};

/// Where an operator puts what it produces while handling one message.
/// The run loop sends it downstream after the hook returns.
#[derive(Debug, Default)]
pub struct Output {
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) late_rows: u64,
    pub(crate) matched_rows: u64,
    pub(crate) pending_watermark: Option<Watermark>,
}

impl Output {
    /// Emit a batch (empty batches are dropped).
    pub fn push(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.batches.push(batch);
        }
    }

    /// Count rows dropped for being late.
    pub fn add_late(&mut self, n: u64) {
        self.late_rows += n;
    }

    /// Emit watermark `wm` after the batches (an operator that makes its
    /// own time, such as processing time).
    pub fn emit_watermark(&mut self, wm: Watermark) {
        self.pending_watermark = Some(self.pending_watermark.map_or(wm, |p| p.max(wm)));
    }

    /// Count pairs of rows a join matched (passing all its conditions).
    pub fn add_matched(&mut self, n: usize) {
        self.matched_rows += n as u64;
    }

    /// Batches emitted so far (for tests).
    pub fn take_batches(&mut self) -> Vec<RecordBatch> {
        std::mem::take(&mut self.batches)
    }
}

/// A streaming operator.
///
/// The run loop ([`crate::runtime`]) combines the watermarks of all inputs
/// (minimum) before calling [`Operator::on_watermark`], aligns barriers before
/// [`Operator::on_barrier`] and calls [`Operator::on_end`] once every input
/// ended. Hooks never block and do no I/O.
pub trait Operator: Send + 'static {
    /// Short name, e.g. `WindowAggregate`.
    fn name(&self) -> &'static str;

    /// One line for EXPLAIN: name and parameters.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// Schema of the batches this operator emits.
    fn output_schema(&self) -> SchemaRef;

    /// Handle a batch from input `input`.
    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()>;

    /// The combined input watermark advanced to `wm`. Emit what it completes;
    /// return the watermark to forward (operators may hold it back).
    fn on_watermark(&mut self, wm: Watermark, _out: &mut Output) -> Result<Option<Watermark>> {
        Ok(Some(wm))
    }

    /// Input `input`'s watermark (the minimum over its instances) advanced
    /// to `wm`; called before [`Operator::on_watermark`]. Operators that
    /// hold each input's rows for their own time (interval joins) act on
    /// it; a returned watermark is forwarded.
    fn on_input_watermark(
        &mut self,
        _input: usize,
        _wm: Watermark,
        _out: &mut Output,
    ) -> Result<Option<Watermark>> {
        Ok(None)
    }

    /// Whether input `input` should not be read for now (a lookup join
    /// reads its table before its stream). The run loop leaves it waiting,
    /// so its producer is held back by the bounded channel.
    fn is_paused(&self, _input: usize) -> bool {
        false
    }

    /// When the operator wants [`Operator::on_timer`] called if no message
    /// arrives before (processing time).
    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }

    /// The [`Operator::deadline`] passed with no message.
    fn on_timer(&mut self, _out: &mut Output) -> Result<()> {
        Ok(())
    }

    /// A barrier arrived on every input: emit what must go out before it
    /// (the run loop then takes [`Operator::snapshot`] when the job
    /// checkpoints).
    fn on_barrier(&mut self, _barrier: Barrier, _out: &mut Output) -> Result<()> {
        Ok(())
    }

    /// How the operator takes part in checkpoints. Operators that keep
    /// state across messages say [`Snapshots::Stateful`] and implement
    /// [`Operator::snapshot`] and [`Operator::restore`]; the default refuses
    /// checkpoints, so a stateful operator never loses state silently.
    fn snapshots(&self) -> Snapshots {
        Snapshots::Unsupported
    }

    /// Inputs read again in full whenever the job starts or resumes (a
    /// lookup join's table): their subtrees take no part in checkpoints.
    fn replayed_inputs(&self) -> Vec<usize> {
        Vec::new()
    }

    /// Its state at a barrier: everything the input before the barrier left
    /// and nothing after. Keyed state keeps its key columns so a restore
    /// at another parallelism can route it ([`KeyRange`]).
    fn snapshot(&mut self) -> Result<State> {
        Ok(State::new())
    }

    /// Take up the state `states` held (every instance's at the checkpoint,
    /// when the node had several), keeping the keys of `keys`. Called once,
    /// before the first message.
    fn restore(&mut self, states: &[State], _keys: KeyRange) -> Result<()> {
        if states.iter().all(State::is_empty) {
            return Ok(());
        }
        Err(Error::Checkpoint(format!(
            "{} cannot restore checkpointed state",
            self.name()
        )))
    }

    /// Every input ended.
    fn on_end(&mut self, _out: &mut Output) -> Result<()> {
        Ok(())
    }

    /// Keys and approximate bytes of the operator's state, for operators
    /// that keep state per key.
    fn state_size(&self) -> Option<(usize, usize)> {
        None
    }

    /// Rows kept per input, for operators that keep each input's rows
    /// (joins; EXPLAIN ANALYZE shows them as `state_rows=[left, right]`).
    fn state_rows(&self) -> Option<[usize; 2]> {
        None
    }

    /// True once the operator needs no more input (e.g. a satisfied LIMIT);
    /// the run loop then ends the stream downstream.
    fn is_finished(&self) -> bool {
        false
    }
}
