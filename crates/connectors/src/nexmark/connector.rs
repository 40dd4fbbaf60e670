//! The Nexmark connector's registry entry.

use sluice_common::Result;

use super::{NexmarkOptions, NexmarkSource, NexmarkSourceConfig};
use crate::registry::{BuiltSource, Connector, ConnectorContext, ScanRequest, TableDesc};

/// `connector = 'nexmark'`.
#[derive(Debug)]
pub struct NexmarkConnector;

impl Connector for NexmarkConnector {
    fn name(&self) -> &'static str {
        "nexmark"
    }

    fn validate(&self, table: &TableDesc) -> Result<()> {
        NexmarkOptions::parse(table.name, table.schema, table.options).map(|_| ())
    }

    fn source(
        &self,
        table: &TableDesc,
        scan: ScanRequest,
        _: &ConnectorContext,
    ) -> Result<BuiltSource> {
        let options = NexmarkOptions::parse(table.name, table.schema, table.options)?;
        let bounded = options.is_bounded();
        let source = NexmarkSource::new(NexmarkSourceConfig {
            table: table.name.to_string(),
            options,
            scan: scan.full,
            generate: scan.needed,
        });
        Ok(BuiltSource {
            source: Box::new(source),
            bounded,
        })
    }
}
