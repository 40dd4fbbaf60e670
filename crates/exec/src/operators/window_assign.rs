//! The window TVF as an operator: appends `window_start`, `window_end` and
//! `window_time` to each row. TUMBLE maps each row to one window; HOP copies
//! each row into the `size / slide` windows that contain it, CUMULATE into
//! the windows of its period that end after it. (Window aggregates over HOP
//! and CUMULATE do not use this expansion: they aggregate panes, see
//! `window_aggregate`.)

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::window::WindowSpec;
use sluice_common::Result;

use crate::row::RowFunction;
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

impl RowFunction for WindowAssignOperator {
    fn name(&self) -> &'static str {
        "WindowAssign"
    }

    fn describe(&self) -> String {
        format!("WindowAssign: {} on column #{}", self.spec, self.time_index)
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        self.apply_counting_late(batch).map(|(b, _)| b)
    }

    /// Rows without event time belong to no window: dropped, counted late.
    fn apply_counting_late(&self, batch: RecordBatch) -> Result<(RecordBatch, u64)> {
        let ts = to_millis(batch.column(self.time_index))?;
        let late = ts.null_count() as u64;
        let mut rows = Vec::with_capacity(ts.len());
        let mut starts = Vec::with_capacity(ts.len());
        let mut ends = Vec::with_capacity(ts.len());
        for (i, t) in ts.iter().enumerate() {
            // Rows without event time belong to no window.
            let Some(t) = t else { continue };
            for (s, e) in self.spec.windows_of(t) {
                rows.push(i as u32);
                starts.push(s);
                ends.push(e);
            }
        }
        let indices = UInt32Array::from(rows);
        let mut cols: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| take(c, &indices, None))
            .collect::<std::result::Result<_, _>>()?;
        cols.push(Arc::new(TimestampMillisecondArray::from(starts)));
        cols.push(Arc::new(TimestampMillisecondArray::from_iter_values(
            ends.iter().map(|e| e - 1),
        )));
        cols.insert(
            cols.len() - 1,
            Arc::new(TimestampMillisecondArray::from(ends)),
        );
        Ok((RecordBatch::try_new(Arc::clone(&self.schema), cols)?, late))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::{batch_ts, pretty, windowed_schema};
    use sluice_common::window::WindowKind;

    fn assign(kind: WindowKind, size: i64, slide: i64, input: RecordBatch) -> String {
        let spec = WindowSpec {
            kind,
            size,
            slide,
            offset: 0,
        };
        let op = WindowAssignOperator::new(spec, 0, windowed_schema(&input.schema()));
        pretty(&[op.apply(input).expect("assigns")])
    }

    #[test]
    fn tumble_maps_each_row_to_one_window_and_skips_null_time() {
        let mut input = batch_ts(&[9_999, 10_000, -1], &[1, 2, 3], &[0, 0, 0]);
        // Null out the event time of the last row.
        let ts = TimestampMillisecondArray::from(vec![Some(9_999), Some(10_000), None]);
        let mut cols = input.columns().to_vec();
        cols[0] = Arc::new(ts);
        input = RecordBatch::try_new(input.schema(), cols).expect("batch");
        let got = assign(WindowKind::Tumble, 10_000, 10_000, input);
        let want = "\
+-------------------------+---+---+---------------------+---------------------+-------------------------+
| ts                      | k | v | window_start        | window_end          | window_time             |
+-------------------------+---+---+---------------------+---------------------+-------------------------+
| 1970-01-01T00:00:09.999 | 1 | 0 | 1970-01-01T00:00:00 | 1970-01-01T00:00:10 | 1970-01-01T00:00:09.999 |
| 1970-01-01T00:00:10     | 2 | 0 | 1970-01-01T00:00:10 | 1970-01-01T00:00:20 | 1970-01-01T00:00:19.999 |
+-------------------------+---+---+---------------------+---------------------+-------------------------+";
        assert_eq!(got, want);
    }

    #[test]
    fn hop_copies_rows_into_every_window_that_contains_them() {
        // HOP slide 2 s, size 6 s: t=5 s lies in [4,10), [2,8), [0,6); a
        // time before the epoch uses floor division.
        let got = assign(
            WindowKind::Hop,
            6_000,
            2_000,
            batch_ts(&[5_000, -1_000], &[1, 2], &[0, 0]),
        );
        let want = "\
+---------------------+---+---+---------------------+---------------------+-------------------------+
| ts                  | k | v | window_start        | window_end          | window_time             |
+---------------------+---+---+---------------------+---------------------+-------------------------+
| 1970-01-01T00:00:05 | 1 | 0 | 1970-01-01T00:00:04 | 1970-01-01T00:00:10 | 1970-01-01T00:00:09.999 |
| 1970-01-01T00:00:05 | 1 | 0 | 1970-01-01T00:00:02 | 1970-01-01T00:00:08 | 1970-01-01T00:00:07.999 |
| 1970-01-01T00:00:05 | 1 | 0 | 1970-01-01T00:00:00 | 1970-01-01T00:00:06 | 1970-01-01T00:00:05.999 |
| 1969-12-31T23:59:59 | 2 | 0 | 1969-12-31T23:59:58 | 1970-01-01T00:00:04 | 1970-01-01T00:00:03.999 |
| 1969-12-31T23:59:59 | 2 | 0 | 1969-12-31T23:59:56 | 1970-01-01T00:00:02 | 1970-01-01T00:00:01.999 |
| 1969-12-31T23:59:59 | 2 | 0 | 1969-12-31T23:59:54 | 1970-01-01T00:00:00 | 1969-12-31T23:59:59.999 |
+---------------------+---+---+---------------------+---------------------+-------------------------+";
        assert_eq!(got, want);
    }
}
