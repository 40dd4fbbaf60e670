//! The window TVF as an operator: appends `window_start`, `window_end` and
//! `window_time` to each row. TUMBLE maps each row to one window; HOP copies
//! each row into the `size / slide` windows that contain it. (Window
//! aggregates over HOP do not use this expansion: they aggregate panes, see
//! `window_aggregate`.)

use std::sync::Arc;

use arrow::array::{ArrayRef, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::Result;
use sluice_sql::window::WindowSpec;

use crate::operator::{Operator, Output};
use crate::time::to_millis;

/// Assigns windows to rows.
#[derive(Debug)]
pub struct WindowAssignOperator {
    spec: WindowSpec,
    time_index: usize,
    schema: SchemaRef,
}

impl WindowAssignOperator {
    /// Windows `spec` over input column `time_index`; `schema` is the input's
    /// plus the three window columns.
    pub fn new(spec: WindowSpec, time_index: usize, schema: SchemaRef) -> Self {
        WindowAssignOperator {
            spec,
            time_index,
            schema,
        }
    }
}

impl Operator for WindowAssignOperator {
    fn name(&self) -> &'static str {
        "WindowAssign"
    }

    fn describe(&self) -> String {
        format!("WindowAssign: {} on column #{}", self.spec, self.time_index)
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let ts = to_millis(batch.column(self.time_index))?;
        let mut rows = Vec::with_capacity(ts.len());
        let mut starts = Vec::with_capacity(ts.len());
        for (i, t) in ts.iter().enumerate() {
            // Rows without event time belong to no window.
            let Some(t) = t else { continue };
            let mut s = self.spec.last_start(t);
            while s > t - self.spec.size {
                rows.push(i as u32);
                starts.push(s);
                s -= self.spec.slide;
            }
        }
        let indices = UInt32Array::from(rows);
        let mut cols: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| take(c, &indices, None))
            .collect::<std::result::Result<_, _>>()?;
        let size = self.spec.size;
        cols.push(Arc::new(TimestampMillisecondArray::from(starts.clone())));
        cols.push(Arc::new(TimestampMillisecondArray::from_iter_values(
            starts.iter().map(|s| s + size),
        )));
        cols.push(Arc::new(TimestampMillisecondArray::from_iter_values(
            starts.iter().map(|s| s + size - 1),
        )));
        out.push(RecordBatch::try_new(Arc::clone(&self.schema), cols)?);
        Ok(())
    }
}
