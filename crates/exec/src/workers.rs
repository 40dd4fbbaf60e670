//! One query spread over several processes ("workers").
//!
//! Every worker plans the same query into the same graph and runs all of
//! it on its share of the input: a source that splits (Kafka: partition `p`
//! goes to worker `p mod N`) reads its share, any other source is read by
//! worker 0 alone. Edges that stay inside a worker are the forward ones;
//! every other edge ([`Exchange::crosses_workers`]) is cut in two:
//! - in each worker a *writer* receives the edge's local producers
//!   (gathered into one stream) and sends each row to the worker owning it
//!   ([`WorkerRoute`]), and every watermark, idle mark and end of stream to
//!   every worker;
//! - in each worker a *reader* receives what every writer sent it, combines
//!   the writers' watermarks by minimum ([`WriterProgress`]) exactly as an
//!   operator combines its inputs', and routes the rows to the local
//!   instances of the consumer.
//!
//! So a keyed operator sees every row of its keys, and the watermark it
//! sees is the minimum over all workers' producers, as in one process. The
//! transport (Kafka topics) is the connector's: this module only holds the
//! contract ([`Workers`]) and the parts that do not depend on it.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::{Message, Result, Watermark};
use tokio::sync::mpsc::Receiver;

use crate::checkpoint::keys::instance_of;
use crate::checkpoint::CheckpointId;
use crate::exchange::{hash_partition, Exchange};
use crate::plan::NodeId;
use crate::source::Source;

/// Where a crossing edge's rows go.
#[derive(Debug, Clone)]
pub enum WorkerRoute {
    /// By the key group of these key expressions: worker `w` of `N` owns
    /// the key groups `g` with `g * N / KEY_GROUPS == w` (so its local
    /// instances own sub-ranges of them, whatever its parallelism).
    Hash(Vec<Arc<dyn PhysicalExpr>>),
    /// Every row to every worker.
    Broadcast,
    /// Every row to worker 0.
    Global,
}

impl WorkerRoute {
    /// The route of `exchange` (`None` for a forward edge, which stays in
    /// the worker).
    pub fn of(exchange: &Exchange) -> Option<Self> {
        match exchange {
            Exchange::Forward => None,
            Exchange::Hash(keys) => Some(WorkerRoute::Hash(keys.clone())),
            Exchange::Broadcast => Some(WorkerRoute::Broadcast),
            Exchange::Global => Some(WorkerRoute::Global),
        }
    }

    /// Split `batch` by destination worker (of `workers`).
    pub fn split(&self, batch: RecordBatch, workers: usize) -> Result<Vec<(usize, RecordBatch)>> {
        if batch.num_rows() == 0 {
            return Ok(vec![]);
        }
        match self {
            WorkerRoute::Global => Ok(vec![(0, batch)]),
            WorkerRoute::Broadcast => Ok((0..workers).map(|w| (w, batch.clone())).collect()),
            WorkerRoute::Hash(_) if workers == 1 => Ok(vec![(0, batch)]),
            WorkerRoute::Hash(keys) => {
                hash_partition(batch, keys, workers, |h| instance_of(h, workers))
            }
        }
    }
}

/// The repartition topic of input `input` of node `node` in job
/// `pipeline`: `<pipeline>-<node>-repartition`, with `-<input>` before
/// `-repartition` for inputs after the first.
pub fn topic_name(pipeline: &str, node: NodeId, input: usize) -> String {
    if input == 0 {
        format!("{pipeline}-{node}-repartition")
    } else {
        format!("{pipeline}-{node}-{input}-repartition")
    }
}

/// A job planned to run on several workers, for EXPLAIN.
#[derive(Debug, Clone)]
pub struct Across {
    /// Workers of the job.
    pub workers: usize,
    /// `pipeline.name` (names the topics).
    pub pipeline: String,
}

impl WorkerRoute {
    /// How EXPLAIN says where rows go.
    pub fn describe(&self) -> String {
        match self {
            WorkerRoute::Hash(keys) => {
                let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                format!("hash by [{}]", keys.join(", "))
            }
            WorkerRoute::Broadcast => "to every worker".into(),
            WorkerRoute::Global => "to worker 0".into(),
        }
    }
}

/// One edge that crosses workers: input `input` of node `node`.
#[derive(Debug, Clone)]
pub struct Crossing {
    /// The consuming node's plan id (the same in every worker).
    pub node: NodeId,
    /// Which of its inputs.
    pub input: usize,
    /// How many inputs the node has.
    pub inputs: usize,
    /// Where rows go.
    pub route: WorkerRoute,
    /// Schema of the rows.
    pub schema: SchemaRef,
}

/// Sends a crossing edge's local stream to the workers.
#[async_trait]
pub trait EdgeWriter: Send {
    /// Send every message of `input` (batches routed by the edge's route,
    /// everything else to every worker) until its end of stream, then
    /// make sure all of it was delivered.
    async fn run(self: Box<Self>, input: Receiver<Message>) -> Result<()>;
}

/// What a worker last said of its share of the job (SHOW JOBS).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerStatus {
    /// The worker's index.
    pub worker: usize,
    /// `running`, or `ended` once its job ended or stopped.
    pub state: String,
    /// Milliseconds since its job started.
    pub elapsed_ms: u64,
    /// Rows its sources read.
    pub rows_in: u64,
    /// Rows it wrote to its sink.
    pub rows_out: u64,
    /// Its sink's watermark (milliseconds; `i64::MIN`: none yet).
    pub watermark: i64,
    /// The Kafka partitions it reads, with the records not yet read.
    pub lag: Vec<(i32, i64)>,
    /// Its last completed checkpoint, and how long before the report it
    /// completed (milliseconds).
    pub checkpoint: Option<(CheckpointId, u64)>,
    /// How long ago it said so (set by the reader of the statuses).
    pub age_ms: u64,
}

/// The workers of a job: this one's place among them and the transport.
pub trait Workers: Send + Sync + std::fmt::Debug {
    /// This worker's index, below [`Workers::count`].
    fn index(&self) -> usize;

    /// Workers of the job.
    fn count(&self) -> usize;

    /// The writer of `edge` in this worker.
    fn writer(&self, edge: &Crossing) -> Result<Box<dyn EdgeWriter>>;

    /// The reader of `edge` in this worker: a source of what every worker
    /// sent this one, ending when every writer ended.
    fn reader(&self, edge: &Crossing) -> Result<Box<dyn Source>>;

    /// A line for EXPLAIN saying where `edge` travels.
    fn describe(&self, edge: &Crossing) -> String;

    /// Tell the other workers how this one is doing (without waiting).
    fn publish(&self, status: &WorkerStatus);

    /// What every worker of the run said last, by index.
    fn statuses(&self) -> Vec<WorkerStatus>;

    /// Becomes `Some(k)` when worker `k` started again while this run goes
    /// on: the run cannot complete (its rows from `k` are gone) and rolls
    /// back to the last checkpoint every worker holds.
    fn restarted(&self) -> tokio::sync::watch::Receiver<Option<usize>>;
}

/// What a reader knows of each writer: its watermark, whether it is idle
/// or ended. The reader's watermark is the minimum over the writers that
/// are neither (a writer not heard from yet holds it back), as
/// [`crate::runtime`] combines an operator's channels.
#[derive(Debug, Clone)]
pub struct WriterProgress {
    writers: Vec<Writer>,
}

#[derive(Debug, Clone, Copy)]
struct Writer {
    watermark: Watermark,
    idle: bool,
    ended: bool,
}

impl WriterProgress {
    /// `n` writers, none heard from.
    pub fn new(n: usize) -> Self {
        let w = Writer {
            watermark: Watermark::MIN,
            idle: false,
            ended: false,
        };
        WriterProgress {
            writers: vec![w; n],
        }
    }

    /// Writer `w` sent watermark `wm` (it is busy again).
    pub fn watermark(&mut self, w: usize, wm: Watermark) {
        if let Some(s) = self.writers.get_mut(w) {
            s.watermark = s.watermark.max(wm);
            s.idle = false;
        }
    }

    /// Writer `w` sent rows (it is busy again).
    pub fn rows(&mut self, w: usize) {
        if let Some(s) = self.writers.get_mut(w) {
            s.idle = false;
        }
    }

    /// Writer `w` said it is idle.
    pub fn idle(&mut self, w: usize) {
        if let Some(s) = self.writers.get_mut(w) {
            s.idle = true;
        }
    }

    /// Writer `w` ended.
    pub fn end(&mut self, w: usize) {
        if let Some(s) = self.writers.get_mut(w) {
            s.ended = true;
            s.watermark = Watermark::MAX;
        }
    }

    /// Whether every writer ended.
    pub fn all_ended(&self) -> bool {
        self.writers.iter().all(|w| w.ended)
    }

    /// Whether every writer still running is idle (and one is).
    pub fn all_idle(&self) -> bool {
        let mut running = self.writers.iter().filter(|w| !w.ended).peekable();
        running.peek().is_some() && running.all(|w| w.idle)
    }

    /// The combined watermark: the minimum over busy writers; with every
    /// running writer idle, the largest any sent (as Flink's valve).
    pub fn combined(&self) -> Watermark {
        let busy = self.writers.iter().filter(|w| w.ended || !w.idle);
        match busy.map(|w| w.watermark).min() {
            Some(wm) if !self.all_idle() => wm,
            _ => self
                .writers
                .iter()
                .filter(|w| !w.ended)
                .map(|w| w.watermark)
                .max()
                .unwrap_or(Watermark::MAX),
        }
    }
}

/// Barrier alignment over the writers of one reader (Flink's aligned
/// checkpoints, with writers for channels): once writer `w`'s barrier `b`
/// came, what `w` sends next is held until `b` came from every writer that
/// has not ended; then the barrier goes on and the held items follow, in
/// each writer's order. Items are held in memory: a writer runs at most
/// one checkpoint ahead (its worker's next checkpoint needs this one).
#[derive(Debug)]
pub struct Alignment<T> {
    at: Vec<Option<CheckpointId>>,
    ended: Vec<bool>,
    held: Vec<VecDeque<T>>,
}

impl<T> Alignment<T> {
    /// Alignment over `n` writers.
    pub fn new(n: usize) -> Self {
        Alignment {
            at: vec![None; n],
            ended: vec![false; n],
            held: (0..n).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Whether what writer `w` sends must wait (it is at a barrier, or
    /// items of it wait already).
    pub fn is_held(&self, w: usize) -> bool {
        self.at.get(w).is_some_and(Option::is_some)
            || self.held.get(w).is_some_and(|h| !h.is_empty())
    }

    /// Keep `item` of writer `w` until it is released.
    pub fn hold(&mut self, w: usize, item: T) {
        if let Some(h) = self.held.get_mut(w) {
            h.push_back(item);
        }
    }

    /// Writer `w` sent barrier `id`: the barrier to pass on, when every
    /// running writer is at it now (and all are released).
    pub fn barrier(&mut self, w: usize, id: CheckpointId) -> Option<CheckpointId> {
        if let Some(a) = self.at.get_mut(w) {
            *a = Some(id);
        }
        self.aligned()
    }

    /// Writer `w` ended: the barrier to pass on, if the others were only
    /// waiting for it.
    pub fn end(&mut self, w: usize) -> Option<CheckpointId> {
        if let Some(e) = self.ended.get_mut(w) {
            *e = true;
        }
        self.aligned()
    }

    fn aligned(&mut self) -> Option<CheckpointId> {
        let id = self.at.iter().flatten().copied().next()?;
        let all = (0..self.at.len()).all(|w| self.ended[w] || self.at[w] == Some(id));
        if !all {
            return None;
        }
        self.at.iter_mut().for_each(|a| *a = None);
        Some(id)
    }

    /// The next held item of a writer no longer at a barrier.
    pub fn next_released(&mut self) -> Option<(usize, T)> {
        let w = (0..self.held.len()).find(|&w| self.at[w].is_none() && !self.held[w].is_empty())?;
        self.held[w].pop_front().map(|item| (w, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::batch_i64;
    use datafusion::physical_expr::expressions::col;

    #[test]
    fn combined_watermark_is_the_minimum_over_busy_writers() {
        let mut p = WriterProgress::new(3);
        assert_eq!(p.combined(), Watermark::MIN);
        p.watermark(0, Watermark(10));
        p.watermark(1, Watermark(5));
        assert_eq!(p.combined(), Watermark::MIN, "writer 2 not heard from");
        p.watermark(2, Watermark(7));
        assert_eq!(p.combined(), Watermark(5));
        p.idle(1);
        assert_eq!(p.combined(), Watermark(7));
        p.end(2);
        assert_eq!(p.combined(), Watermark(10));
        p.idle(0);
        assert!(p.all_idle());
        assert_eq!(p.combined(), Watermark(10), "all idle: the largest");
        p.rows(1);
        assert_eq!(p.combined(), Watermark(5));
        p.end(0);
        p.end(1);
        assert!(p.all_ended());
        assert_eq!(p.combined(), Watermark::MAX);
    }

    #[test]
    fn barriers_align_over_writers_and_held_items_follow_in_order() {
        let mut a: Alignment<&str> = Alignment::new(3);
        assert_eq!(a.barrier(0, 5), None);
        assert!(a.is_held(0) && !a.is_held(1));
        a.hold(0, "0a");
        a.hold(0, "0b");
        assert_eq!(a.next_released(), None, "writer 0 waits at barrier 5");
        assert_eq!(a.barrier(1, 5), None);
        a.hold(1, "1a");
        // Writer 2 ends instead of sending the barrier: aligned.
        assert_eq!(a.end(2), Some(5));
        let mut rest = vec![];
        while let Some(x) = a.next_released() {
            rest.push(x);
        }
        assert_eq!(rest, vec![(0, "0a"), (0, "0b"), (1, "1a")]);
        // A writer at the next barrier holds only its own items.
        assert_eq!(a.barrier(1, 6), None);
        assert!(a.is_held(1) && !a.is_held(0));
        assert_eq!(a.barrier(0, 6), Some(6));
    }

    #[test]
    fn rows_go_to_the_worker_owning_their_key_group() {
        let batch = batch_i64(&[("k", &[1, 2, 3, 4, 5, 6, 7, 8]), ("v", &[0; 8])]);
        let k = col("k", &batch.schema()).expect("column");
        let route = WorkerRoute::Hash(vec![k]);
        let parts = route.split(batch.clone(), 3).expect("split");
        assert_eq!(parts.iter().map(|(_, b)| b.num_rows()).sum::<usize>(), 8);
        // Worker w's local instances own sub-ranges of w's key groups: the
        // global instance of a row (of 3 * p) is in w's block.
        for (w, part) in &parts {
            let keys = part.column(0).clone();
            let hashes =
                crate::checkpoint::keys::hash_keys(&[keys], part.num_rows()).expect("hashes");
            for p in [1, 2, 4] {
                for h in &hashes {
                    assert_eq!(instance_of(*h, 3 * p) / p, *w);
                }
            }
        }
        let all = WorkerRoute::Broadcast
            .split(batch.clone(), 2)
            .expect("split");
        assert_eq!(all.len(), 2);
        let one = WorkerRoute::Global.split(batch, 2).expect("split");
        assert_eq!(one.iter().map(|(w, _)| *w).collect::<Vec<_>>(), vec![0]);
    }
}
