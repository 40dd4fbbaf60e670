//! The Kafka source: every partition assigned by us, one watermark per
//! partition, records decoded a batch at a time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sluice_common::{Error, Result, Watermark};
use sluice_exec::checkpoint::State;
use sluice_exec::source::{ScanColumns, Source, SourceContext};

use super::client::{clean, client, kafka_error, partitions, PartitionInfo};
use super::codec::{snippet, Decoded, Record, RecordDecoder, Rejects};
use super::{Bounded, KafkaOptions, Startup};

/// Records per batch at most.
const BATCH_RECORDS: usize = 4096;
/// How long a partial batch may wait for more records.
const LINGER: Duration = Duration::from_millis(20);
/// How long consumption may fail without a single record before the query
/// fails (librdkafka keeps reconnecting meanwhile).
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// What to read.
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    /// Options.
    pub options: KafkaOptions,
    /// Makes the table's columns.
    pub scan: ScanColumns,
    /// Metadata columns (index, key, virtual).
    pub metadata: Vec<(usize, String, bool)>,
}

/// Reads a topic.
#[derive(Debug)]
pub struct KafkaSource {
    cfg: KafkaSourceConfig,
    /// A restored source's positions (see [`super::position`]).
    resume: Option<super::position::Resume>,
    /// Across workers: this worker's index and the number of workers; it
    /// reads the partitions `p` with `p mod workers == index`.
    share: Option<(usize, usize)>,
}

impl KafkaSource {
    /// A source for `cfg` (checks the formats against the columns).
    pub fn try_new(cfg: KafkaSourceConfig) -> Result<Self> {
        RecordDecoder::new(&cfg.options, Arc::clone(cfg.scan.made()), &cfg.metadata)?;
        Ok(KafkaSource {
            cfg,
            resume: None,
            share: None,
        })
    }
}

/// Progress of one partition.
pub(super) struct PartitionState {
    /// Exclusive end offset when bounded.
    pub(super) end: Option<i64>,
    /// `scan.startup.mode = 'timestamp'`: records before the first one at or
    /// after this time are skipped (brokers differ in how exactly they
    /// answer offset-for-time lookups, so the client makes sure).
    skip_before: Option<i64>,
    /// `scan.bounded.mode = 'timestamp'`: the first record at or after this
    /// time ends the partition.
    stop_at: Option<i64>,
    pub(super) next: i64,
    pub(super) watermark: Option<i64>,
    last_record: Instant,
    pub(super) done: bool,
}

#[async_trait]
impl Source for KafkaSource {
    fn name(&self) -> &'static str {
        "KafkaSource"
    }

    fn describe(&self) -> String {
        let o = &self.cfg.options;
        format!(
            "KafkaSource: {} topic={} startup={:?} bounded={:?}",
            o.table, o.topic, o.startup, o.bounded
        )
    }

    fn output_schema(&self) -> SchemaRef {
        self.cfg.scan.emitted()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let options = self.cfg.options.clone();
        let mut starts = tokio::task::spawn_blocking(move || start_positions(&options))
            .await
            .map_err(|e| Error::internal(format!("Kafka metadata task failed: {e}")))??;
        if let Some((index, workers)) = self.share {
            starts.retain(|(p, _, _)| p.id as usize % workers == index);
            if starts.is_empty() {
                // More workers than partitions: this one has none.
                ctx.finish().await;
                return Ok(());
            }
        }
        self.consume(starts, ctx).await
    }

    fn share(&mut self, worker: usize, workers: usize) -> bool {
        self.share = Some((worker, workers));
        true
    }

    fn checkpoints(&self) -> bool {
        true
    }

    fn restore(&mut self, state: &State) -> Result<()> {
        self.resume = Some(super::position::read(state)?);
        Ok(())
    }
}

/// Where each partition starts and (when bounded) ends. Blocking.
fn start_positions(o: &KafkaOptions) -> Result<Vec<(PartitionInfo, i64, Option<i64>)>> {
    let consumer: BaseConsumer = client(o)?;
    let parts = partitions(&consumer, o)?;
    let by_time = |ts: i64| -> Result<BTreeMap<i32, i64>> {
        let mut tpl = TopicPartitionList::new();
        for p in &parts {
            tpl.add_partition_offset(&o.topic, p.id, Offset::Offset(ts))
                .map_err(|e| Error::external("kafka", clean(&e, o)))?;
        }
        let found = consumer
            .offsets_for_times(tpl, Duration::from_secs(10))
            .map_err(|e| {
                Error::external(
                    "kafka",
                    format!("table {}: offsets for time {ts}: {}", o.table, clean(&e, o)),
                )
            })?;
        Ok(found
            .elements()
            .iter()
            .map(|e| {
                let high = parts
                    .iter()
                    .find(|p| p.id == e.partition())
                    .map_or(0, |p| p.high);
                let off = match e.offset() {
                    Offset::Offset(n) => n,
                    _ => high,
                };
                (e.partition(), off)
            })
            .collect())
    };
    let starts: BTreeMap<i32, i64> = match &o.startup {
        Startup::Earliest => parts.iter().map(|p| (p.id, p.low)).collect(),
        Startup::Latest => parts.iter().map(|p| (p.id, p.high)).collect(),
        Startup::Timestamp(ts) => by_time(*ts)?,
        Startup::Specific(m) => parts
            .iter()
            .map(|p| (p.id, *m.get(&p.id).unwrap_or(&p.low)))
            .collect(),
    };
    let ends: BTreeMap<i32, i64> = match &o.bounded {
        Bounded::Unbounded => BTreeMap::new(),
        Bounded::Latest => parts.iter().map(|p| (p.id, p.high)).collect(),
        // The end is found record by record (see PartitionState::stop_at).
        Bounded::Timestamp(_) => parts.iter().map(|p| (p.id, p.high)).collect(),
        Bounded::Specific(m) => parts
            .iter()
            .map(|p| (p.id, *m.get(&p.id).unwrap_or(&p.high)))
            .collect(),
    };
    Ok(parts
        .into_iter()
        .map(|p| {
            let start = starts.get(&p.id).copied().unwrap_or(p.low);
            let end = ends.get(&p.id).copied();
            (p, start, end)
        })
        .collect())
}

/// A transaction ends with a control record the consumer never hands out,
/// so a bounded partition's last offsets may never arrive: one whose
/// consumer position (which passes them) reached its end is done.
fn passed_control_records(consumer: &StreamConsumer, state: &mut BTreeMap<i32, PartitionState>) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    for e in positions.elements() {
        let (Some(s), Offset::Offset(at)) = (state.get_mut(&e.partition()), e.offset()) else {
            continue;
        };
        if !s.done && s.end.is_some_and(|end| at >= end) {
            s.next = s.next.max(at);
            s.done = true;
        }
    }
}

impl KafkaSource {
    async fn consume(
        self,
        starts: Vec<(PartitionInfo, i64, Option<i64>)>,
        ctx: SourceContext,
    ) -> Result<()> {
        let o = &self.cfg.options;
        let bounded = o.is_bounded();
        let now = Instant::now();
        let mut state: BTreeMap<i32, PartitionState> = BTreeMap::new();
        let mut tpl = TopicPartitionList::new();
        for (p, start, end) in &starts {
            let done = end.is_some_and(|e| *start >= e);
            let skip_before = match o.startup {
                Startup::Timestamp(t) => Some(t),
                _ => None,
            };
            let stop_at = match o.bounded {
                Bounded::Timestamp(t) => Some(t),
                _ => None,
            };
            let mut s = PartitionState {
                end: *end,
                skip_before,
                stop_at,
                next: *start,
                watermark: None,
                last_record: now,
                done,
            };
            // Resumed: where the checkpoint left it (a partition added
            // since starts by the startup mode).
            if let Some(r) = self.resume.as_ref().and_then(|r| r.partitions.get(&p.id)) {
                (s.next, s.end, s.watermark, s.done) = (r.next, r.end, r.watermark, r.done);
                s.skip_before = None;
            }
            if !s.done {
                tpl.add_partition_offset(&o.topic, p.id, Offset::Offset(s.next))
                    .map_err(|e| Error::external("kafka", clean(&e, o)))?;
            }
            state.insert(p.id, s);
        }
        if let Some(r) = &self.resume {
            ctx.resume_watermark(Watermark(r.watermark));
        }
        let decoder = RecordDecoder::new(o, Arc::clone(self.cfg.scan.made()), &self.cfg.metadata)?;
        let dead_letters = match &o.dead_letter_topic {
            Some(_) => Some(client::<FutureProducer>(o)?),
            None => None,
        };
        let consumer: StreamConsumer = client(o)?;
        if tpl.count() > 0 {
            consumer.assign(&tpl).map_err(|e| kafka_error(&e, o))?;
        }
        // One stream for the whole read (each `recv` makes one, with a
        // waker slot of its own).
        let mut stream = consumer.stream();
        let positions: Positions = Arc::new(Mutex::new(
            state.iter().map(|(p, s)| (*p, s.next)).collect(),
        ));
        let _lag = LagMonitor::start(o.clone(), Arc::clone(&positions), ctx.clone());
        let mut failing_since: Option<(Instant, String)> = None;
        // Told downstream this source is idle (and sent nothing since).
        let mut idle_sent = false;
        loop {
            if let Some(id) = ctx.barrier_due() {
                let position = super::position::write(&state, ctx.watermark());
                if !ctx.send_barrier(id, position).await {
                    return Ok(());
                }
            }
            if state.values().all(|s| s.done) {
                break;
            }
            // A quiet topic sends nothing, so ask whether anyone still
            // listens (a satisfied LIMIT, a cancelled query).
            if !ctx.is_open() {
                return Ok(());
            }
            let mut records: Vec<Record> = Vec::new();
            let round = Instant::now();
            let deadline = tokio::time::Instant::from_std(round) + Duration::from_millis(100);
            let mut linger_end = deadline;
            while records.len() < BATCH_RECORDS {
                // A message already fetched is taken without a timer (one
                // per message cost a tenth of the source's CPU).
                let msg = match stream.next().now_or_never() {
                    Some(Some(m)) => m,
                    _ => match tokio::time::timeout_at(linger_end, stream.next()).await {
                        Ok(Some(m)) => m,
                        _ => break,
                    },
                };
                match msg {
                    Ok(m) => {
                        failing_since = None;
                        if records.is_empty() {
                            linger_end = tokio::time::Instant::now() + LINGER;
                        }
                        let Some(s) = state.get_mut(&m.partition()) else {
                            continue;
                        };
                        if s.done || s.end.is_some_and(|e| m.offset() >= e) {
                            continue;
                        }
                        s.next = m.offset() + 1;
                        s.last_record = round;
                        if s.end.is_some_and(|e| s.next >= e) {
                            s.done = true;
                        }
                        let ts = m.timestamp().to_millis();
                        if let Some(t) = s.skip_before {
                            if ts.is_some_and(|ts| ts < t) {
                                continue;
                            }
                            s.skip_before = None;
                        }
                        if s.stop_at.is_some_and(|t| ts.is_some_and(|ts| ts >= t)) {
                            s.done = true;
                            continue;
                        }
                        records.push(Record {
                            partition: m.partition(),
                            offset: m.offset(),
                            timestamp: m.timestamp().to_millis(),
                            key: m.key().map(<[u8]>::to_vec),
                            value: m.payload().map(<[u8]>::to_vec),
                        });
                        if state.values().all(|s| s.done) {
                            break;
                        }
                    }
                    Err(e) => {
                        let text = clean(&e, o);
                        let since =
                            failing_since.get_or_insert_with(|| (Instant::now(), text.clone()));
                        if since.0.elapsed() > GIVE_UP_AFTER {
                            return Err(Error::Io {
                                context: format!(
                                    "table {}: no records from Kafka at {} for {}s",
                                    o.table,
                                    o.bootstrap(),
                                    GIVE_UP_AFTER.as_secs()
                                ),
                                source: std::io::Error::other(text),
                            });
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                }
            }
            if records.is_empty() && bounded {
                passed_control_records(&consumer, &mut state);
            }
            if let Ok(mut pos) = positions.lock() {
                for (p, s) in &state {
                    pos.insert(*p, s.next);
                }
            }
            // Decode per partition so each partition's watermark is its own.
            let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
            for r in records {
                by_partition.entry(r.partition).or_default().push(r);
            }
            for (p, recs) in by_partition {
                let Decoded {
                    batch,
                    rejects,
                    nulled,
                } = decoder.decode(recs)?;
                ctx.add_nulled_records(nulled);
                self.handle_rejects(rejects, dead_letters.as_ref(), &ctx)
                    .await?;
                if batch.num_rows() == 0 {
                    continue;
                }
                let (out, wm) = self.cfg.scan.split(batch)?;
                if let (Some(wm), Some(s)) = (wm, state.get_mut(&p)) {
                    s.watermark = Some(s.watermark.map_or(wm, |old| old.max(wm)));
                }
                if !ctx.send_batch(out).await? {
                    return Ok(());
                }
            }
            if self.cfg.scan.has_watermark() {
                if let Some(wm) = combined_watermark(&state, o.idle_timeout) {
                    if !ctx.advance_watermark(Watermark(wm)).await {
                        return Ok(());
                    }
                }
                // Every partition idle: so is the table, and whatever
                // combines its time with other inputs' goes on without it.
                let idle = all_idle(&state, o.idle_timeout);
                if idle && !idle_sent && !ctx.send_idle().await {
                    return Ok(());
                }
                idle_sent = idle;
            }
        }
        if bounded {
            ctx.finish().await;
        }
        Ok(())
    }

    /// Malformed records: to the dead-letter topic, skipped and counted, or
    /// the query fails naming topic, partition and offset.
    async fn handle_rejects(
        &self,
        rejects: Rejects,
        dlq: Option<&FutureProducer>,
        ctx: &SourceContext,
    ) -> Result<()> {
        let o = &self.cfg.options;
        let Some((first, reason)) = rejects.first() else {
            return Ok(());
        };
        if let (Some(producer), Some(topic)) = (dlq, &o.dead_letter_topic) {
            for (r, reason) in &rejects {
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "sluice.source.topic",
                        value: Some(o.topic.as_str()),
                    })
                    .insert(Header {
                        key: "sluice.source.partition",
                        value: Some(&r.partition.to_string()),
                    })
                    .insert(Header {
                        key: "sluice.source.offset",
                        value: Some(&r.offset.to_string()),
                    })
                    .insert(Header {
                        key: "sluice.error",
                        value: Some(reason.as_str()),
                    });
                let mut rec = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
                if let Some(k) = &r.key {
                    rec = rec.key(k.as_slice());
                }
                if let Some(v) = &r.value {
                    rec = rec.payload(v.as_slice());
                }
                producer
                    .send(rec, Duration::from_secs(30))
                    .await
                    .map_err(|(e, _)| {
                        Error::BadRecord(format!(
                            "{}/{}/{}: cannot send to the dead-letter topic {topic}: {}",
                            o.topic,
                            r.partition,
                            r.offset,
                            clean(&e, o)
                        ))
                    })?;
            }
            ctx.add_bad_records(rejects.len() as u64);
            return Ok(());
        }
        if o.ignore_parse_errors {
            ctx.add_bad_records(rejects.len() as u64);
            return Ok(());
        }
        Err(Error::BadRecord(format!(
            "topic {} partition {} offset {}: {reason} (record: {})",
            o.topic,
            first.partition,
            first.offset,
            snippet(first.value.as_deref().unwrap_or(b""))
        )))
    }
}

/// The next offset to read, per partition.
type Positions = Arc<Mutex<BTreeMap<i32, i64>>>;

/// Reports how far behind the end of each partition the source is (for
/// the shell's status line), from a blocking thread, about once a second,
/// until dropped.
struct LagMonitor {
    stop: Arc<AtomicBool>,
}

impl LagMonitor {
    fn start(options: KafkaOptions, positions: Positions, ctx: SourceContext) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || {
            let Ok(consumer) = client::<BaseConsumer>(&options) else {
                return;
            };
            while !flag.load(Ordering::Relaxed) && ctx.is_open() {
                let next: Vec<(i32, i64)> = match positions.lock() {
                    Ok(p) => p.iter().map(|(k, v)| (*k, *v)).collect(),
                    Err(_) => return,
                };
                let lag = next
                    .into_iter()
                    .filter_map(|(p, n)| {
                        let (_, high) = consumer
                            .fetch_watermarks(&options.topic, p, Duration::from_secs(1))
                            .ok()?;
                        Some((p, (high - n).max(0)))
                    })
                    .collect();
                ctx.set_partition_lag(lag);
                for _ in 0..10 {
                    if flag.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        LagMonitor { stop }
    }
}

impl Drop for LagMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether partition `s` has had no record for the idle timeout.
fn is_idle(s: &PartitionState, idle: Option<Duration>) -> bool {
    idle.is_some_and(|t| s.last_record.elapsed() >= t)
}

/// Whether every partition still running has been idle for the timeout.
fn all_idle(state: &BTreeMap<i32, PartitionState>, idle: Option<Duration>) -> bool {
    let mut running = state.values().filter(|s| !s.done).peekable();
    running.peek().is_some() && running.all(|s| is_idle(s, idle))
}

/// The minimum over partitions still running and not idle (`None` while
/// one of them has no watermark yet). When every running partition is idle,
/// the minimum over those that have seen records: no record is coming now,
/// and each partition's watermark already promises its own future records.
fn combined_watermark(
    state: &BTreeMap<i32, PartitionState>,
    idle: Option<Duration>,
) -> Option<i64> {
    let running: Vec<&PartitionState> = state.values().filter(|s| !s.done).collect();
    let active: Vec<&&PartitionState> = running.iter().filter(|s| !is_idle(s, idle)).collect();
    if active.is_empty() {
        return running.iter().filter_map(|s| s.watermark).min();
    }
    let mut min: Option<i64> = None;
    for s in active {
        let w = s.watermark?;
        min = Some(min.map_or(w, |m| m.min(w)));
    }
    min
}
