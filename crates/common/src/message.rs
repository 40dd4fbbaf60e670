//! Messages on streaming edges.

use arrow::record_batch::RecordBatch;

/// Event time, in milliseconds since the Unix epoch (UTC).
///
/// A watermark `W` on an edge promises that no row with event time `<= W`
/// follows on that edge (Flink's definition). Rows that do are *late*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Watermark(pub i64);

impl Watermark {
    /// The watermark before any row was seen: nothing is promised.
    pub const MIN: Watermark = Watermark(i64::MIN);
    /// The final watermark of a bounded input: every window may close.
    pub const MAX: Watermark = Watermark(i64::MAX);

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Human readable form (`-inf`, `+inf` or an RFC 3339 timestamp).
    pub fn display(self) -> String {
        match self.0 {
            i64::MIN => "-inf".to_string(),
            i64::MAX => "+inf".to_string(),
            ms => {
                let secs = ms.div_euclid(1000);
                let nanos = (ms.rem_euclid(1000) * 1_000_000) as u32;
                match arrow::temporal_conversions::timestamp_ms_to_datetime(ms) {
                    Some(dt) => dt.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                    None => format!("{secs}.{nanos:09}"),
                }
            }
        }
    }
}

/// A checkpoint marker. Operators snapshot their state once it has arrived
/// on every input, then forward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Barrier {
    /// Monotonically increasing checkpoint id.
    pub checkpoint_id: u64,
}

/// What travels on an edge. Data and control share one ordered channel, so a
/// watermark or barrier is never overtaken by the rows sent before it.
#[derive(Debug, Clone)]
pub enum Message {
    /// A batch of rows.
    Batch(RecordBatch),
    /// No row with event time `<` this follows on this edge.
    Watermark(Watermark),
    /// Checkpoint marker; snapshot once it arrived on every input.
    Barrier(Barrier),
    /// The producer is idle (Flink's `WatermarkStatus.IDLE`): nothing is
    /// coming for now, so a consumer leaves this edge out of its watermark
    /// minimum until the next batch or watermark arrives on it.
    Idle,
    /// Bounded input exhausted: flush, forward, stop.
    EndOfStream,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_display() {
        assert_eq!(Watermark::MIN.display(), "-inf");
        assert_eq!(Watermark::MAX.display(), "+inf");
        assert_eq!(Watermark(1_500).display(), "1970-01-01 00:00:01.500");
        assert!(Watermark(1) < Watermark(2));
    }
}
