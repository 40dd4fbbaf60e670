//! Processing time as a time attribute: windows over a `PROCTIME()` column
//! fire on the wall clock.
//!
//! The operator sits before the window: it sets the processing-time column
//! of each row to the wall clock as the row passes, and emits that clock as
//! the watermark (`now - 1 ms` after a batch, and every tick while no row
//! comes), so every operator after it treats processing time as event time
//! whose watermark is the clock: a window fires once the clock passes its
//! end, with input or without. No row is ever late (its time is set where
//! the watermark is made). Upstream watermarks are not forwarded, but the
//! end of a bounded input is (all windows then fire).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, TimestampMillisecondArray};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result, Watermark};

use crate::operator::{Operator, Output};

/// How often the clock is emitted as the watermark while no row comes.
const TICK: Duration = Duration::from_millis(100);

/// See the module docs.
pub struct ProcTime {
    column: usize,
    schema: SchemaRef,
    /// The column's time zone (TIMESTAMP_LTZ is UTC).
    zone: Option<Arc<str>>,
    next_tick: Instant,
    last: i64,
    /// The input ended: the final watermark went out, no clock follows.
    ended: bool,
}

impl ProcTime {
    /// Set column `column` of batches of `schema` to the processing time.
    pub fn try_new(column: usize, schema: SchemaRef) -> Result<Self> {
        let zone = match schema.fields().get(column).map(|f| f.data_type()) {
            Some(DataType::Timestamp(TimeUnit::Millisecond, zone)) => zone.clone(),
            _ => {
                return Err(Error::internal(
                    "a processing-time column that is not a TIMESTAMP(3)",
                ))
            }
        };
        Ok(ProcTime {
            column,
            schema,
            zone,
            next_tick: Instant::now() + TICK,
            last: i64::MIN,
            ended: false,
        })
    }

    /// The wall clock in milliseconds, never going back.
    fn now(&mut self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.last = self.last.max(now);
        self.last
    }

    fn emit_clock(&mut self, out: &mut Output) {
        if self.ended {
            return;
        }
        let now = self.now();
        out.emit_watermark(Watermark(now - 1));
        self.next_tick = Instant::now() + TICK;
    }
}

impl Operator for ProcTime {
    fn name(&self) -> &'static str {
        "ProcTime"
    }

    fn describe(&self) -> String {
        let name = self.schema.field(self.column).name();
        format!("ProcTime: {name} := PROCTIME(), watermark = the wall clock")
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let now = self.now();
        let times: ArrayRef = Arc::new(
            TimestampMillisecondArray::from_value(now, batch.num_rows())
                .with_timezone_opt(self.zone.clone()),
        );
        let mut cols = batch.columns().to_vec();
        if self.column >= cols.len() {
            return Err(Error::internal("a processing-time column past the batch"));
        }
        cols[self.column] = times;
        out.push(RecordBatch::try_new(Arc::clone(&self.schema), cols)?);
        self.emit_clock(out);
        Ok(())
    }

    fn on_watermark(&mut self, wm: Watermark, _out: &mut Output) -> Result<Option<Watermark>> {
        // Event time upstream means nothing here; only the end does.
        if wm == Watermark::MAX {
            self.ended = true;
            return Ok(Some(wm));
        }
        Ok(None)
    }

    fn deadline(&self) -> Option<Instant> {
        (!self.ended).then_some(self.next_tick)
    }

    fn on_timer(&mut self, out: &mut Output) -> Result<()> {
        self.emit_clock(out);
        Ok(())
    }

    /// The clock it showed last (it never goes back, also after a restart
    /// on a machine whose clock is behind).
    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        let meta = crate::checkpoint::state::scalars(&[("last", self.last)]);
        Ok(crate::checkpoint::State::new().with("meta", meta))
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        _keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        self.last = self
            .last
            .max(crate::checkpoint::state::largest(states, "last")?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn sets_the_clock_and_emits_it_as_the_watermark_with_or_without_rows() {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![Field::new("pt", ts, true)]));
        let mut op = ProcTime::try_new(0, Arc::clone(&schema)).expect("op");
        let old: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![0, 0]).with_timezone("UTC"));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![old]).expect("batch");
        let mut out = Output::default();
        op.on_batch(0, batch, &mut out).expect("batch");
        let rows = out.take_batches();
        let t = rows[0]
            .column(0)
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
            .value(0);
        assert!(
            t > 1_700_000_000_000,
            "the wall clock, not the input's time"
        );
        let wm = out.pending_watermark.take().expect("a watermark");
        // The clock read after the rows (a millisecond may have passed).
        assert!(wm >= Watermark(t - 1), "{wm:?} after rows at {t}");
        // With no row, the timer emits the clock.
        std::thread::sleep(Duration::from_millis(5));
        op.on_timer(&mut out).expect("timer");
        assert!(out.pending_watermark.take().expect("a watermark") > wm);
        // An upstream event-time watermark is not forwarded; the end is.
        assert_eq!(op.on_watermark(Watermark(5), &mut out).expect("wm"), None);
        let end = op.on_watermark(Watermark::MAX, &mut out).expect("end");
        assert_eq!(end, Some(Watermark::MAX));
        assert!(op.deadline().is_none(), "no clock after the end");
    }
}
