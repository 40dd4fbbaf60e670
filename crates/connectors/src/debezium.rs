//! The `debezium-json` format: changelog rows in Debezium's JSON envelope,
//! `{"before": {..} | null, "after": {..} | null, "op": "c" | "r" | "u" | "d"}`
//! (inside `"payload"` with `debezium-json.schema-include`).
//!
//! As in Flink, reading gives `+I` for `c` (create) and `r` (snapshot
//! read), `-U` then `+U` for `u`, and `-D` for `d`; writing gives `c` with
//! `after` for `+I`/`+U` and `d` with `before` for `-U`/`-D`, so a topic
//! written by an updating query reads back as the same table.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int8Array, StringArray, StructArray};
use arrow::buffer::NullBuffer;
use arrow::compute::interleave;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result};

use crate::file::decode::{clean_arrow_error, ChunkDecoder};

/// Changelog rows decoded from envelopes: the data columns, each row's kind
/// and the record (envelope) each row came from.
#[derive(Debug)]
pub struct Changes {
    /// Data columns of the rows.
    pub columns: Vec<ArrayRef>,
    /// Row kinds.
    pub ops: Int8Array,
    /// For each row, the index of its record.
    pub records: Vec<u32>,
}

/// Decodes Debezium JSON envelopes of rows with a given schema.
pub struct DebeziumDecoder {
    data: SchemaRef,
    json: ChunkDecoder,
    schema_include: bool,
}

fn relaxed(data: &Schema) -> Fields {
    data.fields()
        .iter()
        .map(|f| Field::new(f.name(), f.data_type().clone(), true))
        .collect()
}

fn envelope_fields(data: &Schema) -> Fields {
    let row = DataType::Struct(relaxed(data));
    Fields::from(vec![
        Field::new("before", row.clone(), true),
        Field::new("after", row, true),
        Field::new("op", DataType::Utf8, true),
    ])
}

impl DebeziumDecoder {
    /// Envelopes whose `before`/`after` rows have the columns of `data`;
    /// with `schema_include` the envelope is the message's `payload`.
    pub fn new(data: SchemaRef, schema_include: bool) -> Self {
        let envelope = envelope_fields(&data);
        let schema = if schema_include {
            Schema::new(vec![Field::new(
                "payload",
                DataType::Struct(envelope),
                true,
            )])
        } else {
            Schema::new(envelope)
        };
        DebeziumDecoder {
            data,
            json: ChunkDecoder::json(Arc::new(schema)),
            schema_include,
        }
    }

    /// Decode `records` envelopes, one per line of `bytes`. An envelope
    /// that is not valid gives an error naming what is wrong.
    pub fn decode(&self, bytes: &[u8], records: usize) -> std::result::Result<Changes, String> {
        let batch = self
            .json
            .decode(bytes, records)
            .map_err(|e| clean_arrow_error(&e))?;
        let envelope = if self.schema_include {
            let payload = batch.column(0).as_struct();
            if payload.null_count() > 0 {
                return Err("message has no \"payload\"".into());
            }
            payload.clone()
        } else {
            StructArray::from(batch)
        };
        let before = envelope.column(0).as_struct();
        let after = envelope.column(1).as_struct();
        let op = envelope.column(2).as_string::<i32>();
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(envelope.len());
        let mut kinds: Vec<i8> = Vec::with_capacity(envelope.len());
        let mut from: Vec<u32> = Vec::with_capacity(envelope.len());
        for i in 0..envelope.len() {
            let need = |side: &StructArray, name: &str, what: &str| {
                if side.is_null(i) {
                    Err(format!(
                        "\"{name}\" is null in a message with \"op\": \"{what}\" (for \
                         Debezium's PostgreSQL connector, set the table's REPLICA IDENTITY to \
                         FULL)"
                    ))
                } else {
                    Ok(())
                }
            };
            let mut push = |side: usize, kind: RowKind| {
                picks.push((side, i));
                kinds.push(kind.code());
                from.push(i as u32);
            };
            match op.is_valid(i).then(|| op.value(i)) {
                Some("c" | "r") => {
                    need(after, "after", "c")?;
                    push(1, RowKind::Insert);
                }
                Some("u") => {
                    need(before, "before", "u")?;
                    need(after, "after", "u")?;
                    push(0, RowKind::UpdateBefore);
                    push(1, RowKind::UpdateAfter);
                }
                Some("d") => {
                    need(before, "before", "d")?;
                    push(0, RowKind::Delete);
                }
                Some(other) => return Err(format!("unknown Debezium \"op\" value \"{other}\"")),
                None => return Err("message has no \"op\" field".into()),
            }
        }
        let columns = (0..self.data.fields().len())
            .map(|c| {
                let sides: [&dyn Array; 2] = [before.column(c).as_ref(), after.column(c).as_ref()];
                interleave(&sides, &picks).map_err(|e| e.to_string())
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Changes {
            columns,
            ops: Int8Array::from(kinds),
            records: from,
        })
    }
}

/// Each row of `data` as one Debezium JSON envelope; `ops` are the rows'
/// kinds (all inserts when `None`).
pub fn encode(data: &RecordBatch, ops: Option<&Int8Array>) -> Result<Vec<Vec<u8>>> {
    let n = data.num_rows();
    let accumulate: Vec<bool> = match ops {
        Some(ops) => ops
            .values()
            .iter()
            .map(|&k| changelog::sign_of_code(k) > 0)
            .collect(),
        None => vec![true; n],
    };
    let fields = relaxed(&data.schema());
    let side = |present: Vec<bool>| -> Result<ArrayRef> {
        let nulls = NullBuffer::from(present);
        let array = StructArray::try_new(fields.clone(), data.columns().to_vec(), Some(nulls))?;
        Ok(Arc::new(array))
    };
    let before = side(accumulate.iter().map(|a| !a).collect())?;
    let after = side(accumulate.clone())?;
    let op: ArrayRef = Arc::new(StringArray::from_iter_values(accumulate.iter().map(|&a| {
        if a {
            "c"
        } else {
            "d"
        }
    })));
    let envelope = RecordBatch::try_new(
        Arc::new(Schema::new(envelope_fields(&data.schema()))),
        vec![before, after, op],
    )
    .map_err(|e| Error::internal(format!("Debezium envelope: {e}")))?;
    json_records(&envelope)
}

/// Each row of `batch` as one JSON object (NULLs written as `null`, as
/// Flink's json format does).
pub(crate) fn json_records(batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
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
        .take(batch.num_rows())
        .map(<[u8]>::to_vec)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    fn data() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn decodes_every_op() {
        let d = DebeziumDecoder::new(data(), false);
        let text = concat!(
            r#"{"before":null,"after":{"id":1,"name":"a"},"op":"c"}"#,
            "\n",
            r#"{"before":{"id":1,"name":"a"},"after":{"id":1,"name":"b"},"op":"u"}"#,
            "\n",
            r#"{"before":{"id":1,"name":"b"},"after":null,"op":"d"}"#,
            "\n"
        );
        let c = d.decode(text.as_bytes(), 3).expect("test input");
        assert_eq!(c.ops.values().to_vec(), vec![0, 1, 2, 3]);
        assert_eq!(c.records, vec![0, 1, 1, 2]);
        let names = c.columns[1].as_string::<i32>();
        let got: Vec<&str> = (0..4).map(|i| names.value(i)).collect();
        assert_eq!(got, vec!["a", "a", "b", "b"]);
    }

    #[test]
    fn bad_envelopes_say_why() {
        let d = DebeziumDecoder::new(data(), false);
        let e = d
            .decode(br#"{"before":null,"after":null,"op":"u"}"#, 1)
            .expect_err("test input");
        assert!(e.contains("\"before\" is null"), "{e}");
        let e = d.decode(br#"{"op":"x"}"#, 1).expect_err("test input");
        assert!(e.contains("unknown Debezium"), "{e}");
    }

    #[test]
    fn encoding_reads_back() {
        let schema = changelog::with_op_field(&data());
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 1, 1])),
                Arc::new(StringArray::from(vec!["a", "a", "b"])),
                Arc::new(Int8Array::from(vec![0, 1, 2])),
            ],
        )
        .expect("test input");
        let rows = changelog::data(&batch).expect("test input");
        let lines = encode(&rows, changelog::ops(&batch)).expect("test input");
        assert_eq!(
            String::from_utf8(lines[1].clone()).expect("test input"),
            r#"{"before":{"id":1,"name":"a"},"after":null,"op":"d"}"#
        );
        let mut text = lines.join(&b'\n');
        text.push(b'\n');
        let c = DebeziumDecoder::new(data(), false)
            .decode(&text, 3)
            .expect("test input");
        assert_eq!(c.ops.values().to_vec(), vec![0, 3, 0]);
    }
}
