//! The filesystem sink: CSV with a header row, or JSON lines.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::{Error, Result};
use sluice_exec::sink::Sink;

use super::{FileOptions, Format};

enum Writer {
    Csv(Box<arrow::csv::Writer<BufWriter<File>>>),
    Json(arrow::json::LineDelimitedWriter<BufWriter<File>>),
}

/// Writes rows to one file: `path` itself, or `part-0.<ext>` when `path` is
/// a directory (or ends with `/`).
pub struct FileSink {
    path: PathBuf,
    schema: SchemaRef,
    writer: Option<Writer>,
    rows: u64,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .finish()
    }
}

impl FileSink {
    /// Create (truncate) the output file.
    pub fn try_new(options: &FileOptions, schema: SchemaRef) -> Result<Self> {
        let ext = match options.format {
            Format::Csv { .. } => "csv",
            Format::Json => "json",
        };
        let p = &options.path;
        let is_dir = p.is_dir() || p.to_string_lossy().ends_with('/');
        let path = if is_dir {
            p.join(format!("part-0.{ext}"))
        } else {
            p.clone()
        };
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io(parent.display().to_string(), e))?;
            }
        }
        let file = File::create(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let out = BufWriter::new(file);
        let writer = match options.format {
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
        };
        Ok(FileSink {
            path,
            schema,
            writer: Some(writer),
            rows: 0,
        })
    }
}

#[async_trait]
impl Sink for FileSink {
    fn name(&self) -> &'static str {
        "FileSink"
    }

    fn describe(&self) -> String {
        format!("FileSink: {}", self.path.display())
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        match &mut self.writer {
            Some(Writer::Csv(w)) => w.write(&batch)?,
            Some(Writer::Json(w)) => w.write(&batch)?,
            None => return Err(Error::internal("write after finish")),
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        let name = self.path.display().to_string();
        match self.writer.take() {
            Some(Writer::Csv(mut w)) => {
                if self.rows == 0 {
                    // The header row, even for an empty result.
                    w.write(&RecordBatch::new_empty(self.schema.clone()))?;
                }
                (*w).into_inner().flush().map_err(|e| Error::io(&name, e))?;
            }
            Some(Writer::Json(mut w)) => {
                w.finish()?;
                w.get_mut().flush().map_err(|e| Error::io(&name, e))?;
            }
            None => {}
        }
        Ok(())
    }
}
