//! The registry entries of `kafka` and `upsert-kafka`.

use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_exec::sink::Sink;

use super::{describe_topic, KafkaOptions, KafkaSink, KafkaSource, KafkaSourceConfig, ValueFormat};
use crate::registry::{
    check_upsert_key, key_names, refuse_updates, BuiltSource, Connector, ConnectorContext,
    ScanRequest, TableDesc,
};

/// `connector = 'kafka'`: append-only rows, or a changelog with
/// `'format' = 'debezium-json'`; with `upsert`, `connector =
/// 'upsert-kafka'` (Flink's): the latest value per PRIMARY KEY, a tombstone
/// deleting the key, read back as an updating table.
#[derive(Debug)]
pub struct KafkaConnector {
    /// `upsert-kafka`.
    pub upsert: bool,
}

impl KafkaConnector {
    fn options(&self, table: &TableDesc) -> Result<KafkaOptions> {
        if self.upsert {
            KafkaOptions::parse_upsert(table.name, table.options, &key_names(table))
        } else {
            KafkaOptions::parse(table.name, table.options)
        }
    }
}

impl Connector for KafkaConnector {
    fn name(&self) -> &'static str {
        if self.upsert {
            "upsert-kafka"
        } else {
            "kafka"
        }
    }

    fn validate(&self, table: &TableDesc) -> Result<()> {
        let options = self.options(table)?;
        KafkaSink::try_new(options, table.schema, table.metadata).map(|_| ())
    }

    fn has_metadata(&self) -> bool {
        true
    }

    fn changelog(&self, table: &TableDesc) -> Result<ChangelogMode> {
        let key = (!table.primary_key.is_empty()).then(|| table.primary_key.to_vec());
        Ok(
            if self.upsert || self.options(table)?.format.is_changelog() {
                ChangelogMode::Updating { upsert_key: key }
            } else {
                ChangelogMode::AppendOnly
            },
        )
    }

    fn normalizes_upserts(&self) -> bool {
        self.upsert
    }

    fn source(
        &self,
        table: &TableDesc,
        scan: ScanRequest,
        _: &ConnectorContext,
    ) -> Result<BuiltSource> {
        let options = self.options(table)?;
        let bounded = options.is_bounded();
        let source = KafkaSource::try_new(KafkaSourceConfig {
            options,
            scan: scan.full,
            metadata: table.metadata.to_vec(),
        })?;
        Ok(BuiltSource {
            source: Box::new(source),
            bounded,
        })
    }

    fn check_accepts(
        &self,
        table: &TableDesc,
        mode: &ChangelogMode,
        key_names: Option<&[String]>,
    ) -> Result<()> {
        if !mode.is_updating() || self.options(table)?.format.is_changelog() {
            return Ok(());
        }
        if self.upsert {
            return check_upsert_key(table, key_names);
        }
        Err(refuse_updates(
            table,
            key_names,
            "use 'format' = 'debezium-json' (a changelog) or connector 'upsert-kafka' with a \
             PRIMARY KEY",
        ))
    }

    fn sink(&self, table: &TableDesc, _: &ConnectorContext, _: bool) -> Result<Box<dyn Sink>> {
        let options = self.options(table)?;
        if let ValueFormat::DebeziumJson {
            schema_include: true,
        } = options.format
        {
            return Err(Error::plan(format!(
                "table {}: 'debezium-json.schema-include' = 'true' is for reading; Sluice \
                 writes envelopes without a schema",
                table.name
            )));
        }
        Ok(Box::new(KafkaSink::try_new(
            options,
            table.schema,
            table.metadata,
        )?))
    }

    fn describe_rows(&self, table: &TableDesc) -> Result<Vec<Vec<String>>> {
        Ok(describe_topic(&self.options(table)?)?
            .into_iter()
            .map(|p| {
                vec![
                    format!("partition {}", p.id),
                    format!("offsets {}..{}", p.low, p.high),
                    String::new(),
                    String::new(),
                    String::new(),
                ]
            })
            .collect())
    }
}
