//! The Kafka sink. At-least-once (the default): every record's delivery is
//! awaited before the run ends, and in a checkpointing job before each
//! checkpoint completes (so a restored job loses nothing; rows after the
//! checkpoint may be written twice, Flink's `at-least-once`); a failed
//! delivery fails the job with the reason. Exactly-once: one Kafka
//! transaction per checkpoint ([`super::transactions`]).

use std::collections::VecDeque;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use sluice_common::{Error, Result};
use sluice_exec::checkpoint::{CheckpointId, State};
use sluice_exec::sink::{Resume, Sink, FINAL};

use super::client::{clean, client, describe_topic};
use super::encode::RecordEncoder;
use super::transactions::{Transactions, DEFAULT_TIMEOUT_MS};
use super::{KafkaOptions, Partitioner};

/// Deliveries in flight before the sink waits for the oldest.
const MAX_IN_FLIGHT: usize = 50_000;

/// Writes rows to a topic.
pub struct KafkaSink {
    options: KafkaOptions,
    encoder: RecordEncoder,
    producer: Option<FutureProducer>,
    partitions: Vec<i32>,
    next_partition: usize,
    in_flight: VecDeque<DeliveryFuture>,
    /// Exactly-once: the transactions (once the job's checkpoints start).
    transactions: Option<Transactions>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KafkaSink({})", self.options.topic)
    }
}

impl KafkaSink {
    /// A sink for a table with `schema` and metadata columns `meta`.
    pub fn try_new(
        options: KafkaOptions,
        schema: &SchemaRef,
        meta: &[(usize, String, bool)],
    ) -> Result<Self> {
        let encoder = RecordEncoder::new(&options, schema, meta)?;
        Ok(KafkaSink {
            options,
            encoder,
            producer: None,
            partitions: vec![],
            next_partition: 0,
            in_flight: VecDeque::new(),
            transactions: None,
        })
    }

    /// Learn the topic's partitions on first use (checking it exists,
    /// with retries).
    async fn partitions(&mut self) -> Result<()> {
        if self.partitions.is_empty() {
            let o = self.options.clone();
            let parts = tokio::task::spawn_blocking(move || describe_topic(&o))
                .await
                .map_err(|e| Error::internal(format!("Kafka metadata task failed: {e}")))??;
            self.partitions = parts.iter().map(|p| p.id).collect();
        }
        Ok(())
    }

    /// The producer to write with: the open transaction's when exactly
    /// once, else one made on first use.
    async fn producer(&mut self) -> Result<FutureProducer> {
        self.partitions().await?;
        if self.options.exactly_once.is_some() {
            let Some(t) = self.transactions.as_mut() else {
                return Err(Error::plan(format!(
                    "table {}: 'sink.delivery-guarantee' = 'exactly-once' commits one Kafka \
                     transaction per checkpoint: set 'execution.checkpointing.interval' and \
                     'state.checkpoints.dir'",
                    self.options.table
                )));
            };
            return t.writer().await;
        }
        if self.producer.is_none() {
            self.producer = Some(client(&self.options)?);
        }
        self.producer
            .clone()
            .ok_or_else(|| Error::internal("Kafka producer missing"))
    }

    async fn await_oldest(&mut self) -> Result<()> {
        if let Some(f) = self.in_flight.pop_front() {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(self.delivery_error(&e)),
                Err(_) => return Err(Error::internal("Kafka delivery was cancelled")),
            }
        }
        Ok(())
    }

    fn delivery_error(&self, e: &KafkaError) -> Error {
        Error::Io {
            context: format!(
                "table {}: delivery to topic {} failed",
                self.options.table, self.options.topic
            ),
            source: std::io::Error::other(clean(e, &self.options)),
        }
    }
}

#[async_trait]
impl Sink for KafkaSink {
    fn name(&self) -> &'static str {
        "KafkaSink"
    }

    fn describe(&self) -> String {
        format!(
            "KafkaSink: {} topic={}",
            self.options.table, self.options.topic
        )
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let records = self.encoder.encode(&batch)?;
        if records.is_empty() {
            return Ok(());
        }
        let producer = self.producer().await?;
        for r in records {
            let partition = match self.options.partitioner {
                Partitioner::Default => None,
                Partitioner::Fixed => self.partitions.first().copied(),
                Partitioner::RoundRobin => {
                    let p = self.partitions[self.next_partition % self.partitions.len().max(1)];
                    self.next_partition += 1;
                    Some(p)
                }
            };
            loop {
                let mut rec = FutureRecord::<[u8], [u8]>::to(&self.options.topic);
                if let Some(v) = &r.value {
                    rec = rec.payload(v.as_slice());
                }
                if let Some(k) = &r.key {
                    rec = rec.key(k.as_slice());
                }
                if let Some(p) = partition {
                    rec = rec.partition(p);
                }
                if let Some(ts) = r.timestamp {
                    rec = rec.timestamp(ts);
                }
                match producer.send_result(rec) {
                    Ok(f) => {
                        self.in_flight.push_back(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // librdkafka's queue is full: wait for a delivery.
                        if self.in_flight.is_empty() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        } else {
                            self.await_oldest().await?;
                        }
                    }
                    Err((e, _)) => return Err(self.delivery_error(&e)),
                }
            }
            while self.in_flight.len() > MAX_IN_FLIGHT {
                self.await_oldest().await?;
            }
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        self.flush().await
    }

    fn checkpoints(&self) -> bool {
        true
    }

    fn needs_checkpoints(&self) -> bool {
        self.options.exactly_once.is_some()
    }

    /// Exactly-once: the transaction timeout must outlast a checkpoint
    /// interval; fence what an earlier run left open and say which
    /// checkpoint's rows are the last committed.
    async fn prepare_checkpoints(
        &mut self,
        _job: &str,
        interval: Option<Duration>,
    ) -> Result<Resume> {
        let Some(prefix) = self.options.exactly_once.clone() else {
            return Ok(Resume::Any);
        };
        let timeout = self.transaction_timeout()?;
        if let Some(interval) = interval.filter(|i| *i >= timeout) {
            return Err(Error::plan(format!(
                "table {}: 'properties.transaction.timeout.ms' ({} ms) must be longer than \
                 'execution.checkpointing.interval' ({} ms): a transaction stays open from one \
                 checkpoint until the next completes",
                self.options.table,
                timeout.as_millis(),
                interval.as_millis()
            )));
        }
        let t = Transactions::fence(&self.options, &prefix, timeout).await?;
        let committed = t.committed().await?;
        self.transactions = Some(t);
        Ok(Resume::From(committed))
    }

    async fn start_checkpoints(&mut self, _job: &str, restored: Option<&State>) -> Result<()> {
        match (&mut self.transactions, restored) {
            // A fresh start: no earlier run's commit record counts.
            (Some(t), None) => t.reset().await,
            _ => Ok(()),
        }
    }

    /// Every record before the barrier is delivered before the checkpoint
    /// can complete (exactly-once: in the checkpoint's transaction).
    async fn pre_commit(&mut self, id: CheckpointId) -> Result<State> {
        self.flush().await?;
        if let Some(t) = &mut self.transactions {
            t.pre_commit(id).await?;
        }
        Ok(State::new())
    }

    async fn commit(&mut self, id: CheckpointId) -> Result<()> {
        match &mut self.transactions {
            Some(t) => t.commit(id, id).await,
            None => Ok(()),
        }
    }

    async fn commit_final(&mut self, id: CheckpointId) -> Result<()> {
        match &mut self.transactions {
            Some(t) => t.commit(FINAL, id).await,
            None => Ok(()),
        }
    }
}

impl KafkaSink {
    /// Wait until every record sent is delivered.
    async fn flush(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.await_oldest().await?;
        }
        let open = self.transactions.as_ref().and_then(Transactions::open);
        if let Some(p) = open.or_else(|| self.producer.clone()) {
            tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(60)))
                .await
                .map_err(|e| Error::internal(format!("Kafka flush task failed: {e}")))?
                .map_err(|e| self.delivery_error(&e))?;
        }
        Ok(())
    }

    /// `transaction.timeout.ms`: the table's, else the default.
    fn transaction_timeout(&self) -> Result<Duration> {
        let set = self
            .options
            .properties
            .iter()
            .find(|(k, _)| k == "transaction.timeout.ms");
        let ms = match set {
            Some((_, v)) => v.trim().parse::<u64>().map_err(|_| {
                Error::plan(format!(
                    "table {}: 'properties.transaction.timeout.ms' must be a number of \
                     milliseconds, not '{v}'",
                    self.options.table
                ))
            })?,
            None => DEFAULT_TIMEOUT_MS,
        };
        Ok(Duration::from_millis(ms))
    }
}
