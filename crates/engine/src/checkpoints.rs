//! Checkpoints of INSERT jobs: the job's name and directory, the
//! checkpoint it resumes from, and the check that the checkpoint was taken
//! by the same query.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_common::{Error, Result};
use sluice_exec::checkpoint::store::{self, Loaded};
use sluice_exec::checkpoint::CheckpointConfig;

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
    };
    Ok(Some(JobCheckpointing {
        config,
        notice: (!notes.is_empty()).then(|| notes.join("\n")),
    }))
}

fn check_fingerprint(l: &Loaded, fingerprint: &str, name: &str) -> Result<()> {
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

    #[test]
    fn job_names_become_directory_names() {
        assert_eq!(dir_name("my job/1"), "my_job_1");
        assert_eq!(dir_name("insert-into-t-0a"), "insert-into-t-0a");
    }
}
