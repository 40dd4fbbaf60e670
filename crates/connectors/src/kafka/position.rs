//! A Kafka source's position in a checkpoint: per partition the next offset
//! to read, the end of a bounded read, its watermark and whether it is done;
//! and the watermark the source sent last. Offsets live in checkpoints, not
//! in the broker (no consumer group commits), as in Flink.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result, Watermark};
use sluice_exec::checkpoint::state::{scalar, scalars};
use sluice_exec::checkpoint::State;

use super::source::PartitionState;

/// Where one partition continues.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Partition {
    pub next: i64,
    pub end: Option<i64>,
    pub watermark: Option<i64>,
    pub done: bool,
}

/// A restored source's positions.
#[derive(Debug, Clone)]
pub(crate) struct Resume {
    pub partitions: BTreeMap<i32, Partition>,
    /// The watermark the source had sent.
    pub watermark: i64,
}

/// The positions of `state`'s partitions and the source's watermark `wm`.
pub(crate) fn write(state: &BTreeMap<i32, PartitionState>, wm: Watermark) -> State {
    let schema = Schema::new(vec![
        Field::new("partition", DataType::Int32, false),
        Field::new("next", DataType::Int64, false),
        Field::new("end", DataType::Int64, true),
        Field::new("watermark", DataType::Int64, true),
        Field::new("done", DataType::Boolean, false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(state.keys().copied())),
        Arc::new(Int64Array::from_iter_values(state.values().map(|s| s.next))),
        Arc::new(Int64Array::from_iter(state.values().map(|s| s.end))),
        Arc::new(Int64Array::from_iter(state.values().map(|s| s.watermark))),
        Arc::new(BooleanArray::from_iter(
            state.values().map(|s| Some(s.done)),
        )),
    ];
    let mut out = State::new().with("meta", scalars(&[("watermark", wm.0)]));
    if let Ok(b) = RecordBatch::try_new(Arc::new(schema), cols) {
        out.add("partitions", b);
    }
    out
}

/// The positions a [`write`] recorded.
pub(crate) fn read(state: &State) -> Result<Resume> {
    let b = state.require("partitions")?;
    let bad = || Error::Checkpoint("the Kafka source's checkpointed offsets are malformed".into());
    let int = |i: usize| b.column(i).as_primitive_opt::<Int64Type>().ok_or_else(bad);
    let ids = b
        .column(0)
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(bad)?;
    let (next, end, wm) = (int(1)?, int(2)?, int(3)?);
    let done = b.column(4).as_boolean_opt().ok_or_else(bad)?;
    let partitions = (0..b.num_rows())
        .map(|i| {
            let p = Partition {
                next: next.value(i),
                end: end.is_valid(i).then(|| end.value(i)),
                watermark: wm.is_valid(i).then(|| wm.value(i)),
                done: done.value(i),
            };
            (ids.value(i), p)
        })
        .collect();
    Ok(Resume {
        partitions,
        watermark: scalar(state.require("meta")?, "watermark")?,
    })
}
