//! The two ends of an edge between workers: the writer appends a worker's
//! stream to the repartition topic, the reader reads back what every
//! writer sent this worker.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use futures::StreamExt;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sluice_common::{Error, Message, Result, Watermark};
use sluice_exec::source::{Source, SourceContext};
use sluice_exec::workers::{Alignment, EdgeWriter, WorkerRoute, WriterProgress};
use tokio::sync::mpsc::Receiver;

use super::wire::{decode, encode, run_of, Mark};
use super::WorkerConfig;

/// Records in flight before the writer waits for the oldest.
const MAX_IN_FLIGHT: usize = 1024;
/// Rows of one record at most take about this much memory (Kafka's
/// default record limit is 1 MB).
const RECORD_BYTES: usize = 512 * 1024;
/// How long reading may fail before the job fails (librdkafka reconnects
/// meanwhile).
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// Appends one worker's stream of an edge to its repartition topic.
pub(super) struct Writer {
    cfg: WorkerConfig,
    topic: String,
    run: u64,
    route: WorkerRoute,
    producer: FutureProducer,
    in_flight: VecDeque<DeliveryFuture>,
}

impl Writer {
    pub(super) fn new(
        cfg: WorkerConfig,
        topic: String,
        run: u64,
        route: WorkerRoute,
        producer: FutureProducer,
    ) -> Self {
        Writer {
            cfg,
            topic,
            run,
            route,
            producer,
            in_flight: VecDeque::new(),
        }
    }

    /// Append `mark` to worker `to`'s partition.
    async fn send(&mut self, to: usize, mark: &Mark) -> Result<()> {
        let bytes = encode(self.run, self.cfg.index, mark)?;
        loop {
            let record = FutureRecord::<(), [u8]>::to(&self.topic)
                .partition(to as i32)
                .payload(&bytes);
            match self.producer.send_result(record) {
                Ok(f) => {
                    self.in_flight.push_back(f);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if self.in_flight.is_empty() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    self.await_oldest().await?;
                }
                Err((e, _)) => {
                    return Err(self.cfg.error(&format!("writing to {}", self.topic), &e))
                }
            }
        }
        if self.in_flight.len() > MAX_IN_FLIGHT {
            self.await_oldest().await?;
        }
        Ok(())
    }

    /// Append `mark` to every worker's partition.
    async fn broadcast(&mut self, mark: &Mark) -> Result<()> {
        for w in 0..self.cfg.count {
            self.send(w, mark).await?;
        }
        Ok(())
    }

    async fn await_oldest(&mut self) -> Result<()> {
        let Some(f) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match f.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(self.cfg.error(&format!("delivery to {}", self.topic), &e)),
            Err(_) => Err(Error::internal("Kafka delivery was cancelled")),
        }
    }

    /// Rows for worker `to`, in records of bounded size.
    async fn send_rows(&mut self, to: usize, batch: RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        let bytes = batch.get_array_memory_size().max(1);
        let per = (rows * RECORD_BYTES / bytes).clamp(1, rows.max(1));
        let mut at = 0;
        while at < rows {
            let n = per.min(rows - at);
            self.send(to, &Mark::Rows(batch.slice(at, n))).await?;
            at += n;
        }
        Ok(())
    }
}

#[async_trait]
impl EdgeWriter for Writer {
    async fn run(mut self: Box<Self>, mut input: Receiver<Message>) -> Result<()> {
        let mut sent = Watermark::MIN;
        while let Some(msg) = input.recv().await {
            match msg {
                Message::Batch(b) => {
                    for (to, part) in self.route.split(b, self.cfg.count)? {
                        self.send_rows(to, part).await?;
                    }
                }
                Message::Watermark(wm) if wm > sent => {
                    sent = wm;
                    self.broadcast(&Mark::Watermark(wm)).await?;
                }
                Message::Watermark(_) => {}
                Message::Idle => self.broadcast(&Mark::Idle).await?,
                Message::Barrier(b) => self.broadcast(&Mark::Barrier(b.checkpoint_id)).await?,
                Message::EndOfStream => {
                    self.broadcast(&Mark::End).await?;
                    while !self.in_flight.is_empty() {
                        self.await_oldest().await?;
                    }
                    return Ok(());
                }
            }
        }
        // The producers stopped without an end: the job failed or was
        // cancelled, and they report why.
        Ok(())
    }
}

/// Reads what every writer of an edge sent this worker.
pub(super) struct Reader {
    cfg: WorkerConfig,
    topic: String,
    start: i64,
    run: u64,
    schema: SchemaRef,
}

impl Reader {
    pub(super) fn new(
        cfg: WorkerConfig,
        topic: String,
        start: i64,
        run: u64,
        schema: SchemaRef,
    ) -> Self {
        Reader {
            cfg,
            topic,
            start,
            run,
            schema,
        }
    }

    /// Act on one record (held while its writer waits at a barrier, then
    /// with whatever that releases); `false` once the edge ended or
    /// nobody listens.
    async fn on_record(
        &self,
        mark: Mark,
        writer: usize,
        progress: &mut WriterProgress,
        align: &mut Alignment<Mark>,
        ctx: &SourceContext,
    ) -> Result<bool> {
        if align.is_held(writer) {
            align.hold(writer, mark);
            return Ok(true);
        }
        let mut next = Some((writer, mark));
        while let Some((w, mark)) = next {
            if !self.step(mark, w, progress, align, ctx).await? {
                return Ok(false);
            }
            next = align.next_released();
        }
        Ok(true)
    }

    /// Act on one record whose writer is not held.
    async fn step(
        &self,
        mark: Mark,
        writer: usize,
        progress: &mut WriterProgress,
        align: &mut Alignment<Mark>,
        ctx: &SourceContext,
    ) -> Result<bool> {
        match mark {
            Mark::Rows(batch) => {
                progress.rows(writer);
                return ctx.send_batch(batch).await;
            }
            Mark::Barrier(id) => {
                return Ok(match align.barrier(writer, id) {
                    Some(id) => ctx.forward_barrier(id).await,
                    None => true,
                });
            }
            Mark::Watermark(wm) => progress.watermark(writer, wm),
            Mark::Idle => progress.idle(writer),
            Mark::End => {
                progress.end(writer);
                if let Some(id) = align.end(writer) {
                    if !ctx.forward_barrier(id).await {
                        return Ok(false);
                    }
                }
            }
        }
        if progress.all_ended() {
            ctx.finish().await;
            return Ok(false);
        }
        let wm = progress.combined();
        if wm > Watermark::MIN && !ctx.advance_watermark(wm).await {
            return Ok(false);
        }
        if progress.all_idle() {
            return Ok(ctx.send_idle().await);
        }
        Ok(true)
    }
}

#[async_trait]
impl Source for Reader {
    fn name(&self) -> &'static str {
        "RepartitionReader"
    }

    fn describe(&self) -> String {
        format!("RepartitionReader: {}/{}", self.topic, self.cfg.index)
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let consumer = self.cfg.reading(&self.topic, self.cfg.index, self.start)?;
        let mut stream = consumer.stream();
        let mut progress = WriterProgress::new(self.cfg.count);
        let mut align = Alignment::new(self.cfg.count);
        let mut failing_since: Option<Instant> = None;
        loop {
            let next = match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
                Err(_) if !ctx.is_open() => return Ok(()),
                Err(_) => continue,
                Ok(None) => return Err(Error::internal("Kafka message stream ended")),
                Ok(Some(next)) => next,
            };
            let msg = match next {
                Ok(m) => m,
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > GIVE_UP_AFTER {
                        return Err(self.cfg.error(&format!("reading {}", self.topic), &e));
                    }
                    continue;
                }
            };
            failing_since = None;
            let value = msg.payload().unwrap_or_default();
            if run_of(value) != Some(self.run) {
                continue;
            }
            let offset = msg.offset();
            let what = || format!("{}/{}/{offset}", self.topic, self.cfg.index);
            let record = decode(value, &what)?;
            let (mark, w) = (record.mark, record.writer);
            if !self
                .on_record(mark, w, &mut progress, &mut align, &ctx)
                .await?
            {
                return Ok(());
            }
        }
    }
}
