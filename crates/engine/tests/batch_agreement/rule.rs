//! The reference side for late rows: Flink's rule applied to the batches as
//! they arrive, then DataFusion's GROUP BY over what the rule keeps.
//!
//! The rule (docs/architecture.md, "Windows"): the watermark moves only
//! between batches; a window `[start, end)` has fired once the watermark is
//! `>= end - 1`; a row counts in each window holding it that had not fired
//! when its batch arrived, and is dropped (a late row) when every window
//! holding it had fired. Rows with a NULL event time are dropped as late.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use sluice_engine::format;

/// One input row; `None` is NULL. `ts` is in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub auction: Option<i64>,
    pub price: Option<i64>,
    pub ts: Option<i64>,
}

/// A window TVF, sizes in milliseconds; windows are aligned to the epoch.
#[derive(Debug, Clone, Copy)]
pub enum Win {
    Tumble { size: i64 },
    Hop { slide: i64, size: i64 },
}

impl Win {
    /// Starts of the windows holding `ts`.
    pub fn starts(self, ts: i64) -> Vec<i64> {
        let (slide, size) = match self {
            Win::Tumble { size } => (size, size),
            Win::Hop { slide, size } => (slide, size),
        };
        let mut out = Vec::new();
        let mut start = ts.div_euclid(slide) * slide;
        while start + size > ts {
            out.push(start);
            start -= slide;
        }
        out
    }

    fn size(self) -> i64 {
        match self {
            Win::Tumble { size } | Win::Hop { size, .. } => size,
        }
    }

    /// The TVF over table `bids` in SQL.
    pub fn sql(self) -> String {
        match self {
            Win::Tumble { size } => format!(
                "TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '{}' SECOND)",
                size / 1000
            ),
            Win::Hop { slide, size } => format!(
                "HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '{}' SECOND, INTERVAL '{}' SECOND)",
                slide / 1000,
                size / 1000
            ),
        }
    }
}

/// Batches in arrival order, each with the watermark the window aggregate
/// has when it arrives (`None`: no watermark yet).
pub type Arrivals<'a> = Vec<(Option<i64>, &'a [Row])>;

/// Arrivals from a memory table: each batch (one INSERT) is followed by the
/// watermark `max(ts) - delay_ms` over the rows so far.
pub fn memory_arrivals(batches: &[Vec<Row>], delay_ms: i64) -> Arrivals<'_> {
    let mut watermark: Option<i64> = None;
    let mut out = Vec::new();
    for batch in batches {
        out.push((watermark, batch.as_slice()));
        for ts in batch.iter().filter_map(|r| r.ts) {
            watermark = Some(watermark.map_or(ts - delay_ms, |w| w.max(ts - delay_ms)));
        }
    }
    out
}

/// What the rule keeps and drops.
#[derive(Debug, Default)]
pub struct Kept {
    /// (row, window start) for every window that counts the row.
    pub pairs: Vec<(Row, i64)>,
    /// Rows dropped: every window holding them had fired, or NULL time.
    pub late: u64,
    /// Rows counted by some of their windows but not all (HOP only).
    pub partly_late: u64,
    /// Rows with a NULL event time.
    pub null_time: u64,
}

/// Apply the rule to `arrivals`.
pub fn flink_rule(arrivals: &Arrivals<'_>, win: Win) -> Kept {
    let mut kept = Kept::default();
    for (watermark, rows) in arrivals {
        for row in *rows {
            let Some(ts) = row.ts else {
                kept.late += 1;
                kept.null_time += 1;
                continue;
            };
            let starts = win.starts(ts);
            let open: Vec<i64> = starts
                .iter()
                .copied()
                .filter(|start| watermark.is_none_or(|w| w < start + win.size() - 1))
                .collect();
            if open.is_empty() {
                kept.late += 1;
            } else if open.len() < starts.len() {
                kept.partly_late += 1;
            }
            kept.pairs
                .extend(open.into_iter().map(|start| (*row, start)));
        }
    }
    kept
}

/// `SELECT auction, ws / 1000, <aggregates> ... GROUP BY auction, ws` in
/// DataFusion over the kept (row, window start) pairs; sorted rows.
pub async fn reference(kept: &Kept, aggregates: &str) -> Vec<Vec<String>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("price", DataType::Int64, true),
        Field::new("ws", DataType::Int64, false),
    ]));
    let column = |f: &dyn Fn(&(Row, i64)) -> Option<i64>| -> ArrayRef {
        Arc::new(kept.pairs.iter().map(f).collect::<Int64Array>())
    };
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            column(&|(r, _)| r.auction),
            column(&|(r, _)| r.price),
            column(&|(_, ws)| Some(*ws)),
        ],
    )
    .expect("kept rows");
    let ctx = SessionContext::new();
    let table = MemTable::try_new(schema, vec![vec![batch]]).expect("table");
    ctx.register_table("kept", Arc::new(table))
        .expect("register");
    let out = ctx
        .sql(&format!(
            "SELECT auction, ws / 1000 AS ws_s, {aggregates} FROM kept GROUP BY auction, ws"
        ))
        .await
        .expect("reference plans")
        .collect()
        .await
        .expect("reference runs");
    let mut rows = format::rows_as_strings(&out).expect("formats");
    rows.sort();
    rows
}

/// Arrivals from files read side by side (file order, one chunk of each in
/// turn) in chunks of `chunk_rows` rows, each chunk followed by the minimum
/// over unfinished files of `max(ts)` read so far (a file not started holds
/// the watermark back entirely). A file finishes when a turn finds nothing
/// left in it.
pub fn file_arrivals(files: &[Vec<Row>], chunk_rows: usize) -> Arrivals<'_> {
    let mut newest: Vec<Option<i64>> = vec![None; files.len()];
    let mut done = vec![false; files.len()];
    let mut watermark: Option<i64> = None;
    let mut out = Vec::new();
    for turn in 0.. {
        if done.iter().all(|d| *d) {
            break;
        }
        for (f, rows) in files.iter().enumerate() {
            if done[f] {
                continue;
            }
            match rows.chunks(chunk_rows).nth(turn) {
                Some(chunk) => {
                    out.push((watermark, chunk));
                    for ts in chunk.iter().filter_map(|r| r.ts) {
                        newest[f] = Some(newest[f].map_or(ts, |n| n.max(ts)));
                    }
                }
                None => done[f] = true,
            }
            let open: Vec<Option<i64>> = (0..files.len())
                .filter(|&g| !done[g])
                .map(|g| newest[g])
                .collect();
            if let Some(Some(min)) = open.iter().copied().min_by_key(|n| n.unwrap_or(i64::MIN)) {
                watermark = Some(watermark.map_or(min, |w| w.max(min)));
            }
        }
    }
    out
}
