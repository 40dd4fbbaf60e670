//! The filesystem sink: part files of CSV (with a header row) or JSON lines
//! in the table's directory, as Flink's filesystem connector writes them.
//!
//! Every job writes its own files, `part-<job>-<instance>-<n>.<ext>`, so two
//! `INSERT`s into one table keep both results and nothing is truncated. A
//! part file is written as a hidden `.part-...inprogress` file (readers skip
//! hidden files) and renamed to its visible name when it is complete: when
//! it reaches `sink.rolling-policy.file-size` or has been open
//! `sink.rolling-policy.rollover-interval`, at the end of the input, and when
//! the job is stopped (what was written is kept, never lost silently).
//! `INSERT OVERWRITE` removes the visible files that were there before, once
//! the new ones are complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::changelog;
use sluice_common::{Error, Result};
use sluice_exec::checkpoint::state::{scalar, scalars, string_values};
use sluice_exec::checkpoint::{CheckpointId, State};
use sluice_exec::sink::{Sink, FINAL};

use super::{list_splits, FileOptions, Format, RollingPolicy};
use crate::debezium;

/// Counts the bytes written through it (for the rolling policy).
struct Counting {
    inner: BufWriter<File>,
    bytes: Arc<AtomicU64>,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

enum Writer {
    Csv(Box<arrow::csv::Writer<Counting>>),
    Json(arrow::json::LineDelimitedWriter<Counting>),
    /// Change envelopes, one per line.
    Debezium(Counting),
}

/// The part file being written.
struct Part {
    hidden: PathBuf,
    visible: PathBuf,
    writer: Writer,
    bytes: Arc<AtomicU64>,
    opened: Instant,
    rows: u64,
}

impl Part {
    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Flush and give the file its visible name.
    fn commit(self) -> Result<PathBuf> {
        let (hidden, visible) = (self.hidden.clone(), self.visible.clone());
        self.close(false)?;
        std::fs::rename(&hidden, &visible)
            .map_err(|e| Error::io(visible.display().to_string(), e))?;
        Ok(visible)
    }

    /// Flush it (to disk, with `sync`), still hidden.
    fn close(self, sync: bool) -> Result<()> {
        let name = self.hidden.display().to_string();
        let mut out = match self.writer {
            Writer::Csv(w) => (*w).into_inner(),
            Writer::Json(mut w) => {
                w.finish()?;
                w.into_inner()
            }
            Writer::Debezium(out) => out,
        };
        out.flush().map_err(|e| Error::io(&name, e))?;
        if sync {
            out.inner
                .get_ref()
                .sync_all()
                .map_err(|e| Error::io(&name, e))?;
        }
        Ok(())
    }
}

/// Writes a job's rows as part files into a table's directory.
pub struct FileSink {
    dir: PathBuf,
    /// `part-<job>-<instance>-`.
    prefix: String,
    ext: &'static str,
    format: Format,
    rolling: RollingPolicy,
    part: Option<Part>,
    next_index: u64,
    /// Visible files to remove once the job's own are complete
    /// (`INSERT OVERWRITE`).
    replaced: Vec<PathBuf>,
    /// In a checkpointing job: part files complete but not yet visible.
    two_phase: Option<TwoPhase>,
}

/// A checkpointing job's part files between writing and committing: each
/// stays hidden until the checkpoint after it completes.
#[derive(Default)]
struct TwoPhase {
    /// Rolled since the last barrier.
    closed: Vec<(PathBuf, PathBuf)>,
    /// Pre-committed at a barrier: (checkpoint, hidden, visible).
    pending: Vec<(CheckpointId, PathBuf, PathBuf)>,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink").field("dir", &self.dir).finish()
    }
}

/// A name no other job of this or another process uses.
fn job_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}{:05x}{n:x}", std::process::id())
}

/// The directory a filesystem table is written to, checked: it may not be
/// an existing regular file.
pub fn sink_dir(table: &str, options: &FileOptions) -> Result<PathBuf> {
    let p = &options.path;
    if p.is_file() {
        return Err(Error::plan(format!(
            "table {table}: path '{}' is a file, but a filesystem table written by INSERT is a \
             directory of part files (as in Flink); give the table a directory path",
            p.display()
        )));
    }
    Ok(p.clone())
}

impl FileSink {
    /// A sink writing into `options.path` (created with the first file). With
    /// `overwrite`, the files there now are removed once this job's files
    /// are complete.
    pub fn try_new(table: &str, options: &FileOptions, overwrite: bool) -> Result<Self> {
        let dir = sink_dir(table, options)?;
        let replaced = if overwrite && dir.is_dir() {
            list_splits(&dir)?
        } else {
            vec![]
        };
        let ext = match options.format {
            Format::Csv { .. } => "csv",
            Format::Json | Format::DebeziumJson => "json",
        };
        Ok(FileSink {
            dir,
            prefix: format!("part-{}-0-", job_id()),
            ext,
            format: options.format,
            rolling: options.rolling,
            part: None,
            next_index: 0,
            replaced,
            two_phase: None,
        })
    }

    fn open_part(&mut self) -> Result<Part> {
        let name = format!("{}{}.{}", self.prefix, self.next_index, self.ext);
        self.next_index += 1;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(self.dir.display().to_string(), e))?;
        let hidden = self.dir.join(format!(".{name}.inprogress"));
        let visible = self.dir.join(name);
        let file = File::create(&hidden).map_err(|e| Error::io(hidden.display().to_string(), e))?;
        let bytes = Arc::new(AtomicU64::new(0));
        let out = Counting {
            inner: BufWriter::new(file),
            bytes: Arc::clone(&bytes),
        };
        let writer = match self.format {
            Format::Csv { delimiter } => Writer::Csv(Box::new(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .with_delimiter(delimiter)
                    .with_timestamp_format("%Y-%m-%d %H:%M:%S%.3f".to_string())
                    .build(out),
            )),
            // Nulls are written as `null`, as Flink's json format does.
            Format::Json => Writer::Json(
                arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(out),
            ),
            Format::DebeziumJson => Writer::Debezium(out),
        };
        Ok(Part {
            hidden,
            visible,
            writer,
            bytes,
            opened: Instant::now(),
            rows: 0,
        })
    }

    /// Complete the current part file, if it holds rows: visible at once,
    /// or (checkpointing) once the next checkpoint completes.
    fn roll(&mut self) -> Result<()> {
        match self.part.take() {
            Some(part) if part.rows > 0 => match &mut self.two_phase {
                Some(tp) => {
                    let (hidden, visible) = (part.hidden.clone(), part.visible.clone());
                    part.close(true)?;
                    tp.closed.push((hidden, visible));
                    Ok(())
                }
                None => part.commit().map(|_| ()),
            },
            Some(part) => {
                let _ = std::fs::remove_file(&part.hidden);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Rows (and their kinds) as Debezium envelopes, a line each.
fn write_envelopes(out: &mut Counting, batch: &RecordBatch) -> Result<()> {
    let data = changelog::data(batch)?;
    for line in debezium::encode(&data, changelog::ops(batch))? {
        out.write_all(&line)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| Error::io("part file", e))?;
    }
    Ok(())
}

/// Remove files replaced by `INSERT OVERWRITE`.
fn remove_all(files: &[PathBuf]) -> Result<()> {
    for f in files {
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(f.display().to_string(), e)),
        }
    }
    Ok(())
}

#[async_trait]
impl Sink for FileSink {
    fn name(&self) -> &'static str {
        "FileSink"
    }

    fn describe(&self) -> String {
        format!(
            "FileSink: {}/{}*.{}",
            self.dir.display(),
            self.prefix,
            self.ext
        )
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut part = match self.part.take() {
            Some(p) => p,
            None => self.open_part()?,
        };
        part.rows += batch.num_rows() as u64;
        let written = match &mut part.writer {
            Writer::Csv(w) => w.write(&batch).map_err(Error::from),
            Writer::Json(w) => w.write(&batch).map_err(Error::from),
            Writer::Debezium(w) => write_envelopes(w, &batch),
        };
        let full = part.bytes() >= self.rolling.file_size
            || part.opened.elapsed() >= self.rolling.rollover_interval;
        self.part = Some(part);
        written?;
        if full {
            self.roll()?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        self.roll()?;
        remove_all(&std::mem::take(&mut self.replaced))
    }

    fn checkpoints(&self) -> bool {
        true
    }

    async fn start_checkpoints(&mut self, job: &str, restored: Option<&State>) -> Result<()> {
        self.prefix = format!("part-{:016x}-0-", fnv(job.as_bytes()));
        self.two_phase = Some(TwoPhase::default());
        match restored {
            Some(state) => self.take_up(state)?,
            None => self.next_index = self.next_free_index()?,
        }
        self.discard_uncommitted()
    }

    async fn pre_commit(&mut self, id: CheckpointId) -> Result<State> {
        self.roll()?;
        let tp = self
            .two_phase
            .as_mut()
            .ok_or_else(|| Error::internal("pre-commit without checkpoints"))?;
        for (hidden, visible) in tp.closed.drain(..) {
            tp.pending.push((id, hidden, visible));
        }
        let name = |p: &PathBuf| {
            p.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        };
        let hidden: Vec<String> = tp.pending.iter().map(|(_, h, _)| name(h)).collect();
        let visible: Vec<String> = tp.pending.iter().map(|(_, _, v)| name(v)).collect();
        let replaced: Vec<String> = self
            .replaced
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Ok(State::new()
            .with(
                "hidden",
                sluice_exec::checkpoint::state::strings("file", &hidden),
            )
            .with(
                "visible",
                sluice_exec::checkpoint::state::strings("file", &visible),
            )
            .with(
                "replaced",
                sluice_exec::checkpoint::state::strings("file", &replaced),
            )
            .with("meta", scalars(&[("next_index", self.next_index as i64)])))
    }

    async fn commit(&mut self, id: CheckpointId) -> Result<()> {
        let Some(tp) = self.two_phase.as_mut() else {
            return Ok(());
        };
        let (due, keep): (Vec<_>, Vec<_>) = tp.pending.drain(..).partition(|(c, _, _)| *c <= id);
        tp.pending = keep;
        for (_, hidden, visible) in due {
            publish(&hidden, &visible)?;
        }
        if id == FINAL {
            remove_all(&std::mem::take(&mut self.replaced))?;
        }
        Ok(())
    }
}

/// 64-bit FNV-1a: a stable tag for a job's file names.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Give a pre-committed file its visible name (done already if only the
/// visible one is there).
fn publish(hidden: &Path, visible: &Path) -> Result<()> {
    match std::fs::rename(hidden, visible) {
        Ok(()) => Ok(()),
        Err(_) if visible.exists() && !hidden.exists() => Ok(()),
        Err(e) => Err(Error::io(hidden.display().to_string(), e)),
    }
}

impl FileSink {
    /// Commit what the checkpoint `state` pre-committed and continue its
    /// file numbering.
    fn take_up(&mut self, state: &State) -> Result<()> {
        let hidden = string_values(state.require("hidden")?, "file")?;
        let visible = string_values(state.require("visible")?, "file")?;
        for (h, v) in hidden.iter().zip(&visible) {
            publish(&self.dir.join(h), &self.dir.join(v))?;
        }
        self.replaced = string_values(state.require("replaced")?, "file")?
            .into_iter()
            .map(PathBuf::from)
            .collect();
        // Past any file a newer checkpoint than this one published.
        let next = scalar(state.require("meta")?, "next_index")? as u64;
        self.next_index = next.max(self.next_free_index()?);
        Ok(())
    }

    /// After the highest index among this job's visible files.
    fn next_free_index(&self) -> Result<u64> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(0);
        };
        let mut next = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let n = name
                .strip_prefix(&self.prefix)
                .and_then(|rest| rest.split('.').next())
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(n) = n {
                next = next.max(n + 1);
            }
        }
        Ok(next)
    }

    /// Remove the hidden files of this job's earlier attempts: written
    /// after their last checkpoint, they come again from it.
    fn discard_uncommitted(&self) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        let hidden = format!(".{}", self.prefix);
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(&hidden) && name.ends_with(".inprogress") {
                let path = e.path();
                std::fs::remove_file(&path)
                    .map_err(|err| Error::io(path.display().to_string(), err))?;
            }
        }
        Ok(())
    }
}

impl Drop for FileSink {
    /// A stopped job keeps what it wrote: the current part file is
    /// completed (best effort; there is nobody to report an error to). A
    /// checkpointing job's stays hidden: its rows come again when the job
    /// resumes from its last checkpoint, which discards the file.
    fn drop(&mut self) {
        if self.two_phase.is_none() {
            let _ = self.roll();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    fn options(dir: &Path, file_size: u64) -> FileOptions {
        FileOptions {
            path: dir.to_path_buf(),
            format: Format::Csv { delimiter: b',' },
            ignore_parse_errors: false,
            rolling: RollingPolicy {
                file_size,
                rollover_interval: Duration::from_secs(3600),
            },
        }
    }

    fn batch(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))])
            .expect("batch")
    }

    fn visible(dir: &Path) -> Vec<String> {
        let mut texts: Vec<String> = list_splits(dir)
            .expect("lists")
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("reads"))
            .collect();
        texts.sort();
        texts
    }

    fn run(dir: &Path, file_size: u64, overwrite: bool, batches: &[&[i64]]) {
        let mut sink = FileSink::try_new("t", &options(dir, file_size), overwrite).expect("sink");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            for v in batches {
                sink.write(batch(v)).await.expect("writes");
            }
            sink.finish().await.expect("finishes");
        });
    }

    /// Two jobs into one directory keep both results; OVERWRITE replaces.
    #[test]
    fn jobs_append_part_files_and_overwrite_replaces() {
        let dir = tempfile::tempdir().expect("dir");
        run(dir.path(), 1 << 20, false, &[&[1, 2]]);
        run(dir.path(), 1 << 20, false, &[&[3]]);
        assert_eq!(visible(dir.path()), ["a\n1\n2\n", "a\n3\n"]);
        run(dir.path(), 1 << 20, true, &[&[4]]);
        assert_eq!(visible(dir.path()), ["a\n4\n"]);
    }

    /// Files roll at the size limit; nothing in progress stays behind.
    #[test]
    fn rolls_at_the_file_size() {
        let dir = tempfile::tempdir().expect("dir");
        run(dir.path(), 1, false, &[&[1], &[2], &[]]);
        assert_eq!(visible(dir.path()), ["a\n1\n", "a\n2\n"]);
        let all = std::fs::read_dir(dir.path()).expect("reads").count();
        assert_eq!(all, 2, "no hidden in-progress file left");
    }

    /// A stopped job (the sink dropped without finish) keeps its rows.
    #[test]
    fn dropped_sink_keeps_what_it_wrote() {
        let dir = tempfile::tempdir().expect("dir");
        let mut sink = FileSink::try_new("t", &options(dir.path(), 1 << 20), false).expect("sink");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async { sink.write(batch(&[9])).await.expect("writes") });
        drop(sink);
        assert_eq!(visible(dir.path()), ["a\n9\n"]);
    }

    #[test]
    fn an_existing_file_is_not_a_table_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("out.csv");
        std::fs::write(&file, "a\n1\n").expect("writes");
        let err = sink_dir("t", &options(&file, 1)).expect_err("a file");
        assert!(err.to_string().contains("is a file"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).expect("reads"), "a\n1\n");
    }
}
