//! The Nexmark source: builds whole Arrow columns for a range of events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, StringBuilder, TimestampMillisecondArray};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::Result;
use sluice_exec::checkpoint::state::{scalar, scalars};
use sluice_exec::checkpoint::State;
use sluice_exec::pipeline::{ChunkPipeline, WATERMARKS};
use sluice_exec::source::{ScanColumns, Source, SourceContext};
use sluice_exec::watermark::SplitWatermarks;

use super::generator::{self, EventRng, Kind};
use super::{NexmarkOptions, NexmarkTable};

/// What to generate.
#[derive(Debug, Clone)]
pub struct NexmarkSourceConfig {
    /// Table name.
    pub table: String,
    /// Options.
    pub options: NexmarkOptions,
    /// Makes the table's columns.
    pub scan: ScanColumns,
    /// Columns to generate (the rest are NULL): what the query and the
    /// watermark read.
    pub generate: Vec<usize>,
}

/// Generates Nexmark events.
#[derive(Debug)]
pub struct NexmarkSource {
    cfg: NexmarkSourceConfig,
    /// A restored source: the next event and the split watermarks. Events
    /// are a function of their number, so it continues the same sequence.
    resume: Option<(i64, SplitWatermarks)>,
}

impl NexmarkSource {
    /// A source for `cfg`.
    pub fn new(cfg: NexmarkSourceConfig) -> Self {
        NexmarkSource { cfg, resume: None }
    }

    /// Rows for events `[from, to)` of this table's kind.
    fn chunk(&self, from: i64, to: i64) -> Result<RecordBatch> {
        let o = &self.cfg.options;
        let want = match o.table {
            NexmarkTable::Bid => Kind::Bid,
            NexmarkTable::Auction => Kind::Auction,
            NexmarkTable::Person => Kind::Person,
        };
        let events: Vec<i64> = (from..to).filter(|n| generator::kind(*n) == want).collect();
        let names: Vec<String> = self
            .cfg
            .scan
            .made()
            .fields()
            .iter()
            .map(|f| f.name().to_ascii_lowercase())
            .collect();
        let needed = |c: &str| self.cfg.generate.iter().any(|&i| names[i] == c);
        let time = |n: i64| o.base_ms + (n as i128 * o.gap_ns as i128 / 1_000_000) as i64;
        let mut cols: Vec<(&str, ArrayRef)> = Vec::new();
        let ints = |cols: &mut Vec<(&str, ArrayRef)>, name: &'static str, v: Vec<i64>| {
            cols.push((name, Arc::new(Int64Array::from(v))));
        };
        let strings = |cols: &mut Vec<(&str, ArrayRef)>, name: &'static str, v: &[String]| {
            let mut b = StringBuilder::with_capacity(v.len(), v.iter().map(String::len).sum());
            for s in v {
                b.append_value(s);
            }
            cols.push((name, Arc::new(b.finish())));
        };
        let times: Vec<i64> = events.iter().map(|n| time(*n)).collect();
        if needed("extra") {
            strings(&mut cols, "extra", &vec![String::new(); events.len()]);
        }
        match o.table {
            NexmarkTable::Bid => {
                let (mut a, mut b, mut p) = (vec![], vec![], vec![]);
                let text = needed("channel") || needed("url");
                let (mut ch, mut url) = (vec![], vec![]);
                for &n in &events {
                    let mut rng = EventRng::new(o.seed, n);
                    let bid = generator::bid(n, &mut rng);
                    a.push(bid.auction);
                    b.push(bid.bidder);
                    p.push(bid.price);
                    if text {
                        let (c, u) = generator::bid_channel_url(&mut rng);
                        ch.push(c);
                        url.push(u);
                    }
                }
                ints(&mut cols, "auction", a);
                ints(&mut cols, "bidder", b);
                ints(&mut cols, "price", p);
                if text {
                    strings(&mut cols, "channel", &ch);
                    strings(&mut cols, "url", &url);
                }
            }
            NexmarkTable::Auction => {
                let text = needed("itemname") || needed("description");
                let all: Vec<_> = events
                    .iter()
                    .map(|&n| generator::auction(n, &mut EventRng::new(o.seed, n), text))
                    .collect();
                ints(&mut cols, "id", all.iter().map(|a| a.id).collect());
                ints(
                    &mut cols,
                    "initialbid",
                    all.iter().map(|a| a.initial_bid).collect(),
                );
                ints(
                    &mut cols,
                    "reserve",
                    all.iter().map(|a| a.reserve).collect(),
                );
                ints(&mut cols, "seller", all.iter().map(|a| a.seller).collect());
                ints(
                    &mut cols,
                    "category",
                    all.iter().map(|a| a.category).collect(),
                );
                let expires: Vec<i64> = all
                    .iter()
                    .zip(&times)
                    .map(|(a, t)| t + a.expires_after_ms)
                    .collect();
                cols.push((
                    "expires",
                    Arc::new(TimestampMillisecondArray::from(expires)),
                ));
                let names: Vec<String> = all.iter().map(|a| a.item_name.clone()).collect();
                strings(&mut cols, "itemname", &names);
                let desc: Vec<String> = all.iter().map(|a| a.description.clone()).collect();
                strings(&mut cols, "description", &desc);
            }
            NexmarkTable::Person => {
                let all: Vec<_> = events
                    .iter()
                    .map(|&n| generator::person(n, &mut EventRng::new(o.seed, n)))
                    .collect();
                ints(&mut cols, "id", all.iter().map(|p| p.id).collect());
                let field = |f: fn(&generator::Person) -> String| -> Vec<String> {
                    all.iter().map(f).collect()
                };
                strings(&mut cols, "name", &field(|p| p.name.clone()));
                strings(&mut cols, "emailaddress", &field(|p| p.email.clone()));
                strings(&mut cols, "creditcard", &field(|p| p.credit_card.clone()));
                strings(&mut cols, "city", &field(|p| p.city.to_string()));
                strings(&mut cols, "state", &field(|p| p.state.to_string()));
            }
        }
        cols.push(("datetime", Arc::new(TimestampMillisecondArray::from(times))));
        let rows = events.len();
        let arrays = self
            .cfg
            .scan
            .made()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let made = cols.iter().find(|(n, _)| *n == names[i]);
                match made {
                    Some((_, a)) if self.cfg.generate.contains(&i) => Ok(cast(a, f.data_type())?),
                    _ => Ok(arrow::array::new_null_array(f.data_type(), rows)),
                }
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new(
            Arc::clone(self.cfg.scan.made()),
            arrays,
        )?)
    }
}

#[async_trait]
impl Source for NexmarkSource {
    fn name(&self) -> &'static str {
        "NexmarkSource"
    }

    fn describe(&self) -> String {
        let o = &self.cfg.options;
        let events = o.events.map_or("unbounded".to_string(), |n| n.to_string());
        format!(
            "NexmarkSource: {} ({:?}, events={events})",
            self.cfg.table, o.table
        )
    }

    fn output_schema(&self) -> SchemaRef {
        self.cfg.scan.emitted()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let this = Arc::new(*self);
        let o = this.cfg.options.clone();
        let end = o.events.map(|n| n as i64);
        let (mut next, wms) = match &this.resume {
            Some((next, wms)) => (*next, wms.clone()),
            None => (0, SplitWatermarks::new(1)),
        };
        // Real-time pacing as if the events before `next` were on time.
        let behind = Duration::from_nanos((next.max(0) as u64).saturating_mul(o.gap_ns));
        let started = Instant::now()
            .checked_sub(behind)
            .unwrap_or_else(Instant::now);
        let mut pipeline = ChunkPipeline::resuming(&ctx, wms, this.cfg.scan.clone());
        loop {
            if let Some(id) = ctx.barrier_due() {
                let state = State::new().with("position", scalars(&[("next", next)]));
                if !pipeline.barrier(id, state).await? {
                    return Ok(());
                }
            }
            let to = match end {
                Some(e) if next >= e => break,
                Some(e) => (next + o.chunk_events as i64).min(e),
                None => next + o.chunk_events as i64,
            };
            if o.real_time {
                let due = Duration::from_nanos((to as u64).saturating_mul(o.gap_ns));
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            let from = next;
            next = to;
            let source = Arc::clone(&this);
            if !pipeline.submit(0, move || source.chunk(from, to)).await? {
                return Ok(());
            }
            // Let other tasks run between chunks of an unbounded stream.
            tokio::task::yield_now().await;
        }
        pipeline.finish().await
    }

    fn checkpoints(&self) -> bool {
        true
    }

    fn restore(&mut self, state: &State) -> Result<()> {
        let next = scalar(state.require("position")?, "next")?;
        let wms = SplitWatermarks::restore(state.require(WATERMARKS)?)?;
        self.resume = Some((next, wms));
        Ok(())
    }
}
