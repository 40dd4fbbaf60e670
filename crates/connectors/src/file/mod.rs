//! `connector = 'filesystem'`: CSV (with a header row) and JSON lines.
//!
//! Options: `path` (a file or a directory; in a directory every non-hidden
//! file is a split), `format` (`csv` | `json`), `csv.field-delimiter`
//! (default `,`), `csv.ignore-parse-errors` / `json.ignore-parse-errors`
//! (skip and count malformed rows instead of failing).

pub(crate) mod decode;
mod sink;
mod source;

pub use sink::FileSink;
pub use source::{FileSource, FileSourceConfig};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
}

impl FileOptions {
    /// Read and check the options of a filesystem table.
    pub fn parse(table: &str, map: &BTreeMap<String, String>) -> Result<Self> {
        let mut o = Options::new(table, map);
        let path = PathBuf::from(o.required("path")?);
        let format = o.one_of("format", &["csv", "json"], "csv")?;
        let (format, ignore) = if format == "csv" {
            let delimiter = o.csv_delimiter()?;
            let ignore = o.bool("csv.ignore-parse-errors", false)?;
            (Format::Csv { delimiter }, ignore)
        } else {
            (Format::Json, o.bool("json.ignore-parse-errors", false)?)
        };
        // Flink accepts these; they have no effect on a bounded file read.
        let _ = o.get("source.monitor-interval");
        o.finish()?;
        Ok(FileOptions {
            path,
            format,
            ignore_parse_errors: ignore,
        })
    }
}

/// The files of a path: the file itself, or a directory's non-hidden files
/// in name order.
pub fn list_splits(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path.display().to_string(), e))?;
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
