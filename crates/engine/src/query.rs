//! A running query.

use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::changelog::{self, ChangelogMode};
use sluice_common::{Error, Fold, Message, Result, SourceLocation, Watermark};
use sluice_exec::checkpoint::{CheckpointConfig, CheckpointStats, JobCheckpoints};
use sluice_exec::graph::{launch, launch_checkpointed, StreamGraph};
use sluice_exec::plan::PlanNode;
use sluice_exec::workers::{WorkerStatus, Workers};
use std::sync::Arc;
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinSet;

/// How long tasks may take to stop once the result has ended.
const END_GRACE: Duration = Duration::from_secs(2);

/// Counters of a query, for its summary line and the shell's status line.
#[derive(Debug, Clone)]
pub struct QuerySummary {
    /// Rows read by the sources.
    pub rows_in: u64,
    /// Rows produced (to the caller or the sink).
    pub rows_out: u64,
    /// Rows of the result an INSERT wrote: inserts minus retractions (the
    /// same as `rows_out` for an append-only result).
    pub result_rows: i64,
    /// Keys held in operator state.
    pub state_keys: u64,
    /// Bytes held in operator state (approximate).
    pub state_bytes: u64,
    /// Rows dropped for arriving behind the watermark.
    pub late_rows: u64,
    /// Malformed records skipped.
    pub bad_records: u64,
    /// Records kept with NULL in fields of the wrong type
    /// (`*.ignore-parse-errors`).
    pub nulled_records: u64,
    /// Bytes read by file sources so far.
    pub bytes_read: u64,
    /// Total bytes file sources will read (0 when unknown).
    pub bytes_total: u64,
    /// Records not yet read per Kafka partition (empty for other sources).
    pub partition_lag: Vec<(i32, i64)>,
    /// Watermark at the top of the graph.
    pub watermark: Watermark,
    /// Time since start.
    pub elapsed: Duration,
    /// A checkpointing job's checkpoints so far.
    pub checkpoints: Option<CheckpointStats>,
    /// A job spread over workers: what each worker said last.
    pub workers: Vec<WorkerStatus>,
}

/// A live view of a query's counters that outlives its handle (the shell's
/// status line, `SHOW JOBS`).
#[derive(Debug, Clone)]
pub struct QueryProgress {
    explain: PlanNode,
    started: Instant,
    checkpoints: Option<JobCheckpoints>,
    workers: Option<Arc<dyn Workers>>,
}

impl QueryProgress {
    /// A checkpointing job's checkpoints.
    pub(crate) fn checkpoints(&self) -> Option<&JobCheckpoints> {
        self.checkpoints.as_ref()
    }

    /// Current counters.
    pub fn summary(&self) -> QuerySummary {
        let e = &self.explain;
        QuerySummary {
            rows_in: e.source_rows(),
            rows_out: e.metrics.rows_out(),
            result_rows: e.metrics.net_rows(),
            state_keys: e.total(&|m| m.state_keys()),
            state_bytes: e.total(&|m| m.state_bytes()),
            late_rows: e.total(&|m| m.late_rows()),
            bad_records: e.total(&|m| m.bad_records()),
            nulled_records: e.total(&|m| m.nulled_records()),
            bytes_read: e.total(&|m| m.bytes_read()),
            bytes_total: e.total(&|m| m.bytes_total()),
            partition_lag: e.partition_lag(),
            watermark: e.metrics.watermark(),
            elapsed: self.started.elapsed(),
            checkpoints: self.checkpoints.as_ref().map(|c| {
                c.stats
                    .lock()
                    .map(|s| s.clone())
                    .unwrap_or_else(|p| p.into_inner().clone())
            }),
            workers: self.workers.as_ref().map_or(vec![], |w| w.statuses()),
        }
    }

    /// This worker's status, to tell the other workers.
    fn worker_status(&self, worker: usize, state: &str) -> WorkerStatus {
        let e = &self.explain;
        WorkerStatus {
            worker,
            state: state.to_string(),
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            rows_in: e.source_rows(),
            rows_out: e.metrics.rows_out(),
            watermark: e.metrics.watermark().millis(),
            lag: e.partition_lag(),
            checkpoint: self.checkpoints.as_ref().and_then(|c| {
                let stats = c.stats.lock().unwrap_or_else(|p| p.into_inner());
                let last = stats.last.as_ref()?;
                Some((last.id, last.at.elapsed().as_millis() as u64))
            }),
            age_ms: 0,
        }
    }
}

/// Tells the other workers how this one's job is doing, every second,
/// and that it ended when dropped (with its [`QueryHandle`]).
struct Reporter {
    task: tokio::task::JoinHandle<()>,
    progress: QueryProgress,
    workers: Arc<dyn Workers>,
}

impl Reporter {
    fn start(progress: QueryProgress, workers: Arc<dyn Workers>) -> Self {
        let (p, w) = (progress.clone(), Arc::clone(&workers));
        let task = tokio::spawn(async move {
            loop {
                w.publish(&p.worker_status(w.index(), "running"));
                tokio::time::sleep(REPORT_EVERY).await;
            }
        });
        Reporter {
            task,
            progress,
            workers,
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.task.abort();
        let w = &self.workers;
        w.publish(&self.progress.worker_status(w.index(), "ended"));
    }
}

/// How often a worker reports its status.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What a query's result is: bounded or not, append-only or updating.
#[derive(Debug, Clone)]
pub struct ResultShape {
    /// Every input is bounded (the query ends by itself).
    pub bounded: bool,
    /// Append-only, or updating with its upsert key.
    pub changelog: ChangelogMode,
    /// Names of the upsert key's columns.
    pub key_names: Option<Vec<String>>,
}

impl ResultShape {
    pub(crate) fn of(plan: &crate::planner::RootPlan) -> Self {
        ResultShape {
            bounded: plan.bounded,
            changelog: plan.changelog.clone(),
            key_names: plan.key_names.clone(),
        }
    }
}

/// A started query. Read results with [`QueryHandle::next_batch`] (SELECT)
/// or wait with [`QueryHandle::wait`] (INSERT). Dropping it cancels the query.
pub struct QueryHandle {
    tasks: JoinSet<Result<()>>,
    /// Where the statement is, for errors raised while it runs.
    location: Option<SourceLocation>,
    output: Option<Receiver<Message>>,
    progress: QueryProgress,
    schema: SchemaRef,
    shape: ResultShape,
    done: bool,
    /// What the job says when it starts (it resumes from a checkpoint).
    notice: Option<String>,
    /// A job spread over workers: its status reports.
    reporter: Option<Reporter>,
    /// A job spread over workers: says when another worker restarted.
    restarted: Option<tokio::sync::watch::Receiver<Option<usize>>>,
}

impl QueryHandle {
    pub(crate) fn start(graph: StreamGraph, shape: ResultShape) -> Self {
        let explain = graph.plan();
        let schema = changelog::data_schema(&graph.root.schema());
        let mut tasks = JoinSet::new();
        let output = launch(graph, &mut tasks);
        QueryHandle {
            tasks,
            location: None,
            output,
            progress: QueryProgress {
                explain,
                started: Instant::now(),
                checkpoints: None,
                workers: None,
            },
            schema,
            shape,
            done: false,
            notice: None,
            reporter: None,
            restarted: None,
        }
    }

    /// The job runs as one of `workers`: report its status to them, and
    /// show theirs with its own.
    pub(crate) fn report_to(&mut self, workers: Arc<dyn Workers>) {
        self.progress.workers = Some(Arc::clone(&workers));
        self.restarted = Some(workers.restarted());
        self.reporter = Some(Reporter::start(self.progress.clone(), workers));
    }

    /// Start an INSERT job that checkpoints by `cfg`; `notice` says where
    /// it resumes from.
    pub(crate) fn start_checkpointed(
        graph: StreamGraph,
        shape: ResultShape,
        cfg: CheckpointConfig,
        notice: Option<String>,
    ) -> Result<Self> {
        let explain = graph.plan();
        let schema = changelog::data_schema(&graph.root.schema());
        let mut tasks = JoinSet::new();
        let checkpoints = launch_checkpointed(graph, &mut tasks, cfg)?;
        Ok(QueryHandle {
            tasks,
            location: None,
            output: None,
            progress: QueryProgress {
                explain,
                started: Instant::now(),
                checkpoints: Some(checkpoints),
                workers: None,
            },
            schema,
            shape,
            done: false,
            notice,
            reporter: None,
            restarted: None,
        })
    }

    /// What to tell the user as the job starts (where it resumes from).
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// Say `text` too as the job starts.
    pub(crate) fn add_notice(&mut self, text: String) {
        self.notice = Some(match self.notice.take() {
            Some(n) => format!("{text}\n{n}"),
            None => text,
        });
    }

    /// Errors raised while the query runs point at `location` (its
    /// statement).
    pub(crate) fn located(mut self, location: SourceLocation) -> Self {
        self.location = Some(location);
        self
    }

    fn locate(&self, e: Error) -> Error {
        match &self.location {
            Some(l) => e.at(l.clone()),
            None => e,
        }
    }

    /// Whether every input is bounded (the query ends by itself).
    pub fn is_bounded(&self) -> bool {
        self.shape.bounded
    }

    /// Append-only, or updating: then every batch [`Self::next_batch`]
    /// returns ends with the row-kind column
    /// ([`sluice_common::changelog`]).
    pub fn changelog(&self) -> &ChangelogMode {
        &self.shape.changelog
    }

    /// Names of the result's upsert key columns, when updating by a key.
    pub fn upsert_key_names(&self) -> Option<&[String]> {
        self.shape.key_names.as_deref()
    }

    /// A view of the counters that can be kept after the handle is gone.
    pub fn progress(&self) -> QueryProgress {
        self.progress.clone()
    }

    /// Schema of the result rows (data columns, without the row kind).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The operator tree with live counters.
    pub fn explain(&self) -> &PlanNode {
        &self.progress.explain
    }

    /// Current counters.
    pub fn summary(&self) -> QuerySummary {
        self.progress.summary()
    }

    /// The next batch of results; `Ok(None)` once the query ended. An error
    /// carries the statement's position.
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        match self.next_batch_here().await {
            Ok(b) => Ok(b),
            Err(e) => Err(self.locate(e)),
        }
    }

    async fn next_batch_here(&mut self) -> Result<Option<RecordBatch>> {
        if self.done {
            return Ok(None);
        }
        let Some(rx) = self.output.as_mut() else {
            self.join().await?;
            self.done = true;
            return Ok(None);
        };
        loop {
            match rx.recv().await {
                Some(Message::Batch(b)) => return Ok(Some(b)),
                Some(Message::Watermark(_) | Message::Barrier(_) | Message::Idle) => continue,
                Some(Message::EndOfStream) => {
                    self.done = true;
                    self.join_after_end().await?;
                    return Ok(None);
                }
                None => {
                    self.done = true;
                    self.join().await?;
                    return Err(Error::internal("query output closed without end of stream"));
                }
            }
        }
    }

    /// Run to the end, collecting every result batch.
    pub async fn collect(mut self) -> Result<(Vec<RecordBatch>, QuerySummary)> {
        let mut out = Vec::new();
        while let Some(b) = self.next_batch().await? {
            out.push(b);
        }
        let summary = self.summary();
        Ok((out, summary))
    }

    /// Run to the end and fold the changelog into the final table (the
    /// rows themselves for an append-only result).
    pub async fn collect_table(self) -> Result<(Vec<RecordBatch>, QuerySummary)> {
        if !self.shape.changelog.is_updating() {
            return self.collect().await;
        }
        let key = self.shape.changelog.upsert_key().map(<[usize]>::to_vec);
        let mut fold = Fold::try_new(self.schema(), key)?;
        let (batches, summary) = self.collect().await?;
        for b in &batches {
            fold.apply(b)?;
        }
        Ok((vec![fold.table()?], summary))
    }

    /// Run to the end, discarding results (INSERT).
    pub async fn wait(mut self) -> Result<QuerySummary> {
        while self.next_batch().await?.is_some() {}
        Ok(self.summary())
    }

    /// The result is complete: wait for the tasks to stop, and stop those
    /// upstream that have not noticed within a grace period (a source
    /// waiting on a quiet input below a satisfied LIMIT), so a finished
    /// query never hangs.
    async fn join_after_end(&mut self) -> Result<()> {
        match tokio::time::timeout(END_GRACE, self.join()).await {
            Ok(r) => r,
            Err(_) => {
                self.tasks.abort_all();
                Ok(())
            }
        }
    }

    /// Wait for every task; the first failure wins (the rest are aborted
    /// when the set is dropped).
    async fn join(&mut self) -> Result<()> {
        loop {
            let next = match self.restarted.as_mut() {
                Some(rx) => tokio::select! {
                    r = self.tasks.join_next() => r,
                    changed = rx.changed() => {
                        let worker = *rx.borrow();
                        match (changed, worker) {
                            (Ok(()), Some(k)) => {
                                self.tasks.abort_all();
                                return Err(self.rolled_back(k));
                            }
                            (Err(_), _) => self.restarted = None,
                            _ => {}
                        }
                        continue;
                    }
                },
                None => self.tasks.join_next().await,
            };
            let Some(r) = next else {
                break;
            };
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.tasks.abort_all();
                    return Err(e);
                }
                Err(e) if e.is_cancelled() => {}
                Err(e) => {
                    self.tasks.abort_all();
                    return Err(Error::internal(format!("a query task panicked: {e}")));
                }
            }
        }
        Ok(())
    }

    /// The error of a job whose worker `k` started again: with
    /// checkpoints it rolls back (run again, it resumes); without, what it
    /// wrote cannot be taken back.
    fn rolled_back(&self, k: usize) -> Error {
        if self.progress.checkpoints.is_some() {
            Error::RolledBack(format!(
                "worker {k} of the job started again: this worker rolls back to the last \
                 checkpoint every worker holds"
            ))
        } else {
            Error::execution(format!(
                "worker {k} of the job started again, and the job takes no checkpoints to roll \
                 back to: stop every worker and start the job anew (with checkpoints, workers \
                 roll back and go on)"
            ))
        }
    }
}
