//! `connector = 'filesystem'`: CSV (with a header row) and JSON lines.
//!
//! Options: `path` (a file or a directory; in a directory every non-hidden
//! file is a split; `file://` is allowed), `format` (`csv` | `json` |
//! `debezium-json`, a changelog of change envelopes),
//! `csv.field-delimiter` (default `,`), `csv.ignore-parse-errors` /
//! `json.ignore-parse-errors` (skip and count malformed rows instead of
//! failing), and for the sink `sink.rolling-policy.file-size` (default
//! 128 MB) and `sink.rolling-policy.rollover-interval` (default 30 min).
//! As in Flink, a table written by `INSERT` is a directory of part files.

mod connector;
pub(crate) mod decode;
mod fast_csv;
mod fast_json;
mod position;
mod sink;
mod source;

pub use connector::FileConnector;
pub use sink::{sink_dir, FileSink};
pub use source::{FileSource, FileSourceConfig};

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_common::{Error, Result};

use crate::options::Options;

/// File format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row.
    Csv {
        /// Field delimiter.
        delimiter: u8,
    },
    /// One JSON object per line.
    Json,
    /// One Debezium JSON change envelope per line (a changelog).
    DebeziumJson,
}

/// Parsed filesystem options.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// File or directory.
    pub path: PathBuf,
    /// Format.
    pub format: Format,
    /// Skip malformed rows (counted) instead of failing.
    pub ignore_parse_errors: bool,
    /// When the sink starts a new part file.
    pub rolling: RollingPolicy,
}

/// When a filesystem sink closes its part file and starts the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingPolicy {
    /// Roll once a part file holds this many bytes.
    pub file_size: u64,
    /// Roll once a part file has been open this long (checked on writes).
    pub rollover_interval: Duration,
}

impl FileOptions {
    /// Read and check the options of a filesystem table.
    pub fn parse(table: &str, map: &BTreeMap<String, String>) -> Result<Self> {
        let mut o = Options::new(table, map);
        let path = o.required("path")?;
        let path = PathBuf::from(path.strip_prefix("file://").unwrap_or(path));
        let format = o.one_of("format", &["csv", "json", "debezium-json"], "csv")?;
        let (format, ignore) = match format.as_str() {
            "csv" => {
                let delimiter = o.csv_delimiter()?;
                let ignore = o.bool("csv.ignore-parse-errors", false)?;
                (Format::Csv { delimiter }, ignore)
            }
            "json" => (Format::Json, o.bool("json.ignore-parse-errors", false)?),
            _ => (
                Format::DebeziumJson,
                o.bool("debezium-json.ignore-parse-errors", false)?,
            ),
        };
        let rolling = RollingPolicy {
            file_size: o.bytes("sink.rolling-policy.file-size", 128 << 20)?,
            rollover_interval: o.duration(
                "sink.rolling-policy.rollover-interval",
                Duration::from_secs(30 * 60),
            )?,
        };
        // Flink accepts these; they have no effect here (a bounded file
        // read; rolling is checked on every write).
        let _ = o.get("source.monitor-interval");
        let _ = o.get("sink.rolling-policy.check-interval");
        o.finish()?;
        Ok(FileOptions {
            path,
            format,
            ignore_parse_errors: ignore,
            rolling,
        })
    }
}

/// Check a filesystem table's path when the table is created: a path that
/// exists must be readable; a table with a watermark is read, so its path
/// must exist. Any other path may be missing (the first `INSERT` creates
/// it): the returned note says so.
pub fn check_path(table: &str, path: &Path, has_watermark: bool) -> Result<Option<String>> {
    let unreadable = |e: std::io::Error| {
        Error::plan(format!(
            "table {table}: cannot read path '{}': {e}",
            path.display()
        ))
        .near("path")
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path).map(|_| None).map_err(unreadable),
        Ok(_) => File::open(path).map(|_| None).map_err(unreadable),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if has_watermark {
                return Err(Error::plan(format!(
                    "table {table}: path '{}' does not exist (a table with a WATERMARK is \
                     read, so its files must be there)",
                    path.display()
                ))
                .near("path"));
            }
            Ok(Some(format!(
                "path '{}' does not exist yet: INSERT INTO {table} creates it; reading {table} \
                 fails until then",
                path.display()
            )))
        }
        Err(e) => Err(unreadable(e)),
    }
}

/// The files of a path: the file itself, or a directory's non-hidden files
/// in name order.
pub fn list_splits(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::plan(format!(
                "path '{}' does not exist: nothing has been written to this table yet",
                path.display()
            )))
        }
        Err(e) => return Err(Error::io(path.display().to_string(), e)),
    };
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(path.display().to_string(), e))?;
        let name = entry.file_name();
        let hidden = name.to_string_lossy().starts_with(['.', '_']);
        if !hidden && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}
