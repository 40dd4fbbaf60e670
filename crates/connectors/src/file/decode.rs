//! Record framing and decoding with arrow-csv / arrow-json decoders.
//!
//! Records are framed by line (a CSV record continues while a quote is open),
//! decoded a chunk at a time; when a chunk fails, it is decoded record by
//! record to find the bad line, which fails the query with `file:line` or,
//! with `*.ignore-parse-errors`, is skipped and counted (a JSON object whose
//! fields do not fit their types keeps its row with those fields NULL, as
//! in Flink).

use std::io::BufRead;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

use super::Format;

/// Reads whole records (lines; CSV records may span lines inside quotes).
pub struct RecordReader<R> {
    inner: R,
    csv: bool,
    /// 1-based line number of the next record's first line.
    pub next_line: u64,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(inner: R, csv: bool) -> Self {
        RecordReader {
            inner,
            csv,
            next_line: 1,
        }
    }

    /// Append the next non-blank record to `buf` (with a trailing newline);
    /// returns its first line number, or `None` at end of file.
    pub fn next_record(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<u64>> {
        loop {
            let start = buf.len();
            let first = self.next_line;
            let mut quotes = 0usize;
            loop {
                let before = buf.len();
                let n = self.inner.read_until(b'\n', buf)?;
                if n == 0 {
                    break;
                }
                self.next_line += 1;
                // Most lines have no quote: a memchr scan says so cheaply.
                if self.csv && buf[before..].contains(&b'"') {
                    quotes += buf[before..].iter().filter(|&&b| b == b'"').count();
                }
                if quotes.is_multiple_of(2) {
                    break;
                }
            }
            if buf.len() == start {
                return Ok(None);
            }
            if buf[start..].iter().all(|b| b.is_ascii_whitespace()) {
                buf.truncate(start);
                continue;
            }
            if buf.last() != Some(&b'\n') {
                buf.push(b'\n');
            }
            return Ok(Some(first));
        }
    }
}

/// Decodes chunks of records of one file into batches of `out_schema`.
pub struct ChunkDecoder {
    format: Format,
    /// Schema handed to the arrow decoder (CSV: every column of the file).
    file_schema: SchemaRef,
    /// Columns to keep, as positions in the file (CSV only).
    projection: Vec<usize>,
    out_schema: SchemaRef,
}

impl ChunkDecoder {
    /// CSV: map the header to the columns of `out_schema` by name.
    pub fn csv(
        header: &[String],
        out_schema: SchemaRef,
        delimiter: u8,
        file: &str,
    ) -> Result<Self> {
        let mut fields: Vec<Field> = header
            .iter()
            .map(|h| Field::new(h, DataType::Utf8, true))
            .collect();
        let mut projection = Vec::with_capacity(out_schema.fields().len());
        for f in out_schema.fields() {
            let Some(pos) = header.iter().position(|h| h.eq_ignore_ascii_case(f.name())) else {
                return Err(Error::BadRecord(format!(
                    "{file}: header has no column '{}' (header: {})",
                    f.name(),
                    header.join(",")
                )));
            };
            fields[pos] = Field::new(f.name(), f.data_type().clone(), true);
            projection.push(pos);
        }
        Ok(ChunkDecoder {
            format: Format::Csv { delimiter },
            file_schema: Arc::new(Schema::new(fields)),
            projection,
            out_schema,
        })
    }

    /// JSON lines: fields are matched by name; others are ignored.
    pub fn json(out_schema: SchemaRef) -> Self {
        let relaxed: Vec<Field> = out_schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect();
        ChunkDecoder {
            format: Format::Json,
            file_schema: Arc::new(Schema::new(relaxed)),
            projection: vec![],
            out_schema,
        }
    }

    /// Decode a chunk of complete records.
    pub fn decode(&self, bytes: &[u8], rows: usize) -> Result<RecordBatch, ArrowError> {
        let batch = match self.format {
            Format::Csv { delimiter } => {
                let mut d = arrow::csv::ReaderBuilder::new(Arc::clone(&self.file_schema))
                    .with_header(false)
                    .with_delimiter(delimiter)
                    .with_batch_size(rows.max(1))
                    .with_projection(self.projection.clone())
                    .build_decoder();
                feed(bytes, |b| d.decode(b))?;
                d.flush()?
            }
            Format::Json => {
                let mut d = arrow::json::ReaderBuilder::new(Arc::clone(&self.file_schema))
                    .with_batch_size(rows.max(1))
                    .build_decoder()?;
                feed(bytes, |b| d.decode(b))?;
                d.flush()?
            }
        };
        let cols = match batch {
            Some(b) => b.columns().to_vec(),
            None => return Ok(RecordBatch::new_empty(Arc::clone(&self.out_schema))),
        };
        RecordBatch::try_new(Arc::clone(&self.out_schema), cols)
    }
}

/// Flink's `json.ignore-parse-errors` for one record that failed: a JSON
/// object keeps its row, with each field that does not decode as its
/// column's type set to NULL; anything else (not JSON, not an object) is
/// `None`, to be skipped. Only used on the slow path for bad records.
pub fn decode_json_lenient(schema: &SchemaRef, record: &[u8]) -> Option<RecordBatch> {
    let serde_json::Value::Object(map) = serde_json::from_slice(record).ok()? else {
        return None;
    };
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let one = Arc::new(Schema::new(vec![Field::new(
            field.name(),
            field.data_type().clone(),
            true,
        )]));
        let value = map
            .get(field.name())
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let mut obj = serde_json::Map::new();
        obj.insert(field.name().clone(), value);
        let text = serde_json::Value::Object(obj).to_string();
        let decoded = ChunkDecoder::json(Arc::clone(&one))
            .decode(text.as_bytes(), 1)
            .ok()
            .filter(|b| b.num_rows() == 1);
        columns.push(match decoded {
            Some(b) => Arc::clone(b.column(0)),
            None => arrow::array::new_null_array(field.data_type(), 1),
        });
    }
    RecordBatch::try_new(Arc::clone(schema), columns).ok()
}

fn feed(
    bytes: &[u8],
    mut decode: impl FnMut(&[u8]) -> Result<usize, ArrowError>,
) -> Result<(), ArrowError> {
    let mut offset = 0;
    while offset < bytes.len() {
        let n = decode(&bytes[offset..])?;
        if n == 0 {
            break;
        }
        offset += n;
    }
    Ok(())
}

/// Split a CSV header line into column names.
pub fn split_header(line: &[u8], delimiter: u8) -> Vec<String> {
    let text = String::from_utf8_lossy(line);
    let text = text
        .trim_end_matches(['\r', '\n'])
        .trim_start_matches('\u{feff}');
    text.split(delimiter as char)
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect()
}

/// arrow's message without its own (chunk-relative) line number.
pub fn clean_arrow_error(e: &ArrowError) -> String {
    let msg = e.to_string();
    let msg = msg
        .strip_prefix("Parser error: ")
        .unwrap_or(&msg)
        .to_string();
    match msg.find(" at line ") {
        Some(i) => {
            let rest = &msg[i + 9..];
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            format!("{}{}", &msg[..i], &rest[digits..])
        }
        None => msg,
    }
}
