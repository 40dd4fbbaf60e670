//! `connector = 'blackhole'`: a sink that discards everything.

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::Result;
use sluice_exec::sink::Sink;

/// Discards rows (they are still counted in the query's metrics).
#[derive(Debug, Default)]
pub struct BlackholeSink;

#[async_trait]
impl Sink for BlackholeSink {
    fn name(&self) -> &'static str {
        "BlackholeSink"
    }

    async fn write(&mut self, _batch: RecordBatch) -> Result<()> {
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
