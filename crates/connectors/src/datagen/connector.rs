//! The datagen connector's registry entry.

use sluice_common::Result;

use super::{DatagenOptions, DatagenSource, DatagenSourceConfig};
use crate::registry::{BuiltSource, Connector, ConnectorContext, ScanRequest, TableDesc};

/// `connector = 'datagen'`.
#[derive(Debug)]
pub struct DatagenConnector;

impl Connector for DatagenConnector {
    fn name(&self) -> &'static str {
        "datagen"
    }

    fn validate(&self, table: &TableDesc) -> Result<()> {
        DatagenOptions::parse(table.name, table.schema, table.options).map(|_| ())
    }

    fn source(
        &self,
        table: &TableDesc,
        scan: ScanRequest,
        _: &ConnectorContext,
    ) -> Result<BuiltSource> {
        let options = DatagenOptions::parse(table.name, table.schema, table.options)?;
        let bounded = options.is_bounded();
        let source = DatagenSource::try_new(DatagenSourceConfig {
            table: table.name.to_string(),
            options,
            scan: scan.full,
        })?;
        Ok(BuiltSource {
            source: Box::new(source),
            bounded,
        })
    }
}
