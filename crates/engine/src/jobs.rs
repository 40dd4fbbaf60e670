//! Background jobs: `INSERT INTO ... SELECT` started by the shell keeps
//! running while the prompt is back (as in Flink's SQL client). `SHOW JOBS`
//! lists them with live counters; `STOP JOB n` cancels one.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sluice_common::{Error, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::query::{QueryHandle, QueryProgress, QuerySummary};

/// Where a job is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Still running.
    Running,
    /// Ended by itself (bounded input).
    Finished,
    /// Ended with an error.
    Failed(String),
    /// Cancelled by `STOP JOB` or on exit.
    Stopped,
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobState::Running => write!(f, "RUNNING"),
            JobState::Finished => write!(f, "FINISHED"),
            JobState::Failed(_) => write!(f, "FAILED"),
            JobState::Stopped => write!(f, "STOPPED"),
        }
    }
}

#[derive(Debug)]
struct Status {
    state: JobState,
    /// Time from start to end, once ended.
    ran_for: Option<Duration>,
    /// The end was not yet reported by [`Jobs::take_ended`].
    unreported: bool,
}

struct Job {
    statement: String,
    bounded: bool,
    progress: QueryProgress,
    status: Arc<Mutex<Status>>,
    task: JoinHandle<()>,
    /// Becomes `true` when the task has recorded its end; closed (the
    /// sender dropped) when the task was aborted.
    ended: watch::Receiver<bool>,
}

/// What `SHOW JOBS` shows of a job.
#[derive(Debug, Clone)]
pub struct JobInfo {
    /// Job id.
    pub id: u64,
    /// The INSERT statement.
    pub statement: String,
    /// State.
    pub state: JobState,
    /// Whether its inputs are bounded (it ends by itself).
    pub bounded: bool,
    /// Counters (elapsed is the run time once ended).
    pub summary: QuerySummary,
}

/// The session's background jobs.
#[derive(Default)]
pub struct Jobs {
    inner: Mutex<(u64, BTreeMap<u64, Job>)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent
    // (plain field updates), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Jobs {
    /// Run `handle` in the background; returns the job id. Must be called
    /// inside the tokio runtime.
    pub fn submit(&self, statement: String, handle: QueryHandle) -> u64 {
        let status = Arc::new(Mutex::new(Status {
            state: JobState::Running,
            ran_for: None,
            unreported: false,
        }));
        let progress = handle.progress();
        let bounded = handle.is_bounded();
        let task_status = Arc::clone(&status);
        let task_progress = progress.clone();
        let (ended_tx, ended) = watch::channel(false);
        let task = tokio::spawn(async move {
            let result = handle.wait().await;
            {
                let mut s = lock(&task_status);
                if s.state == JobState::Running {
                    s.state = match result {
                        Ok(_) => JobState::Finished,
                        Err(e) => JobState::Failed(e.to_string()),
                    };
                    s.ran_for = Some(task_progress.summary().elapsed);
                    s.unreported = true;
                }
            }
            // No receiver left (the jobs are gone) is fine.
            let _ = ended_tx.send(true);
        });
        let mut inner = lock(&self.inner);
        inner.0 += 1;
        let id = inner.0;
        inner.1.insert(
            id,
            Job {
                statement,
                bounded,
                progress,
                status,
                task,
                ended,
            },
        );
        id
    }

    /// Every job, oldest first.
    pub fn list(&self) -> Vec<JobInfo> {
        let inner = lock(&self.inner);
        inner.1.iter().map(|(id, job)| info(*id, job)).collect()
    }

    /// Cancel a running job.
    pub fn stop(&self, id: u64) -> Result<()> {
        let inner = lock(&self.inner);
        let job = inner
            .1
            .get(&id)
            .ok_or_else(|| Error::plan(format!("there is no job {id} (see SHOW JOBS)")))?;
        let mut s = lock(&job.status);
        if s.state != JobState::Running {
            return Err(Error::plan(format!(
                "job {id} is not running: it is {}",
                s.state
            )));
        }
        job.task.abort();
        s.state = JobState::Stopped;
        s.ran_for = Some(job.progress.summary().elapsed);
        Ok(())
    }

    /// Take a savepoint of running job `id` (a checkpoint now), then stop
    /// it; the savepoint's id and directory.
    pub async fn stop_with_savepoint(&self, id: u64) -> Result<(u64, std::path::PathBuf)> {
        let trigger = {
            let inner = lock(&self.inner);
            let job = inner
                .1
                .get(&id)
                .ok_or_else(|| Error::plan(format!("there is no job {id} (see SHOW JOBS)")))?;
            job.progress
                .checkpoints()
                .map(|c| c.savepoints.clone())
                .ok_or_else(|| {
                    Error::plan(format!(
                        "job {id} takes no checkpoints, so it has no savepoint: SET \
                     'execution.checkpointing.interval' (and 'state.checkpoints.dir') before \
                     starting it"
                    ))
                })?
        };
        let checkpoint = trigger.trigger().await?;
        self.stop(id)?;
        let path = {
            let inner = lock(&self.inner);
            inner
                .1
                .get(&id)
                .and_then(|j| j.progress.summary().checkpoints)
                .and_then(|c| c.last)
                .map(|l| l.path)
                .unwrap_or_default()
        };
        Ok((checkpoint, path))
    }

    /// Wait until job `id` has ended (finished, failed or stopped) and
    /// return what `SHOW JOBS` shows of it then. Does not count as
    /// reporting the end: [`Jobs::take_ended`] still returns a job that
    /// ended by itself. Fails if there is no job `id`.
    pub async fn wait(&self, id: u64) -> Result<JobInfo> {
        let mut ended = {
            let inner = lock(&self.inner);
            let job = inner
                .1
                .get(&id)
                .ok_or_else(|| Error::plan(format!("there is no job {id} (see SHOW JOBS)")))?;
            job.ended.clone()
        };
        // An error means the sender is gone: the task was aborted by
        // `stop`, which sets the state before it releases the jobs lock
        // taken below, so the state read here is final either way.
        let _ = ended.wait_for(|ended| *ended).await;
        let inner = lock(&self.inner);
        let job = inner
            .1
            .get(&id)
            .ok_or_else(|| Error::internal(format!("job {id} vanished while awaited")))?;
        Ok(info(id, job))
    }

    /// Jobs that ended by themselves (finished or failed) since the last
    /// call, so the shell can tell the user.
    pub fn take_ended(&self) -> Vec<JobInfo> {
        let inner = lock(&self.inner);
        let mut out = Vec::new();
        for (id, job) in &inner.1 {
            let mut s = lock(&job.status);
            if s.unreported {
                s.unreported = false;
                drop(s);
                out.push(info(*id, job));
            }
        }
        out
    }
}

fn info(id: u64, job: &Job) -> JobInfo {
    let s = lock(&job.status);
    let mut summary = job.progress.summary();
    if let Some(d) = s.ran_for {
        summary.elapsed = d;
    }
    JobInfo {
        id,
        statement: job.statement.clone(),
        state: s.state.clone(),
        bounded: job.bounded,
        summary,
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        for job in lock(&self.inner).1.values() {
            job.task.abort();
        }
    }
}
