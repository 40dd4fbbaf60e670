//! The registry entry of `jdbc`.

use sluice_common::changelog::ChangelogMode;
use sluice_common::Result;
use sluice_exec::sink::Sink;

use super::{JdbcOptions, JdbcSink};
use crate::registry::{check_upsert_key, Connector, ConnectorContext, TableDesc};

/// `connector = 'jdbc'` (PostgreSQL): a sink that inserts, or upserts by
/// the table's PRIMARY KEY.
#[derive(Debug)]
pub struct JdbcConnector;

impl Connector for JdbcConnector {
    fn name(&self) -> &'static str {
        "jdbc"
    }

    fn validate(&self, table: &TableDesc) -> Result<()> {
        JdbcOptions::parse(table.name, table.options).map(|_| ())
    }

    fn check_accepts(
        &self,
        table: &TableDesc,
        mode: &ChangelogMode,
        key_names: Option<&[String]>,
    ) -> Result<()> {
        if !mode.is_updating() {
            return Ok(());
        }
        check_upsert_key(table, key_names)
    }

    fn sink(&self, table: &TableDesc, _: &ConnectorContext, _: bool) -> Result<Box<dyn Sink>> {
        let options = JdbcOptions::parse(table.name, table.options)?;
        Ok(Box::new(JdbcSink::new(
            options,
            table.schema.clone(),
            table.primary_key.to_vec(),
        )))
    }
}
