//! The [`Sink`] trait: async consumers at the root of an `INSERT INTO`.
//!
//! In a checkpointing job a sink commits in two phases: at each barrier it
//! pre-commits what it wrote since the last one (nothing of it visible yet)
//! and hands over what a restore needs; once the checkpoint is complete it
//! commits (makes it visible). A restarted job hands the sink the state of
//! the checkpoint it resumes from: the sink commits what that checkpoint
//! pre-committed (the crash may have come first) and discards everything
//! written after it, so readers of its output never see a row twice or miss
//! one.

use std::time::Duration;

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::{Error, Result, Watermark};

use crate::checkpoint::{CheckpointId, State};

/// The pre-commit at the end of the input: everything not yet committed.
pub const FINAL: CheckpointId = CheckpointId::MAX;

/// Which checkpoint a checkpointing job may resume from, as its sink sees
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Any complete checkpoint: the sink commits what a restored
    /// checkpoint pre-committed (its state holds what that takes).
    Any,
    /// Only this one: the newest checkpoint whose writes the sink's
    /// destination recorded as committed (0: none, start anew). Writes
    /// pre-committed by newer checkpoints cannot be committed any more.
    From(CheckpointId),
}

/// Writes a query's result somewhere.
#[async_trait]
pub trait Sink: Send + 'static {
    /// Short name, e.g. `FileSink`.
    fn name(&self) -> &'static str;

    /// One line for EXPLAIN.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// Write one batch.
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;

    /// The watermark advanced (sinks that commit by event time use it).
    async fn on_watermark(&mut self, _wm: Watermark) -> Result<()> {
        Ok(())
    }

    /// The input ended: flush everything.
    async fn finish(&mut self) -> Result<()>;

    /// When [`Sink::on_deadline`] is due (e.g. buffered rows must be
    /// written by then), if ever.
    fn deadline(&self) -> Option<tokio::time::Instant> {
        None
    }

    /// The deadline passed.
    async fn on_deadline(&mut self) -> Result<()> {
        Ok(())
    }

    /// Whether it writes exactly once in a checkpointing job (the two
    /// phases below); a job whose sink cannot refuses checkpoints.
    fn checkpoints(&self) -> bool {
        false
    }

    /// Whether it writes only in checkpointing jobs (it commits with
    /// them); a job without checkpoints is refused.
    fn needs_checkpoints(&self) -> bool {
        false
    }

    /// Before a checkpointing job (named `job`, checkpointing every
    /// `interval`, if it does) starts: check the sink can commit at that
    /// pace, and say which checkpoint the job may resume from.
    async fn prepare_checkpoints(
        &mut self,
        _job: &str,
        _interval: Option<Duration>,
    ) -> Result<Resume> {
        Ok(Resume::Any)
    }

    /// The job checkpoints; `job` names it the same across restarts. Take
    /// up `restored` (commit what it pre-committed, discard what was
    /// written after it), or without one (a fresh start) discard what
    /// earlier attempts of the job left uncommitted. Before any write.
    async fn start_checkpoints(&mut self, _job: &str, _restored: Option<&State>) -> Result<()> {
        Err(Error::Checkpoint(format!(
            "{} cannot take part in checkpoints",
            self.name()
        )))
    }

    /// Barrier `id` (or [`FINAL`], the end of the input) arrived: make what
    /// was written before it ready to commit, and return what a restore
    /// needs to commit every pre-committed write not yet committed.
    async fn pre_commit(&mut self, _id: CheckpointId) -> Result<State> {
        Ok(State::new())
    }

    /// Checkpoint `id` is complete: make what was pre-committed up to it
    /// visible.
    async fn commit(&mut self, _id: CheckpointId) -> Result<()> {
        Ok(())
    }

    /// The job's last checkpoint (`id`, holding the [`FINAL`] pre-commit)
    /// is complete: commit everything.
    async fn commit_final(&mut self, _id: CheckpointId) -> Result<()> {
        self.commit(FINAL).await
    }
}
