//! Run loops: one tokio task per node, bounded channels between them.
//!
//! Protocol on every edge: `Batch*`, `Watermark`s that never go backwards,
//! `Barrier`s, and finally `EndOfStream`. A multi-input operator sees the
//! minimum of its inputs' watermarks (an ended input counts as `+inf`), takes
//! a barrier once it arrived on every input (an input that delivered the
//! barrier is not read again until then) and ends when all inputs ended.
//! An input that closes without `EndOfStream` means its producer failed or
//! was cancelled: the task stops quietly and the failure is reported by the
//! producer's own task. An operator with a [`Operator::deadline`] is woken
//! then when no message came first.
//!
//! An input that sent [`Message::Idle`] is left out of the minimum until
//! it sends a batch or a watermark again, so a quiet input (a Kafka topic
//! with no traffic) does not hold back time combined with busy ones. An
//! operator input whose channels are all idle follows the combined
//! watermark; when every input is idle, the combined watermark is the
//! largest any of them sent (as Flink's `StatusWatermarkValve` does), and
//! the operator tells its consumers it is idle too.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use sluice_common::{Barrier, Message, Result, Watermark};
use tokio::sync::mpsc::Receiver;

use crate::checkpoint::{State, TaskCheckpoint};
use crate::exchange::Outbox;
use crate::metrics::NodeMetrics;
use crate::operator::{Operator, Output};
use crate::sink::{Sink, FINAL};

/// Capacity of every edge, in messages (batches of up to a few thousand rows).
pub const CHANNEL_CAPACITY: usize = 8;

/// What to do after a message.
enum Flow {
    Continue,
    Stop,
}

struct InputState {
    /// The operator's input this channel belongs to (an input with several
    /// instances arrives on several channels).
    input: usize,
    rx: Receiver<Message>,
    watermark: Watermark,
    ended: bool,
    /// Sent `Idle` and nothing since.
    idle: bool,
    blocked_on: Option<Barrier>,
}

impl InputState {
    /// The watermark this channel holds the minimum to (`None`: idle).
    fn holds(&self) -> Option<Watermark> {
        if self.ended {
            Some(Watermark::MAX)
        } else {
            (!self.idle).then_some(self.watermark)
        }
    }
}

/// Rows a batch adds to the result: all of an append-only batch; of a
/// changelog, its inserts minus its retractions.
fn net_rows(batch: &arrow::record_batch::RecordBatch) -> i64 {
    match sluice_common::changelog::ops(batch) {
        Some(ops) => ops
            .values()
            .iter()
            .map(|&c| sluice_common::changelog::sign_of_code(c))
            .sum(),
        None => batch.num_rows() as i64,
    }
}

/// Reports an operator's state size to its node's counters now and then
/// (as the change since its last report, so instances add up).
#[derive(Default)]
struct StateReport {
    keys: i64,
    bytes: i64,
    rows: [i64; 2],
    calls: u32,
}

impl StateReport {
    fn update(&mut self, op: &dyn Operator, metrics: &NodeMetrics, now: bool) {
        self.calls += 1;
        if !now && self.calls % 32 != 1 {
            return;
        }
        if let Some((keys, bytes)) = op.state_size() {
            let (keys, bytes) = (keys as i64, bytes as i64);
            metrics.add_state(keys - self.keys, bytes - self.bytes);
            (self.keys, self.bytes) = (keys, bytes);
        }
        if let Some([l, r]) = op.state_rows() {
            let rows = [l as i64, r as i64];
            metrics.add_state_rows([rows[0] - self.rows[0], rows[1] - self.rows[1]]);
            self.rows = rows;
        }
    }
}

/// Drive `op` until all inputs end or the output closes. Each channel is
/// tagged with the input it belongs to. With `checkpoint`, the operator's
/// state goes to the job's checkpoints at each barrier.
pub async fn run_operator(
    mut op: Box<dyn Operator>,
    inputs: Vec<(usize, Receiver<Message>)>,
    out: Outbox,
    metrics: Arc<NodeMetrics>,
    checkpoint: Option<TaskCheckpoint>,
) -> Result<()> {
    let mut inputs: Vec<InputState> = inputs
        .into_iter()
        .map(|(input, rx)| InputState {
            input,
            rx,
            watermark: Watermark::MIN,
            ended: false,
            idle: false,
            blocked_on: None,
        })
        .collect();
    // Told the consumers this operator is idle (and nothing sent since).
    let mut idle_out = false;
    let mut current = Watermark::MIN;
    let width = inputs.iter().map(|i| i.input + 1).max().unwrap_or(0);
    let mut per_input = vec![Watermark::MIN; width];
    let mut output = Output::default();
    let mut turn = 0;
    let mut state = StateReport::default();
    loop {
        let paused: Vec<bool> = (0..width).map(|i| op.is_paused(i)).collect();
        let received = match op.deadline() {
            Some(at) => tokio::select! {
                biased;
                m = next_message(&mut inputs, &mut turn, &paused) => Some(m),
                () = tokio::time::sleep_until(at.into()) => None,
            },
            None => Some(next_message(&mut inputs, &mut turn, &paused).await),
        };
        let Some(received) = received else {
            op.on_timer(&mut output)?;
            if !send_output(&mut output, &out, &metrics, &mut idle_out).await? {
                return Ok(());
            }
            continue;
        };
        let Some((idx, msg)) = received else {
            return Ok(()); // an upstream failed or was cancelled
        };
        // Anything but `Idle` makes an input active again.
        inputs[idx].idle = matches!(msg, Message::Idle);
        let flow = match msg {
            Message::Batch(batch) => {
                metrics.add_in(batch.num_rows());
                op.on_batch(inputs[idx].input, batch, &mut output)?;
                Flow::Continue
            }
            Message::Watermark(wm) => {
                inputs[idx].watermark = inputs[idx].watermark.max(wm);
                advance(&mut *op, &inputs, &mut per_input, &mut current, &mut output)?;
                Flow::Continue
            }
            Message::Idle => {
                advance(&mut *op, &inputs, &mut per_input, &mut current, &mut output)?;
                Flow::Continue
            }
            Message::Barrier(b) => {
                inputs[idx].blocked_on = Some(b);
                Flow::Continue
            }
            Message::EndOfStream => {
                inputs[idx].ended = true;
                inputs[idx].watermark = Watermark::MAX;
                advance(&mut *op, &inputs, &mut per_input, &mut current, &mut output)?;
                if inputs.iter().all(|i| i.ended) {
                    op.on_end(&mut output)?;
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            }
        };
        // A barrier is taken once it arrived on every input that has not
        // ended (an input ending while others wait counts as arrived).
        if let Some(b) = aligned(&inputs) {
            op.on_barrier(b, &mut output)?;
            if !flush(&mut output, &out, &metrics).await? {
                return Ok(());
            }
            if let Some(c) = &checkpoint {
                c.ack(b.checkpoint_id, op.snapshot()?).await;
            }
            inputs.iter_mut().for_each(|i| i.blocked_on = None);
            if !out.broadcast(Message::Barrier(b)).await {
                return Ok(());
            }
        }
        metrics.add_late(std::mem::take(&mut output.late_rows));
        metrics.add_matched(std::mem::take(&mut output.matched_rows));
        state.update(&*op, &metrics, !matches!(flow, Flow::Continue));
        let finished = op.is_finished();
        if !send_output(&mut output, &out, &metrics, &mut idle_out).await? {
            return Ok(());
        }
        // Every running input idle, and no timer of its own to act on.
        let all_idle = inputs.iter().all(|i| i.ended || i.idle) && inputs.iter().any(|i| i.idle);
        if all_idle && !idle_out && op.deadline().is_none() {
            idle_out = true;
            if !out.broadcast(Message::Idle).await {
                return Ok(());
            }
        }
        if finished || matches!(flow, Flow::Stop) {
            if let Some(c) = &checkpoint {
                c.ended(op.snapshot()?).await;
            }
            let _ = out.broadcast(Message::EndOfStream).await;
            return Ok(());
        }
    }
}

/// The barrier every input that has not ended has delivered, if any.
fn aligned(inputs: &[InputState]) -> Option<Barrier> {
    let b = inputs.iter().find_map(|i| i.blocked_on)?;
    inputs
        .iter()
        .all(|i| i.ended || i.blocked_on == Some(b))
        .then_some(b)
}

/// Recompute each input's watermark and the combined one; call the
/// operator for each that advanced.
fn advance(
    op: &mut dyn Operator,
    inputs: &[InputState],
    per_input: &mut [Watermark],
    current: &mut Watermark,
    output: &mut Output,
) -> Result<()> {
    // Idle channels are left out.
    // With every channel idle, the largest watermark any sent (Flink's
    // StatusWatermarkValve): nothing is coming from any of them.
    let combined = if inputs.is_empty() {
        Some(Watermark::MAX)
    } else {
        let active = inputs.iter().filter_map(InputState::holds).min();
        active.or_else(|| inputs.iter().map(|i| i.watermark).max())
    };
    for (input, seen) in per_input.iter_mut().enumerate() {
        let mut channels = inputs.iter().filter(|i| i.input == input).peekable();
        let wm = if channels.peek().is_none() {
            Some(Watermark::MAX)
        } else {
            // An input whose channels are all idle follows the combined one.
            channels.filter_map(InputState::holds).min().or(combined)
        };
        let Some(wm) = wm else {
            continue;
        };
        if wm > *seen {
            *seen = wm;
            if let Some(forward) = op.on_input_watermark(input, wm, output)? {
                output.pending_watermark = Some(forward);
            }
        }
    }
    let Some(combined) = combined else {
        return Ok(());
    };
    if combined > *current {
        *current = combined;
        if let Some(forward) = op.on_watermark(combined, output)? {
            output.pending_watermark = Some(forward);
        }
    }
    Ok(())
}

/// Send what the operator produced: its batches, then its watermark.
/// Sending anything ends its idleness. `false` when the output closed.
async fn send_output(
    output: &mut Output,
    out: &Outbox,
    metrics: &NodeMetrics,
    idle_out: &mut bool,
) -> Result<bool> {
    if !output.batches.is_empty() {
        *idle_out = false;
    }
    if !flush(output, out, metrics).await? {
        return Ok(false);
    }
    if let Some(wm) = output.pending_watermark.take() {
        *idle_out = false;
        metrics.set_watermark(wm);
        if !out.broadcast(Message::Watermark(wm)).await {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Send the batches an operator produced. `false` when the output closed.
async fn flush(output: &mut Output, out: &Outbox, metrics: &NodeMetrics) -> Result<bool> {
    for batch in output.batches.drain(..) {
        metrics.add_out(batch.num_rows());
        if !out.send_batch(batch).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Receive from whichever open, unblocked input has a message (inputs the
/// operator paused are not read: they wait, with backpressure).
async fn next_message(
    inputs: &mut [InputState],
    turn: &mut usize,
    paused: &[bool],
) -> Option<(usize, Message)> {
    if inputs.len() == 1 && !paused.first().copied().unwrap_or(false) {
        return inputs[0].rx.recv().await.map(|m| (0, m));
    }
    recv_any(inputs, turn, |i| {
        let paused = paused.get(i.input).copied().unwrap_or(false);
        (!i.ended && i.blocked_on.is_none() && !paused).then_some(&mut i.rx)
    })
    .await
}

/// Receive from whichever of `items` has a message (`rx` gives an item's
/// channel, or `None` to skip it), starting after the item read last time
/// so a busy one cannot starve the others. `None` when a channel closed
/// without `EndOfStream`.
pub(crate) async fn recv_any<T>(
    items: &mut [T],
    turn: &mut usize,
    rx: impl Fn(&mut T) -> Option<&mut Receiver<Message>>,
) -> Option<(usize, Message)> {
    let n = items.len();
    poll_fn(|cx| {
        for k in 0..n {
            let i = (*turn + k) % n;
            let Some(r) = rx(&mut items[i]) else {
                continue;
            };
            match r.poll_recv(cx) {
                Poll::Ready(Some(m)) => {
                    *turn = (i + 1) % n;
                    return Poll::Ready(Some((i, m)));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

/// Drive a sink until its input ends. With `checkpoint` (the job's name
/// and the checkpoint it resumes from, if any) it commits in two phases:
/// pre-commit at each barrier, commit when the checkpoint completes, and at
/// the end a last checkpoint before the final commit.
pub async fn run_sink(
    mut sink: Box<dyn Sink>,
    mut input: Receiver<Message>,
    metrics: Arc<NodeMetrics>,
    checkpoint: Option<(TaskCheckpoint, String, Option<State>)>,
) -> Result<()> {
    let Some((handle, job, restored)) = checkpoint else {
        return run_plain_sink(sink, input, metrics).await;
    };
    sink.start_checkpoints(&job, restored.as_ref()).await?;
    let mut completed = handle.completed();
    loop {
        let deadline = sink.deadline();
        let msg = tokio::select! {
            biased;
            changed = completed.changed() => {
                if changed.is_ok() {
                    let id = *completed.borrow_and_update();
                    sink.commit(id).await?;
                    handle.committed(id);
                }
                continue;
            }
            () = sleep_until_some(deadline) => {
                sink.on_deadline().await?;
                continue;
            }
            msg = input.recv() => msg,
        };
        let Some(msg) = msg else {
            return Ok(());
        };
        match msg {
            Message::Barrier(b) => {
                let state = sink.pre_commit(b.checkpoint_id).await?;
                handle.ack(b.checkpoint_id, state).await;
            }
            Message::EndOfStream => {
                let state = sink.pre_commit(FINAL).await?;
                let Some(id) = handle.finish(state).await else {
                    return Err(sluice_common::Error::Checkpoint(
                        "the job's last checkpoint did not complete; its last rows stay \
                         uncommitted"
                            .into(),
                    ));
                };
                return sink.commit_final(id).await;
            }
            other => write_message(&mut *sink, other, &metrics).await?,
        }
    }
}

/// A sink without checkpoints: write until the end, then finish.
async fn run_plain_sink(
    mut sink: Box<dyn Sink>,
    mut input: Receiver<Message>,
    metrics: Arc<NodeMetrics>,
) -> Result<()> {
    loop {
        let deadline = sink.deadline();
        let msg = tokio::select! {
            () = sleep_until_some(deadline) => {
                sink.on_deadline().await?;
                continue;
            }
            msg = input.recv() => msg,
        };
        let Some(msg) = msg else {
            return Ok(());
        };
        if matches!(msg, Message::EndOfStream) {
            return sink.finish().await;
        }
        write_message(&mut *sink, msg, &metrics).await?;
    }
}

/// Sleep until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A batch or watermark into a sink (barriers and idleness are not its
/// business).
async fn write_message(sink: &mut dyn Sink, msg: Message, metrics: &NodeMetrics) -> Result<()> {
    match msg {
        Message::Batch(b) => {
            metrics.add_in(b.num_rows());
            metrics.add_out(b.num_rows());
            metrics.add_net(net_rows(&b));
            sink.write(b).await
        }
        Message::Watermark(wm) => {
            metrics.set_watermark(wm);
            sink.on_watermark(wm).await
        }
        Message::Barrier(_) | Message::Idle | Message::EndOfStream => Ok(()),
    }
}
