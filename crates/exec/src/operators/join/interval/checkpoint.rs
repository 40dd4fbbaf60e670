//! Snapshot and restore of an interval join: each side's rows not yet
//! freed (with their match counts and times) and the watermarks.

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, UInt32Type};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

use super::{store, IntervalJoin, Timed};
use crate::checkpoint::state::{scalar, scalars};
use crate::checkpoint::{KeyRange, State};

const SIDES: [&str; 2] = ["left", "right"];

/// Side `t`'s rows not freed, with `__matches` and `__time` columns.
fn live_rows(t: &Timed) -> Result<Option<RecordBatch>> {
    let Some(schema) = t.side.batches.first().map(RecordBatch::schema) else {
        return Ok(None);
    };
    let mut picks = Vec::new();
    for (b, (order, done)) in t.order.iter().enumerate() {
        picks.extend(order[*done..].iter().map(|&r| (b, r as usize)));
    }
    let mut cols = t.side.rows(&picks)?;
    cols.push(Arc::new(
        picks
            .iter()
            .map(|&(b, r)| t.side.matches[b][r])
            .collect::<UInt32Array>(),
    ));
    cols.push(Arc::new(
        picks
            .iter()
            .map(|&(b, r)| t.times[b][r])
            .collect::<Int64Array>(),
    ));
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("__matches", DataType::UInt32, false));
    fields.push(Field::new("__time", DataType::Int64, false));
    Ok(Some(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        cols,
    )?))
}

impl IntervalJoin {
    pub(super) fn snapshot_sides(&self) -> Result<State> {
        let [l, r] = &self.sides;
        let mut state = State::new().with(
            "meta",
            scalars(&[
                ("forwarded", self.forwarded),
                ("left_watermark", l.watermark),
                ("right_watermark", r.watermark),
                ("left_freed_before", l.freed_before),
                ("right_freed_before", r.freed_before),
            ]),
        );
        for (name, t) in SIDES.iter().zip(&self.sides) {
            if let Some(rows) = live_rows(t)? {
                state.add(name, rows);
            }
        }
        Ok(state)
    }

    pub(super) fn restore_sides(&mut self, states: &[State], keys: KeyRange) -> Result<()> {
        for state in states {
            let meta = state.require("meta")?;
            self.forwarded = self.forwarded.max(scalar(meta, "forwarded")?);
            for (s, name) in SIDES.iter().enumerate() {
                let t = &mut self.sides[s];
                t.watermark = t.watermark.max(scalar(meta, &format!("{name}_watermark"))?);
                t.freed_before = t
                    .freed_before
                    .max(scalar(meta, &format!("{name}_freed_before"))?);
                if let Some(rows) = state.get(name) {
                    restore_rows(t, rows, keys)?;
                }
            }
        }
        Ok(())
    }
}

fn restore_rows(t: &mut Timed, rows: &RecordBatch, keys: KeyRange) -> Result<()> {
    let bad = || Error::Checkpoint("an interval join's checkpointed rows are malformed".into());
    let n = rows.num_columns();
    if n < 2 {
        return Err(bad());
    }
    let owned = keys.filter(rows, &t.side.key_exprs())?;
    let mut data_owned = owned.clone();
    data_owned.remove_column(n - 1);
    data_owned.remove_column(n - 2);
    let matches = owned
        .column(n - 2)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(bad)?;
    let times = owned
        .column(n - 1)
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(bad)?;
    let key_rows = t.side.key_rows(&data_owned)?;
    store(
        t,
        data_owned,
        key_rows,
        matches.values().to_vec(),
        times.values().to_vec(),
    )
}
