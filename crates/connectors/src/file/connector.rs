//! The filesystem connector's registry entry.

use std::path::Path;

use sluice_common::{Error, Result};
use sluice_exec::sink::Sink;

use sluice_common::changelog::ChangelogMode;

use super::{check_path, list_splits, FileOptions, FileSink, FileSource, FileSourceConfig, Format};
use crate::registry::{
    refuse_updates, BuiltSource, Connector, ConnectorContext, ScanRequest, TableDesc,
};

/// `connector = 'filesystem'`.
#[derive(Debug)]
pub struct FileConnector;

impl Connector for FileConnector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn validate(&self, table: &TableDesc) -> Result<()> {
        FileOptions::parse(table.name, table.options).map(|_| ())
    }

    fn create(&self, table: &TableDesc, _: &ConnectorContext) -> Result<Option<String>> {
        let options = FileOptions::parse(table.name, table.options)?;
        check_path(table.name, &options.path, table.has_watermark)
    }

    fn changelog(&self, table: &TableDesc) -> Result<ChangelogMode> {
        let options = FileOptions::parse(table.name, table.options)?;
        Ok(if options.format == Format::DebeziumJson {
            ChangelogMode::Updating {
                upsert_key: (!table.primary_key.is_empty()).then(|| table.primary_key.to_vec()),
            }
        } else {
            ChangelogMode::AppendOnly
        })
    }

    fn check_accepts(
        &self,
        table: &TableDesc,
        mode: &ChangelogMode,
        key_names: Option<&[String]>,
    ) -> Result<()> {
        let options = FileOptions::parse(table.name, table.options)?;
        if !mode.is_updating() || options.format == Format::DebeziumJson {
            return Ok(());
        }
        Err(refuse_updates(
            table,
            key_names,
            "write a changelog with 'format' = 'debezium-json', or insert into a memory table",
        ))
    }

    fn resolve_paths(&self, options: &mut [(String, String)], base: &Path) {
        for (k, v) in options {
            if k != "path" {
                continue;
            }
            let (scheme, rest) = match v.strip_prefix("file://") {
                Some(rest) => ("file://", rest.to_string()),
                None => ("", v.clone()),
            };
            if Path::new(&rest).is_relative() {
                *v = format!("{scheme}{}", base.join(rest).display());
            }
        }
    }

    fn source(
        &self,
        table: &TableDesc,
        scan: ScanRequest,
        _: &ConnectorContext,
    ) -> Result<BuiltSource> {
        let options = FileOptions::parse(table.name, table.options)?;
        // A missing path fails here, before anything runs.
        list_splits(&options.path).map_err(|e| {
            Error::plan(format!("table {}: {}", table.name, e.message())).near(table.name)
        })?;
        let source = FileSource::new(FileSourceConfig {
            table: table.name.to_string(),
            options,
            scan: scan.narrow,
        });
        Ok(BuiltSource {
            source: Box::new(source),
            bounded: true,
        })
    }

    fn sink(
        &self,
        table: &TableDesc,
        _: &ConnectorContext,
        overwrite: bool,
    ) -> Result<Box<dyn Sink>> {
        let options = FileOptions::parse(table.name, table.options)?;
        Ok(Box::new(FileSink::try_new(
            table.name, &options, overwrite,
        )?))
    }

    fn overwrites(&self) -> bool {
        true
    }
}
