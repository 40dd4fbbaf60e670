//! The filesystem source: splits read side by side on a blocking thread.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::{Error, Result, Watermark};
use sluice_exec::source::{Source, SourceContext};
use sluice_exec::watermark::{SplitWatermarks, WatermarkExpr};

use super::decode::{
    clean_arrow_error, decode_json_lenient, split_header, ChunkDecoder, RecordReader,
};
use super::{list_splits, FileOptions, Format};

/// Rows per batch read from one split.
const BATCH_ROWS: usize = 8192;

/// What to read.
#[derive(Debug, Clone)]
pub struct FileSourceConfig {
    /// Table name (for messages).
    pub table: String,
    /// Options.
    pub options: FileOptions,
    /// Columns to decode (table columns, in this order).
    pub read_schema: SchemaRef,
    /// Columns of `read_schema` to emit.
    pub output: Vec<usize>,
    /// Watermark over `read_schema`.
    pub watermark: Option<WatermarkExpr>,
}

/// Reads the files of a path as a bounded stream.
#[derive(Debug)]
pub struct FileSource {
    cfg: FileSourceConfig,
    schema: SchemaRef,
}

impl FileSource {
    /// A source for `cfg`.
    pub fn try_new(cfg: FileSourceConfig) -> Result<Self> {
        let schema = Arc::new(cfg.read_schema.project(&cfg.output)?);
        Ok(FileSource { cfg, schema })
    }
}

struct Split {
    path: PathBuf,
    reader: Option<RecordReader<BufReader<File>>>,
    decoder: Option<ChunkDecoder>,
    done: bool,
}

#[async_trait]
impl Source for FileSource {
    fn name(&self) -> &'static str {
        "FileSource"
    }

    fn describe(&self) -> String {
        let fmt = match self.cfg.options.format {
            Format::Csv { .. } => "csv",
            Format::Json => "json",
        };
        let cols: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        format!(
            "FileSource: {} path={} format={fmt} columns=[{}]",
            self.cfg.table,
            self.cfg.options.path.display(),
            cols.join(", ")
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let this = *self;
        tokio::task::spawn_blocking(move || this.read_all(&ctx))
            .await
            .map_err(|e| Error::internal(format!("file reader panicked: {e}")))?
    }
}

impl FileSource {
    fn read_all(self, ctx: &SourceContext) -> Result<()> {
        let paths = list_splits(&self.cfg.options.path)?;
        let total: u64 = paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        ctx.set_bytes_total(total);
        let mut splits: Vec<Split> = paths
            .into_iter()
            .map(|path| Split {
                path,
                reader: None,
                decoder: None,
                done: false,
            })
            .collect();
        let mut wms = SplitWatermarks::new(splits.len());
        let mut buf = Vec::new();
        let mut lines = Vec::with_capacity(BATCH_ROWS);
        while splits.iter().any(|s| !s.done) {
            for (i, split) in splits.iter_mut().enumerate() {
                if split.done {
                    continue;
                }
                let batch = self.read_chunk(split, &mut buf, &mut lines, ctx)?;
                match batch {
                    Some(batch) => {
                        if let Some(w) = &self.cfg.watermark {
                            if let Some(wm) = w.eval(&batch)? {
                                wms.observe(i, wm);
                            }
                        }
                        if !ctx.blocking_send_batch(batch.project(&self.cfg.output)?) {
                            return Ok(());
                        }
                    }
                    None => {
                        split.done = true;
                        wms.finish(i);
                    }
                }
                if let Some(wm) = wms.advance() {
                    if !ctx.blocking_send_watermark(Watermark(wm.0)) {
                        return Ok(());
                    }
                }
            }
        }
        ctx.blocking_finish();
        Ok(())
    }

    /// Up to `BATCH_ROWS` records of one split; `None` at its end.
    fn read_chunk(
        &self,
        split: &mut Split,
        buf: &mut Vec<u8>,
        lines: &mut Vec<(u64, usize)>,
        ctx: &SourceContext,
    ) -> Result<Option<RecordBatch>> {
        let name = split.path.display().to_string();
        if split.reader.is_none() {
            let file = File::open(&split.path).map_err(|e| Error::io(&name, e))?;
            let csv = matches!(self.cfg.options.format, Format::Csv { .. });
            let mut reader = RecordReader::new(BufReader::with_capacity(1 << 20, file), csv);
            let decoder = match self.cfg.options.format {
                Format::Csv { delimiter } => {
                    buf.clear();
                    if reader
                        .next_record(buf)
                        .map_err(|e| Error::io(&name, e))?
                        .is_none()
                    {
                        split.done = true;
                        return Ok(None); // empty file, not even a header
                    }
                    ctx.add_bytes_read(buf.len() as u64);
                    let header = split_header(buf, delimiter);
                    ChunkDecoder::csv(&header, Arc::clone(&self.cfg.read_schema), delimiter, &name)?
                }
                Format::Json => ChunkDecoder::json(Arc::clone(&self.cfg.read_schema)),
            };
            split.reader = Some(reader);
            split.decoder = Some(decoder);
        }
        let (Some(reader), Some(decoder)) = (split.reader.as_mut(), split.decoder.as_ref()) else {
            return Err(Error::internal("split reader missing"));
        };
        buf.clear();
        lines.clear();
        while lines.len() < BATCH_ROWS {
            let start = buf.len();
            match reader.next_record(buf).map_err(|e| Error::io(&name, e))? {
                Some(line) => lines.push((line, start)),
                None => break,
            }
        }
        ctx.add_bytes_read(buf.len() as u64);
        if lines.is_empty() {
            return Ok(None);
        }
        match decoder.decode(buf, lines.len()) {
            Ok(batch) => Ok(Some(batch)),
            Err(_) => self
                .decode_by_record(decoder, buf, lines, &name, ctx)
                .map(Some),
        }
    }

    /// Slow path for a chunk with a bad record: decode one record at a time.
    fn decode_by_record(
        &self,
        decoder: &ChunkDecoder,
        buf: &[u8],
        lines: &[(u64, usize)],
        file: &str,
        ctx: &SourceContext,
    ) -> Result<RecordBatch> {
        let mut good = Vec::with_capacity(lines.len());
        let mut skipped = 0;
        for (i, &(line, start)) in lines.iter().enumerate() {
            let end = lines.get(i + 1).map(|&(_, s)| s).unwrap_or(buf.len());
            let record = &buf[start..end];
            match decoder.decode(record, 1) {
                Ok(b) => good.push(b),
                Err(_) if self.cfg.options.ignore_parse_errors => {
                    skipped += 1;
                    if matches!(self.cfg.options.format, Format::Json) {
                        if let Some(b) = decode_json_lenient(&self.cfg.read_schema, record) {
                            good.push(b);
                        }
                    }
                }
                Err(e) => {
                    let text = String::from_utf8_lossy(record);
                    let snippet: String = text.trim_end().chars().take(120).collect();
                    return Err(Error::BadRecord(format!(
                        "{file}:{line}: {} (record: {snippet})",
                        clean_arrow_error(&e)
                    )));
                }
            }
        }
        ctx.add_bad_records(skipped);
        Ok(arrow::compute::concat_batches(
            &self.cfg.read_schema,
            &good,
        )?)
    }
}
