//! `--kafka BOOTSTRAP`: Sluice reading the bids from a Kafka topic, against
//! a bare `rdkafka` consumer reading the same topic (the practical ceiling)
//! and that consumer plus arrow-json decoding every record (the decoder's
//! own rate). Each runs in its own process; figures are records per
//! CPU-second of the whole process.
//!
//! The parent loads the bids with a Sluice job (generator → Kafka, JSON),
//! then writes one more record per partition, each in a batch of its own:
//! the test broker (Tansu) reports a partition's end offset as the newest
//! batch's base offset + 1, so a bounded read (ours and the bare
//! consumer's) ends exactly at the log end only when the last batch holds
//! one record (`../shared/kafka.md`). Those trailing bids have `auction =
//! -1` and are counted.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sluice_engine::Session;

use crate::baselines::Decoding;
use crate::proc_stats::{cpu_seconds, print_measured};
use crate::{execute_all, tables_ddl, Args};

/// What the Kafka comparison runs, in order: the load, the two baselines,
/// then Sluice's queries.
pub const RUNS: [&str; 6] = ["load", "bare", "decode", "q0", "q2", "q1-kafka"];

/// Rows per decoded batch, as the source's.
const DECODE_BATCH: usize = 4096;

const BID_COLUMNS: &str = "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, \
                           url STRING, dateTime TIMESTAMP(3), extra STRING";

fn kafka_with(args: &Args, topic: &str, extra: &str) -> anyhow::Result<String> {
    let bootstrap = args.kafka.as_deref().ok_or_else(|| anyhow!("no --kafka"))?;
    Ok(format!(
        "'connector' = 'kafka', 'topic' = '{topic}', \
         'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'json'{extra}"
    ))
}

/// The topic of the bids, as the parent named it.
fn topic(args: &Args) -> anyhow::Result<&str> {
    args.topic.as_deref().ok_or_else(|| anyhow!("no --topic"))
}

/// `bid` as a bounded read of the topic.
pub fn bid_ddl(args: &Args) -> anyhow::Result<String> {
    let with = kafka_with(
        args,
        topic(args)?,
        ", 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset'",
    )?;
    Ok(format!(
        "CREATE TABLE bid ({BID_COLUMNS}, \
         WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND) WITH ({with});"
    ))
}

/// The SQL of a Sluice run over the topic (`load` writes it).
pub fn sql(args: &Args, run: &str) -> anyhow::Result<String> {
    let topic = topic(args)?;
    Ok(match run {
        "load" => format!(
            "{} CREATE TABLE bid_out ({BID_COLUMNS}) WITH ({}); \
             INSERT INTO bid_out SELECT * FROM bid;",
            tables_ddl("gen", args.events, &args.csv),
            kafka_with(args, topic, "")?
        ),
        "q1-kafka" => format!(
            "{} CREATE TABLE q1_out (auction BIGINT, bidder BIGINT, price DECIMAL(23, 3), \
             dateTime TIMESTAMP(3), extra STRING) WITH ({}); \
             INSERT INTO q1_out SELECT auction, bidder, 0.908 * price, dateTime, extra FROM bid;",
            bid_ddl(args)?,
            kafka_with(args, &format!("{topic}-q1"), "")?
        ),
        q => {
            let text = std::fs::read_to_string(
                crate::repo_root().join(format!("benches/nexmark/{q}.sql")),
            )
            .with_context(|| format!("query {q}"))?;
            format!("{} {text}", bid_ddl(args)?)
        }
    })
}

/// Whether `run` is a baseline (not a Sluice query).
pub fn is_baseline(run: &str) -> bool {
    matches!(run, "bare" | "decode")
}

/// Parent: create the topics and load the bids, then the trailing records.
pub async fn prepare(args: &Args, partitions: i32) -> anyhow::Result<()> {
    let bootstrap = args.kafka.as_deref().ok_or_else(|| anyhow!("no --kafka"))?;
    let topic = topic(args)?;
    for t in [topic.to_string(), format!("{topic}-q1")] {
        sluice_connectors::kafka::create_topic(bootstrap, &t, partitions)
            .await
            .with_context(|| format!("creating topic {t} at {bootstrap}"))?;
    }
    Ok(())
}

/// Parent, after the load: one bid per partition, each its own batch.
pub async fn trail(args: &Args, partitions: i32) -> anyhow::Result<()> {
    let with = kafka_with(
        args,
        topic(args)?,
        ", 'sink.partitioner' = 'round-robin', 'properties.batch.num.messages' = '1', \
         'properties.linger.ms' = '0'",
    )?;
    let rows: Vec<String> = (0..partitions)
        .map(|_| "(-1, 0, 0, 'end', '', TIMESTAMP '2015-07-15 00:00:00', '')".to_string())
        .collect();
    let session = Session::new();
    execute_all(
        &session,
        &format!(
            "CREATE TABLE bid_end ({BID_COLUMNS}) WITH ({with}); \
             INSERT INTO bid_end VALUES {};",
            rows.join(", ")
        ),
    )
    .await?;
    Ok(())
}

/// Child: read the whole topic with a bare consumer (and decode every
/// record with arrow-json when `decode`); prints the measured line.
pub fn consume(args: &Args, decode: bool) -> anyhow::Result<()> {
    let bootstrap = args.kafka.as_deref().ok_or_else(|| anyhow!("no --kafka"))?;
    let topic = topic(args)?;
    let cpu = cpu_seconds();
    let started = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice-bench-bare")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.queue.backoff.ms", "10") // as Sluice's source
        .create()?;
    let timeout = Duration::from_secs(10);
    let meta = consumer.fetch_metadata(Some(topic), timeout)?;
    let parts: Vec<i32> = meta
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for &p in &parts {
        let (_, hi) = consumer.fetch_watermarks(topic, p, timeout)?;
        if hi > 0 {
            ends.insert(p, hi);
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    let mut decoder = match decode {
        true => Some(Decoding::new(bid_schema(), DECODE_BATCH)?),
        false => None,
    };
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut last = Instant::now();
    let mut sample = None;
    while !ends.is_empty() {
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            if last.elapsed() > Duration::from_secs(30) {
                bail!(
                    "no records from {topic} for 30 s ({} partitions unfinished)",
                    ends.len()
                );
            }
            continue;
        };
        let m = m?;
        last = Instant::now();
        let payload = m.payload().unwrap_or_default();
        if records == 0 {
            sample = Some(String::from_utf8_lossy(payload).to_string());
        }
        records += 1;
        bytes += payload.len() as u64;
        if let Some(d) = decoder.as_mut() {
            d.feed(payload)?;
        }
        if ends
            .get(&m.partition())
            .is_some_and(|&e| m.offset() + 1 >= e)
        {
            ends.remove(&m.partition());
        }
    }
    if let Some(d) = decoder {
        d.finish(records)?;
    }
    eprintln!("{records} records, {bytes} bytes of payload");
    if let Some(s) = sample {
        eprintln!("a record: {s}");
    }
    print_measured(records, records, cpu, started);
    Ok(())
}

/// The bids' schema as the JSON records carry them (Sluice's sink writes
/// the column names as SQL normalised them: `datetime`).
pub(crate) fn bid_schema() -> Schema {
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    let int = |n: &str| Field::new(n, DataType::Int64, true);
    Schema::new(vec![
        int("auction"),
        int("bidder"),
        int("price"),
        text("channel"),
        text("url"),
        Field::new(
            "datetime",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        text("extra"),
    ])
}
