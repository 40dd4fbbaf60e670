//! `connector = 'blackhole'`: a sink that discards everything.

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::changelog::ChangelogMode;
use sluice_common::Result;
use sluice_exec::sink::Sink;

use crate::options::Options;
use crate::registry::{Connector, ConnectorContext, TableDesc};

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

    /// Nothing is written, so nothing is written twice.
    fn checkpoints(&self) -> bool {
        true
    }

    async fn start_checkpoints(
        &mut self,
        _job: &str,
        _restored: Option<&sluice_exec::checkpoint::State>,
    ) -> Result<()> {
        Ok(())
    }
}

/// `connector = 'blackhole'`: accepts any result, inserts or updates.
#[derive(Debug)]
pub struct BlackholeConnector;

impl Connector for BlackholeConnector {
    fn name(&self) -> &'static str {
        "blackhole"
    }

    fn validate(&self, table: &TableDesc) -> Result<()> {
        Options::new(table.name, table.options).finish()
    }

    fn check_accepts(&self, _: &TableDesc, _: &ChangelogMode, _: Option<&[String]>) -> Result<()> {
        Ok(())
    }

    fn sink(&self, _: &TableDesc, _: &ConnectorContext, _: bool) -> Result<Box<dyn Sink>> {
        Ok(Box::new(BlackholeSink))
    }
}
