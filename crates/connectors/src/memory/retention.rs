//! Retention of a materialized view's rows: a row is kept while its time
//! column is within the retention of the newest time the view has seen, so
//! a window view holds the recent windows only and its memory stays
//! bounded. Expired rows leave the table quietly (as expired state does in
//! Flink): followers of the view are not sent deletes for them.

use arrow::array::{BooleanArray, Int64Array, Int8Array};
use arrow::compute::{filter_record_batch, max, min};
use arrow::record_batch::RecordBatch;
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result};
use sluice_exec::time::to_millis;

use super::Stored;

/// How long rows are kept, by which column.
#[derive(Debug)]
pub(super) struct Retention {
    column: usize,
    keep_ms: i64,
    /// The newest time written.
    newest: Option<i64>,
    /// No kept row is older than this.
    oldest: i64,
}

impl Retention {
    pub(super) fn new(column: usize, keep_ms: i64) -> Self {
        Retention {
            column,
            keep_ms,
            newest: None,
            oldest: i64::MAX,
        }
    }

    fn times(&self, data: &RecordBatch) -> Result<Int64Array> {
        to_millis(data.column(self.column))
    }

    /// Note the times of a batch written (data columns, with or without
    /// the row kind).
    pub(super) fn observe(&mut self, batch: &RecordBatch) -> Result<()> {
        let times = self.times(&changelog::data(batch)?)?;
        if let Some(n) = max(&times) {
            self.newest = Some(self.newest.map_or(n, |m| m.max(n)));
        }
        if let Some(o) = min(&times) {
            self.oldest = self.oldest.min(o);
        }
        Ok(())
    }

    /// Rows older than this go.
    fn cutoff(&self) -> Option<i64> {
        self.newest.map(|n| n.saturating_sub(self.keep_ms))
    }

    /// Drop the rows of `stored` older than the cutoff, if any are.
    pub(super) fn expire(&mut self, stored: &mut Stored) -> Result<()> {
        let Some(cutoff) = self.cutoff().filter(|&c| c > self.oldest) else {
            return Ok(());
        };
        let mut oldest = i64::MAX;
        match stored {
            Stored::Batches(batches) => {
                let mut kept = Vec::with_capacity(batches.len());
                for b in batches.drain(..) {
                    let times = self.times(&b)?;
                    let keep = kept_rows(&times, cutoff);
                    let b = if keep.true_count() == b.num_rows() {
                        b
                    } else {
                        filter_record_batch(&b, &keep)?
                    };
                    if b.num_rows() > 0 {
                        oldest = oldest.min(min(&self.times(&b)?).unwrap_or(i64::MAX));
                        kept.push(b);
                    }
                }
                *batches = kept;
            }
            Stored::Folded(fold) => {
                let table = fold.table()?;
                let times = self.times(&table)?;
                let keep = kept_rows(&times, cutoff);
                let gone = arrow::compute::not(&keep)?;
                let old = filter_record_batch(&table, &gone)?;
                let ops = Int8Array::from_value(RowKind::Delete.code(), old.num_rows());
                let schema = changelog::with_op_field(&table.schema());
                fold.apply(&changelog::with_ops(&schema, old.columns().to_vec(), ops)?)?;
                let left = filter_record_batch(&table, &keep)?;
                oldest = min(&self.times(&left)?).unwrap_or(i64::MAX);
            }
        }
        self.oldest = oldest;
        Ok(())
    }
}

/// Rows at or after `cutoff` (and rows without a time).
fn kept_rows(times: &Int64Array, cutoff: i64) -> BooleanArray {
    times
        .iter()
        .map(|t| Some(t.is_none_or(|t| t >= cutoff)))
        .collect()
}

/// The column of `schema` named `name`, which must be a timestamp.
pub fn time_column(schema: &arrow::datatypes::Schema, name: &str) -> Result<usize> {
    let (i, f) = schema
        .column_with_name(name)
        .ok_or_else(|| Error::plan(format!("'retention.column': there is no column {name}")))?;
    if !matches!(f.data_type(), arrow::datatypes::DataType::Timestamp(..)) {
        return Err(Error::plan(format!(
            "'retention.column': {name} is {}, not a timestamp",
            f.data_type()
        )));
    }
    Ok(i)
}
