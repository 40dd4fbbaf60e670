//! Kafka records to Arrow batches (a batch of records at a time, with
//! arrow's JSON and CSV decoders) and Arrow rows to record keys and values.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, Int32Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

use super::{KafkaOptions, ValueFormat};
use crate::file::decode::{clean_arrow_error, decode_json_lenient, ChunkDecoder};

/// One consumed record, copied out of librdkafka's buffer.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// A metadata column's source.
#[derive(Debug, Clone, Copy)]
enum Meta {
    Topic,
    Partition,
    Offset,
    Timestamp,
}

/// Decodes one part of a record (value or key) into some table columns.
enum Part {
    Chunk(ChunkDecoder),
    Raw(DataType),
}

struct PartDecoder {
    columns: Vec<usize>,
    part: Part,
}

impl PartDecoder {
    fn new(table: &Schema, columns: Vec<usize>, format: ValueFormat, name: &str) -> Result<Self> {
        let schema = Arc::new(table.project(&columns)?);
        let part = match format {
            ValueFormat::Json => Part::Chunk(ChunkDecoder::json(schema)),
            ValueFormat::Csv { delimiter } => {
                let header: Vec<String> =
                    schema.fields().iter().map(|f| f.name().clone()).collect();
                Part::Chunk(ChunkDecoder::csv(&header, schema, delimiter, name)?)
            }
            ValueFormat::Raw => {
                let [field] = schema.fields().iter().collect::<Vec<_>>()[..] else {
                    return Err(Error::plan(format!(
                        "{name}: format 'raw' needs exactly one column (STRING or BYTES), not {}",
                        schema.fields().len()
                    )));
                };
                if !matches!(field.data_type(), DataType::Utf8 | DataType::Binary) {
                    return Err(Error::plan(format!(
                        "{name}: format 'raw' needs a STRING or BYTES column, not {}",
                        field.data_type()
                    )));
                }
                Part::Raw(field.data_type().clone())
            }
        };
        Ok(PartDecoder { columns, part })
    }

    /// Decode the given payloads (all present) into columns.
    fn decode(&self, payloads: &[&[u8]]) -> std::result::Result<Vec<ArrayRef>, String> {
        match &self.part {
            Part::Raw(dt) => {
                let bin = BinaryArray::from_iter_values(payloads.iter().copied());
                let arr: ArrayRef = if *dt == DataType::Utf8 {
                    let strings: Vec<&str> = payloads
                        .iter()
                        .map(|p| std::str::from_utf8(p).map_err(|e| format!("not UTF-8: {e}")))
                        .collect::<std::result::Result<_, _>>()?;
                    Arc::new(StringArray::from(strings))
                } else {
                    Arc::new(bin)
                };
                Ok(vec![arr])
            }
            Part::Chunk(d) => {
                let mut buf = Vec::with_capacity(payloads.iter().map(|p| p.len() + 1).sum());
                for p in payloads {
                    let p = p.strip_suffix(b"\n").unwrap_or(p);
                    let p = p.strip_suffix(b"\r").unwrap_or(p);
                    buf.extend_from_slice(p);
                    buf.push(b'\n');
                }
                let batch = d
                    .decode(&buf, payloads.len())
                    .map_err(|e| clean_arrow_error(&e))?;
                if batch.num_rows() != payloads.len() {
                    return Err(format!(
                        "expected {} record(s), decoded {}",
                        payloads.len(),
                        batch.num_rows()
                    ));
                }
                Ok(batch.columns().to_vec())
            }
        }
    }
}

/// The table columns carried in record values, and those of the key.
/// Metadata columns are in neither; with `value.fields-include =
/// 'EXCEPT_KEY'` key columns are only in the key.
fn split_columns(
    options: &KafkaOptions,
    schema: &Schema,
    meta: &[(usize, String, bool)],
) -> Result<(Vec<usize>, Vec<usize>)> {
    for (_, key, _) in meta {
        if !matches!(key.as_str(), "topic" | "partition" | "offset" | "timestamp") {
            return Err(Error::plan(format!(
                "table {}: unknown Kafka metadata key '{key}' (topic, partition, offset, timestamp)",
                options.table
            )));
        }
    }
    let key_cols: Vec<usize> = options
        .key_fields
        .iter()
        .map(|f| {
            schema.index_of(f).map_err(|_| {
                Error::plan(format!(
                    "table {}: key field '{f}' is not a column",
                    options.table
                ))
            })
        })
        .collect::<Result<_>>()?;
    let in_value = |i: usize| {
        let is_meta = meta.iter().any(|(m, _, _)| *m == i);
        let key_only = options.value_except_key && key_cols.contains(&i);
        !(is_meta || key_only)
    };
    let value_cols = (0..schema.fields().len())
        .filter(|&i| in_value(i))
        .collect();
    Ok((value_cols, key_cols))
}

/// Turns records of one topic into batches of the table's schema.
pub(super) struct RecordDecoder {
    topic: String,
    schema: SchemaRef,
    value: PartDecoder,
    key: Option<PartDecoder>,
    meta: Vec<(usize, Meta)>,
    lenient_json: bool,
}

/// Records that did not decode: (record, reason).
pub(super) type Rejects = Vec<(Record, String)>;

/// What a group of records decoded to.
pub(super) struct Decoded {
    /// The rows.
    pub batch: RecordBatch,
    /// Records that did not decode, with the reason.
    pub rejects: Rejects,
    /// Records kept with NULL in the fields that did not decode.
    pub nulled: u64,
}

impl RecordDecoder {
    /// A decoder for `schema` (all table columns), whose metadata columns
    /// are `meta` (index, key, virtual).
    pub fn new(
        options: &KafkaOptions,
        schema: SchemaRef,
        meta: &[(usize, String, bool)],
    ) -> Result<Self> {
        let name = format!("table {}", options.table);
        let mut kinds = Vec::new();
        for (i, key, _) in meta {
            let kind = match key.as_str() {
                "topic" => Meta::Topic,
                "partition" => Meta::Partition,
                "offset" => Meta::Offset,
                "timestamp" => Meta::Timestamp,
                other => {
                    return Err(Error::plan(format!(
                        "{name}: unknown Kafka metadata key '{other}' (topic, partition, offset, timestamp)"
                    )))
                }
            };
            kinds.push((*i, kind));
        }
        let (value_cols, key_cols) = split_columns(options, &schema, meta)?;
        let value = PartDecoder::new(&schema, value_cols, options.format, &name)?;
        let key = match (options.value_except_key, options.key_format) {
            (true, Some(f)) => Some(PartDecoder::new(&schema, key_cols, f, &name)?),
            _ => None,
        };
        Ok(RecordDecoder {
            topic: options.topic.clone(),
            schema,
            value,
            key,
            meta: kinds,
            lenient_json: options.ignore_parse_errors && options.format == ValueFormat::Json,
        })
    }

    /// Decode records (tombstones, records without a value, are skipped).
    /// Records that do not decode are returned with the reason; records
    /// kept with NULL fields (`json.ignore-parse-errors`) are counted.
    pub fn decode(&self, records: Vec<Record>) -> Result<Decoded> {
        let records: Vec<Record> = records.into_iter().filter(|r| r.value.is_some()).collect();
        match self.decode_all(&records) {
            Ok(batch) => Ok(Decoded {
                batch,
                rejects: vec![],
                nulled: 0,
            }),
            Err(_) => {
                // Slow path: one record at a time to find the bad ones.
                let mut good = Vec::new();
                let mut rejects = Vec::new();
                let mut nulled = 0;
                for r in records {
                    match self.decode_all(std::slice::from_ref(&r)) {
                        Ok(b) => good.push(b),
                        Err(e) => match self.lenient(&r) {
                            Some(b) => {
                                nulled += 1;
                                good.push(b);
                            }
                            None => rejects.push((r, e)),
                        },
                    }
                }
                Ok(Decoded {
                    batch: arrow::compute::concat_batches(&self.schema, &good)?,
                    rejects,
                    nulled,
                })
            }
        }
    }

    /// With `json.ignore-parse-errors`, a JSON object record whose fields do
    /// not all fit keeps its row with those fields NULL (Flink's behaviour).
    fn lenient(&self, r: &Record) -> Option<RecordBatch> {
        if !self.lenient_json || self.key.is_some() {
            return None;
        }
        let value_schema = Arc::new(self.schema.project(&self.value.columns).ok()?);
        let values = decode_json_lenient(&value_schema, r.value.as_deref()?)?;
        let mut fixed = r.clone();
        // Re-encode the repaired value so metadata columns are filled in the
        // one place that does it.
        let mut buf = Vec::new();
        {
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
            w.write(&values).ok()?;
            w.finish().ok()?;
        }
        fixed.value = Some(buf);
        self.decode_all(std::slice::from_ref(&fixed)).ok()
    }

    fn decode_all(&self, records: &[Record]) -> std::result::Result<RecordBatch, String> {
        let n = records.len();
        let mut columns: Vec<Option<ArrayRef>> = vec![None; self.schema.fields().len()];
        let values: Vec<&[u8]> = records
            .iter()
            .map(|r| r.value.as_deref().unwrap_or(b""))
            .collect();
        for (i, a) in self.value.columns.iter().zip(self.value.decode(&values)?) {
            columns[*i] = Some(a);
        }
        if let Some(key) = &self.key {
            let keys: Vec<&[u8]> = records
                .iter()
                .map(|r| r.key.as_deref().unwrap_or(b""))
                .collect();
            for (i, a) in key
                .columns
                .iter()
                .zip(key.decode(&keys).map_err(|e| format!("key: {e}"))?)
            {
                columns[*i] = Some(a);
            }
        }
        for (i, kind) in &self.meta {
            let raw: ArrayRef = match kind {
                Meta::Topic => Arc::new(StringArray::from(vec![self.topic.as_str(); n])),
                Meta::Partition => Arc::new(Int32Array::from_iter_values(
                    records.iter().map(|r| r.partition),
                )),
                Meta::Offset => Arc::new(Int64Array::from_iter_values(
                    records.iter().map(|r| r.offset),
                )),
                Meta::Timestamp => Arc::new(TimestampMillisecondArray::from(
                    records.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
                )),
            };
            let target = self.schema.field(*i).data_type();
            columns[*i] = Some(cast(&raw, target).map_err(|e| e.to_string())?);
        }
        let columns: Vec<ArrayRef> = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| c.unwrap_or_else(|| arrow::array::new_null_array(f.data_type(), n)))
            .collect();
        RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(|e| e.to_string())
    }
}

/// A readable snippet of a record for error messages.
pub(super) fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end().chars().take(120).collect()
}

/// Encodes rows into record values (and keys) for the sink.
pub(super) struct RecordEncoder {
    value_cols: Vec<usize>,
    format: ValueFormat,
    key: Option<(Vec<usize>, ValueFormat)>,
    timestamp_col: Option<usize>,
}

/// One record to produce.
pub(super) struct OutRecord {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub timestamp: Option<i64>,
}

impl RecordEncoder {
    pub fn new(
        options: &KafkaOptions,
        schema: &Schema,
        meta: &[(usize, String, bool)],
    ) -> Result<Self> {
        let name = format!("table {}", options.table);
        let (value_cols, key_cols) = split_columns(options, schema, meta)?;
        // Check raw formats have one column.
        PartDecoder::new(schema, value_cols.clone(), options.format, &name)?;
        let key = match options.key_format {
            Some(f) => {
                PartDecoder::new(schema, key_cols.clone(), f, &name)?;
                Some((key_cols, f))
            }
            None => None,
        };
        let timestamp_col = meta
            .iter()
            .find(|(_, k, is_virtual)| k == "timestamp" && !is_virtual)
            .map(|(i, _, _)| *i);
        Ok(RecordEncoder {
            value_cols,
            format: options.format,
            key,
            timestamp_col,
        })
    }

    pub fn encode(&self, batch: &RecordBatch) -> Result<Vec<OutRecord>> {
        let values = encode_part(&batch.project(&self.value_cols)?, self.format)?;
        let keys = match &self.key {
            Some((cols, f)) => Some(encode_part(&batch.project(cols)?, *f)?),
            None => None,
        };
        let ts = match self.timestamp_col {
            Some(i) => {
                let c = cast(
                    batch.column(i),
                    &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
                )?;
                let c = c
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .cloned()
                    .ok_or_else(|| Error::internal("timestamp column did not cast"))?;
                Some(c)
            }
            None => None,
        };
        let mut keys = keys.map(Vec::into_iter);
        Ok(values
            .into_iter()
            .enumerate()
            .map(|(row, value)| OutRecord {
                key: keys.as_mut().and_then(Iterator::next),
                value,
                timestamp: ts
                    .as_ref()
                    .and_then(|t| t.is_valid(row).then(|| t.value(row))),
            })
            .collect())
    }
}

/// Each row of `batch` encoded on its own.
fn encode_part(batch: &RecordBatch, format: ValueFormat) -> Result<Vec<Vec<u8>>> {
    let n = batch.num_rows();
    match format {
        ValueFormat::Json => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
                w.write(batch)?;
                w.finish()?;
            }
            // JSON escapes newlines inside strings, so lines are records.
            Ok(buf
                .split(|b| *b == b'\n')
                .take(n)
                .map(<[u8]>::to_vec)
                .collect())
        }
        ValueFormat::Csv { delimiter } => (0..n)
            .map(|i| {
                let mut buf = Vec::new();
                {
                    let mut w = arrow::csv::WriterBuilder::new()
                        .with_header(false)
                        .with_delimiter(delimiter)
                        .with_timestamp_format("%Y-%m-%d %H:%M:%S%.3f".to_string())
                        .build(&mut buf);
                    w.write(&batch.slice(i, 1))?;
                }
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                Ok(buf)
            })
            .collect(),
        ValueFormat::Raw => {
            let col = batch.column(0);
            let bin = cast(col, &DataType::Binary)?;
            let bin = bin
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(|| Error::internal("raw column did not cast to bytes"))?;
            Ok((0..n)
                .map(|i| {
                    if bin.is_valid(i) {
                        bin.value(i).to_vec()
                    } else {
                        vec![]
                    }
                })
                .collect())
        }
    }
}
