//! librdkafka clients from a table's options, topic metadata with retries,
//! and error messages that name the broker but never a secret.

use std::time::Duration;

use rdkafka::config::FromClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;
use sluice_common::is_secret_option;
use sluice_common::{Error, Result};

use super::KafkaOptions;

/// How long one metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);
/// Metadata attempts before giving up (with backoff between them).
const METADATA_ATTEMPTS: u32 = 3;

/// A partition and its offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition id.
    pub id: i32,
    /// First offset still in the log.
    pub low: i64,
    /// The offset the next record will get (the end).
    pub high: i64,
}

/// A librdkafka client (consumer or producer) for the table.
pub(super) fn client<C: FromClientConfig>(options: &KafkaOptions) -> Result<C> {
    config(options)
        .create()
        .map_err(|e| kafka_error(&e, options))
}

/// A Kafka client error naming the table (secrets removed).
pub(super) fn kafka_error(e: &KafkaError, options: &KafkaOptions) -> Error {
    Error::external(
        "kafka",
        format!("table {}: {}", options.table, clean(e, options)),
    )
}

/// librdkafka settings: the table's `properties.*`, plus what the engine
/// needs (it assigns partitions itself, so no offsets are committed).
pub(super) fn config(options: &KafkaOptions) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("group.id", format!("sluice-{}", options.table))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        // When the consumer's queue is full (the job is slower than the
        // broker) librdkafka waits this long before fetching again: its
        // default, 1 s, left a source idle most of the time (a 920K-record
        // topic took 5 s to read at 1.2 CPU-s). Producers ignore it.
        .set("fetch.queue.backoff.ms", "10")
        .set("log_level", "3");
    for (k, v) in &options.properties {
        c.set(k, v);
    }
    c
}

/// A Kafka error as text, with any secret property value removed.
pub(super) fn clean(e: &KafkaError, options: &KafkaOptions) -> String {
    let mut text = e.to_string();
    for (k, v) in &options.properties {
        if is_secret_option(k) && !v.is_empty() {
            text = text.replace(v.as_str(), sluice_common::MASK);
        }
    }
    text
}

/// The topic's partitions with their offsets. Retries with backoff while the
/// broker cannot be reached, then fails with a clear error. Blocking: call
/// from a blocking thread.
pub(super) fn partitions(
    consumer: &BaseConsumer,
    options: &KafkaOptions,
) -> Result<Vec<PartitionInfo>> {
    let topic = &options.topic;
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 0;
    let metadata = loop {
        attempt += 1;
        match consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT) {
            Ok(m) => break m,
            Err(e) if attempt < METADATA_ATTEMPTS => {
                let _ = e;
                std::thread::sleep(backoff);
                backoff *= 2;
            }
            Err(e) => {
                return Err(Error::Io {
                    context: format!(
                        "table {}: cannot reach Kafka at {} after {attempt} attempts",
                        options.table,
                        options.bootstrap()
                    ),
                    source: std::io::Error::other(clean(&e, options)),
                })
            }
        }
    };
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(missing_topic(options));
    };
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(missing_topic(options));
    }
    let mut out = Vec::with_capacity(t.partitions().len());
    for p in t.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), METADATA_TIMEOUT)
            .map_err(|e| {
                Error::external(
                    "kafka",
                    format!(
                        "table {}: cannot read the offsets of {topic}/{}: {}",
                        options.table,
                        p.id(),
                        clean(&e, options)
                    ),
                )
            })?;
        out.push(PartitionInfo {
            id: p.id(),
            low,
            high,
        });
    }
    out.sort_by_key(|p| p.id);
    Ok(out)
}

fn missing_topic(options: &KafkaOptions) -> Error {
    Error::plan(format!(
        "table {}: topic '{}' does not exist on {}",
        options.table,
        options.topic,
        options.bootstrap()
    ))
}

/// Partitions and end offsets of a Kafka table's topic (for DESCRIBE).
/// Blocking.
pub fn describe_topic(options: &KafkaOptions) -> Result<Vec<PartitionInfo>> {
    partitions(&client::<BaseConsumer>(options)?, options)
}

/// Create a topic (test set-up and tools; tables never create topics).
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| Error::external("kafka", format!("admin client for {bootstrap}: {e}")))?;
    let topics = [NewTopic::new(topic, partitions, TopicReplication::Fixed(1))];
    let results = admin
        .create_topics(
            &topics,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .map_err(|e| {
            Error::external("kafka", format!("create topic {topic} on {bootstrap}: {e}"))
        })?;
    for r in results {
        if let Err((name, code)) = r {
            return Err(Error::external(
                "kafka",
                format!("create topic {name} on {bootstrap}: {code}"),
            ));
        }
    }
    Ok(())
}

/// Set consumer group `group`'s committed offset of partition 0 of `topic`
/// (test tools: an exactly-once sink's commit record made to lag, as when
/// a process dies between a checkpoint and its commit).
pub async fn set_group_offset(
    bootstrap: &str,
    group: &str,
    topic: &str,
    offset: i64,
) -> Result<()> {
    use rdkafka::consumer::CommitMode;
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| Error::external("kafka", format!("consumer for {bootstrap}: {e}")))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .map_err(|e| Error::external("kafka", e.to_string()))?;
    let what = format!("commit offset {offset} of {topic}/0 for group {group} on {bootstrap}");
    tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
        .await
        .map_err(|e| Error::internal(format!("Kafka commit task failed: {e}")))?
        .map_err(|e| Error::external("kafka", format!("{what}: {e}")))
}
