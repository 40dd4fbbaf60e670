//! Several Sluice processes running one query, with Kafka between them
//! (the transport of [`sluice_exec::workers`]).
//!
//! Every edge that crosses workers has a repartition topic,
//! `<pipeline.name>-<node id>-repartition` (`-<input>` added for inputs
//! after the first of a node with several), with one partition per
//! worker: partition `w` holds what worker `w` reads. Writers append rows
//! to the partition of the worker owning them and every watermark, idle
//! mark and end of stream to every partition ([`wire`]); a reader reads
//! its partition from where it stood when the run began and skips records
//! of other runs. The workers meet through the control topic
//! ([`rendezvous`]) before any of them writes, and share their statuses
//! through the status topic ([`status`]). The job creates the topics it
//! needs.

mod edge;
mod rendezvous;
mod status;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::FromClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use sluice_common::{Error, Result};
use sluice_exec::source::Source;
use sluice_exec::workers::{Crossing, EdgeWriter, WorkerStatus, Workers};

/// Who this worker is and where its job's topics live.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `pipeline.name`: names the job's topics.
    pub pipeline: String,
    /// This worker's index, below `count`.
    pub index: usize,
    /// Workers of the job.
    pub count: usize,
    /// Kafka's `bootstrap.servers`.
    pub bootstrap: String,
    /// How long to wait for the other workers to start.
    pub start_timeout: Duration,
}

impl WorkerConfig {
    fn control_topic(&self) -> String {
        format!("{}-workers", self.pipeline)
    }

    fn status_topic(&self) -> String {
        format!("{}-status", self.pipeline)
    }

    /// The repartition topic of `edge`.
    fn topic(&self, edge: &Crossing) -> String {
        sluice_exec::workers::topic_name(&self.pipeline, edge.node, edge.input)
    }

    fn consumer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("group.id", format!("sluice-{}-workers", self.pipeline))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.queue.backoff.ms", "10")
            // Rows wait in the topic only as long as a fetch may wait for
            // more (librdkafka's default, 500 ms, delayed every hop).
            .set("fetch.wait.max.ms", "10")
            .set("log_level", "3");
        c
    }

    fn producer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            // A watermark must follow the rows it covers: one request in
            // flight keeps each partition's records in send order.
            .set("max.in.flight.requests.per.connection", "1")
            .set("linger.ms", "5")
            .set("log_level", "3");
        c
    }

    /// A consumer of partition `partition` of `topic` from `start` on.
    fn reading(
        &self,
        topic: &str,
        partition: usize,
        start: i64,
    ) -> Result<rdkafka::consumer::StreamConsumer> {
        use rdkafka::{Offset, TopicPartitionList};
        let consumer: rdkafka::consumer::StreamConsumer = self.client()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition as i32, Offset::Offset(start))
            .and_then(|()| consumer.assign(&tpl))
            .map_err(|e| self.error(&format!("reading {topic}/{partition}"), &e))?;
        Ok(consumer)
    }

    fn client<C: FromClientConfig>(&self) -> Result<C> {
        self.consumer_config()
            .create()
            .map_err(|e| self.error("client", &e))
    }

    fn error(&self, what: &str, e: &KafkaError) -> Error {
        Error::external(
            "kafka",
            format!(
                "job '{}' (worker {} of {}, Kafka at {}): {what}: {e}",
                self.pipeline, self.index, self.count, self.bootstrap
            ),
        )
    }
}

/// The workers of a running job, joined through Kafka.
pub struct KafkaWorkers {
    cfg: WorkerConfig,
    run: u64,
    /// Where this worker's partition of each repartition topic began.
    starts: Vec<(String, i64)>,
    producer: FutureProducer,
    /// Every worker's latest status, kept by `follower`.
    statuses: status::Latest,
    follower: tokio::task::AbortHandle,
    /// Watches the control topic for a worker starting again.
    watcher: tokio::task::AbortHandle,
    restarted: tokio::sync::watch::Receiver<Option<usize>>,
}

impl Drop for KafkaWorkers {
    fn drop(&mut self) {
        self.follower.abort();
        self.watcher.abort();
    }
}

impl std::fmt::Debug for KafkaWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KafkaWorkers({} worker {} of {})",
            self.cfg.pipeline, self.cfg.index, self.cfg.count
        )
    }
}

impl KafkaWorkers {
    /// Create the job's topics (for the edges `crossings`), note where this
    /// worker's partitions end, and meet the other workers; `plan` is the
    /// fingerprint every worker's plan must have.
    pub async fn join(cfg: WorkerConfig, crossings: &[Crossing], plan: String) -> Result<Self> {
        let mut topics: Vec<(String, i32)> =
            vec![(cfg.control_topic(), 1), (cfg.status_topic(), 1)];
        for c in crossings {
            topics.push((cfg.topic(c), cfg.count as i32));
        }
        create_topics(&cfg, &topics).await?;
        let c = cfg.clone();
        let edges: Vec<String> = crossings.iter().map(|e| cfg.topic(e)).collect();
        let (run, nonces, starts, status_start, control_end) =
            tokio::task::spawn_blocking(move || -> Result<_> {
                let consumer: BaseConsumer = c.client()?;
                let status = c.status_topic();
                let (_, status_start) = consumer
                    .fetch_watermarks(&status, 0, Duration::from_secs(10))
                    .map_err(|e| c.error(&format!("cannot read the end of {status}"), &e))?;
                let mut starts = Vec::with_capacity(edges.len());
                for t in edges {
                    let (_, end) = consumer
                        .fetch_watermarks(&t, c.index as i32, Duration::from_secs(10))
                        .map_err(|e| {
                            c.error(&format!("cannot read the end of {t}/{}", c.index), &e)
                        })?;
                    starts.push((t, end));
                }
                let (run, nonces) = rendezvous::rendezvous(&c, &plan, rendezvous::nonce())?;
                let control = c.control_topic();
                let (_, control_end) = consumer
                    .fetch_watermarks(&control, 0, Duration::from_secs(10))
                    .map_err(|e| c.error(&format!("cannot read the end of {control}"), &e))?;
                Ok((run, nonces, starts, status_start, control_end))
            })
            .await
            .map_err(|e| Error::internal(format!("worker rendezvous task failed: {e}")))??;
        let producer = cfg
            .producer_config()
            .create()
            .map_err(|e| cfg.error("producer", &e))?;
        let statuses = status::Latest::default();
        let follower = tokio::spawn(status::follow(
            cfg.clone(),
            status_start,
            run,
            Arc::clone(&statuses),
        ))
        .abort_handle();
        let (restarted_tx, restarted) = tokio::sync::watch::channel(None);
        let watcher = tokio::spawn(rendezvous::watch_restarts(
            cfg.clone(),
            control_end,
            nonces,
            restarted_tx,
        ))
        .abort_handle();
        Ok(KafkaWorkers {
            cfg,
            run,
            starts,
            producer,
            statuses,
            follower,
            watcher,
            restarted,
        })
    }
}

impl Workers for KafkaWorkers {
    fn index(&self) -> usize {
        self.cfg.index
    }

    fn count(&self) -> usize {
        self.cfg.count
    }

    fn writer(&self, edge: &Crossing) -> Result<Box<dyn EdgeWriter>> {
        Ok(Box::new(edge::Writer::new(
            self.cfg.clone(),
            self.cfg.topic(edge),
            self.run,
            edge.route.clone(),
            self.producer.clone(),
        )))
    }

    fn reader(&self, edge: &Crossing) -> Result<Box<dyn Source>> {
        let topic = self.cfg.topic(edge);
        let start = self
            .starts
            .iter()
            .find(|(t, _)| *t == topic)
            .map(|(_, s)| *s)
            .ok_or_else(|| Error::internal(format!("no start offset for {topic}")))?;
        Ok(Box::new(edge::Reader::new(
            self.cfg.clone(),
            topic,
            start,
            self.run,
            Arc::clone(&edge.schema),
        )))
    }

    fn describe(&self, edge: &Crossing) -> String {
        format!("across workers through topic {}", self.cfg.topic(edge))
    }

    fn publish(&self, s: &WorkerStatus) {
        status::publish(&self.producer, &self.cfg.status_topic(), self.run, s);
    }

    fn statuses(&self) -> Vec<WorkerStatus> {
        status::read(&self.statuses)
    }

    fn restarted(&self) -> tokio::sync::watch::Receiver<Option<usize>> {
        self.restarted.clone()
    }
}

/// Create `topics` (name, partitions) unless they exist; an existing one
/// needs at least as many partitions.
async fn create_topics(cfg: &WorkerConfig, topics: &[(String, i32)]) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> = cfg
        .consumer_config()
        .create()
        .map_err(|e| cfg.error("admin client", &e))?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, n)| NewTopic::new(t, *n, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| cfg.error("creating the job's topics", &e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::external(
                    "kafka",
                    format!("job '{}': cannot create topic {name}: {code}", cfg.pipeline),
                ))
            }
        }
    }
    let c = cfg.clone();
    let wanted = topics.to_vec();
    tokio::task::spawn_blocking(move || check_partitions(&c, &wanted))
        .await
        .map_err(|e| Error::internal(format!("Kafka metadata task failed: {e}")))?
}

/// Every topic exists with enough partitions (waiting a little for a
/// topic just created to show in the metadata).
fn check_partitions(cfg: &WorkerConfig, topics: &[(String, i32)]) -> Result<()> {
    let consumer: BaseConsumer = cfg.client()?;
    for (t, n) in topics {
        let mut tries = 0;
        loop {
            let md = consumer
                .fetch_metadata(Some(t), Duration::from_secs(10))
                .map_err(|e| cfg.error(&format!("metadata of {t}"), &e))?;
            let have = md
                .topics()
                .iter()
                .find(|x| x.name() == t && x.error().is_none())
                .map_or(0, |x| x.partitions().len() as i32);
            if have >= *n {
                break;
            }
            tries += 1;
            if have > 0 || tries > 50 {
                return Err(Error::plan(format!(
                    "job '{}': topic {t} has {have} partition(s), the job needs {n}: delete it \
                     or choose another 'pipeline.name'",
                    cfg.pipeline
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}
