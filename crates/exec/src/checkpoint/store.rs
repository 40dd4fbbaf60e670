//! Checkpoints on disk.
//!
//! ```text
//! <state.checkpoints.dir>/<job>/chk-<id>/n<task>-i<instance>-<table>.arrow
//!                                      /_metadata
//! ```
//!
//! Each table of each task's [`State`] is one Arrow IPC file. `_metadata`
//! (JSON) lists the tasks, their files with sizes and checksums, the
//! job's plan fingerprint and whether the job had finished; it is written
//! last, to a temporary name renamed into place, so a checkpoint directory
//! without it is incomplete. Loading validates every file against it, so a
//! truncated, missing or corrupt file makes the checkpoint invalid and the
//! previous complete one is used.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use serde_json::{json, Value};
use sluice_common::{Error, Result};

use super::checksum::{Checksum, Hashing};
use super::direct::DirectFile;
use super::shared::{SharedFile, SharedFiles};
use super::state::State;
use super::{CheckpointId, TaskInfo};

/// The manifest's name inside a checkpoint directory.
pub const METADATA: &str = "_metadata";
/// 2: XXH3 checksums (1 had FNV).
const FORMAT: u64 = 2;

/// A complete checkpoint read back from disk.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its id.
    pub id: CheckpointId,
    /// Its directory.
    pub path: PathBuf,
    /// The fingerprint of the plan that took it.
    pub fingerprint: String,
    /// Taken when the job had finished (its sink's last commit).
    pub finished: bool,
    /// Every task's state.
    pub tasks: Vec<(TaskInfo, State)>,
}

/// What writing a checkpoint cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    /// Bytes of its files.
    pub bytes: u64,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path.display().to_string(), e)
}

/// The directory of checkpoint `id` of the job at `job_dir`.
pub fn checkpoint_dir(job_dir: &Path, id: CheckpointId) -> PathBuf {
    job_dir.join(format!("chk-{id}"))
}

/// A file name part made of `s`'s letters and digits.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A manifest's entry of table `name` in `f`.
fn entry(name: &str, f: SharedFile) -> Value {
    json!({
        "name": name,
        "file": f.file,
        "bytes": f.bytes,
        "xxh3": f.sum,
    })
}

/// Write `batches` (one table) at `path` under `base`; `file` is how a
/// manifest names it.
fn write_table(
    base: &Path,
    path: &str,
    file: String,
    batches: &[RecordBatch],
) -> Result<SharedFile> {
    let at = base.join(path);
    if let Some(parent) = at.parent() {
        fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let f = DirectFile::create(&at).map_err(|e| io(&at, e))?;
    // Streamed to the file (no copy of the whole table in memory), around
    // the page cache, the checksum taken on the way.
    let mut out = Hashing::new(f);
    if let Some(first) = batches.first() {
        let mut w = FileWriter::try_new(&mut out, &first.schema())?;
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    let sum = out.sum.clone();
    out.into_inner().finish().map_err(|e| io(&at, e))?;
    Ok(SharedFile {
        file,
        bytes: sum.len(),
        sum: format!("{:016x}", sum.finish()),
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| io(path, e))?;
    f.write_all(bytes).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))
}

/// Write checkpoint `id` of a job: every task's tables (shared ones only
/// when `shared` has no file of them yet), then the manifest.
pub fn write(
    job_dir: &Path,
    id: CheckpointId,
    fingerprint: &str,
    finished: bool,
    tasks: &[(TaskInfo, State)],
    shared: &mut SharedFiles,
) -> Result<Written> {
    let dir = checkpoint_dir(job_dir, id);
    fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let mut bytes = 0u64;
    let mut entries = Vec::with_capacity(tasks.len());
    for (task, state) in tasks {
        let mut tables = Vec::new();
        for (name, batch) in state.tables() {
            let file = format!("n{}-i{}-{}.arrow", task.ordinal, task.instance, safe(name));
            let f = write_table(&dir, &file, file.clone(), std::slice::from_ref(batch))?;
            bytes += f.bytes;
            tables.push(entry(name, f));
        }
        for t in state.shared() {
            let key = safe(&t.key);
            let f = match shared.lookup(task.key(), &key, id) {
                Ok(f) => f,
                Err((path, file)) => {
                    let f = write_table(job_dir, &path, file, &t.batches)?;
                    bytes += f.bytes;
                    shared.written(task.key(), &key, f.clone());
                    f
                }
            };
            tables.push(entry(&t.name, f));
        }
        entries.push(json!({
            "ordinal": task.ordinal,
            "instance": task.instance,
            "instances": task.instances,
            "kind": task.kind,
            "tables": tables,
        }));
    }
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let manifest = json!({
        "format": FORMAT,
        "checkpoint": id,
        "fingerprint": fingerprint,
        "finished": finished,
        "created_ms": created,
        "tasks": entries,
    });
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::internal(format!("manifest: {e}")))?;
    let tmp = dir.join("_metadata.inprogress");
    write_synced(&tmp, &text)?;
    let meta = dir.join(METADATA);
    fs::rename(&tmp, &meta).map_err(|e| io(&meta, e))?;
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(Written { bytes })
}

/// Whether checkpoint `id` of the job at `job_dir` completed (its
/// manifest was written).
pub fn is_complete(job_dir: &Path, id: CheckpointId) -> bool {
    checkpoint_dir(job_dir, id).join(METADATA).exists()
}

/// Whether complete checkpoint `id` of the job at `job_dir` was taken
/// when the job had finished; `None` when it is not complete (reads only
/// the manifest).
pub fn finished_flag(job_dir: &Path, id: CheckpointId) -> Option<bool> {
    let text = fs::read(checkpoint_dir(job_dir, id).join(METADATA)).ok()?;
    let v: Value = serde_json::from_slice(&text).ok()?;
    v.get("finished").and_then(Value::as_bool)
}

/// The newest complete checkpoint of the job at `job_dir` and whether it
/// was taken when the job had finished.
pub fn newest_complete(job_dir: &Path) -> Option<(CheckpointId, bool)> {
    ids(job_dir)
        .into_iter()
        .find_map(|id| Some((id, finished_flag(job_dir, id)?)))
}

/// Checkpoint ids found under `job_dir` (complete or not), newest first.
pub fn ids(job_dir: &Path) -> Vec<CheckpointId> {
    let Ok(entries) = fs::read_dir(job_dir) else {
        return vec![];
    };
    let mut ids: Vec<CheckpointId> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix("chk-")?.parse().ok()
        })
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

fn invalid(dir: &Path, what: impl std::fmt::Display) -> Error {
    Error::Checkpoint(format!("{}: {what}", dir.display()))
}

/// Read and validate the checkpoint in `dir`.
pub fn load(dir: &Path) -> Result<Loaded> {
    let meta = dir.join(METADATA);
    let text =
        fs::read(&meta).map_err(|e| invalid(dir, format!("no readable {METADATA} ({e})")))?;
    let v: Value = serde_json::from_slice(&text)
        .map_err(|e| invalid(dir, format!("{METADATA} is not valid ({e})")))?;
    let num = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid(dir, format!("{METADATA} has no '{k}'")))
    };
    let text_of = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| invalid(dir, format!("{METADATA} has no '{k}'")))
    };
    if num(&v, "format")? != FORMAT {
        return Err(invalid(dir, "written by another version of Sluice"));
    }
    let mut tasks = Vec::new();
    let entries = v
        .get("tasks")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(dir, format!("{METADATA} has no tasks")))?;
    for t in entries {
        let info = TaskInfo {
            ordinal: num(t, "ordinal")? as u32,
            instance: num(t, "instance")? as u32,
            instances: num(t, "instances")? as u32,
            kind: text_of(t, "kind")?,
        };
        let mut state = State::new();
        for table in t
            .get("tables")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = text_of(table, "name")?;
            let file = text_of(table, "file")?;
            let path = dir.join(&file);
            let data = fs::read(&path).map_err(|e| invalid(dir, format!("{file}: {e}")))?;
            if data.len() as u64 != num(table, "bytes")? {
                return Err(invalid(dir, format!("{file} is truncated")));
            }
            if format!("{:016x}", Checksum::of(&data)) != text_of(table, "xxh3")? {
                return Err(invalid(dir, format!("{file} is corrupt (checksum)")));
            }
            let reader = FileReader::try_new(std::io::Cursor::new(data), None)
                .map_err(|e| invalid(dir, format!("{file}: {e}")))?;
            let schema = reader.schema();
            let batches = reader
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| invalid(dir, format!("{file}: {e}")))?;
            let batch = arrow::compute::concat_batches(&schema, &batches)?;
            state.add(&name, batch);
        }
        tasks.push((info, state));
    }
    Ok(Loaded {
        id: num(&v, "checkpoint")?,
        path: dir.to_path_buf(),
        fingerprint: text_of(&v, "fingerprint")?,
        finished: v.get("finished").and_then(Value::as_bool).unwrap_or(false),
        tasks,
    })
}

/// The newest valid checkpoint of the job at `job_dir`, and why each newer
/// one was passed over.
pub fn latest(job_dir: &Path) -> (Option<Loaded>, Vec<String>) {
    let mut skipped = Vec::new();
    for id in ids(job_dir) {
        let dir = checkpoint_dir(job_dir, id);
        if !dir.join(METADATA).exists() {
            continue; // never completed: not a checkpoint
        }
        match load(&dir) {
            Ok(l) => return (Some(l), skipped),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    (None, skipped)
}

/// The highest checkpoint number in `job_dir`, complete or not.
pub fn newest_id(job_dir: &Path) -> Option<CheckpointId> {
    ids(job_dir).into_iter().next()
}

/// Remove the checkpoints of the job at `job_dir` newer than `id` (a job
/// resuming from `id` abandons them; their numbers are taken again).
pub fn discard_after(job_dir: &Path, id: CheckpointId) -> Result<()> {
    for newer in ids(job_dir).into_iter().filter(|n| *n > id) {
        let dir = checkpoint_dir(job_dir, newer);
        fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
    }
    Ok(())
}

/// Keep the newest `keep` complete checkpoints of the job at `job_dir` and
/// no incomplete one older than the newest complete one; then the shared
/// files the kept ones list.
pub fn retain(job_dir: &Path, keep: usize) -> Result<()> {
    let mut complete = 0;
    let mut manifests = Vec::new();
    for id in ids(job_dir) {
        let dir = checkpoint_dir(job_dir, id);
        let done = dir.join(METADATA).exists();
        if done && complete < keep.max(1) {
            complete += 1;
            let text = fs::read(dir.join(METADATA)).map_err(|e| io(&dir, e))?;
            let v: Value = serde_json::from_slice(&text)
                .map_err(|e| invalid(&dir, format!("{METADATA} is not valid ({e})")))?;
            manifests.push(v);
            continue;
        }
        if complete == 0 {
            continue; // newer than every complete one: may be in progress
        }
        fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
    }
    super::shared::collect(job_dir, &manifests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::state::scalars;

    fn task(ordinal: u32) -> TaskInfo {
        TaskInfo {
            ordinal,
            instance: 0,
            instances: 1,
            kind: "Test".into(),
        }
    }

    /// Written checkpoints load back; a damaged newest one is passed over
    /// for the one before; retention keeps the newest.
    #[test]
    fn write_load_validate_and_retain() {
        let dir = tempfile::tempdir().expect("temp dir");
        let job = dir.path().join("job");
        for id in 1..=3 {
            let state = State::new().with("meta", scalars(&[("id", id as i64)]));
            write(
                &job,
                id,
                "fp",
                false,
                &[(task(0), state)],
                &mut SharedFiles::default(),
            )
            .expect("writes");
        }
        let (l, skipped) = latest(&job);
        let l = l.expect("a checkpoint");
        assert_eq!((l.id, skipped.len()), (3, 0));
        let meta = l.tasks[0].1.require("meta").expect("table");
        assert_eq!(crate::checkpoint::state::scalar(meta, "id").expect("id"), 3);
        // Truncate a state file of 3: 2 is used, and 3's fault is named.
        let file = checkpoint_dir(&job, 3).join("n0-i0-meta.arrow");
        let data = fs::read(&file).expect("reads");
        fs::write(&file, &data[..data.len() / 2]).expect("truncates");
        let (l, skipped) = latest(&job);
        assert_eq!(l.expect("older").id, 2);
        assert!(skipped[0].contains("truncated"), "{skipped:?}");
        // A missing manifest: not a checkpoint at all.
        fs::remove_file(checkpoint_dir(&job, 2).join(METADATA)).expect("removes");
        assert_eq!(latest(&job).0.expect("oldest").id, 1);
        // Retention follows a new complete checkpoint.
        let none = &mut SharedFiles::default();
        write(&job, 4, "fp", false, &[(task(0), State::new())], none).expect("writes");
        retain(&job, 1).expect("retains");
        assert_eq!(ids(&job), vec![4]);
    }

    /// A shared table is written by the first checkpoint that hands it
    /// over and listed by the later ones; retention deletes it once no
    /// kept checkpoint lists it.
    #[test]
    fn shared_tables_are_written_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let job = dir.path().join("job");
        let mut shared = SharedFiles::default();
        let rows = |v: i64| scalars(&[("v", v)]);
        let mut state = State::new().with("meta", rows(0));
        state.add_shared("a", "a".into(), vec![rows(1)]);
        let first = write(
            &job,
            1,
            "fp",
            false,
            &[(task(0), state.clone())],
            &mut shared,
        );
        shared.settle();
        state.add_shared("b", "b".into(), vec![rows(2), rows(2)]);
        let second = write(&job, 2, "fp", false, &[(task(0), state)], &mut shared);
        shared.settle();
        let (first, second) = (first.expect("writes"), second.expect("writes"));
        assert!(second.bytes < 2 * first.bytes, "{first:?} {second:?}");
        retain(&job, 1).expect("retains");
        let l = load(&checkpoint_dir(&job, 2)).expect("loads");
        let v = |t: &str| crate::checkpoint::state::scalar(l.tasks[0].1.require(t)?, "v");
        assert_eq!((v("a").expect("a"), v("b").expect("b")), (1, 2));
        assert_eq!(l.tasks[0].1.require("b").expect("b").num_rows(), 2);
        // Without "a", its file goes when no kept checkpoint lists it.
        let mut state = State::new();
        state.add_shared("b", "b".into(), vec![rows(2), rows(2)]);
        write(&job, 3, "fp", false, &[(task(0), state)], &mut shared).expect("writes");
        shared.settle();
        retain(&job, 1).expect("retains");
        let files: Vec<String> = fs::read_dir(job.join("shared"))
            .expect("shared dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(files, ["c2-n0-i0-b.arrow"], "{files:?}");
        let l = load(&checkpoint_dir(&job, 3)).expect("loads");
        assert!(l.tasks[0].1.get("a").is_none());
    }
}
