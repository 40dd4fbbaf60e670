//! Shared checkpoint files: tables a task hands over under a share key
//! (rows that never change under it, e.g. a join side's stored batches)
//! are written once, into `<job>/shared/`, and every later checkpoint that
//! hands over the same key refers to that file, so a checkpoint writes only
//! what changed since the last one (incremental checkpoints, as RocksDB's
//! shared SST files give Flink).
//!
//! ```text
//! <job>/shared/c<first checkpoint>-n<task>-i<instance>-<key>.arrow
//! ```
//!
//! A manifest lists a shared table like any other, with the file's path
//! relative to the checkpoint's directory (`../shared/...`), its size and
//! checksum, so loading and validation are the same. The checkpoint id in
//! the name keeps runs apart: a resumed job's keys start over, but its
//! checkpoint ids are above every retained checkpoint's. After retention,
//! shared files no retained checkpoint lists are deleted.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use serde_json::Value;
use sluice_common::{Error, Result};

use super::CheckpointId;

/// The shared directory of a job.
pub const SHARED: &str = "shared";

/// A shared file already written, as a manifest lists it.
#[derive(Debug, Clone)]
pub struct SharedFile {
    /// Its path from a checkpoint's directory.
    pub file: String,
    /// Its size.
    pub bytes: u64,
    /// Its checksum (XXH3, hex).
    pub sum: String,
}

/// The shared files a running job wrote, by task and share key.
#[derive(Debug, Clone, Default)]
pub struct SharedFiles {
    files: HashMap<String, SharedFile>,
    used: HashSet<String>,
}

impl SharedFiles {
    /// The file of `key` of task `task` if written before, or the path (from
    /// the job's directory) and manifest path to write it at for
    /// checkpoint `id`.
    pub(crate) fn lookup(
        &mut self,
        task: (u32, u32),
        key: &str,
        id: CheckpointId,
    ) -> std::result::Result<SharedFile, (String, String)> {
        let full = format!("n{}-i{}-{key}", task.0, task.1);
        self.used.insert(full.clone());
        match self.files.get(&full) {
            Some(f) => Ok(f.clone()),
            None => {
                let name = format!("{SHARED}/c{id}-{full}.arrow");
                Err((name.clone(), format!("../{name}")))
            }
        }
    }

    /// Remember the file written for `key` of `task`.
    pub(crate) fn written(&mut self, task: (u32, u32), key: &str, file: SharedFile) {
        self.files
            .insert(format!("n{}-i{}-{key}", task.0, task.1), file);
    }

    /// A checkpoint was written: forget what it did not refer to (it
    /// changed, so the next checkpoint writes it anew).
    pub(crate) fn settle(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.files.retain(|k, _| used.contains(k));
    }
}

/// Delete the shared files of the job at `job_dir` that no manifest in
/// `manifests` (the checkpoints kept) lists.
pub(crate) fn collect(job_dir: &Path, manifests: &[Value]) -> Result<()> {
    let dir = job_dir.join(SHARED);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut listed = HashSet::new();
    for m in manifests {
        let tasks = m.get("tasks").and_then(Value::as_array);
        for t in tasks.into_iter().flatten() {
            let tables = t.get("tables").and_then(Value::as_array);
            for table in tables.into_iter().flatten() {
                if let Some(f) = table.get("file").and_then(Value::as_str) {
                    if let Some(name) = f.strip_prefix(&format!("../{SHARED}/")) {
                        listed.insert(name.to_string());
                    }
                }
            }
        }
    }
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !listed.contains(&name) {
            let path = e.path();
            fs::remove_file(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        }
    }
    Ok(())
}
