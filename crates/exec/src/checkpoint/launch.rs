//! A checkpointing job's launch: its stateful tasks numbered, checked
//! against the checkpoint it resumes from, each given its handle and its
//! restored state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sluice_common::{Error, Result};
use tokio::task::JoinSet;

use super::coordinator::{CheckpointConfig, CheckpointStats, Coordinator, SavepointTrigger};
use super::{KeyRange, Snapshots, State, TaskCheckpoint, TaskInfo};
use crate::graph::{NodeKind, StreamGraph, StreamNode};

/// What a running job's checkpoints expose.
#[derive(Clone)]
pub struct JobCheckpoints {
    /// The job's name.
    pub job: String,
    /// Counters.
    pub stats: Arc<Mutex<CheckpointStats>>,
    /// Takes a checkpoint on demand.
    pub savepoints: SavepointTrigger,
}

impl std::fmt::Debug for JobCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobCheckpoints")
            .field("job", &self.job)
            .finish()
    }
}

/// The tasks of a checkpointing job as it is launched.
pub(crate) struct Launching {
    coordinator: Option<Coordinator>,
    job: String,
    /// Stateful node (by its counters' address) -> ordinal.
    ordinals: HashMap<usize, u32>,
    infos: HashMap<u32, Vec<TaskInfo>>,
    restored: HashMap<u32, Vec<State>>,
    sink: Option<TaskInfo>,
}

/// A node's identity while it is launched (its counters' address).
pub(crate) fn node_key(node: &StreamNode) -> usize {
    Arc::as_ptr(&node.metrics) as usize
}

/// Number the stateful nodes of `node` (inputs first), refusing what
/// cannot be checkpointed.
fn number(
    node: &StreamNode,
    next: &mut u32,
    out: &mut Vec<(usize, TaskInfo)>,
    seen: &mut Vec<usize>,
) -> Result<()> {
    let key = node_key(node);
    let add = |kind: &str, instances: usize, next: &mut u32, out: &mut Vec<(usize, TaskInfo)>| {
        for i in 0..instances {
            let info = TaskInfo {
                ordinal: *next,
                instance: i as u32,
                instances: instances as u32,
                kind: kind.to_string(),
            };
            out.push((key, info));
        }
        *next += 1;
    };
    match &node.kind {
        NodeKind::Source(source, _) => {
            if !source.checkpoints() {
                return Err(Error::Checkpoint(format!(
                    "{} cannot resume from a checkpoint yet: run this job without \
                     'execution.checkpointing.interval'",
                    source.name()
                )));
            }
            add(source.name(), 1, next, out);
        }
        NodeKind::Operator(ops) => {
            let replayed = ops[0].replayed_inputs();
            for (k, input) in node.inputs.iter().enumerate() {
                if !replayed.contains(&k) {
                    number(input, next, out, seen)?;
                }
            }
            match ops[0].snapshots() {
                Snapshots::Stateless => {}
                Snapshots::Stateful => add(ops[0].name(), ops.len(), next, out),
                Snapshots::Unsupported => {
                    return Err(Error::Checkpoint(format!(
                        "{} cannot be checkpointed yet: run this job without \
                         'execution.checkpointing.interval'",
                        ops[0].name()
                    )))
                }
            }
        }
        NodeKind::Shared(shared) => {
            // Numbered where first read.
            let inner = shared
                .node
                .lock()
                .map_err(|_| Error::internal("shared node lock"))?;
            if let Some(inner) = inner.as_ref() {
                if !seen.contains(&key) {
                    seen.push(key);
                    number(inner, next, out, seen)?;
                }
            }
        }
    }
    Ok(())
}

impl Launching {
    /// Number `graph`'s stateful tasks, check them against the checkpoint
    /// `cfg` resumes from and make the coordinator.
    pub(crate) fn prepare(graph: &StreamGraph, cfg: CheckpointConfig) -> Result<Self> {
        let mut next = 0;
        let mut numbered = Vec::new();
        number(&graph.root, &mut next, &mut numbered, &mut Vec::new())?;
        let Some((sink, _)) = &graph.sink else {
            return Err(Error::Checkpoint(
                "only INSERT INTO jobs take checkpoints".into(),
            ));
        };
        if !sink.checkpoints() {
            return Err(Error::Checkpoint(format!(
                "{} cannot take part in checkpoints yet: run this job without \
                 'execution.checkpointing.interval'",
                sink.name()
            )));
        }
        let sink = TaskInfo {
            ordinal: next,
            instance: 0,
            instances: 1,
            kind: sink.name().to_string(),
        };
        let mut all: Vec<TaskInfo> = numbered.iter().map(|(_, t)| t.clone()).collect();
        all.push(sink.clone());
        let restored = match &cfg.restored {
            Some(loaded) => restored_states(&loaded.tasks, &all, &loaded.path)?,
            None => HashMap::new(),
        };
        let mut ordinals = HashMap::new();
        let mut infos: HashMap<u32, Vec<TaskInfo>> = HashMap::new();
        for (key, info) in numbered {
            ordinals.insert(key, info.ordinal);
            infos.entry(info.ordinal).or_default().push(info);
        }
        Ok(Launching {
            job: cfg.job.clone(),
            coordinator: Some(Coordinator::new(cfg, all)),
            ordinals,
            infos,
            restored,
            sink: Some(sink),
        })
    }

    /// What the job exposes of its checkpoints.
    pub(crate) fn exposed(&self) -> Option<JobCheckpoints> {
        let c = self.coordinator.as_ref()?;
        Some(JobCheckpoints {
            job: self.job.clone(),
            stats: c.stats(),
            savepoints: c.savepoints(),
        })
    }

    /// Spawn the coordinator (after every task took its handle).
    pub(crate) fn spawn(&mut self, tasks: &mut JoinSet<Result<()>>) {
        if let Some(c) = self.coordinator.take() {
            tasks.spawn(c.run());
        }
    }

    fn handle(&self, info: &TaskInfo) -> Option<TaskCheckpoint> {
        self.coordinator.as_ref().map(|c| c.handle(info))
    }

    /// The handle and restored state of source `node`.
    pub(crate) fn source(&self, node: usize) -> Option<(TaskCheckpoint, Option<State>)> {
        let ordinal = self.ordinals.get(&node)?;
        let info = self.infos.get(ordinal)?.first()?;
        let state = self.restored.get(ordinal).and_then(|s| s.first()).cloned();
        Some((self.handle(info)?, state))
    }

    /// The handle, restored states and key range of instance `i` of
    /// stateful node `node` (`None`: stateless).
    pub(crate) fn operator(
        &self,
        node: usize,
        i: usize,
    ) -> Option<(TaskCheckpoint, &[State], KeyRange)> {
        let ordinal = self.ordinals.get(&node)?;
        let info = self.infos.get(ordinal)?.get(i)?;
        let states = self.restored.get(ordinal).map_or(&[][..], Vec::as_slice);
        let keys = KeyRange {
            instance: i,
            parallelism: info.instances as usize,
        };
        Some((self.handle(info)?, states, keys))
    }

    /// The sink's handle, the job's name and its restored state.
    pub(crate) fn sink(&self) -> Option<(TaskCheckpoint, String, Option<State>)> {
        let info = self.sink.as_ref()?;
        let state = self
            .restored
            .get(&info.ordinal)
            .and_then(|s| s.first())
            .cloned();
        Some((self.handle(info)?, self.job.clone(), state))
    }
}

/// The restored states by ordinal (every instance's, in order), once the
/// checkpoint's tasks match the job's: the same stateful nodes, in the same
/// order, of the same kinds.
fn restored_states(
    stored: &[(TaskInfo, State)],
    now: &[TaskInfo],
    path: &std::path::Path,
) -> Result<HashMap<u32, Vec<State>>> {
    let kinds = |tasks: &mut dyn Iterator<Item = &TaskInfo>| {
        let mut k: Vec<(u32, String)> = tasks.map(|t| (t.ordinal, t.kind.clone())).collect();
        k.sort();
        k.dedup();
        k
    };
    let before = kinds(&mut stored.iter().map(|(t, _)| t));
    let after = kinds(&mut now.iter());
    if before != after {
        let show = |k: &[(u32, String)]| {
            k.iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::Checkpoint(format!(
            "the checkpoint {} holds the state of other operators ({}) than this job has \
             ({}); run the query that took it, or start anew (another 'pipeline.name', or \
             remove the checkpoint)",
            path.display(),
            show(&before),
            show(&after)
        )));
    }
    let mut by: Vec<&(TaskInfo, State)> = stored.iter().collect();
    by.sort_by_key(|(t, _)| (t.ordinal, t.instance));
    let mut out: HashMap<u32, Vec<State>> = HashMap::new();
    for (t, s) in by {
        out.entry(t.ordinal).or_default().push(s.clone());
    }
    Ok(out)
}
