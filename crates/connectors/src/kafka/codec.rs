//! Kafka records to Arrow batches, a batch of records at a time, with
//! arrow's JSON and CSV decoders.
//!
//! A changelog table's batches end with the row kind: `debezium-json`
//! values give it per row (an update is two rows of one record); an
//! upsert-kafka record is `+U` (a new value for its key, normalized later
//! into `+I`/`-U`/`+U`) or, as a tombstone, `-D` with only the key.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BinaryArray, Int32Array, Int64Array, Int8Array, StringArray,
    TimestampMillisecondArray, UInt32Array,
};
use arrow::compute::{cast, interleave, take};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

use super::{KafkaOptions, ValueFormat};
use crate::debezium::DebeziumDecoder;
use crate::file::decode::{clean_arrow_error, decode_json_lenient, ChunkDecoder};
use sluice_common::changelog::{self, RowKind};

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
    Debezium(DebeziumDecoder),
}

pub(super) struct PartDecoder {
    columns: Vec<usize>,
    part: Part,
}

/// Payloads as lines, for arrow's line decoders.
fn lines(payloads: &[&[u8]]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(payloads.iter().map(|p| p.len() + 1).sum());
    for p in payloads {
        let p = p.strip_suffix(b"\n").unwrap_or(p);
        let p = p.strip_suffix(b"\r").unwrap_or(p);
        buf.extend_from_slice(p);
        buf.push(b'\n');
    }
    buf
}

impl PartDecoder {
    pub(super) fn new(
        table: &Schema,
        columns: Vec<usize>,
        format: ValueFormat,
        name: &str,
    ) -> Result<Self> {
        let schema = Arc::new(table.project(&columns)?);
        let part = match format {
            ValueFormat::Json => Part::Chunk(ChunkDecoder::json(schema)),
            ValueFormat::DebeziumJson { schema_include } => {
                Part::Debezium(DebeziumDecoder::new(schema, schema_include))
            }
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
            Part::Debezium(_) => Err("a changelog format decodes rows, not columns".into()),
            Part::Chunk(d) => {
                let batch = d
                    .decode(&lines(payloads), payloads.len())
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
pub(super) fn split_columns(
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
    /// The batches made: the table's columns (then the row kind).
    schema: SchemaRef,
    /// The table's columns.
    data: SchemaRef,
    value: PartDecoder,
    key: Option<PartDecoder>,
    meta: Vec<(usize, Meta)>,
    lenient_json: bool,
    upsert: bool,
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
        let data = if options.upsert || options.format.is_changelog() {
            changelog::data_schema(&schema)
        } else {
            Arc::clone(&schema)
        };
        let (value_cols, key_cols) = split_columns(options, &data, meta)?;
        let value = PartDecoder::new(&data, value_cols, options.format, &name)?;
        // An upsert's key is read even when the value repeats it: a
        // tombstone has only the key.
        let key = match (
            options.value_except_key || options.upsert,
            options.key_format,
        ) {
            (true, Some(f)) => Some(PartDecoder::new(&data, key_cols, f, &name)?),
            _ => None,
        };
        Ok(RecordDecoder {
            topic: options.topic.clone(),
            schema,
            data,
            value,
            key,
            meta: kinds,
            lenient_json: options.ignore_parse_errors && options.format == ValueFormat::Json,
            upsert: options.upsert,
        })
    }

    /// Decode records (tombstones, records without a value, are skipped,
    /// except by upsert-kafka, where they delete their key). Records that
    /// do not decode are returned with the reason; records kept with NULL
    /// fields (`json.ignore-parse-errors`) are counted.
    pub fn decode(&self, records: Vec<Record>) -> Result<Decoded> {
        let records: Vec<Record> = records
            .into_iter()
            .filter(|r| r.value.is_some() || self.upsert)
            .collect();
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
        let value_schema = Arc::new(self.data.project(&self.value.columns).ok()?);
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
        let mut columns: Vec<Option<ArrayRef>> = vec![None; self.data.fields().len()];
        // Per record: the value's columns, then the key's, then metadata.
        let (rows, ops) = self.decode_values(records, &mut columns)?;
        let mut per_record = self.key_columns(records)?;
        per_record.extend(self.meta_columns(records)?);
        for (i, a) in per_record {
            columns[i] = Some(match &rows {
                Some(idx) => take(&a, idx, None).map_err(|e| e.to_string())?,
                None => a,
            });
        }
        let len = rows.as_ref().map_or(n, |r| r.len());
        let mut columns: Vec<ArrayRef> = columns
            .into_iter()
            .zip(self.data.fields())
            .map(|(c, f)| c.unwrap_or_else(|| new_null_array(f.data_type(), len)))
            .collect();
        if let Some(ops) = ops {
            columns.push(Arc::new(ops));
        }
        RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(|e| e.to_string())
    }

    /// The value columns into `columns`; for a changelog also the row
    /// kinds and, when records and rows differ, each row's record.
    fn decode_values(
        &self,
        records: &[Record],
        columns: &mut [Option<ArrayRef>],
    ) -> std::result::Result<(Option<UInt32Array>, Option<Int8Array>), String> {
        let payloads: Vec<&[u8]> = records.iter().filter_map(|r| r.value.as_deref()).collect();
        if let Part::Debezium(d) = &self.value.part {
            let changes = d.decode(&lines(&payloads), payloads.len())?;
            for (i, a) in self.value.columns.iter().zip(changes.columns) {
                columns[*i] = Some(a);
            }
            return Ok((Some(UInt32Array::from(changes.records)), Some(changes.ops)));
        }
        let decoded = if payloads.is_empty() {
            vec![]
        } else {
            self.value.decode(&payloads)?
        };
        if !self.upsert {
            for (i, a) in self.value.columns.iter().zip(decoded) {
                columns[*i] = Some(a);
            }
            return Ok((None, None));
        }
        // Tombstones are rows of NULL values (their key is filled in later).
        let mut next = 0;
        let picks: Vec<(usize, usize)> = records
            .iter()
            .map(|r| match r.value {
                Some(_) => {
                    next += 1;
                    (0, next - 1)
                }
                None => (1, 0),
            })
            .collect();
        for (&i, values) in self.value.columns.iter().zip(&decoded) {
            let nulls = new_null_array(values.data_type(), 1);
            let sides: [&dyn Array; 2] = [values.as_ref(), nulls.as_ref()];
            columns[i] = Some(interleave(&sides, &picks).map_err(|e| e.to_string())?);
        }
        let ops = records.iter().map(|r| {
            let kind = if r.value.is_some() {
                RowKind::UpdateAfter
            } else {
                RowKind::Delete
            };
            kind.code()
        });
        Ok((None, Some(Int8Array::from_iter_values(ops))))
    }

    /// The key's columns, one row per record.
    fn key_columns(
        &self,
        records: &[Record],
    ) -> std::result::Result<Vec<(usize, ArrayRef)>, String> {
        let Some(key) = &self.key else {
            return Ok(vec![]);
        };
        let keys: Vec<&[u8]> = records
            .iter()
            .map(|r| r.key.as_deref().unwrap_or(b""))
            .collect();
        let decoded = key.decode(&keys).map_err(|e| format!("key: {e}"))?;
        Ok(key.columns.iter().copied().zip(decoded).collect())
    }

    /// The metadata columns, one row per record.
    fn meta_columns(
        &self,
        records: &[Record],
    ) -> std::result::Result<Vec<(usize, ArrayRef)>, String> {
        let n = records.len();
        let mut out = Vec::with_capacity(self.meta.len());
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
            let target = self.data.field(*i).data_type();
            out.push((*i, cast(&raw, target).map_err(|e| e.to_string())?));
        }
        Ok(out)
    }
}

/// A readable snippet of a record for error messages.
pub(super) fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end().chars().take(120).collect()
}
