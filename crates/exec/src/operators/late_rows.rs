//! A table's late-row side output (`'scan.late-rows.table'`): rows whose
//! event time is at or behind the watermark when they are read go into
//! another table instead of on into the query.
//!
//! Downstream watermarks never pass the source's, so every row a window,
//! join or OVER aggregate would drop as late is diverted here first:
//! every row either reaches the query or the late table, and none is lost
//! silently. (It is the `ts <= CURRENT_WATERMARK(ts)` rule Flink's
//! documentation gives for routing late rows to their own sink.) Rows
//! whose event time is NULL have no time to be late by and pass on.

use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::compute::{filter_record_batch, not};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::{Result, Watermark};

use crate::operator::{Operator, Output};
use crate::time::to_millis;

/// Where diverted rows are written (a memory table's append).
pub type LateSink = Arc<dyn Fn(RecordBatch) -> Result<()> + Send + Sync>;

/// See the module docs.
pub struct LateRows {
    column: usize,
    table: String,
    sink: LateSink,
    schema: SchemaRef,
    watermark: i64,
}

impl std::fmt::Debug for LateRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateRows")
            .field("table", &self.table)
            .finish()
    }
}

impl LateRows {
    /// Divert rows of `schema` whose column `column` is at or behind the
    /// watermark into `sink` (the table named `table`).
    pub fn new(column: usize, table: &str, sink: LateSink, schema: SchemaRef) -> Self {
        LateRows {
            column,
            table: table.to_string(),
            sink,
            schema,
            watermark: i64::MIN,
        }
    }
}

impl Operator for LateRows {
    fn name(&self) -> &'static str {
        "LateRows"
    }

    fn describe(&self) -> String {
        let name = self.schema.field(self.column).name();
        format!("LateRows: {name} <= watermark -> table {}", self.table)
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let wm = self.watermark;
        if wm == i64::MIN {
            out.push(batch);
            return Ok(());
        }
        let ts = to_millis(batch.column(self.column))?;
        let late: BooleanArray = ts
            .iter()
            .map(|t| Some(t.is_some_and(|t| t <= wm)))
            .collect();
        match late.true_count() {
            0 => out.push(batch),
            n if n == batch.num_rows() => (self.sink)(batch)?,
            _ => {
                (self.sink)(filter_record_batch(&batch, &late)?)?;
                out.push(filter_record_batch(&batch, &not(&late)?)?);
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: Watermark, _out: &mut Output) -> Result<Option<Watermark>> {
        self.watermark = wm.0;
        Ok(Some(wm))
    }

    /// Its watermark. (The late rows it wrote are in a memory table of
    /// this process: rows late after a restored checkpoint are written
    /// again by a job restarted in the same process.)
    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        let meta = crate::checkpoint::state::scalars(&[("watermark", self.watermark)]);
        Ok(crate::checkpoint::State::new().with("meta", meta))
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        _keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        let wm = crate::checkpoint::state::largest(states, "watermark")?;
        self.watermark = self.watermark.max(wm);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::{batch_ts, pretty};
    use std::sync::Mutex;

    #[test]
    fn rows_behind_the_watermark_go_to_the_late_table() {
        let kept: Arc<Mutex<Vec<RecordBatch>>> = Arc::default();
        let into = Arc::clone(&kept);
        let sink: LateSink = Arc::new(move |b| {
            into.lock().expect("lock").push(b);
            Ok(())
        });
        let rows = batch_ts(&[1_000, 5_000], &[1, 2], &[10, 20]);
        let mut op = LateRows::new(0, "late", sink, rows.schema());
        let mut out = Output::default();
        // Before the first watermark nothing is late.
        op.on_batch(0, rows, &mut out).expect("batch");
        op.on_watermark(Watermark(5_000), &mut out).expect("wm");
        // At the watermark is late (no row <= W follows W); after it is not.
        let rows = batch_ts(&[5_000, 6_000, 2_000], &[3, 4, 5], &[30, 40, 50]);
        op.on_batch(0, rows, &mut out).expect("batch");
        let passed = out.take_batches();
        assert_eq!(passed.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
        let late = kept.lock().expect("lock").clone();
        let shown = pretty(&late);
        assert!(shown.contains("| 3 ") && shown.contains("| 5 "), "{shown}");
        assert_eq!(late.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    }
}
