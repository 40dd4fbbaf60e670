//! `connector = 'kafka'`: topics as tables, with Flink's Kafka SQL options.
//!
//! The source assigns every partition itself (no consumer-group
//! rebalancing), keeps one watermark per partition and emits their minimum;
//! a partition idle for `scan.watermark.idle-timeout` stops holding it back.
//! `scan.bounded.mode = 'latest-offset'` reads up to the end offsets seen at
//! start, then ends. Records are decoded a batch at a time with arrow's JSON
//! and CSV decoders. The sink writes JSON, CSV or raw values (and keys from
//! `key.fields`), waits for every delivery before the run ends (and before
//! each checkpoint completes) and fails the job on a failed delivery; with
//! `sink.delivery-guarantee = 'exactly-once'` it writes one transaction per
//! checkpoint ([`transactions`]).

mod client;
mod codec;
mod connector;
mod encode;
mod options;
mod position;
mod sink;
mod source;
mod transactions;
pub mod workers;

pub use client::{create_topic, describe_topic, set_group_offset, PartitionInfo};
pub use connector::KafkaConnector;
pub use options::{Bounded, KafkaOptions, Partitioner, Startup, ValueFormat};
pub use sink::KafkaSink;
pub use source::{KafkaSource, KafkaSourceConfig};
