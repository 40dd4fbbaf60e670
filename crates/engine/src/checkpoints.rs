//! Checkpoints of INSERT jobs: the job's name and directory, the
//! checkpoint it resumes from, and the check that the checkpoint was taken
//! by the same query.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_common::{Error, Result};
use sluice_exec::checkpoint::store::{self, Loaded};
use sluice_exec::checkpoint::{CheckpointConfig, CheckpointId};

use crate::settings::CheckpointSettings;

/// Far enough to mean never: a job restored without an interval takes no
/// checkpoint of its own but its last.
const NEVER: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);

/// 64-bit FNV-1a.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A job name as a directory name.
fn dir_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What an INSERT job's checkpoints need to know of it.
pub(crate) struct JobIdentity<'a> {
    /// The table it writes.
    pub sink_table: &'a str,
    /// Its statement's text.
    pub statement: &'a str,
    /// Its optimized logical plan, as text (the query's identity).
    pub plan: &'a str,
    /// Where it writes: its sink table's options.
    pub sink: &'a str,
}

/// The checkpointing of a job, and what to tell the user about it.
pub(crate) struct JobCheckpointing {
    pub config: CheckpointConfig,
    /// "resuming ... from checkpoint n", or warnings about damaged ones.
    pub notice: Option<String>,
    /// It resumes from a checkpoint the user chose
    /// (`execution.savepoint.path`).
    pub chosen: bool,
}

impl JobCheckpointing {
    /// The checkpoint interval, unless the job only takes its last one.
    pub fn interval(&self) -> Option<std::time::Duration> {
        (self.config.interval < NEVER).then_some(self.config.interval)
    }

    /// The sink's destination committed the rows of checkpoints up to
    /// `committed` (0: none) and cannot commit a later one's any more:
    /// resume from that checkpoint instead of a newer one (which is
    /// abandoned), or start anew. Retains two checkpoints at least, so the
    /// last committed one is still there when a newer one completes.
    pub fn resume_committed(&mut self, committed: CheckpointId) -> Result<()> {
        let cfg = &mut self.config;
        cfg.retained = cfg.retained.max(2);
        let Some(newest) = cfg.restored.as_ref().map(|r| r.id) else {
            return Ok(()); // a fresh start
        };
        if committed == newest || (self.chosen && committed > newest) {
            return Ok(());
        }
        if committed > newest {
            return Err(Error::Checkpoint(format!(
                "job '{}': its sink's destination says checkpoint {committed} was committed, \
                 but the newest checkpoint in {} is {newest}; is another job writing with \
                 the same transactional id prefix (Kafka) or the same name into the same table \
                 (PostgreSQL)? Remove the checkpoints to start anew",
                cfg.job,
                cfg.job_dir.display()
            )));
        }
        let (restored, said) = if committed == 0 {
            let said = format!(
                "Job '{}' starts anew: its sink holds the rows of none of its checkpoints \
                 (the newest is {newest}).",
                cfg.job
            );
            (None, said)
        } else {
            let path = store::checkpoint_dir(&cfg.job_dir, committed);
            let loaded = store::load(&path).map_err(|e| {
                Error::Checkpoint(format!(
                    "job '{}': checkpoint {committed}, the last whose rows its sink holds, \
                     cannot be read: {}",
                    cfg.job,
                    e.message()
                ))
            })?;
            check_fingerprint(&loaded, &cfg.fingerprint, &cfg.job)?;
            let said = format!(
                "Job '{}' resumes from checkpoint {committed} ({}), the last whose rows its \
                 sink holds (the newest is {newest}).",
                cfg.job,
                path.display()
            );
            (Some(Arc::new(loaded)), said)
        };
        if !self.chosen {
            store::discard_after(&cfg.job_dir, committed)?;
        }
        cfg.restored = restored;
        let mut notes: Vec<&str> = self
            .notice
            .as_deref()
            .map(|n| n.lines().filter(|l| !l.starts_with("Job '")).collect())
            .unwrap_or_default();
        notes.push(&said);
        self.notice = Some(notes.join("\n"));
        Ok(())
    }
}

/// The checkpoint config of the job `id` under `settings`; `None` when
/// jobs do not checkpoint.
pub(crate) fn configure(
    settings: Option<CheckpointSettings>,
    id: &JobIdentity<'_>,
    base_dir: Option<&Path>,
) -> Result<Option<JobCheckpointing>> {
    let Some(s) = settings else {
        return Ok(None);
    };
    let name = s.name.clone().unwrap_or_else(|| {
        let words: Vec<&str> = id.statement.split_whitespace().collect();
        format!(
            "insert-into-{}-{:08x}",
            id.sink_table,
            fnv(words.join(" ").as_bytes()) as u32
        )
    });
    let resolve = |p: &Path| match base_dir {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.to_path_buf(),
    };
    let job_dir = match &s.dir {
        Some(d) => resolve(d).join(dir_name(&name)),
        None => {
            // Resuming a savepoint without checkpoints of its own: the
            // last one goes beside it.
            let restore = s.restore.as_ref().map(|p| resolve(p));
            restore
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("."))
        }
    };
    let fingerprint = format!(
        "{:016x}",
        fnv(format!("{}\n{}", id.plan, id.sink).as_bytes())
    );
    let (restored, mut notes) = match &s.restore {
        Some(p) => {
            let path = resolve(p);
            let loaded = store::load(&path).map_err(|e| {
                Error::Checkpoint(format!(
                    "cannot resume from 'execution.savepoint.path' ({}): {}",
                    path.display(),
                    e.message()
                ))
            })?;
            (Some(loaded), vec![])
        }
        None => {
            let (loaded, skipped) = store::latest(&job_dir);
            let notes = skipped
                .into_iter()
                .map(|why| format!("passed over a damaged checkpoint: {why}"))
                .collect();
            (loaded, notes)
        }
    };
    if let Some(l) = &restored {
        check_fingerprint(l, &fingerprint, &name)?;
        notes.push(format!(
            "Job '{name}' resumes from checkpoint {} ({}).",
            l.id,
            l.path.display()
        ));
    }
    let config = CheckpointConfig {
        job: name,
        job_dir,
        interval: s.interval.unwrap_or(NEVER),
        timeout: s.timeout,
        retained: s.retained,
        tolerable_failures: s.tolerable_failures,
        fingerprint,
        restored: restored.map(Arc::new),
        siblings: vec![],
    };
    Ok(Some(JobCheckpointing {
        config,
        notice: (!notes.is_empty()).then(|| notes.join("\n")),
        chosen: s.restore.is_some(),
    }))
}

pub(crate) fn check_fingerprint(l: &Loaded, fingerprint: &str, name: &str) -> Result<()> {
    if l.fingerprint == fingerprint {
        return Ok(());
    }
    Err(Error::Checkpoint(format!(
        "the checkpoint {} of job '{name}' was taken by another query (or one writing \
         elsewhere): resuming it would mix their state. Run the query that took it, or start \
         anew: SET 'pipeline.name' to another name, or remove the checkpoint",
        l.path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checkpoints 1..=3 of job `j` under `dir`, and the job resuming from
    /// the newest (or from checkpoint `chosen`, as a chosen savepoint).
    fn job(dir: &Path, chosen: Option<CheckpointId>) -> JobCheckpointing {
        let job_dir = dir.join("j");
        for id in 1..=3 {
            let mut shared = Default::default();
            store::write(&job_dir, id, "fp", false, &[], &mut shared).expect("writes");
        }
        let restored = match chosen {
            Some(id) => store::load(&store::checkpoint_dir(&job_dir, id)).ok(),
            None => store::latest(&job_dir).0,
        };
        JobCheckpointing {
            config: CheckpointConfig {
                job: "j".into(),
                job_dir,
                interval: std::time::Duration::from_secs(1),
                timeout: std::time::Duration::from_secs(60),
                retained: 1,
                tolerable_failures: 0,
                fingerprint: "fp".into(),
                restored: restored.map(Arc::new),
                siblings: vec![],
            },
            notice: None,
            chosen: chosen.is_some(),
        }
    }

    fn left(ck: &JobCheckpointing) -> Vec<bool> {
        (1..=3)
            .map(|id| store::checkpoint_dir(&ck.config.job_dir, id).exists())
            .collect()
    }

    /// A sink whose destination committed checkpoint `c` makes the job
    /// resume from `c`, abandoning newer ones, or start anew (0); a record
    /// newer than every checkpoint is refused; a chosen savepoint stands
    /// unless its rows were not committed.
    #[test]
    fn resumes_from_the_last_committed_checkpoint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ck = job(dir.path(), None);
        ck.resume_committed(3).expect("resumes");
        assert_eq!(ck.config.restored.as_ref().map(|r| r.id), Some(3));
        assert_eq!((ck.config.retained, ck.notice.is_none()), (2, true));

        let mut ck = job(dir.path(), None);
        ck.resume_committed(2).expect("resumes");
        assert_eq!(ck.config.restored.as_ref().map(|r| r.id), Some(2));
        assert!(ck.notice.as_deref().unwrap_or("").contains("checkpoint 2"));
        assert_eq!(left(&ck), [true, true, false]);

        let mut ck = job(dir.path(), None);
        ck.resume_committed(0).expect("starts anew");
        assert!(ck.config.restored.is_none());
        assert!(ck.notice.as_deref().unwrap_or("").contains("starts anew"));
        assert_eq!(left(&ck), [false, false, false]);

        let mut ck = job(dir.path(), None);
        let e = ck
            .resume_committed(7)
            .expect_err("ahead of the checkpoints");
        assert!(e.to_string().contains("another job"), "{e}");

        // A chosen savepoint: older than the record stands; newer than it
        // falls back to the record, keeping the checkpoints.
        let mut ck = job(dir.path(), Some(2));
        ck.resume_committed(3).expect("stands");
        assert_eq!(ck.config.restored.as_ref().map(|r| r.id), Some(2));
        let mut ck = job(dir.path(), Some(3));
        ck.resume_committed(1).expect("falls back");
        assert_eq!(ck.config.restored.as_ref().map(|r| r.id), Some(1));
        assert_eq!(left(&ck), [true, true, true]);
    }

    #[test]
    fn job_names_become_directory_names() {
        assert_eq!(dir_name("my job/1"), "my_job_1");
        assert_eq!(dir_name("insert-into-t-0a"), "insert-into-t-0a");
    }
}
