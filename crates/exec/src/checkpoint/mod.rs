//! Checkpoints: consistent snapshots of a running job, taken while it runs,
//! from which a restarted job resumes with nothing lost or duplicated.
//!
//! The protocol (aligned barriers, as Flink's):
//! 1. The coordinator ([`coordinator`]) triggers checkpoint `n` every
//!    interval (one at a time).
//! 2. Each source, between two batches, records its position (offsets,
//!    generator counters, per-split watermarks), hands it to the
//!    coordinator and sends `Barrier(n)` downstream, in order with its rows.
//! 3. An operator with several input channels stops reading a channel once
//!    `Barrier(n)` arrived on it; when it arrived on every one (or the
//!    channel ended), the operator snapshots its [`State`] (everything
//!    before the barrier, nothing after), hands it over and forwards the
//!    barrier. Gathers do the same, emitting what they buffered first.
//! 4. The sink pre-commits what it wrote since `Barrier(n - 1)` (closes
//!    hidden in-progress files) and hands over what a restore needs to
//!    commit or discard them.
//! 5. With every stateful task's state in hand, the coordinator writes the
//!    checkpoint ([`store`]: Arrow IPC files, then `_metadata` atomically)
//!    and announces it complete; the sink then commits (renames its files
//!    to their visible names).
//!
//! A task that ends (a bounded source, an operator whose inputs all ended)
//! hands over its final state once; it stands for every later checkpoint.
//! When the sink's input ends, the coordinator writes a last checkpoint
//! marked finished, then the sink commits.
//!
//! State is named by task: the stateful nodes numbered in plan order
//! (`ordinal`, the same at every parallelism) and the instance. Keyed
//! state restores at any parallelism by key group ([`keys`]).

pub mod checksum;
pub mod coordinator;
mod direct;
pub mod keys;
pub(crate) mod launch;
pub mod shared;
pub mod state;
pub mod store;
#[cfg(test)]
mod tests;

pub use coordinator::{CheckpointConfig, CheckpointStats, TaskCheckpoint};
pub use keys::KeyRange;
pub use launch::JobCheckpoints;
pub use state::State;

/// A checkpoint's number: 1, 2, ... within a job, continued on restore.
pub type CheckpointId = u64;

/// A stateful task of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// Its node among the job's stateful nodes, in plan order.
    pub ordinal: u32,
    /// Its instance.
    pub instance: u32,
    /// Instances of its node.
    pub instances: u32,
    /// The node's kind (operator, source or sink name), to tell a
    /// checkpoint of another query apart.
    pub kind: String,
}

impl TaskInfo {
    /// Its key.
    pub fn key(&self) -> (u32, u32) {
        (self.ordinal, self.instance)
    }
}

/// How a node takes part in checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshots {
    /// Nothing to keep (filters, projections, window assignment).
    Stateless,
    /// It snapshots and restores its state.
    Stateful,
    /// It cannot be checkpointed (yet): a job with it refuses checkpoints.
    Unsupported,
}
