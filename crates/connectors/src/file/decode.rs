//! Record framing and decoding with arrow-csv / arrow-json decoders (and
//! the CSV fast path of `fast_csv.rs` for plain blocks).
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
use crate::debezium::DebeziumDecoder;
use sluice_common::changelog;

/// Reads whole records (lines; CSV records may span lines inside quotes).
pub struct RecordReader<R> {
    inner: R,
    csv: bool,
    /// 1-based line number of the next record's first line.
    pub next_line: u64,
    /// Bytes consumed from the start: where the next record begins.
    pub offset: u64,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(inner: R, csv: bool) -> Self {
        RecordReader {
            inner,
            csv,
            next_line: 1,
            offset: 0,
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
                self.offset += n as u64;
                self.next_line += 1;
                if self.csv {
                    quotes += count_quotes(&buf[before..]);
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
            end_line(buf);
            return Ok(Some(first));
        }
    }

    /// Append whole records of about `target` bytes to `buf` (empty on
    /// entry): a block cut after its last newline, extended line by line
    /// while a CSV quote is open. Returns the first line's number and the
    /// number of lines, or `None` at end of file. Blank lines stay in (the
    /// decoders skip them); [`record_offsets`] splits a block into records
    /// when it must be decoded record by record.
    pub fn next_block(
        &mut self,
        buf: &mut Vec<u8>,
        target: usize,
    ) -> std::io::Result<Option<(u64, usize)>> {
        let first = self.next_line;
        loop {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let room = target.saturating_sub(buf.len());
            // Reaching the target: cut after the last newline within it, or
            // (a line longer than that) after the next newline.
            let cut = if avail.len() < room {
                None
            } else {
                memchr::memrchr(b'\n', &avail[..room.max(1)])
                    .or_else(|| memchr::memchr(b'\n', avail))
            };
            let take = cut.map_or(avail.len(), |pos| pos + 1);
            buf.extend_from_slice(&avail[..take]);
            self.inner.consume(take);
            self.offset += take as u64;
            if cut.is_some() {
                break;
            }
        }
        // A quote left open means the cut fell inside a quoted field.
        if self.csv {
            let mut quotes = count_quotes(buf);
            // A stray quote would otherwise pull in the rest of the file:
            // past four blocks, the decoder gets what there is and names
            // the bad record.
            while !quotes.is_multiple_of(2) && buf.len() < target.saturating_mul(4) {
                let before = buf.len();
                let n = self.inner.read_until(b'\n', buf)?;
                if n == 0 {
                    break;
                }
                self.offset += n as u64;
                quotes += count_quotes(&buf[before..]);
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        end_line(buf);
        let lines = count_newlines(buf);
        self.next_line += lines as u64;
        Ok(Some((first, lines)))
    }
}

impl<R: BufRead + std::io::Seek> RecordReader<R> {
    /// Continue at byte `offset`, whose line is `line` (a position recorded
    /// by a checkpoint).
    pub fn resume_at(&mut self, offset: u64, line: u64) -> std::io::Result<()> {
        self.inner.seek(std::io::SeekFrom::Start(offset))?;
        self.offset = offset;
        self.next_line = line;
        Ok(())
    }
}

/// Records of a block read by [`RecordReader::next_block`] whose first line
/// is `first_line`: per record its first line number and its offset.
pub fn record_offsets(block: &[u8], first_line: u64, csv: bool) -> Vec<(u64, usize)> {
    let mut reader = RecordReader::new(block, csv);
    reader.next_line = first_line;
    let mut records = Vec::new();
    let mut copy = Vec::new();
    let mut offset = 0;
    let mut line = first_line;
    // Framing a copy tells where each record starts in the block: a record
    // spans the lines from `line` up to the reader's next line.
    while let Ok(Some(start_line)) = reader.next_record(&mut copy) {
        // Skipped blank lines come before the record's first line.
        while line < start_line {
            offset += line_len(&block[offset..]);
            line += 1;
        }
        records.push((start_line, offset));
        while line < reader.next_line {
            offset += line_len(&block[offset..]);
            line += 1;
        }
        copy.clear();
    }
    records
}

/// Quotes in `bytes`; most text has none, which a memchr scan says cheaply.
fn count_quotes(bytes: &[u8]) -> usize {
    if memchr::memchr(b'"', bytes).is_none() {
        return 0;
    }
    bytes.iter().filter(|&&b| b == b'"').count()
}

/// End a record or block with a newline if the file did not.
fn end_line(buf: &mut Vec<u8>) {
    if buf.last() != Some(&b'\n') {
        buf.push(b'\n');
    }
}

/// Newlines in `bytes`, counted in runs of 255 so the sum stays in a byte
/// (which the compiler turns into wide vector compares).
fn count_newlines(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|run| run.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n')) as usize)
        .sum()
}

/// Length of the first line of `bytes`, its newline included.
fn line_len(bytes: &[u8]) -> usize {
    memchr::memchr(b'\n', bytes).map_or(bytes.len(), |p| p + 1)
}

/// Decodes chunks of records of one file into batches of `out_schema`.
pub struct ChunkDecoder {
    format: Format,
    /// Schema handed to the arrow decoder (CSV: every column of the file).
    file_schema: SchemaRef,
    /// Columns to keep, as positions in the file (CSV only).
    projection: Vec<usize>,
    out_schema: SchemaRef,
    /// Change envelopes to changelog rows (`debezium-json`).
    debezium: Option<Box<DebeziumDecoder>>,
    /// Output columns the fast path can make (`fast_csv.rs`,
    /// `fast_json.rs`).
    fast: bool,
}

impl ChunkDecoder {
    /// Debezium JSON lines: `out_schema` is the data columns then the row
    /// kind.
    pub fn debezium(out_schema: SchemaRef) -> Self {
        let data = changelog::data_schema(&out_schema);
        ChunkDecoder {
            format: Format::DebeziumJson,
            file_schema: Arc::clone(&out_schema),
            projection: vec![],
            out_schema,
            debezium: Some(Box::new(DebeziumDecoder::new(data, false))),
            fast: false,
        }
    }

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
        let fast = delimiter != b'"'
            && delimiter.is_ascii()
            && !matches!(delimiter, b'\n' | b'\r')
            && super::fast_csv::supports_all(&out_schema);
        Ok(ChunkDecoder {
            fast,
            format: Format::Csv { delimiter },
            file_schema: Arc::new(Schema::new(fields)),
            projection,
            out_schema,
            debezium: None,
        })
    }

    /// JSON lines: fields are matched by name; others are ignored.
    pub fn json(out_schema: SchemaRef) -> Self {
        let relaxed: Vec<Field> = out_schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect();
        let fast = super::fast_csv::supports_all(&out_schema);
        ChunkDecoder {
            format: Format::Json,
            file_schema: Arc::new(Schema::new(relaxed)),
            projection: vec![],
            out_schema,
            debezium: None,
            fast,
        }
    }

    /// Decode a chunk of complete records.
    pub fn decode(&self, bytes: &[u8], rows: usize) -> Result<RecordBatch, ArrowError> {
        let batches = match self.format {
            Format::Csv { delimiter } => {
                if self.fast {
                    let fields = self.file_schema.fields().len();
                    let (projection, out) = (&self.projection, &self.out_schema);
                    let fast =
                        super::fast_csv::decode(bytes, delimiter, fields, projection, out, rows);
                    if let Some(batch) = fast {
                        return Ok(batch);
                    }
                }
                let mut d = arrow::csv::ReaderBuilder::new(Arc::clone(&self.file_schema))
                    .with_header(false)
                    .with_delimiter(delimiter)
                    .with_batch_size(rows.max(1))
                    .with_projection(self.projection.clone())
                    .build_decoder();
                feed(bytes, &mut d)?
            }
            Format::DebeziumJson => {
                let d = self
                    .debezium
                    .as_ref()
                    .ok_or_else(|| ArrowError::ParseError("no envelope decoder".into()))?;
                let changes = d.decode(bytes, rows).map_err(ArrowError::ParseError)?;
                let mut columns = changes.columns;
                columns.push(Arc::new(changes.ops));
                return RecordBatch::try_new(Arc::clone(&self.out_schema), columns);
            }
            Format::Json => {
                if self.fast {
                    if let Some(batch) = super::fast_json::decode(bytes, &self.out_schema, rows) {
                        return Ok(batch);
                    }
                }
                let mut d = arrow::json::ReaderBuilder::new(Arc::clone(&self.file_schema))
                    .with_batch_size(rows.max(1))
                    .build_decoder()?;
                feed(bytes, &mut d)?
            }
        };
        let batch = match batches.len() {
            0 => return Ok(RecordBatch::new_empty(Arc::clone(&self.out_schema))),
            1 => batches.into_iter().next(),
            _ => Some(arrow::compute::concat_batches(
                &batches[0].schema(),
                &batches,
            )?),
        };
        let cols = match batch {
            Some(b) => b.columns().to_vec(),
            None => return Ok(RecordBatch::new_empty(Arc::clone(&self.out_schema))),
        };
        RecordBatch::try_new(Arc::clone(&self.out_schema), cols)
    }
}

/// The push decoders of arrow-csv and arrow-json.
trait PushDecoder {
    fn push(&mut self, bytes: &[u8]) -> Result<usize, ArrowError>;
    fn take(&mut self) -> Result<Option<RecordBatch>, ArrowError>;
}

impl PushDecoder for arrow::csv::reader::Decoder {
    fn push(&mut self, bytes: &[u8]) -> Result<usize, ArrowError> {
        self.decode(bytes)
    }
    fn take(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        self.flush()
    }
}

impl PushDecoder for arrow::json::reader::Decoder {
    fn push(&mut self, bytes: &[u8]) -> Result<usize, ArrowError> {
        self.decode(bytes)
    }
    fn take(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        self.flush()
    }
}

/// Feed all of `bytes`; a full batch is taken and decoding goes on, so a
/// chunk holding more records than its size hint (CR line ends, several
/// JSON objects on a line) loses nothing.
fn feed(bytes: &[u8], d: &mut impl PushDecoder) -> Result<Vec<RecordBatch>, ArrowError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let n = d.push(&bytes[offset..])?;
        if n == 0 {
            match d.take()? {
                Some(b) => out.push(b),
                None => {
                    return Err(ArrowError::ParseError(format!(
                        "could not decode {} bytes",
                        bytes.len() - offset
                    )))
                }
            }
            continue;
        }
        offset += n;
    }
    out.extend(d.take()?);
    Ok(out)
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

/// arrow's message without its own (chunk-relative) line numbers, which
/// would contradict the record's real line, and without its kind prefix.
pub fn clean_arrow_error(e: &ArrowError) -> String {
    let msg = e.to_string();
    let mut msg = ["Parser error: ", "Csv error: ", "Json error: "]
        .iter()
        .find_map(|p| msg.strip_prefix(p))
        .unwrap_or(&msg)
        .to_string();
    for marker in [" at line ", " for line "] {
        while let Some(i) = msg.find(marker) {
            let rest = &msg[i + marker.len()..];
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                break;
            }
            msg = format!("{}{}", &msg[..i], &rest[digits..]);
        }
    }
    sluice_common::arrow_to_sql_names(&msg)
}

impl ChunkDecoder {
    /// A decode error in SQL terms: arrow's (0-based) CSV column number as
    /// the column's name.
    pub fn explain(&self, e: &ArrowError) -> String {
        let msg = clean_arrow_error(e);
        let Some(i) = msg.find("for column ") else {
            return msg;
        };
        let rest = &msg[i + 11..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let name = digits
            .parse::<usize>()
            .ok()
            .and_then(|n| self.file_schema.fields().get(n))
            .map(|f| f.name().clone());
        match name {
            Some(name) => format!("{}for column '{name}'{}", &msg[..i], &rest[digits.len()..]),
            None => msg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: &str, target: usize) -> Vec<(String, u64, usize)> {
        let mut reader = RecordReader::new(text.as_bytes(), true);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            match reader.next_block(&mut buf, target).expect("reads") {
                Some((line, lines)) => {
                    out.push((String::from_utf8(buf).expect("utf8"), line, lines))
                }
                None => return out,
            }
        }
    }

    /// Blocks end at a newline near the target, never inside quotes; a
    /// missing final newline is added; line numbers continue.
    #[test]
    fn blocks_cut_at_record_boundaries() {
        let text = "a,1\nb,2\n\"c\nstill c\",3\nd,4";
        let got = blocks(text, 6);
        assert_eq!(
            got,
            vec![
                ("a,1\n".to_string(), 1, 1),
                ("b,2\n".to_string(), 2, 1),
                ("\"c\nstill c\",3\n".to_string(), 3, 2),
                ("d,4\n".to_string(), 5, 1),
            ]
        );
        // A line longer than the target is one block.
        assert_eq!(blocks("long line\nx\n", 3)[0].0, "long line\n");
        // A stray quote does not pull in the rest of the file: the block
        // grows by whole lines to four times the target (32 bytes), then
        // stops.
        let stray = format!("x,5\" tv\n{}", "a,1\n".repeat(100));
        let first = &blocks(&stray, 8)[0];
        assert_eq!(first, &(format!("x,5\" tv\n{}", "a,1\n".repeat(6)), 1, 7));
    }

    /// Record offsets skip blank lines and keep multi-line records whole.
    #[test]
    fn record_offsets_name_first_lines() {
        let block = b"a,1\n\n\"b\nb\",2\nc,3\n";
        assert_eq!(
            record_offsets(block, 10, true),
            vec![(10, 0), (12, 5), (14, 13)]
        );
    }

    /// More records than the size hint (CR line ends; two JSON objects on a
    /// line) still all decode.
    #[test]
    fn more_records_than_lines_are_kept() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let json = ChunkDecoder::json(Arc::clone(&schema));
        let batch = json.decode(b"{\"a\":1} {\"a\":2}\n", 1).expect("decodes");
        assert_eq!(batch.num_rows(), 2);
        let csv = ChunkDecoder::csv(&["a".to_string()], schema, b',', "f.csv").expect("header");
        let batch = csv.decode(b"1\r2\r3\n", 1).expect("decodes");
        assert_eq!(batch.num_rows(), 3);
    }
}
