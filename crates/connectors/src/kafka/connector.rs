//! The registry entries of `kafka` and `upsert-kafka`.

use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_exec::sink::Sink;

use super::{describe_topic, KafkaOptions, KafkaSink, KafkaSource, KafkaSourceConfig, ValueFormat};
use crate::registry::{
    describe_updates, BuiltSource, Connector, ConnectorContext, ScanRequest, TableDesc,
};

/// `connector = 'kafka'`: append-only rows, or a changelog with
/// `'format' = 'debezium-json'`.
#[derive(Debug)]
pub struct KafkaConnector;

/// `connector = 'upsert-kafka'` (Flink's): the latest value per PRIMARY
/// KEY, a tombstone deleting the key; read back as an updating table.
#[derive(Debug)]
pub struct UpsertKafkaConnector;

fn key_names(table: &TableDesc) -> Vec<String> {
    table
        .primary_key
        .iter()
        .map(|&i| table.schema.field(i).name().clone())
        .collect()
}

/// What both connectors share, given how each reads its options.
trait KafkaLike {
    fn options(&self, table: &TableDesc) -> Result<KafkaOptions>;
}

impl KafkaLike for KafkaConnector {
    fn options(&self, table: &TableDesc) -> Result<KafkaOptions> {
        KafkaOptions::parse(table.name, table.options)
    }
}

impl KafkaLike for UpsertKafkaConnector {
    fn options(&self, table: &TableDesc) -> Result<KafkaOptions> {
        KafkaOptions::parse_upsert(table.name, table.options, &key_names(table))
    }
}

fn validate(c: &dyn KafkaLike, table: &TableDesc) -> Result<()> {
    let options = c.options(table)?;
    KafkaSink::try_new(options, table.schema, table.metadata).map(|_| ())
}

fn source(c: &dyn KafkaLike, table: &TableDesc, scan: ScanRequest) -> Result<BuiltSource> {
    let options = c.options(table)?;
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

fn sink(c: &dyn KafkaLike, table: &TableDesc) -> Result<Box<dyn Sink>> {
    let options = c.options(table)?;
    if let ValueFormat::DebeziumJson {
        schema_include: true,
    } = options.format
    {
        return Err(Error::plan(format!(
            "table {}: 'debezium-json.schema-include' = 'true' is for reading; Sluice writes \
             envelopes without a schema",
            table.name
        )));
    }
    Ok(Box::new(KafkaSink::try_new(
        options,
        table.schema,
        table.metadata,
    )?))
}

fn partitions(c: &dyn KafkaLike, table: &TableDesc) -> Result<Vec<Vec<String>>> {
    Ok(describe_topic(&c.options(table)?)?
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

impl Connector for KafkaConnector {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn validate(&self, table: &TableDesc) -> Result<()> {
        validate(self, table)
    }

    fn has_metadata(&self) -> bool {
        true
    }

    fn changelog(&self, table: &TableDesc) -> Result<ChangelogMode> {
        Ok(if self.options(table)?.format.is_changelog() {
            ChangelogMode::Updating {
                upsert_key: (!table.primary_key.is_empty()).then(|| table.primary_key.to_vec()),
            }
        } else {
            ChangelogMode::AppendOnly
        })
    }

    fn source(
        &self,
        table: &TableDesc,
        scan: ScanRequest,
        _: &ConnectorContext,
    ) -> Result<BuiltSource> {
        source(self, table, scan)
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
        Err(Error::plan(format!(
            "sink `{}` only accepts inserts, but the query produces {}; use 'format' = \
             'debezium-json' (a changelog) or connector 'upsert-kafka' with a PRIMARY KEY",
            table.name,
            describe_updates(key_names)
        ))
        .near("INSERT"))
    }

    fn sink(&self, table: &TableDesc, _: &ConnectorContext, _: bool) -> Result<Box<dyn Sink>> {
        sink(self, table)
    }

    fn describe_rows(&self, table: &TableDesc) -> Result<Vec<Vec<String>>> {
        partitions(self, table)
    }
}

impl Connector for UpsertKafkaConnector {
    fn name(&self) -> &'static str {
        "upsert-kafka"
    }

    fn validate(&self, table: &TableDesc) -> Result<()> {
        validate(self, table)
    }

    fn has_metadata(&self) -> bool {
        true
    }

    fn changelog(&self, table: &TableDesc) -> Result<ChangelogMode> {
        Ok(ChangelogMode::Updating {
            upsert_key: Some(table.primary_key.to_vec()),
        })
    }

    fn normalizes_upserts(&self) -> bool {
        true
    }

    fn source(
        &self,
        table: &TableDesc,
        scan: ScanRequest,
        _: &ConnectorContext,
    ) -> Result<BuiltSource> {
        source(self, table, scan)
    }

    /// Inserts, or updates keyed by exactly the PRIMARY KEY (so a `-D`
    /// can be a tombstone of its key and a `-U` can be skipped).
    fn check_accepts(
        &self,
        table: &TableDesc,
        mode: &ChangelogMode,
        query_key: Option<&[String]>,
    ) -> Result<()> {
        if !mode.is_updating() {
            return Ok(());
        }
        let pk = key_names(table);
        let same = query_key.is_some_and(|k| {
            k.len() == pk.len()
                && k.iter()
                    .all(|c| pk.iter().any(|p| p.eq_ignore_ascii_case(c)))
        });
        if same {
            return Ok(());
        }
        Err(Error::plan(format!(
            "sink `{}` upserts by its PRIMARY KEY [{}], but the query produces {}; make the \
             PRIMARY KEY the query's key (its GROUP BY or PARTITION BY columns)",
            table.name,
            pk.join(", "),
            describe_updates(query_key)
        ))
        .near("INSERT"))
    }

    fn sink(&self, table: &TableDesc, _: &ConnectorContext, _: bool) -> Result<Box<dyn Sink>> {
        sink(self, table)
    }

    fn describe_rows(&self, table: &TableDesc) -> Result<Vec<Vec<String>>> {
        partitions(self, table)
    }
}
