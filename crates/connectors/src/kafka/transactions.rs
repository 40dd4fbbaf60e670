//! Kafka transactions for `sink.delivery-guarantee = 'exactly-once'`.
//!
//! One transaction per checkpoint, as Flink's KafkaSink: rows after
//! barrier `n - 1` go into a transaction that the barrier `n` pre-commits
//! (flushes) and that commits once checkpoint `n` is complete. A producer
//! has one transaction at a time, so the sink keeps a few producers
//! (transactional ids `<prefix>-0 ..`): one writing, the others holding
//! pre-committed transactions until their checkpoint completes.
//!
//! librdkafka cannot take over another process's open transaction (Flink
//! resumes it by setting the producer id and epoch through reflection). So
//! each transaction also commits the checkpoint's id as the offset of a
//! consumer group (`<prefix>-sluice-commits`, on partition 0 of the sink's
//! topic) — atomically with its rows, as Kafka Streams records its input
//! offsets. A restarted job first fences every transactional id (which
//! aborts what the dead process left open), then reads that group's offset:
//! the newest checkpoint whose rows are committed. It resumes from that
//! checkpoint, so the rows of a checkpoint whose commit was lost are
//! written again, once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice_common::{Error, Result};
use sluice_exec::checkpoint::CheckpointId;
use sluice_exec::sink::FINAL;

use super::client::{clean, config};
use super::KafkaOptions;

/// Producers (transactional ids) per sink: the one writing and up to three
/// transactions pre-committed by checkpoints that have not completed yet.
pub(super) const SLOTS: usize = 4;
/// `transaction.timeout.ms` when the table does not set it: the largest a
/// broker allows by default (`transaction.max.timeout.ms`).
pub(super) const DEFAULT_TIMEOUT_MS: u64 = 900_000;
/// How long one transactional request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The transactions of an exactly-once sink.
pub(super) struct Transactions {
    options: KafkaOptions,
    prefix: String,
    /// Initialised producers without an open transaction.
    idle: Vec<FutureProducer>,
    /// The transaction being written.
    open: Option<FutureProducer>,
    /// Transactions pre-committed by checkpoints, oldest first.
    precommitted: VecDeque<(CheckpointId, FutureProducer)>,
    /// Reads the commit record.
    consumer: Arc<BaseConsumer>,
    group: Arc<ConsumerGroupMetadata>,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transactions({})", self.prefix)
    }
}

/// Run blocking librdkafka work off the async threads.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("Kafka {what} task failed: {e}")))?
}

impl Transactions {
    /// Fence every transactional id of `prefix` (aborting what an earlier
    /// process left open) and keep the producers, whose transactions time
    /// out after `timeout`.
    pub(super) async fn fence(
        options: &KafkaOptions,
        prefix: &str,
        timeout: Duration,
    ) -> Result<Self> {
        // Concurrently: each takes a round trip or two to the broker.
        let mut fencing = tokio::task::JoinSet::new();
        for slot in 0..SLOTS {
            let id = format!("{prefix}-{slot}");
            let mut c = config(options);
            c.set("transactional.id", &id)
                .set("transaction.timeout.ms", timeout.as_millis().to_string());
            let o = options.clone();
            fencing.spawn_blocking(move || {
                let p: FutureProducer = c.create().map_err(|e| error(&o, &id, "start", &e))?;
                p.init_transactions(REQUEST_TIMEOUT)
                    .map_err(|e| error(&o, &id, "initialise", &e))?;
                Ok::<_, Error>(p)
            });
        }
        let mut idle = Vec::with_capacity(SLOTS);
        while let Some(done) = fencing.join_next().await {
            let p = done.map_err(|e| Error::internal(format!("Kafka fencing task failed: {e}")))?;
            idle.push(p?);
        }
        let mut c: ClientConfig = config(options);
        c.set("group.id", commit_group(prefix))
            .set("isolation.level", "read_committed");
        let consumer: BaseConsumer = c
            .create()
            .map_err(|e| error(options, prefix, "read the commits of", &e))?;
        let group = consumer.group_metadata().ok_or_else(|| {
            Error::internal(format!("no group metadata for {}", commit_group(prefix)))
        })?;
        Ok(Transactions {
            options: options.clone(),
            prefix: prefix.to_string(),
            idle,
            open: None,
            precommitted: VecDeque::new(),
            consumer: Arc::new(consumer),
            group: Arc::new(group),
        })
    }

    /// The newest checkpoint whose transaction is committed (0: none).
    pub(super) async fn committed(&self) -> Result<CheckpointId> {
        let consumer = Arc::clone(&self.consumer);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.options.topic, 0);
        let o = self.options.clone();
        let prefix = self.prefix.clone();
        blocking("commit record", move || {
            let got = consumer
                .committed_offsets(tpl, REQUEST_TIMEOUT)
                .map_err(|e| error(&o, &prefix, "read the commits of", &e))?;
            let offset = got
                .find_partition(&o.topic, 0)
                .map(|e| e.offset())
                .unwrap_or(Offset::Invalid);
            Ok(match offset {
                Offset::Offset(n) if n > 0 => n as CheckpointId,
                _ => 0,
            })
        })
        .await
    }

    /// The producer of the open transaction (begun if there is none).
    pub(super) async fn writer(&mut self) -> Result<FutureProducer> {
        if let Some(p) = &self.open {
            return Ok(p.clone());
        }
        let Some(p) = self.idle.pop() else {
            return Err(Error::Checkpoint(format!(
                "table {}: {} Kafka transactions wait for their checkpoints to complete \
                 (checkpoints are failing; see 'execution.checkpointing.timeout')",
                self.options.table,
                SLOTS - 1
            )));
        };
        let (o, prefix, q) = (self.options.clone(), self.prefix.clone(), p.clone());
        blocking("transaction", move || {
            q.begin_transaction()
                .map_err(|e| error(&o, &prefix, "begin a transaction of", &e))
        })
        .await?;
        self.open = Some(p.clone());
        Ok(p)
    }

    /// The producer of the open transaction, if one is open.
    pub(super) fn open(&self) -> Option<FutureProducer> {
        self.open.clone()
    }

    /// Barrier `id`: the open transaction (begun now if nothing was
    /// written) waits for checkpoint `id` to complete. Its deliveries must
    /// be awaited first.
    pub(super) async fn pre_commit(&mut self, id: CheckpointId) -> Result<()> {
        let p = self.writer().await?;
        self.open = None;
        self.precommitted.push_back((id, p));
        Ok(())
    }

    /// Checkpoint `upto` is complete: commit the transactions of it and of
    /// the checkpoints before it, each with its checkpoint's id (`last`
    /// for the [`FINAL`] one) as the commit record.
    pub(super) async fn commit(&mut self, upto: CheckpointId, last: CheckpointId) -> Result<()> {
        while self.precommitted.front().is_some_and(|(id, _)| *id <= upto) {
            let Some((id, p)) = self.precommitted.pop_front() else {
                break;
            };
            let record = if id == FINAL { last } else { id };
            self.commit_one(&p, record).await?;
            self.idle.push(p);
        }
        Ok(())
    }

    /// Record that no checkpoint's rows are committed (a fresh start), so
    /// a record of an earlier run is not taken for this one's.
    pub(super) async fn reset(&mut self) -> Result<()> {
        let p = self.writer().await?;
        self.open = None;
        self.commit_one(&p, 0).await?;
        self.idle.push(p);
        Ok(())
    }

    async fn commit_one(&self, p: &FutureProducer, record: CheckpointId) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.options.topic, 0, Offset::Offset(record as i64))
            .map_err(|e| error(&self.options, &self.prefix, "record a commit of", &e))?;
        let (o, prefix) = (self.options.clone(), self.prefix.clone());
        let (q, group) = (p.clone(), Arc::clone(&self.group));
        blocking("commit", move || {
            q.send_offsets_to_transaction(&tpl, &group, REQUEST_TIMEOUT)
                .map_err(|e| error(&o, &prefix, "record a commit of", &e))?;
            q.commit_transaction(REQUEST_TIMEOUT)
                .map_err(|e| error(&o, &prefix, "commit a transaction of", &e))
        })
        .await
    }
}

/// The consumer group whose offset records the last committed checkpoint.
pub(super) fn commit_group(prefix: &str) -> String {
    format!("{prefix}-sluice-commits")
}

fn error(o: &KafkaOptions, id: &str, what: &str, e: &KafkaError) -> Error {
    Error::external(
        "kafka",
        format!(
            "table {}: cannot {what} transactional id '{id}' on {}: {}",
            o.table,
            o.bootstrap(),
            clean(e, o)
        ),
    )
}
