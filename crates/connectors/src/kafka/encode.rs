//! Arrow rows to Kafka record keys and values, for the sink.
//!
//! A changelog is written as its format says: `debezium-json` values carry
//! each row's kind; an upsert-kafka table writes `+I`/`+U` as the key's new
//! value, `-D` as a tombstone (no value) and skips `-U` (its `+U` follows
//! with the same key).

use arrow::array::{Array, BinaryArray, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result};

use super::codec::{split_columns, PartDecoder};
use super::{KafkaOptions, ValueFormat};
use crate::debezium;

/// Encodes rows into record values (and keys) for the sink.
pub(super) struct RecordEncoder {
    value_cols: Vec<usize>,
    format: ValueFormat,
    key: Option<(Vec<usize>, ValueFormat)>,
    timestamp_col: Option<usize>,
    upsert: bool,
}

/// One record to produce.
pub(super) struct OutRecord {
    pub key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    pub value: Option<Vec<u8>>,
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
            upsert: options.upsert,
        })
    }

    /// The records of `batch` (the table's columns, then the row kind when
    /// the query updates).
    pub fn encode(&self, batch: &RecordBatch) -> Result<Vec<OutRecord>> {
        let ops = changelog::ops(batch).cloned();
        let batch = changelog::data(batch)?;
        let values = batch.project(&self.value_cols)?;
        let values = match self.format {
            ValueFormat::DebeziumJson { .. } => debezium::encode(&values, ops.as_ref())?,
            f => encode_part(&values, f)?,
        };
        let keys = match &self.key {
            Some((cols, f)) => Some(encode_part(&batch.project(cols)?, *f)?),
            None => None,
        };
        let ts = match self.timestamp_col {
            Some(i) => Some(millis(batch.column(i))?),
            None => None,
        };
        let mut keys = keys.map(Vec::into_iter);
        let mut out = Vec::with_capacity(values.len());
        for (row, value) in values.into_iter().enumerate() {
            let key = keys.as_mut().and_then(Iterator::next);
            let kind = ops.as_ref().and_then(|o| RowKind::from_code(o.value(row)));
            let value = match (self.upsert, kind) {
                (true, Some(RowKind::UpdateBefore)) => continue,
                (true, Some(RowKind::Delete)) => None,
                _ => Some(value),
            };
            out.push(OutRecord {
                key,
                value,
                timestamp: ts
                    .as_ref()
                    .and_then(|t| t.is_valid(row).then(|| t.value(row))),
            });
        }
        Ok(out)
    }
}

fn millis(column: &dyn Array) -> Result<TimestampMillisecondArray> {
    let c = cast(
        column,
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
    )?;
    c.as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .cloned()
        .ok_or_else(|| Error::internal("timestamp column did not cast"))
}

/// Each row of `batch` encoded on its own.
fn encode_part(batch: &RecordBatch, format: ValueFormat) -> Result<Vec<Vec<u8>>> {
    let n = batch.num_rows();
    match format {
        ValueFormat::Json => debezium::json_records(batch),
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
        ValueFormat::DebeziumJson { .. } => debezium::encode(batch, None),
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
