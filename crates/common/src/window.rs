//! Window shapes (TUMBLE, HOP), shared by the planner and the operators.

use std::fmt;

/// Which window function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum WindowKind {
    /// Fixed-size, non-overlapping windows.
    Tumble,
    /// Fixed-size windows that start every `slide`.
    Hop,
}

/// A window's shape, in milliseconds. Windows are `[start, start + size)`
/// with `start = offset + k * slide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub struct WindowSpec {
    /// TUMBLE or HOP.
    pub kind: WindowKind,
    /// Window length.
    pub size: i64,
    /// Distance between window starts (`size` for TUMBLE).
    pub slide: i64,
    /// Alignment offset from the epoch.
    pub offset: i64,
}

impl WindowSpec {
    /// Start of the latest window that contains `t`.
    pub fn last_start(&self, t: i64) -> i64 {
        t.saturating_sub(t.wrapping_sub(self.offset).rem_euclid(self.slide))
    }

    /// The pane length: the largest length that divides both size and slide.
    pub fn pane(&self) -> i64 {
        gcd(self.size, self.slide)
    }
}

/// Greatest common divisor.
pub fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WindowKind::Tumble => write!(f, "TUMBLE(size={})", fmt_ms(self.size))?,
            WindowKind::Hop => write!(
                f,
                "HOP(slide={}, size={})",
                fmt_ms(self.slide),
                fmt_ms(self.size)
            )?,
        }
        if self.offset != 0 {
            write!(f, " offset={}", fmt_ms(self.offset))?;
        }
        Ok(())
    }
}

/// `1500` -> `1.5s`, `60000` -> `60s`.
pub fn fmt_ms(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
