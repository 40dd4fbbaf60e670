//! The [`Sink`] trait: async consumers at the root of an `INSERT INTO`.

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::{Result, Watermark};

/// Writes a query's result somewhere.
#[async_trait]
pub trait Sink: Send + 'static {
    /// Short name, e.g. `FileSink`.
    fn name(&self) -> &'static str;

    /// One line for EXPLAIN.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// Write one batch.
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;

    /// The watermark advanced (sinks that commit by event time use it).
    async fn on_watermark(&mut self, _wm: Watermark) -> Result<()> {
        Ok(())
    }

    /// The input ended: flush everything.
    async fn finish(&mut self) -> Result<()>;
}
