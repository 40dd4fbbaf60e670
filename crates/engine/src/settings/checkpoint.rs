//! Checkpoint settings, with Flink's keys (and their Flink 2 names as
//! aliases).

use std::path::PathBuf;
use std::time::Duration;

use sluice_common::{Error, Result};

use super::{check_duration, Settings, Spec};

pub(super) const SPECS: &[Spec] = &[
    Spec {
        key: "execution.checkpointing.interval",
        aliases: &[],
        default: "0 ms",
        help: "how often an INSERT job takes a checkpoint it can resume from after a crash \
               (0: none), e.g. '10 s'; needs state.checkpoints.dir",
        check: check_duration,
    },
    Spec {
        key: "state.checkpoints.dir",
        aliases: &["execution.checkpointing.dir"],
        default: "unset",
        help: "where checkpoints go: a directory (a plain path or file:///path); each job \
               keeps its own under it, named by pipeline.name",
        check: check_path,
    },
    Spec {
        key: "pipeline.name",
        aliases: &[],
        default: "unset",
        help: "the next INSERT job's name: its checkpoints are found by it when the job is \
               run again (unset: made from the statement)",
        check: check_name,
    },
    Spec {
        key: "execution.savepoint.path",
        aliases: &["execution.state-recovery.path"],
        default: "unset",
        help: "resume the next INSERT job from this checkpoint or savepoint directory \
               (unset: from the job's latest checkpoint, if any)",
        check: check_path,
    },
    Spec {
        key: "state.checkpoints.num-retained",
        aliases: &["execution.checkpointing.num-retained"],
        default: "1",
        help: "completed checkpoints kept per job (older ones are deleted)",
        check: super::check_positive,
    },
    Spec {
        key: "execution.checkpointing.tolerable-failed-checkpoints",
        aliases: &[],
        default: "0",
        help: "failed checkpoints a job survives (each is logged with its cause); one more \
               fails the job",
        check: check_count,
    },
    Spec {
        key: "execution.checkpointing.timeout",
        aliases: &[],
        default: "600000 ms",
        help: "a checkpoint not complete after this long has failed, e.g. '10 min'",
        check: check_duration,
    },
];

fn check_path(v: &str) -> std::result::Result<String, String> {
    let p = v.trim();
    let p = p.strip_prefix("file://").unwrap_or(p);
    if p.is_empty() {
        return Err("a directory (a path or file:///path)".into());
    }
    if v.contains("://") && !v.trim().starts_with("file://") {
        return Err("a local directory (file:///path or a plain path)".into());
    }
    Ok(p.to_string())
}

fn check_name(v: &str) -> std::result::Result<String, String> {
    if v.trim().is_empty() {
        return Err("a non-empty name".into());
    }
    Ok(v.trim().to_string())
}

fn check_count(v: &str) -> std::result::Result<String, String> {
    match v.trim().parse::<u32>() {
        Ok(n) => Ok(n.to_string()),
        _ => Err("a number from 0".into()),
    }
}

/// How the next INSERT job checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointSettings {
    /// Between checkpoints (`None`: the job only resumes, from
    /// `restore`, and takes no checkpoints of its own but its last).
    pub interval: Option<Duration>,
    /// `state.checkpoints.dir`.
    pub dir: Option<PathBuf>,
    /// `pipeline.name`.
    pub name: Option<String>,
    /// `execution.savepoint.path`.
    pub restore: Option<PathBuf>,
    /// `state.checkpoints.num-retained`.
    pub retained: usize,
    /// `execution.checkpointing.tolerable-failed-checkpoints`.
    pub tolerable_failures: u32,
    /// `execution.checkpointing.timeout`.
    pub timeout: Duration,
}

impl Settings {
    /// The checkpoint settings, `None` when jobs neither checkpoint nor
    /// resume.
    pub fn checkpointing(&self) -> Result<Option<CheckpointSettings>> {
        let interval = self.nonzero_duration("execution.checkpointing.interval");
        let path = |k: &str| self.value(k).map(PathBuf::from);
        let restore = path("execution.savepoint.path");
        if interval.is_none() && restore.is_none() {
            return Ok(None);
        }
        let dir = path("state.checkpoints.dir");
        if interval.is_some() && dir.is_none() {
            return Err(Error::plan(
                "'execution.checkpointing.interval' is set but 'state.checkpoints.dir' is not: \
                 SET 'state.checkpoints.dir' = '/path/to/checkpoints'",
            ));
        }
        let number = |k: &str, default: u64| {
            self.value(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        Ok(Some(CheckpointSettings {
            interval,
            dir,
            name: self.value("pipeline.name").map(str::to_string),
            restore,
            retained: number("state.checkpoints.num-retained", 1).max(1) as usize,
            tolerable_failures: number("execution.checkpointing.tolerable-failed-checkpoints", 0)
                as u32,
            timeout: self
                .duration("execution.checkpointing.timeout")
                .unwrap_or(Duration::from_secs(600)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_settings_are_checked() {
        let mut s = Settings::default();
        assert!(s.checkpointing().expect("valid").is_none());
        s.set("execution.checkpointing.interval", "1 s")
            .expect("duration");
        let err = s.checkpointing().expect_err("no dir");
        assert!(err.to_string().contains("state.checkpoints.dir"), "{err}");
        s.set("execution.checkpointing.dir", "file:///tmp/ck")
            .expect("Flink 2 name");
        s.set("pipeline.name", "job").expect("name");
        let c = s.checkpointing().expect("valid").expect("on");
        assert_eq!(c.interval, Some(Duration::from_secs(1)));
        assert_eq!(c.dir, Some(PathBuf::from("/tmp/ck")));
        assert_eq!((c.retained, c.tolerable_failures), (1, 0));
        assert!(s.set("state.checkpoints.dir", "s3://bucket/x").is_err());
        assert!(s.set("state.checkpoints.num-retained", "0").is_err());
        assert!(s.set("pipeline.name", " ").is_err());
    }
}
