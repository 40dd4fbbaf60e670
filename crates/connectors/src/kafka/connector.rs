//! The Kafka connector's registry entry.

use sluice_common::Result;
use sluice_exec::sink::Sink;

use super::{describe_topic, KafkaOptions, KafkaSink, KafkaSource, KafkaSourceConfig};
use crate::registry::{BuiltSource, Connector, ConnectorContext, ScanRequest, TableDesc};

/// `connector = 'kafka'`.
#[derive(Debug)]
pub struct KafkaConnector;

impl Connector for KafkaConnector {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn validate(&self, table: &TableDesc) -> Result<()> {
        let options = KafkaOptions::parse(table.name, table.options)?;
        KafkaSink::try_new(options, table.schema, table.metadata).map(|_| ())
    }

    fn has_metadata(&self) -> bool {
        true
    }

    fn source(
        &self,
        table: &TableDesc,
        scan: ScanRequest,
        _: &ConnectorContext,
    ) -> Result<BuiltSource> {
        let options = KafkaOptions::parse(table.name, table.options)?;
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

    fn sink(&self, table: &TableDesc, _: &ConnectorContext, _: bool) -> Result<Box<dyn Sink>> {
        let options = KafkaOptions::parse(table.name, table.options)?;
        Ok(Box::new(KafkaSink::try_new(
            options,
            table.schema,
            table.metadata,
        )?))
    }

    fn describe_rows(&self, table: &TableDesc) -> Result<Vec<Vec<String>>> {
        let options = KafkaOptions::parse(table.name, table.options)?;
        Ok(describe_topic(&options)?
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
