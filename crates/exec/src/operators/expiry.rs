//! Idle-key expiry (`table.exec.state.ttl`): a key whose state was not
//! updated for the TTL is forgotten, as in Flink (processing time; no
//! retraction is emitted, and a later row for the key starts afresh).

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Milliseconds since some start; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The wall clock, in milliseconds since the first call.
pub fn wall_clock() -> Clock {
    let start = Instant::now();
    Arc::new(move || start.elapsed().as_millis() as u64)
}

/// When each group was last updated, and which have been idle too long.
pub struct Expiry {
    ttl: u64,
    clock: Clock,
    last: Vec<u64>,
    next_sweep: u64,
}

impl Expiry {
    /// Groups idle for `ttl` expire, by `clock`.
    pub fn new(ttl: Duration, clock: Clock) -> Self {
        Expiry {
            ttl: (ttl.as_millis() as u64).max(1),
            clock,
            last: Vec::new(),
            next_sweep: 0,
        }
    }

    /// `groups` were updated now.
    pub fn touch(&mut self, groups: &[usize], num_groups: usize) {
        let now = (self.clock)();
        self.last.resize(num_groups, now);
        for &g in groups {
            self.last[g] = now;
        }
    }

    /// Groups idle for the TTL, looked for at most twice per TTL (so the
    /// cost is one pass over the groups per half TTL).
    pub fn expired(&mut self) -> Vec<usize> {
        let now = (self.clock)();
        if now < self.next_sweep {
            return Vec::new();
        }
        self.next_sweep = now + (self.ttl / 2).max(1);
        let ttl = self.ttl;
        (0..self.last.len())
            .filter(|&g| self.last[g] + ttl <= now)
            .collect()
    }

    /// Keep only groups `keep` (old ids, ascending), renumbered from 0.
    pub fn retain(&mut self, keep: &[usize]) {
        self.last = keep.iter().map(|&g| self.last[g]).collect();
    }
}
