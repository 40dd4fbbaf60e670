//! `connector = 'nexmark'`: the Nexmark benchmark's event generator as a
//! table (RisingWave's option names): `nexmark.table.type` = `bid` |
//! `auction` | `person` picks which events of the one event stream the table
//! shows, `nexmark.event.num` bounds the stream (events of all kinds),
//! `nexmark.min.event.gap.in.ns` spaces event times (default 100 µs, i.e.
//! 10,000 events per second of event time), `nexmark.base.time` (ms since
//! the epoch) is the first event's time, `nexmark.seed` makes another
//! deterministic stream and `nexmark.use.real.time` paces generation to the
//! event times. Columns are matched by name, case-insensitively (Flink's
//! Nexmark DDL: `auction, bidder, price, channel, url, dateTime, extra`
//! for bids); only the columns a query reads are generated.

mod connector;
mod generator;
mod source;

pub use connector::NexmarkConnector;
pub use source::{NexmarkSource, NexmarkSourceConfig};

use std::collections::BTreeMap;

use arrow::datatypes::SchemaRef;
use sluice_common::{Error, Result};

use crate::options::Options;

/// Which events a table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NexmarkTable {
    /// Bids (46 of every 50 events).
    Bid,
    /// Auctions (3 of 50).
    Auction,
    /// Persons (1 of 50).
    Person,
}

impl NexmarkTable {
    /// The column names this table can have (lower case).
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            NexmarkTable::Bid => &[
                "auction", "bidder", "price", "channel", "url", "datetime", "extra",
            ],
            NexmarkTable::Auction => &[
                "id",
                "itemname",
                "description",
                "initialbid",
                "reserve",
                "datetime",
                "expires",
                "seller",
                "category",
                "extra",
            ],
            NexmarkTable::Person => &[
                "id",
                "name",
                "emailaddress",
                "creditcard",
                "city",
                "state",
                "datetime",
                "extra",
            ],
        }
    }
}

/// Parsed options of a Nexmark table.
#[derive(Debug, Clone)]
pub struct NexmarkOptions {
    /// Which events.
    pub table: NexmarkTable,
    /// Events (of all kinds) to generate; `None` = unbounded.
    pub events: Option<u64>,
    /// Event-time gap between consecutive events, in nanoseconds.
    pub gap_ns: u64,
    /// Time of event 0 (ms since the epoch).
    pub base_ms: i64,
    /// Pace generation to event time.
    pub real_time: bool,
    /// Seed of the random streams.
    pub seed: u64,
    /// Events per generated chunk.
    pub chunk_events: usize,
}

/// 2015-07-15 00:00:00 UTC, the Nexmark paper's era; fixed so results are
/// deterministic.
const DEFAULT_BASE_MS: i64 = 1_436_918_400_000;

impl NexmarkOptions {
    /// Read and check a Nexmark table's options against its columns.
    pub fn parse(table: &str, schema: &SchemaRef, map: &BTreeMap<String, String>) -> Result<Self> {
        let err = |m: String| Error::plan(format!("table {table}: {m}"));
        let mut o = Options::new(table, map);
        let kind = match o
            .one_of("nexmark.table.type", &["bid", "auction", "person"], "bid")?
            .as_str()
        {
            "auction" => NexmarkTable::Auction,
            "person" => NexmarkTable::Person,
            _ => NexmarkTable::Bid,
        };
        let mut number = |key: &'static str| -> Result<Option<u64>> {
            match o.get(key) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| err(format!("'{key}' must be a whole number, not '{v}'"))),
            }
        };
        let events = number("nexmark.event.num")?;
        let gap_ns = number("nexmark.min.event.gap.in.ns")?.unwrap_or(100_000);
        let seed = number("nexmark.seed")?.unwrap_or(0);
        let chunk = number("nexmark.max.chunk.size")?.unwrap_or(8192);
        let base_ms = number("nexmark.base.time")?.map_or(DEFAULT_BASE_MS, |v| v as i64);
        if chunk == 0 {
            return Err(err("'nexmark.max.chunk.size' must be positive".into()));
        }
        let real_time = o.bool("nexmark.use.real.time", false)?;
        let _ = o.get("nexmark.split.num");
        o.finish()?;
        for f in schema.fields() {
            if !kind
                .columns()
                .contains(&f.name().to_ascii_lowercase().as_str())
            {
                return Err(err(format!(
                    "a Nexmark {kind:?} has no column '{}' (columns: {})",
                    f.name(),
                    kind.columns().join(", ")
                )));
            }
        }
        Ok(NexmarkOptions {
            table: kind,
            events,
            gap_ns,
            base_ms,
            real_time,
            seed,
            chunk_events: chunk as usize,
        })
    }

    /// Whether the table ends.
    pub fn is_bounded(&self) -> bool {
        self.events.is_some()
    }
}
