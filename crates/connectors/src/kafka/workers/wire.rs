//! Records of a repartition topic.
//!
//! Each record's value is a 13-byte header — the kind (1 byte), the run id
//! (8 bytes, little-endian) and the writing worker's index (4 bytes) —
//! then the payload: an Arrow IPC stream of one batch for rows, the value
//! (8 bytes) for a watermark or a checkpoint barrier, nothing for the
//! other marks. Records of
//! other runs (an earlier run of the job, or an attempt that was rolled
//! back) are recognised by their run id and skipped.

use std::io::Cursor;

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result, Watermark};

const HEADER: usize = 13;

const ROWS: u8 = 0;
const WATERMARK: u8 = 1;
const IDLE: u8 = 2;
const END: u8 = 3;
const BARRIER: u8 = 4;

/// What one record says.
#[derive(Debug)]
pub(super) enum Mark {
    /// Rows.
    Rows(RecordBatch),
    /// The writer's watermark advanced.
    Watermark(Watermark),
    /// The writer is idle.
    Idle,
    /// The writer's stream ended.
    End,
    /// Checkpoint barrier: what the writer sent before it belongs to the
    /// checkpoint, what it sends after, to the next.
    Barrier(u64),
}

/// A record from writer `writer` (its run: [`run_of`]).
#[derive(Debug)]
pub(super) struct Record {
    pub(super) writer: usize,
    pub(super) mark: Mark,
}

fn header(kind: u8, run: u64, writer: usize, extra: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + extra);
    out.push(kind);
    out.extend_from_slice(&run.to_le_bytes());
    out.extend_from_slice(&(writer as u32).to_le_bytes());
    out
}

/// The record of `mark` (rows are encoded as one IPC stream).
pub(super) fn encode(run: u64, writer: usize, mark: &Mark) -> Result<Vec<u8>> {
    Ok(match mark {
        Mark::Rows(batch) => {
            let mut out = header(ROWS, run, writer, batch.get_array_memory_size() + 512);
            let mut w = StreamWriter::try_new(&mut out, &batch.schema())?;
            w.write(batch)?;
            w.finish()?;
            drop(w);
            out
        }
        Mark::Watermark(wm) => {
            let mut out = header(WATERMARK, run, writer, 8);
            out.extend_from_slice(&wm.0.to_le_bytes());
            out
        }
        Mark::Barrier(id) => {
            let mut out = header(BARRIER, run, writer, 8);
            out.extend_from_slice(&id.to_le_bytes());
            out
        }
        Mark::Idle => header(IDLE, run, writer, 0),
        Mark::End => header(END, run, writer, 0),
    })
}

/// The run id of a record, without decoding its payload.
pub(super) fn run_of(value: &[u8]) -> Option<u64> {
    value
        .get(1..9)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
}

/// Decode a record; `what` names it (topic/partition/offset) in errors.
pub(super) fn decode(value: &[u8], what: &dyn Fn() -> String) -> Result<Record> {
    let bad = |why: &str| Error::internal(format!("{}: not a repartition record: {why}", what()));
    if value.len() < HEADER {
        return Err(bad("too short"));
    }
    let mut w = [0u8; 4];
    w.copy_from_slice(&value[9..13]);
    let writer = u32::from_le_bytes(w) as usize;
    let payload = &value[HEADER..];
    let mark = match value[0] {
        ROWS => {
            let mut r = StreamReader::try_new(Cursor::new(payload), None)?;
            match r.next() {
                Some(b) => Mark::Rows(b?),
                None => return Err(bad("no rows")),
            }
        }
        WATERMARK => {
            let b: [u8; 8] = payload.try_into().map_err(|_| bad("watermark size"))?;
            Mark::Watermark(Watermark(i64::from_le_bytes(b)))
        }
        BARRIER => {
            let b: [u8; 8] = payload.try_into().map_err(|_| bad("barrier size"))?;
            Mark::Barrier(u64::from_le_bytes(b))
        }
        IDLE => Mark::Idle,
        END => Mark::End,
        k => return Err(bad(&format!("kind {k}"))),
    };
    Ok(Record { writer, mark })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn records_round_trip() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
                Arc::new(StringArray::from(vec!["x", "yy", "zzz"])),
            ],
        )
        .expect("batch");
        let what = || "t/0/7".to_string();
        // A slice is sent as its rows only.
        let part = batch.slice(1, 2);
        let bytes = encode(42, 3, &Mark::Rows(part.clone())).expect("encode");
        assert_eq!(run_of(&bytes), Some(42));
        let r = decode(&bytes, &what).expect("decode");
        assert_eq!(r.writer, 3);
        match r.mark {
            Mark::Rows(b) => assert_eq!(b, part),
            other => panic!("{other:?}"),
        }
        let wm = encode(7, 0, &Mark::Watermark(Watermark(-5))).expect("encode");
        assert!(matches!(
            decode(&wm, &what).expect("decode").mark,
            Mark::Watermark(Watermark(-5))
        ));
        let b = encode(7, 1, &Mark::Barrier(12)).expect("encode");
        assert!(matches!(
            decode(&b, &what).expect("decode").mark,
            Mark::Barrier(12)
        ));
        let end = encode(7, 1, &Mark::End).expect("encode");
        assert!(matches!(
            decode(&end, &what).expect("decode").mark,
            Mark::End
        ));
        let err = decode(&[1, 2], &what).expect_err("short");
        assert!(err.to_string().contains("t/0/7"), "{err}");
    }
}
