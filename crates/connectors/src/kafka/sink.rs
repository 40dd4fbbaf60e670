//! The Kafka sink: at-least-once. Every record's delivery is awaited before
//! the run ends, and in a checkpointing job before each checkpoint
//! completes (so a restored job loses nothing; rows after the checkpoint
//! may be written twice, Flink's `at-least-once`); a failed delivery fails
//! the job with the reason.

use std::collections::VecDeque;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use sluice_common::{Error, Result};
use sluice_exec::checkpoint::{CheckpointId, State};
use sluice_exec::sink::Sink;

use super::client::{clean, client, describe_topic};
use super::encode::RecordEncoder;
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
        })
    }

    /// Connect on first use: check the topic exists (with retries), learn
    /// its partitions.
    async fn producer(&mut self) -> Result<&FutureProducer> {
        if self.producer.is_none() {
            let o = self.options.clone();
            let parts = tokio::task::spawn_blocking(move || describe_topic(&o))
                .await
                .map_err(|e| Error::internal(format!("Kafka metadata task failed: {e}")))??;
            self.partitions = parts.iter().map(|p| p.id).collect();
            let producer: FutureProducer = client(&self.options)?;
            self.producer = Some(producer);
        }
        self.producer
            .as_ref()
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
        self.producer().await?;
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
                let producer = self
                    .producer
                    .as_ref()
                    .ok_or_else(|| Error::internal("Kafka producer missing"))?;
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

    async fn start_checkpoints(&mut self, _job: &str, _restored: Option<&State>) -> Result<()> {
        Ok(())
    }

    /// Every record before the barrier is delivered before the checkpoint
    /// can complete.
    async fn pre_commit(&mut self, _id: CheckpointId) -> Result<State> {
        self.flush().await?;
        Ok(State::new())
    }
}

impl KafkaSink {
    /// Wait until every record sent is delivered.
    async fn flush(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.await_oldest().await?;
        }
        if let Some(p) = &self.producer {
            let p = p.clone();
            tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(60)))
                .await
                .map_err(|e| Error::internal(format!("Kafka flush task failed: {e}")))?
                .map_err(|e| self.delivery_error(&e))?;
        }
        Ok(())
    }
}
