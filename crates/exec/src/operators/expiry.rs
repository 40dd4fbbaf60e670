//! Idle-key expiry (`table.exec.state.ttl`): a key whose state was not
//! updated for the TTL is forgotten, as in Flink (processing time; no
//! retraction is emitted, and a later row for the key starts afresh).

use std::sync::Arc;
use std::time::Duration;

/// Milliseconds since some start; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The wall clock, in milliseconds since the Unix epoch (so times kept in
/// a checkpoint mean the same after a restart).
pub fn wall_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    })
}

/// A TTL, its clock, and when to look for idle keys next: at most twice
/// per TTL, so the cost is one pass over the keys per half TTL.
pub struct Sweep {
    ttl: u64,
    clock: Clock,
    next: u64,
}

impl Sweep {
    /// Keys idle for `ttl` expire, by `clock`.
    pub fn new(ttl: Duration, clock: Clock) -> Self {
        Sweep {
            ttl: (ttl.as_millis() as u64).max(1),
            clock,
            next: 0,
        }
    }

    /// The TTL in milliseconds (at least 1).
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    /// The clock's time now.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Whether a sweep is due at `now` (and if so, schedule the next).
    pub fn due(&mut self, now: u64) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + (self.ttl / 2).max(1);
        true
    }

    /// Whether a key last written at `last` has been idle for the TTL.
    pub fn is_idle(&self, last: u64, now: u64) -> bool {
        last + self.ttl <= now
    }
}

/// When each group was last updated, and which have been idle too long.
pub struct Expiry {
    sweep: Sweep,
    last: Vec<u64>,
}

impl Expiry {
    /// Groups idle for `ttl` expire, by `clock`.
    pub fn new(ttl: Duration, clock: Clock) -> Self {
        Expiry {
            sweep: Sweep::new(ttl, clock),
            last: Vec::new(),
        }
    }

    /// `groups` were updated now.
    pub fn touch(&mut self, groups: &[usize], num_groups: usize) {
        let now = self.sweep.now();
        self.last.resize(num_groups, now);
        for &g in groups {
            self.last[g] = now;
        }
    }

    /// Groups idle for the TTL, looked for when a [`Sweep`] is due.
    pub fn expired(&mut self) -> Vec<usize> {
        let now = self.sweep.now();
        if !self.sweep.due(now) {
            return Vec::new();
        }
        (0..self.last.len())
            .filter(|&g| self.sweep.is_idle(self.last[g], now))
            .collect()
    }

    /// When each of `groups` was last updated (a checkpoint).
    pub fn last_updated(&self, groups: &[usize]) -> Vec<u64> {
        let now = self.sweep.now();
        groups
            .iter()
            .map(|&g| self.last.get(g).copied().unwrap_or(now))
            .collect()
    }

    /// Group `g` (of `num_groups`) was last updated at `at` (a restore).
    pub fn set_last_updated(&mut self, g: usize, at: u64, num_groups: usize) {
        let now = self.sweep.now();
        self.last.resize(num_groups.max(g + 1), now);
        self.last[g] = at;
    }

    /// Keep only groups `keep` (old ids, ascending), renumbered from 0.
    pub fn retain(&mut self, keep: &[usize]) {
        self.last = keep.iter().map(|&g| self.last[g]).collect();
    }
}
