//! The filesystem source: splits read side by side on a blocking thread,
//! chunks of records decoded on the query's parallel workers.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::changelog;
use sluice_common::{Error, Result};
use sluice_exec::checkpoint::State;
use sluice_exec::pipeline::{ChunkPipeline, WATERMARKS};
use sluice_exec::source::{ScanColumns, Source, SourceContext};
use sluice_exec::watermark::SplitWatermarks;

use super::position::{self, Position};

use super::decode::{
    decode_json_lenient, record_offsets, split_header, ChunkDecoder, RecordReader,
};
use super::{list_splits, FileOptions, Format};

/// Bytes of records per chunk (one batch): about 8K rows of 128 bytes.
const CHUNK_BYTES: usize = 1 << 20;

/// What to read.
#[derive(Debug, Clone)]
pub struct FileSourceConfig {
    /// Table name (for messages).
    pub table: String,
    /// Options.
    pub options: FileOptions,
    /// Makes the columns to decode (table columns, in this order).
    pub scan: ScanColumns,
}

/// Reads the files of a path as a bounded stream.
#[derive(Debug)]
pub struct FileSource {
    cfg: FileSourceConfig,
    /// Where a restored source resumes: each split's position, and the
    /// split watermarks.
    resume: Option<(HashMap<String, Position>, State)>,
}

impl FileSource {
    /// A source for `cfg`.
    pub fn new(cfg: FileSourceConfig) -> Self {
        FileSource { cfg, resume: None }
    }
}

struct Split {
    path: PathBuf,
    reader: Option<RecordReader<BufReader<File>>>,
    decoder: Option<Arc<ChunkDecoder>>,
    done: bool,
    /// Where to continue when opened (a restored source).
    resume: Option<Position>,
}

/// Each split's name and position.
fn splits_positions(splits: &[Split]) -> Vec<(String, Position)> {
    splits
        .iter()
        .map(|s| {
            let pos = match (&s.reader, s.resume) {
                (Some(r), _) => Position {
                    offset: r.offset,
                    line: r.next_line,
                    done: s.done,
                },
                (None, Some(p)) => p,
                (None, None) => Position {
                    offset: 0,
                    line: 1,
                    done: s.done,
                },
            };
            (s.path.display().to_string(), pos)
        })
        .collect()
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
            Format::DebeziumJson => "debezium-json",
        };
        format!(
            "FileSource: {} path={} format={fmt} columns=[{}]",
            self.cfg.table,
            self.cfg.options.path.display(),
            self.cfg.scan.emitted_names()
        )
    }

    fn output_schema(&self) -> SchemaRef {
        self.cfg.scan.emitted()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let this = *self;
        tokio::task::spawn_blocking(move || this.read_all(&ctx))
            .await
            .map_err(|e| Error::internal(format!("file reader panicked: {e}")))?
    }

    fn checkpoints(&self) -> bool {
        true
    }

    fn restore(&mut self, state: &State) -> Result<()> {
        self.resume = Some((position::read(state)?, state.clone()));
        Ok(())
    }
}

/// Complete records of one split, framed by the reader thread and decoded
/// on a worker.
struct Chunk {
    decoder: Arc<ChunkDecoder>,
    file: Arc<str>,
    bytes: Vec<u8>,
    /// Line number of the first line of `bytes`.
    first_line: u64,
    /// Lines in `bytes`: at least as many as records.
    lines: usize,
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
                resume: None,
            })
            .collect();
        let mut pipeline = self.pipeline(ctx, &mut splits)?;
        while splits.iter().any(|s| !s.done) {
            if let Some(id) = ctx.barrier_due() {
                if !pipeline.blocking_barrier(id, position::write(&splits_positions(&splits)))? {
                    return Ok(());
                }
            }
            for (i, split) in splits.iter_mut().enumerate() {
                if split.done {
                    continue;
                }
                let open = match self.read_chunk(split, ctx)? {
                    Some(chunk) => {
                        let lenient = self.cfg.options.ignore_parse_errors;
                        let json = !matches!(self.cfg.options.format, Format::Csv { .. });
                        let schema = Arc::clone(self.cfg.scan.made());
                        let ctx = ctx.clone();
                        pipeline.blocking_submit(i, move || {
                            decode_chunk(&chunk, lenient, json, &schema, &ctx)
                        })?
                    }
                    None => {
                        split.done = true;
                        pipeline.blocking_split_done(i)?
                    }
                };
                if !open {
                    return Ok(());
                }
            }
        }
        pipeline.blocking_finish()
    }

    /// The chunk pipeline, resumed at the recorded positions.
    fn pipeline(&self, ctx: &SourceContext, splits: &mut [Split]) -> Result<ChunkPipeline> {
        let scan = self.cfg.scan.clone();
        let Some((positions, state)) = &self.resume else {
            return Ok(ChunkPipeline::new(ctx, splits.len(), scan));
        };
        // Splits keep their recorded position (and their watermark, by
        // order); a file not seen before is read from its start.
        let recorded = SplitWatermarks::restore(state.require(WATERMARKS)?)?;
        let mut wms = SplitWatermarks::new(splits.len());
        let order = position::order(state)?;
        for (i, split) in splits.iter_mut().enumerate() {
            let name = split.path.display().to_string();
            let Some(pos) = positions.get(&name) else {
                continue;
            };
            if let Some(was) = order.iter().position(|n| *n == name) {
                wms.copy_split(i, &recorded, was);
            }
            split.done = pos.done;
            split.resume = Some(*pos);
            ctx.add_bytes_read(pos.offset);
        }
        wms.set_emitted(recorded.emitted());
        Ok(ChunkPipeline::resuming(ctx, wms, scan))
    }

    /// Up to `BATCH_ROWS` records of one split; `None` at its end.
    fn read_chunk(&self, split: &mut Split, ctx: &SourceContext) -> Result<Option<Chunk>> {
        let name = split.path.display().to_string();
        if split.reader.is_none() {
            let file = File::open(&split.path).map_err(|e| Error::io(&name, e))?;
            let csv = matches!(self.cfg.options.format, Format::Csv { .. });
            let mut reader = RecordReader::new(BufReader::with_capacity(1 << 20, file), csv);
            let decoder = match self.cfg.options.format {
                Format::Csv { delimiter } => {
                    let mut header = Vec::new();
                    if reader
                        .next_record(&mut header)
                        .map_err(|e| Error::io(&name, e))?
                        .is_none()
                    {
                        return Ok(None); // empty file, not even a header
                    }
                    ctx.add_bytes_read(header.len() as u64);
                    let header = split_header(&header, delimiter);
                    ChunkDecoder::csv(&header, Arc::clone(self.cfg.scan.made()), delimiter, &name)?
                }
                Format::Json => ChunkDecoder::json(Arc::clone(self.cfg.scan.made())),
                Format::DebeziumJson => ChunkDecoder::debezium(Arc::clone(self.cfg.scan.made())),
            };
            if let Some(pos) = split.resume.take() {
                reader
                    .resume_at(pos.offset, pos.line)
                    .map_err(|e| Error::io(&name, e))?;
            }
            split.reader = Some(reader);
            split.decoder = Some(Arc::new(decoder));
        }
        let (Some(reader), Some(decoder)) = (split.reader.as_mut(), split.decoder.as_ref()) else {
            return Err(Error::internal("split reader missing"));
        };
        let mut bytes = Vec::with_capacity(CHUNK_BYTES + (CHUNK_BYTES >> 2));
        let block = reader
            .next_block(&mut bytes, CHUNK_BYTES)
            .map_err(|e| Error::io(&name, e))?;
        ctx.add_bytes_read(bytes.len() as u64);
        let Some((first_line, lines)) = block else {
            return Ok(None);
        };
        Ok(Some(Chunk {
            decoder: Arc::clone(decoder),
            file: name.into(),
            bytes,
            first_line,
            lines,
        }))
    }
}

/// Decode a chunk; a chunk with a bad record is decoded one record at a
/// time to name it (or, leniently, skip it).
fn decode_chunk(
    chunk: &Chunk,
    lenient: bool,
    json: bool,
    schema: &SchemaRef,
    ctx: &SourceContext,
) -> Result<RecordBatch> {
    if let Ok(batch) = chunk.decoder.decode(&chunk.bytes, chunk.lines) {
        return Ok(batch);
    }
    let records = record_offsets(&chunk.bytes, chunk.first_line, !json);
    let mut good = Vec::with_capacity(records.len());
    let (mut skipped, mut nulled) = (0, 0);
    for (i, &(line, start)) in records.iter().enumerate() {
        let end = records
            .get(i + 1)
            .map(|&(_, s)| s)
            .unwrap_or(chunk.bytes.len());
        let record = &chunk.bytes[start..end];
        match chunk.decoder.decode(record, 1) {
            Ok(b) => good.push(b),
            Err(_) if lenient => match decode_json_lenient(schema, record)
                .filter(|_| json && !changelog::is_changelog(schema))
            {
                Some(b) => {
                    nulled += 1;
                    good.push(b);
                }
                None => skipped += 1,
            },
            Err(e) => {
                let text = String::from_utf8_lossy(record);
                let snippet: String = text.trim_end().chars().take(120).collect();
                return Err(Error::BadRecord(format!(
                    "{}:{line}: {} (record: {snippet})",
                    chunk.file,
                    chunk.decoder.explain(&e)
                )));
            }
        }
    }
    ctx.add_bad_records(skipped);
    ctx.add_nulled_records(nulled);
    Ok(arrow::compute::concat_batches(schema, &good)?)
}
