//! The barrier protocol in the run loop and the gather.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::{Barrier, Message, Result};
use tokio::sync::mpsc::{channel, Receiver, Sender};

use super::coordinator::Ack;
use super::state::{scalar, scalars};
use super::{KeyRange, Snapshots, State, TaskCheckpoint, TaskInfo};
use crate::exchange::Outbox;
use crate::gather::run_gather;
use crate::operator::{Operator, Output};
use crate::operators::test_util::batch_i64;
use crate::runtime::run_operator;

/// Counts the rows it passed on: its state.
struct Counter {
    schema: SchemaRef,
    rows: i64,
}

impl Operator for Counter {
    fn name(&self) -> &'static str {
        "Counter"
    }
    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
    fn snapshots(&self) -> Snapshots {
        Snapshots::Stateful
    }
    fn on_batch(&mut self, _input: usize, b: RecordBatch, out: &mut Output) -> Result<()> {
        self.rows += b.num_rows() as i64;
        out.push(b);
        Ok(())
    }
    fn snapshot(&mut self) -> Result<State> {
        Ok(State::new().with("meta", scalars(&[("rows", self.rows)])))
    }
    fn restore(&mut self, states: &[State], _keys: KeyRange) -> Result<()> {
        for s in states {
            self.rows += scalar(s.require("meta")?, "rows")?;
        }
        Ok(())
    }
}

fn rows(n: usize) -> Message {
    let v: Vec<i64> = (0..n as i64).collect();
    Message::Batch(batch_i64(&[("x", &v)]))
}

fn barrier(id: u64) -> Message {
    Message::Barrier(Barrier { checkpoint_id: id })
}

async fn send(tx: &Sender<Message>, msgs: Vec<Message>) {
    for m in msgs {
        tx.send(m).await.expect("sends");
    }
}

/// Everything that came out, as "rows N" / "barrier N" / "end".
async fn drain(mut rx: Receiver<Message>) -> Vec<String> {
    let mut out = vec![];
    while let Some(m) = rx.recv().await {
        out.push(match m {
            Message::Batch(b) => format!("rows {}", b.num_rows()),
            Message::Barrier(b) => format!("barrier {}", b.checkpoint_id),
            Message::EndOfStream => "end".into(),
            Message::Watermark(_) | Message::Idle => continue,
        });
    }
    out
}

fn info() -> TaskInfo {
    TaskInfo {
        ordinal: 0,
        instance: 0,
        instances: 1,
        kind: "Counter".into(),
    }
}

/// The snapshot at a barrier holds every row before it on every input and
/// none after; an input that ends while the other waits counts as having
/// delivered it (it used to leave the barrier pending forever).
#[tokio::test]
async fn barriers_align_and_an_ended_input_counts() {
    let schema = batch_i64(&[("x", &[])]).schema();
    let (handle, mut acks, _trigger): (TaskCheckpoint, _, _) = TaskCheckpoint::for_test(info());
    let (a_tx, a_rx) = channel(16);
    let (b_tx, b_rx) = channel(16);
    let (out_tx, out_rx) = channel(64);
    let op = Counter { schema, rows: 0 };
    // a: 1 row, the barrier, 4 rows; b: 2 rows, then it ends.
    send(
        &a_tx,
        vec![rows(1), barrier(1), rows(4), Message::EndOfStream],
    )
    .await;
    let task = tokio::spawn(run_operator(
        Box::new(op),
        vec![(0, a_rx), (1, b_rx)],
        Outbox::single(out_tx),
        Arc::default(),
        Some(handle),
    ));
    tokio::task::yield_now().await;
    send(&b_tx, vec![rows(2), Message::EndOfStream]).await;
    task.await.expect("joins").expect("runs");
    assert_eq!(
        drain(out_rx).await,
        ["rows 1", "rows 2", "barrier 1", "rows 4", "end"]
    );
    let Some(Ack::State { id, state, .. }) = acks.recv().await else {
        panic!("no state at the barrier");
    };
    assert_eq!(id, 1);
    assert_eq!(
        scalar(state.require("meta").expect("meta"), "rows").expect("rows"),
        3
    );
    assert!(matches!(acks.recv().await, Some(Ack::Ended { .. })));
}

/// The gather stops reading an instance after its barrier and lets the
/// barrier pass once every instance sent it, after every row before it
/// (including rows it held for ordering).
#[tokio::test]
async fn the_gather_aligns_and_flushes_at_a_barrier() {
    let (a_tx, a_rx) = channel(16);
    let (b_tx, b_rx) = channel(16);
    let (out_tx, out_rx) = channel(64);
    send(
        &a_tx,
        vec![rows(1), barrier(7), rows(5), Message::EndOfStream],
    )
    .await;
    let task = tokio::spawn(run_gather(
        vec![a_rx, b_rx],
        Outbox::single(out_tx),
        Arc::default(),
        true,
    ));
    tokio::task::yield_now().await;
    send(&b_tx, vec![rows(2), barrier(7), Message::EndOfStream]).await;
    task.await.expect("joins").expect("runs");
    let out = drain(out_rx).await;
    let at = out.iter().position(|m| m == "barrier 7").expect("barrier");
    let mut before: Vec<&String> = out[..at].iter().collect();
    before.sort();
    assert_eq!(before, ["rows 1", "rows 2"], "{out:?}");
    assert_eq!(&out[at + 1..], ["rows 5", "end"]);
}

/// A job resumed from an older checkpoint numbers its own after every
/// checkpoint in its directory, so they are the newest.
#[test]
fn resumed_jobs_number_after_every_checkpoint() {
    use super::coordinator::{first_id, CheckpointConfig};
    use super::shared::SharedFiles;
    use super::store;
    let dir = tempfile::tempdir().expect("temp dir");
    let job_dir = dir.path().join("j");
    for id in 1..=5 {
        store::write(&job_dir, id, "fp", false, &[], &mut SharedFiles::default()).expect("writes");
    }
    let chosen = store::load(&store::checkpoint_dir(&job_dir, 2)).expect("loads");
    let mut cfg = CheckpointConfig {
        job: "j".into(),
        job_dir: job_dir.clone(),
        interval: std::time::Duration::from_secs(1),
        timeout: std::time::Duration::from_secs(60),
        retained: 1,
        tolerable_failures: 0,
        fingerprint: "fp".into(),
        restored: Some(Arc::new(chosen)),
        siblings: vec![],
    };
    assert_eq!(first_id(&cfg), 6);
    cfg.restored = None;
    cfg.job_dir = dir.path().join("fresh");
    assert_eq!(first_id(&cfg), 1);
}
