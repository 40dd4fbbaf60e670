//! Per-node counters, shared between a running task and whoever displays
//! them (EXPLAIN ANALYZE, the query summary).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use sluice_common::Watermark;

/// Counters of one node. Updated by its task, read by anyone.
#[derive(Debug)]
pub struct NodeMetrics {
    rows_in: AtomicU64,
    rows_out: AtomicU64,
    late_rows: AtomicU64,
    /// At a join: pairs of rows matched.
    matched_rows: AtomicU64,
    bad_records: AtomicU64,
    nulled_records: AtomicU64,
    bytes_read: AtomicU64,
    bytes_total: AtomicU64,
    watermark: AtomicI64,
    partition_lag: Mutex<Vec<(i32, i64)>>,
    /// At a sink: rows of the result (inserts minus retractions).
    net_rows: AtomicI64,
    /// Keys and bytes of operator state (summed over instances).
    state_keys: AtomicI64,
    state_bytes: AtomicI64,
    /// Rows kept per input (joins; summed over instances), once reported.
    state_rows: [AtomicI64; 2],
    has_state_rows: std::sync::atomic::AtomicBool,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            matched_rows: AtomicU64::new(0),
            bad_records: AtomicU64::new(0),
            nulled_records: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_total: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            partition_lag: Mutex::new(Vec::new()),
            net_rows: AtomicI64::new(0),
            state_keys: AtomicI64::new(0),
            state_bytes: AtomicI64::new(0),
            state_rows: [AtomicI64::new(0), AtomicI64::new(0)],
            has_state_rows: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl NodeMetrics {
    /// Count result rows added (negative: retracted) at a sink.
    pub fn add_net(&self, n: i64) {
        self.net_rows.fetch_add(n, Ordering::Relaxed);
    }
    /// Rows of the result written so far (inserts minus retractions).
    pub fn net_rows(&self) -> i64 {
        self.net_rows.load(Ordering::Relaxed)
    }
    /// An instance's state changed by `keys` keys and `bytes` bytes.
    pub fn add_state(&self, keys: i64, bytes: i64) {
        self.state_keys.fetch_add(keys, Ordering::Relaxed);
        self.state_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    /// An instance's rows kept per input changed by `rows`.
    pub fn add_state_rows(&self, rows: [i64; 2]) {
        self.has_state_rows.store(true, Ordering::Relaxed);
        for (total, d) in self.state_rows.iter().zip(rows) {
            total.fetch_add(d, Ordering::Relaxed);
        }
    }
    /// Rows kept per input (all instances), for operators that report them.
    pub fn state_rows(&self) -> Option<[u64; 2]> {
        self.has_state_rows.load(Ordering::Relaxed).then(|| {
            let get = |i: usize| self.state_rows[i].load(Ordering::Relaxed).max(0) as u64;
            [get(0), get(1)]
        })
    }
    /// Keys held in state (all instances).
    pub fn state_keys(&self) -> u64 {
        self.state_keys.load(Ordering::Relaxed).max(0) as u64
    }
    /// Bytes held in state (all instances, approximate).
    pub fn state_bytes(&self) -> u64 {
        self.state_bytes.load(Ordering::Relaxed).max(0) as u64
    }
    /// Count rows received.
    pub fn add_in(&self, n: usize) {
        self.rows_in.fetch_add(n as u64, Ordering::Relaxed);
    }
    /// Count rows sent.
    pub fn add_out(&self, n: usize) {
        self.rows_out.fetch_add(n as u64, Ordering::Relaxed);
    }
    /// Count late rows dropped.
    pub fn add_late(&self, n: u64) {
        self.late_rows.fetch_add(n, Ordering::Relaxed);
    }
    /// Count pairs of rows a join matched.
    pub fn add_matched(&self, n: u64) {
        self.matched_rows.fetch_add(n, Ordering::Relaxed);
    }
    /// Pairs of rows matched (joins).
    pub fn matched_rows(&self) -> u64 {
        self.matched_rows.load(Ordering::Relaxed)
    }
    /// Count malformed records skipped.
    pub fn add_bad(&self, n: u64) {
        self.bad_records.fetch_add(n, Ordering::Relaxed);
    }
    /// Count records kept with the fields that did not decode set to NULL.
    pub fn add_nulled(&self, n: u64) {
        self.nulled_records.fetch_add(n, Ordering::Relaxed);
    }
    /// Count bytes read from files.
    pub fn add_bytes_read(&self, n: u64) {
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
    }
    /// Set how many bytes a source will read in all.
    pub fn set_bytes_total(&self, n: u64) {
        self.bytes_total.store(n, Ordering::Relaxed);
    }
    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
    /// Bytes to read in all (0 when unknown).
    pub fn bytes_total(&self) -> u64 {
        self.bytes_total.load(Ordering::Relaxed)
    }
    /// Records not yet read, per partition (Kafka sources).
    pub fn set_partition_lag(&self, lag: Vec<(i32, i64)>) {
        *self.partition_lag.lock().unwrap_or_else(|p| p.into_inner()) = lag;
    }
    /// Records not yet read, per partition (empty when not known).
    pub fn partition_lag(&self) -> Vec<(i32, i64)> {
        self.partition_lag
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    /// Record a watermark forwarded (the newest of the node's instances).
    pub fn set_watermark(&self, wm: Watermark) {
        self.watermark.fetch_max(wm.0, Ordering::Relaxed);
    }
    /// Rows received.
    pub fn rows_in(&self) -> u64 {
        self.rows_in.load(Ordering::Relaxed)
    }
    /// Rows sent.
    pub fn rows_out(&self) -> u64 {
        self.rows_out.load(Ordering::Relaxed)
    }
    /// Late rows dropped.
    pub fn late_rows(&self) -> u64 {
        self.late_rows.load(Ordering::Relaxed)
    }
    /// Malformed records skipped.
    pub fn bad_records(&self) -> u64 {
        self.bad_records.load(Ordering::Relaxed)
    }
    /// Records kept with NULL in fields that did not decode.
    pub fn nulled_records(&self) -> u64 {
        self.nulled_records.load(Ordering::Relaxed)
    }
    /// The watermark last forwarded.
    pub fn watermark(&self) -> Watermark {
        Watermark(self.watermark.load(Ordering::Relaxed))
    }
}
