//! Gathering the parallel instances of a node into one stream, in an order
//! that does not depend on timing.
//!
//! Each instance's stream is cut into *segments* by its watermarks: the rows
//! it sent before watermark `w` (and after its previous one) form the
//! segment closing at `w`. Segments are emitted in the order of (closing
//! watermark, instance index), and a segment only once no instance can
//! still send one that sorts before it. Every instance's own stream is
//! deterministic (it reads one ordered upstream), so the gathered stream is
//! too: a `.sql` file gives the same output, row for row, on every run at a
//! given parallelism. The output watermark is the minimum over instances of
//! the last watermark whose segment was emitted, so rows never fall behind
//! it.
//!
//! An unbounded query's gathers pass rows on as they arrive instead (its
//! order depends on timing anyway, and a stream without watermarks would
//! hold its rows until its end).
//!
//! Buffering is bounded by how far instances drift apart, which the bounded
//! channels upstream limit. Streams without watermarks only close segments
//! at their end; past [`MAX_BUFFERED_ROWS`] buffered rows the gather emits
//! what it holds in instance order (bounded memory over strict order).

use std::collections::VecDeque;
use std::mem::take;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use sluice_common::{Barrier, Message, Result, Watermark};
use tokio::sync::mpsc::Receiver;

use crate::exchange::Outbox;
use crate::metrics::NodeMetrics;
use crate::runtime::recv_any;

/// Rows held back for ordering before the gather gives up strict order.
pub const MAX_BUFFERED_ROWS: usize = 1 << 20;

struct Segment {
    batches: Vec<RecordBatch>,
    closes_at: Watermark,
}

struct Instance {
    rx: Receiver<Message>,
    open: Vec<RecordBatch>,
    closed: VecDeque<Segment>,
    /// Last watermark received.
    received: Watermark,
    /// Closing watermark of the last segment emitted.
    emitted: Watermark,
    ended: bool,
    /// Sent `Idle` and nothing since: it holds nothing back.
    idle: bool,
    /// Sent this barrier, which not every instance has sent yet: it is
    /// not read until then.
    blocked_on: Option<Barrier>,
}

impl Instance {
    /// Idle with nothing buffered.
    fn quiet(&self) -> bool {
        self.idle && self.closed.is_empty() && self.open.is_empty()
    }
}

/// Merge `inputs` (one per instance, in instance order) into `out`. With
/// `ordered` false, rows pass on as they arrive (an unbounded query, whose
/// order depends on timing anyway: segments of a stream without
/// watermarks would otherwise wait for its end); watermarks, barriers and
/// the end are combined the same way.
pub async fn run_gather(
    inputs: Vec<Receiver<Message>>,
    out: Outbox,
    metrics: Arc<NodeMetrics>,
    ordered: bool,
) -> Result<()> {
    let mut inst: Vec<Instance> = inputs
        .into_iter()
        .map(|rx| Instance {
            rx,
            open: vec![],
            closed: VecDeque::new(),
            received: Watermark::MIN,
            emitted: Watermark::MIN,
            ended: false,
            idle: false,
            blocked_on: None,
        })
        .collect();
    let mut forwarded = Watermark::MIN;
    let mut idle_out = false;
    let mut buffered = 0usize;
    let mut turn = 0;
    loop {
        let Some((i, msg)) = recv_any(&mut inst, &mut turn, |x| {
            (!x.ended && x.blocked_on.is_none()).then_some(&mut x.rx)
        })
        .await
        else {
            return Ok(()); // a producer failed or was cancelled
        };
        // Anything but `Idle` makes an instance active again.
        inst[i].idle = matches!(msg, Message::Idle);
        match msg {
            Message::Idle => {
                // Its rows so far close at its last watermark.
                if !inst[i].open.is_empty() {
                    let batches = take(&mut inst[i].open);
                    let closes_at = inst[i].received;
                    inst[i].closed.push_back(Segment { batches, closes_at });
                }
            }
            Message::Batch(b) if !ordered => {
                metrics.add_in(b.num_rows());
                metrics.add_out(b.num_rows());
                if !out.send_batch(b).await? {
                    return Ok(());
                }
            }
            Message::Batch(b) => {
                metrics.add_in(b.num_rows());
                buffered += b.num_rows();
                inst[i].open.push(b);
            }
            Message::Watermark(w) if !ordered => {
                // Its rows have all passed: the watermark counts at once.
                inst[i].received = w;
                inst[i].emitted = w;
            }
            Message::Watermark(w) => {
                let batches = take(&mut inst[i].open);
                inst[i].closed.push_back(Segment {
                    batches,
                    closes_at: w,
                });
                inst[i].received = w;
            }
            Message::Barrier(b) => inst[i].blocked_on = Some(b),
            Message::EndOfStream => {
                let batches = take(&mut inst[i].open);
                inst[i].closed.push_back(Segment {
                    batches,
                    closes_at: Watermark::MAX,
                });
                inst[i].received = Watermark::MAX;
                inst[i].ended = true;
            }
        }
        while let Some(j) = ready(&inst, buffered > MAX_BUFFERED_ROWS) {
            let segment = match inst[j].closed.pop_front() {
                Some(s) => s,
                None => Segment {
                    batches: take(&mut inst[j].open),
                    closes_at: inst[j].emitted,
                },
            };
            inst[j].emitted = inst[j].emitted.max(segment.closes_at);
            for batch in segment.batches {
                buffered -= batch.num_rows();
                metrics.add_out(batch.num_rows());
                if !out.send_batch(batch).await? {
                    return Ok(());
                }
            }
        }
        // With every instance quiet, the largest watermark any emitted.
        let active = inst.iter().filter(|x| !x.quiet()).map(|x| x.emitted).min();
        let wm = active.or_else(|| inst.iter().map(|x| x.emitted).max());
        if let Some(wm) = wm.filter(|&wm| wm > forwarded) {
            forwarded = wm;
            idle_out = false;
            metrics.set_watermark(wm);
            if !out.broadcast(Message::Watermark(wm)).await {
                return Ok(());
            }
        }
        // Every running instance idle: so is the gather.
        let idle = inst.iter().all(|x| x.ended || x.quiet()) && inst.iter().any(|x| x.idle);
        if idle && !idle_out {
            idle_out = true;
            if !out.broadcast(Message::Idle).await {
                return Ok(());
            }
        } else if !idle {
            idle_out = false;
        }
        // A barrier passes once every running instance sent it (each is
        // not read after its own), after every row sent before it: what is
        // buffered for ordering goes out first, in instance order.
        if let Some(b) = barrier_aligned(&inst) {
            for x in &mut inst {
                let segments = take(&mut x.closed);
                for segment in segments {
                    x.emitted = x.emitted.max(segment.closes_at);
                    for batch in segment.batches {
                        buffered -= batch.num_rows();
                        metrics.add_out(batch.num_rows());
                        if !out.send_batch(batch).await? {
                            return Ok(());
                        }
                    }
                }
                for batch in take(&mut x.open) {
                    buffered -= batch.num_rows();
                    metrics.add_out(batch.num_rows());
                    if !out.send_batch(batch).await? {
                        return Ok(());
                    }
                }
                x.blocked_on = None;
            }
            if !out.broadcast(Message::Barrier(b)).await {
                return Ok(());
            }
        }
        let drained = inst
            .iter()
            .all(|x| x.ended && x.closed.is_empty() && x.open.is_empty());
        if drained {
            let _ = out.broadcast(Message::EndOfStream).await;
            return Ok(());
        }
    }
}

/// The barrier every instance that has not ended has sent, if any.
fn barrier_aligned(inst: &[Instance]) -> Option<Barrier> {
    let b = inst.iter().find_map(|x| x.blocked_on)?;
    inst.iter()
        .all(|x| x.ended || x.blocked_on == Some(b))
        .then_some(b)
}

/// The instance whose front segment is next in (closing watermark, index)
/// order, if no instance can still send a segment sorting before it. With
/// `overflow`, the first instance holding any rows.
fn ready(inst: &[Instance], overflow: bool) -> Option<usize> {
    let next = inst
        .iter()
        .enumerate()
        .filter_map(|(j, x)| x.closed.front().map(|s| (s.closes_at, j)))
        .min();
    if let Some((first, j)) = next {
        // An instance without a closed segment closes its next one after
        // the last watermark it sent (watermarks only grow).
        let blocked = inst
            .iter()
            .any(|x| x.closed.is_empty() && !x.ended && !x.idle && x.received < first);
        if !blocked {
            return Some(j);
        }
    }
    if overflow {
        return inst
            .iter()
            .position(|x| !x.closed.is_empty() || !x.open.is_empty());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::batch_i64;
    use tokio::sync::mpsc::{channel, Sender};

    async fn feed(tx: &Sender<Message>, first: i64) {
        for m in [
            Message::Batch(batch_i64(&[("x", &[first])])),
            Message::Watermark(Watermark(10)),
            Message::Batch(batch_i64(&[("x", &[first + 1])])),
            Message::Watermark(Watermark(20)),
            Message::EndOfStream,
        ] {
            tx.send(m).await.expect("send");
        }
    }

    /// Whichever instance runs ahead, the output is instance 0's rows then
    /// instance 1's for each watermark, and each watermark once.
    #[tokio::test]
    async fn order_does_not_depend_on_which_instance_is_first() {
        for a_first in [true, false] {
            let (a_tx, a_rx) = channel(8);
            let (b_tx, b_rx) = channel(8);
            let (out_tx, mut out_rx) = channel(64);
            let task = tokio::spawn(run_gather(
                vec![a_rx, b_rx],
                Outbox::single(out_tx),
                Arc::default(),
                true,
            ));
            let (x, y) = if a_first {
                (&a_tx, &b_tx)
            } else {
                (&b_tx, &a_tx)
            };
            let base = |tx: &Sender<Message>| if tx.same_channel(&a_tx) { 100 } else { 200 };
            feed(x, base(x)).await;
            tokio::task::yield_now().await;
            feed(y, base(y)).await;
            task.await.expect("joins").expect("runs");
            let mut got = vec![];
            while let Some(m) = out_rx.recv().await {
                got.push(match m {
                    Message::Batch(b) => {
                        let v = b
                            .column(0)
                            .as_any()
                            .downcast_ref::<arrow::array::Int64Array>();
                        format!("{}", v.expect("int64").value(0))
                    }
                    Message::Watermark(w) => format!("wm{}", w.0),
                    Message::Barrier(_) => "barrier".into(),
                    Message::Idle => "idle".into(),
                    Message::EndOfStream => "end".into(),
                });
            }
            let want = [
                "100",
                "200",
                "wm10",
                "101",
                "201",
                "wm20",
                &format!("wm{}", i64::MAX),
                "end",
            ];
            assert_eq!(got, want, "a first: {a_first}");
        }
    }

    /// Unordered (an unbounded query): a row passes at once, even from a
    /// stream that never sends a watermark; the watermark is still the
    /// minimum over instances.
    #[tokio::test]
    async fn unordered_rows_pass_without_waiting() {
        let (a_tx, a_rx) = channel(8);
        let (b_tx, b_rx) = channel(8);
        let (out_tx, mut out_rx) = channel(64);
        let task = tokio::spawn(run_gather(
            vec![a_rx, b_rx],
            Outbox::single(out_tx),
            Arc::default(),
            false,
        ));
        a_tx.send(Message::Batch(batch_i64(&[("x", &[1])])))
            .await
            .expect("send");
        let first = out_rx.recv().await.expect("a row");
        assert!(matches!(first, Message::Batch(_)), "{first:?}");
        a_tx.send(Message::Watermark(Watermark(5)))
            .await
            .expect("send");
        b_tx.send(Message::Watermark(Watermark(3)))
            .await
            .expect("send");
        let wm = out_rx.recv().await.expect("a watermark");
        assert!(matches!(wm, Message::Watermark(Watermark(3))), "{wm:?}");
        drop((a_tx, b_tx));
        task.await.expect("joins").expect("runs");
    }
}
