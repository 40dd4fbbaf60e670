//! The checkpoint coordinator: one task per job that triggers checkpoints,
//! collects every stateful task's state, writes the checkpoint and tells
//! the sink it may commit. See the [module docs](super) for the protocol.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_common::{Error, Result};
use tokio::sync::{mpsc, oneshot, watch};

use super::shared::SharedFiles;
use super::state::State;
use super::store::{self, Loaded};
use super::{CheckpointId, TaskInfo};

/// How a job checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// The job's name (`pipeline.name`, or one made from its statement).
    pub job: String,
    /// Where its checkpoints go: `<state.checkpoints.dir>/<job>`.
    pub job_dir: PathBuf,
    /// `execution.checkpointing.interval`.
    pub interval: Duration,
    /// `execution.checkpointing.timeout`: a checkpoint not complete by then
    /// has failed.
    pub timeout: Duration,
    /// `state.checkpoints.num-retained`.
    pub retained: usize,
    /// `execution.checkpointing.tolerable-failed-checkpoints`.
    pub tolerable_failures: u32,
    /// The plan's fingerprint, stored with each checkpoint.
    pub fingerprint: String,
    /// The checkpoint the job resumes from.
    pub restored: Option<Arc<Loaded>>,
    /// A job spread over workers: the other workers' job directories. A
    /// checkpoint is complete (the sink commits, older ones are deleted)
    /// once every one of them holds it too; the job's last, once every
    /// one holds a last checkpoint of its own.
    pub siblings: Vec<PathBuf>,
}

/// The last completed checkpoint.
#[derive(Debug, Clone)]
pub struct Completed {
    /// Its id.
    pub id: CheckpointId,
    /// When it completed.
    pub at: Instant,
    /// From trigger to complete.
    pub duration: Duration,
    /// Bytes written.
    pub bytes: u64,
    /// Its directory.
    pub path: PathBuf,
}

/// A job's checkpoints so far (SHOW JOBS, the status line).
#[derive(Debug, Clone, Default)]
pub struct CheckpointStats {
    /// The checkpoint the job resumed from.
    pub restored_from: Option<(CheckpointId, PathBuf)>,
    /// Checkpoints completed.
    pub completed: u64,
    /// Checkpoints failed.
    pub failed: u64,
    /// The last completed one.
    pub last: Option<Completed>,
    /// Why the last failed one failed.
    pub last_failure: Option<String>,
    /// The longest a checkpoint took, and the most bytes one wrote.
    pub longest: Duration,
    /// See `longest`.
    pub largest: u64,
}

/// What tasks tell the coordinator.
pub(crate) enum Ack {
    /// A task's state at checkpoint `id`.
    State {
        id: CheckpointId,
        task: (u32, u32),
        state: State,
    },
    /// A task ended: `state` stands for it in every later checkpoint.
    Ended { task: (u32, u32), state: State },
    /// The sink's input ended: the job's last checkpoint, then it commits;
    /// `done` gets its id once it is complete.
    Final {
        task: (u32, u32),
        state: State,
        done: oneshot::Sender<CheckpointId>,
    },
    /// Take a checkpoint now and say which (a savepoint).
    Now(oneshot::Sender<Result<CheckpointId>>),
}

/// What a stateful task uses to take part in checkpoints.
#[derive(Clone)]
pub struct TaskCheckpoint {
    task: TaskInfo,
    trigger: watch::Receiver<CheckpointId>,
    completed: watch::Receiver<CheckpointId>,
    acks: mpsc::Sender<Ack>,
    committed: Arc<watch::Sender<CheckpointId>>,
}

impl std::fmt::Debug for TaskCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCheckpoint")
            .field("task", &self.task)
            .finish()
    }
}

impl TaskCheckpoint {
    /// The task.
    pub fn info(&self) -> &TaskInfo {
        &self.task
    }

    /// The newest checkpoint triggered (0: none yet).
    pub fn triggered(&self) -> CheckpointId {
        *self.trigger.borrow()
    }

    /// Hand over the state at checkpoint `id`.
    pub async fn ack(&self, id: CheckpointId, state: State) {
        let task = self.task.key();
        // The coordinator gone means the job is ending anyway.
        let _ = self.acks.send(Ack::State { id, task, state }).await;
    }

    /// The task ended; `state` stands for it from now on.
    pub async fn ended(&self, state: State) {
        let task = self.task.key();
        let _ = self.acks.send(Ack::Ended { task, state }).await;
    }

    /// The sink's input ended: the job's last checkpoint holds `state`.
    /// Returns that checkpoint's id once it is complete (`None`: it
    /// failed).
    pub async fn finish(&self, state: State) -> Option<CheckpointId> {
        let task = self.task.key();
        let (done, id) = oneshot::channel();
        let ack = Ack::Final { task, state, done };
        self.acks.send(ack).await.ok()?;
        id.await.ok()
    }

    /// Announcements of completed checkpoints (the newest id).
    pub fn completed(&self) -> watch::Receiver<CheckpointId> {
        self.completed.clone()
    }

    /// The sink committed what it wrote up to checkpoint `id`.
    pub fn committed(&self, id: CheckpointId) {
        self.committed.send_replace(id);
    }

    /// A handle whose acks a test reads: (handle, acks, trigger).
    #[cfg(test)]
    pub(crate) fn for_test(
        task: TaskInfo,
    ) -> (Self, mpsc::Receiver<Ack>, watch::Sender<CheckpointId>) {
        let (trigger_tx, trigger) = watch::channel(0);
        let (_completed_tx, completed) = watch::channel(0);
        let (acks, rx) = mpsc::channel(64);
        let handle = TaskCheckpoint {
            task,
            trigger,
            completed,
            acks,
            committed: Arc::new(watch::channel(0).0),
        };
        (handle, rx, trigger_tx)
    }
}

/// Asks a running job's coordinator for a checkpoint now.
#[derive(Clone)]
pub struct SavepointTrigger {
    acks: mpsc::Sender<Ack>,
    committed: watch::Receiver<CheckpointId>,
}

impl SavepointTrigger {
    /// Take a checkpoint now; its id once complete and its sink's output
    /// up to it committed (so a job stopped now has nothing pending).
    pub async fn trigger(&self) -> Result<CheckpointId> {
        let (tx, rx) = oneshot::channel();
        self.acks
            .send(Ack::Now(tx))
            .await
            .map_err(|_| Error::Checkpoint("the job has ended".into()))?;
        let id = rx.await.map_err(|_| {
            Error::Checkpoint("the job ended before the savepoint completed".into())
        })??;
        let mut committed = self.committed.clone();
        let waited = tokio::time::timeout(SAVEPOINT_COMMIT, committed.wait_for(|&c| c >= id))
            .await
            .is_ok_and(|r| r.is_ok());
        if waited {
            return Ok(id);
        }
        Err(Error::Checkpoint(format!(
            "savepoint {id} is complete but the sink did not commit it within {} s",
            SAVEPOINT_COMMIT.as_secs()
        )))
    }
}

/// How long a savepoint waits for its sink's commit.
const SAVEPOINT_COMMIT: Duration = Duration::from_secs(60);

/// A checkpoint in progress.
struct Pending {
    id: CheckpointId,
    started: Instant,
    states: HashMap<(u32, u32), State>,
    waiting: Vec<oneshot::Sender<Result<CheckpointId>>>,
}

/// A job's coordinator, before it runs.
pub struct Coordinator {
    cfg: CheckpointConfig,
    tasks: Vec<TaskInfo>,
    trigger: watch::Sender<CheckpointId>,
    completed: watch::Sender<CheckpointId>,
    /// What the sink committed last.
    committed: Arc<watch::Sender<CheckpointId>>,
    acks: mpsc::Receiver<Ack>,
    acks_tx: mpsc::Sender<Ack>,
    stats: Arc<Mutex<CheckpointStats>>,
    /// Shared files written so far (incremental checkpoints).
    shared: SharedFiles,
}

impl Coordinator {
    /// A coordinator of the stateful `tasks`, with a handle for each.
    pub fn new(cfg: CheckpointConfig, tasks: Vec<TaskInfo>) -> Self {
        let last = cfg.restored.as_ref().map_or(0, |r| r.id);
        let (trigger, _) = watch::channel(last);
        let (completed, _) = watch::channel(last);
        let committed = Arc::new(watch::channel(last).0);
        let (acks_tx, acks) = mpsc::channel(4 * tasks.len() + 16);
        let stats = CheckpointStats {
            restored_from: cfg.restored.as_ref().map(|r| (r.id, r.path.clone())),
            ..CheckpointStats::default()
        };
        Coordinator {
            cfg,
            tasks,
            trigger,
            completed,
            committed,
            acks,
            acks_tx,
            stats: Arc::new(Mutex::new(stats)),
            shared: SharedFiles::default(),
        }
    }

    /// The handle of `task`.
    pub fn handle(&self, task: &TaskInfo) -> TaskCheckpoint {
        TaskCheckpoint {
            task: task.clone(),
            trigger: self.trigger.subscribe(),
            completed: self.completed.subscribe(),
            acks: self.acks_tx.clone(),
            committed: Arc::clone(&self.committed),
        }
    }

    /// The job's checkpoint counters.
    pub fn stats(&self) -> Arc<Mutex<CheckpointStats>> {
        Arc::clone(&self.stats)
    }

    /// A trigger for savepoints.
    pub fn savepoints(&self) -> SavepointTrigger {
        SavepointTrigger {
            acks: self.acks_tx.clone(),
            committed: self.committed.subscribe(),
        }
    }

    fn stats_mut(&self) -> std::sync::MutexGuard<'_, CheckpointStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run until the job ends. Fails when more checkpoints failed than
    /// tolerated.
    pub async fn run(mut self) -> Result<()> {
        // Only the tasks (and savepoint triggers) hold senders now.
        let (unused, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.acks_tx, unused));
        let mut next = first_id(&self.cfg);
        let mut ended: HashMap<(u32, u32), State> = HashMap::new();
        let mut pending: Option<Pending> = None;
        // States for checkpoints not started here yet: across workers,
        // another worker's barrier can reach this one's tasks first.
        let mut early: HashMap<CheckpointId, HashMap<(u32, u32), State>> = HashMap::new();
        let mut failures = 0u32;
        let interval = self.cfg.interval.max(Duration::from_millis(1));
        let mut tick = tokio::time::interval_at((Instant::now() + interval).into(), interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = pending.as_ref().map(|p| p.started + self.cfg.timeout);
            let mut start = None;
            tokio::select! {
                _ = tick.tick(), if pending.is_none() => start = Some(Vec::new()),
                () = sleep_until(deadline), if deadline.is_some() => {
                    if let Some(p) = pending.take() {
                        let why = format!(
                            "checkpoint {} timed out after {} s ('execution.checkpointing.timeout')",
                            p.id,
                            self.cfg.timeout.as_secs()
                        );
                        self.fail(p, why, &mut failures)?;
                    }
                }
                ack = self.acks.recv() => match ack {
                    // Every task is gone: the job ended.
                    None => return Ok(()),
                    Some(Ack::State { id, task, state }) => {
                        match pending.as_mut() {
                            Some(p) if p.id == id => {
                                p.states.insert(task, state);
                            }
                            _ if id >= next => {
                                early.entry(id).or_default().insert(task, state);
                                if pending.is_none() {
                                    // Taken up now, so its number is this
                                    // worker's next too.
                                    next = id;
                                    start = Some(Vec::new());
                                }
                            }
                            _ => {}
                        }
                    }
                    Some(Ack::Ended { task, state }) => {
                        ended.insert(task, state);
                    }
                    Some(Ack::Final { task, state, done }) => {
                        self.finish(next, task, state, pending).await?;
                        let _ = done.send(next);
                        return Ok(());
                    }
                    Some(Ack::Now(reply)) => match pending.as_mut() {
                        Some(p) => p.waiting.push(reply),
                        None => start = Some(vec![reply]),
                    },
                }
            }
            if let Some(waiting) = start {
                pending = Some(Pending {
                    id: next,
                    started: Instant::now(),
                    states: early.remove(&next).unwrap_or_default(),
                    waiting,
                });
                early.retain(|id, _| *id > next);
                self.trigger.send_replace(next);
                next += 1;
            }
            let complete = pending.as_ref().is_some_and(|p| {
                self.tasks
                    .iter()
                    .all(|t| p.states.contains_key(&t.key()) || ended.contains_key(&t.key()))
            });
            if complete {
                if let Some(p) = pending.take() {
                    self.complete(p, &ended, &mut failures).await?;
                }
            }
        }
    }

    /// Every state of `p` is in: write it, then announce it.
    async fn complete(
        &mut self,
        mut p: Pending,
        ended: &HashMap<(u32, u32), State>,
        failures: &mut u32,
    ) -> Result<()> {
        let tasks: Vec<(TaskInfo, State)> = self
            .tasks
            .iter()
            .map(|t| {
                let state = p
                    .states
                    .remove(&t.key())
                    .or_else(|| ended.get(&t.key()).cloned())
                    .unwrap_or_default();
                (t.clone(), state)
            })
            .collect();
        let written = match self.write(p.id, false, tasks).await {
            Ok(bytes) => self.everywhere(p.id, false).await.map(|()| bytes),
            Err(e) => Err(e),
        };
        match written {
            Ok(bytes) => {
                let id = p.id;
                self.announce(id, p.started, bytes);
                for w in p.waiting {
                    let _ = w.send(Ok(id));
                }
                Ok(())
            }
            Err(e) => self.fail(p, e.to_string(), failures),
        }
    }

    /// The sink's input ended: the last checkpoint, marked finished, holds
    /// what the sink still has to commit.
    async fn finish(
        &mut self,
        id: CheckpointId,
        task: (u32, u32),
        state: State,
        pending: Option<Pending>,
    ) -> Result<()> {
        let started = Instant::now();
        let tasks: Vec<(TaskInfo, State)> = self
            .tasks
            .iter()
            .filter(|t| t.key() == task)
            .map(|t| (t.clone(), state.clone()))
            .collect();
        let bytes = self.write(id, true, tasks).await?;
        self.everywhere(id, true).await?;
        self.announce(id, started, bytes);
        for w in pending.into_iter().flat_map(|p| p.waiting) {
            let _ = w.send(Ok(id));
        }
        Ok(())
    }

    async fn write(
        &mut self,
        id: CheckpointId,
        finished: bool,
        tasks: Vec<(TaskInfo, State)>,
    ) -> Result<u64> {
        let dir = self.cfg.job_dir.clone();
        let fingerprint = self.cfg.fingerprint.clone();
        // Across workers, older checkpoints go once this one is everywhere.
        let keep = match self.cfg.siblings.is_empty() {
            true => self.cfg.retained,
            false => usize::MAX,
        };
        let mut shared = std::mem::take(&mut self.shared);
        let (shared, written) = tokio::task::spawn_blocking(move || {
            let written = store::write(&dir, id, &fingerprint, finished, &tasks, &mut shared)
                .and_then(|w| {
                    store::retain(&dir, keep)?;
                    Ok(w.bytes)
                });
            // A failed checkpoint's files may be partial: write them anew.
            match &written {
                Ok(_) => shared.settle(),
                Err(_) => shared = SharedFiles::default(),
            }
            (shared, written)
        })
        .await
        .map_err(|e| Error::internal(format!("checkpoint writer panicked: {e}")))?;
        self.shared = shared;
        written
    }

    /// A job spread over workers: wait until every other worker holds
    /// checkpoint `id` (the job's last: a last one of its own), then
    /// delete older checkpoints. Fails after the checkpoint timeout.
    async fn everywhere(&self, id: CheckpointId, last: bool) -> Result<()> {
        if self.cfg.siblings.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.cfg.timeout;
        loop {
            let missing: Vec<&PathBuf> = self
                .cfg
                .siblings
                .iter()
                .filter(|d| match last {
                    true => !store::newest_complete(d).is_some_and(|(_, f)| f),
                    false => !store::is_complete(d, id),
                })
                .collect();
            if missing.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::Checkpoint(format!(
                    "checkpoint {id} is not complete in {} (another worker's) after {} s",
                    missing[0].display(),
                    self.cfg.timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (dir, keep) = (self.cfg.job_dir.clone(), self.cfg.retained);
        tokio::task::spawn_blocking(move || store::retain(&dir, keep))
            .await
            .map_err(|e| Error::internal(format!("checkpoint retention panicked: {e}")))?
    }

    fn announce(&mut self, id: CheckpointId, started: Instant, bytes: u64) {
        {
            let mut s = self.stats_mut();
            s.completed += 1;
            s.longest = s.longest.max(started.elapsed());
            s.largest = s.largest.max(bytes);
            s.last = Some(Completed {
                id,
                at: Instant::now(),
                duration: started.elapsed(),
                bytes,
                path: store::checkpoint_dir(&self.cfg.job_dir, id),
            });
        }
        self.completed.send_replace(id);
    }

    /// Checkpoint `p` failed: counted; the job fails past the tolerance.
    fn fail(&self, p: Pending, why: String, failures: &mut u32) -> Result<()> {
        *failures += 1;
        {
            let mut s = self.stats_mut();
            s.failed += 1;
            s.last_failure = Some(why.clone());
        }
        for w in p.waiting {
            let _ = w.send(Err(Error::Checkpoint(why.clone())));
        }
        if *failures > self.cfg.tolerable_failures {
            return Err(Error::Checkpoint(format!(
                "{why}; more checkpoints failed than \
                 'execution.checkpointing.tolerable-failed-checkpoints' ({}) allows",
                self.cfg.tolerable_failures
            )));
        }
        eprintln!("sluice: checkpoint {} failed: {why}", p.id);
        Ok(())
    }
}

/// The id of the job's first checkpoint: after the one it resumes from and
/// after every checkpoint already in its directory (a job resumed from an
/// older savepoint never reuses a newer checkpoint's number, so its own
/// checkpoints are the newest, and retention removes the others).
pub(crate) fn first_id(cfg: &CheckpointConfig) -> CheckpointId {
    let restored = cfg.restored.as_ref().map_or(0, |r| r.id);
    restored.max(store::newest_id(&cfg.job_dir).unwrap_or(0)) + 1
}

/// Sleep until `at` (forever without one).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
