//! Window shapes (TUMBLE, HOP, CUMULATE), shared by the planner and the
//! operators.

use std::fmt;

/// Which window function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum WindowKind {
    /// Fixed-size, non-overlapping windows.
    Tumble,
    /// Fixed-size windows that start every `slide`.
    Hop,
    /// Windows that grow by `slide` (the step) from the start of each
    /// `size`-long period (the max size): `[s, s + step)`, `[s, s + 2 step)`,
    /// ..., `[s, s + size)`.
    Cumulate,
    /// Sessions: rows of a key no more than `size` (the gap) apart, merged.
    /// Each row's own window is `[t, t + gap)`; a window aggregate merges
    /// the windows that touch.
    Session,
}

impl WindowKind {
    /// SQL name.
    pub fn name(self) -> &'static str {
        match self {
            WindowKind::Tumble => "TUMBLE",
            WindowKind::Hop => "HOP",
            WindowKind::Cumulate => "CUMULATE",
            WindowKind::Session => "SESSION",
        }
    }
}

/// A window's shape, in milliseconds. TUMBLE and HOP windows are
/// `[start, start + size)` with `start = offset + k * slide`; CUMULATE
/// windows are `[p, p + j * slide)` for each period start
/// `p = offset + k * size` and `j = 1 ..= size / slide`. Every window ends
/// at its own multiple of `slide` (aligned), so a window is known by its
/// end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub struct WindowSpec {
    /// TUMBLE or HOP.
    pub kind: WindowKind,
    /// Window length (CUMULATE: the max size, its period).
    pub size: i64,
    /// Distance between window starts (`size` for TUMBLE; CUMULATE: the
    /// step, the distance between window ends).
    pub slide: i64,
    /// Alignment offset from the epoch.
    pub offset: i64,
}

impl WindowSpec {
    /// Start of the latest window that contains `t` (TUMBLE, HOP).
    pub fn last_start(&self, t: i64) -> i64 {
        period_start(t, self.offset, self.slide)
    }

    /// The pane length: the largest length that divides both size and slide.
    pub fn pane(&self) -> i64 {
        gcd(self.size, self.slide)
    }

    /// Start of the window ending at `end` (an aligned end).
    pub fn start_of(&self, end: i64) -> i64 {
        match self.kind {
            WindowKind::Cumulate => period_start(end.saturating_sub(1), self.offset, self.size),
            _ => end.saturating_sub(self.size),
        }
    }

    /// The latest window end at or before `t`.
    pub fn last_end_by(&self, t: i64) -> i64 {
        let align = match self.kind {
            WindowKind::Cumulate => self.offset,
            _ => self.offset.wrapping_add(self.size),
        };
        period_start(t, align, self.slide)
    }

    /// End of the last window (the latest to fire) holding time `t`.
    pub fn last_end_holding(&self, t: i64) -> i64 {
        match self.kind {
            WindowKind::Cumulate => {
                period_start(t, self.offset, self.size).saturating_add(self.size)
            }
            _ => self.last_start(t).saturating_add(self.size),
        }
    }

    /// Every window holding time `t`, as (start, end), latest start first
    /// (CUMULATE: shortest first).
    pub fn windows_of(&self, t: i64) -> Windows {
        match self.kind {
            // A row's own window, before sessions are merged.
            WindowKind::Session => Windows {
                next: (t, t.saturating_add(self.size)),
                step: (0, 0),
                left: 1,
            },
            WindowKind::Cumulate => {
                let start = period_start(t, self.offset, self.size);
                let first = self.last_end_by(t).saturating_add(self.slide);
                let last = start.saturating_add(self.size);
                Windows {
                    next: (start, first),
                    step: (0, self.slide),
                    left: (last - first) / self.slide + 1,
                }
            }
            _ => {
                let s = self.last_start(t);
                // Starts s, s - slide, ... above t - size.
                let span = s - t.saturating_sub(self.size);
                Windows {
                    next: (s, s.saturating_add(self.size)),
                    step: (-self.slide, -self.slide),
                    left: (span + self.slide - 1) / self.slide,
                }
            }
        }
    }
}

/// The windows holding one time; see [`WindowSpec::windows_of`].
#[derive(Debug, Clone)]
pub struct Windows {
    next: (i64, i64),
    step: (i64, i64),
    left: i64,
}

impl Iterator for Windows {
    type Item = (i64, i64);

    fn next(&mut self) -> Option<(i64, i64)> {
        if self.left <= 0 {
            return None;
        }
        self.left -= 1;
        let w = self.next;
        self.next = (w.0 + self.step.0, w.1 + self.step.1);
        Some(w)
    }
}

/// The latest `align + k * period` at or before `t`.
fn period_start(t: i64, align: i64, period: i64) -> i64 {
    t.saturating_sub(t.wrapping_sub(align).rem_euclid(period))
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
            WindowKind::Cumulate => write!(
                f,
                "CUMULATE(step={}, size={})",
                fmt_ms(self.slide),
                fmt_ms(self.size)
            )?,
            WindowKind::Session => write!(f, "SESSION(gap={})", fmt_ms(self.size))?,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: WindowKind, size: i64, slide: i64) -> WindowSpec {
        WindowSpec {
            kind,
            size,
            slide,
            offset: 0,
        }
    }

    #[test]
    fn cumulate_windows_grow_by_the_step_within_a_period() {
        let c = spec(WindowKind::Cumulate, 10, 2);
        assert_eq!(
            c.windows_of(13).collect::<Vec<_>>(),
            [(10, 14), (10, 16), (10, 18), (10, 20)]
        );
        assert_eq!(
            c.windows_of(10).collect::<Vec<_>>(),
            [(10, 12), (10, 14), (10, 16), (10, 18), (10, 20)]
        );
        assert_eq!(c.windows_of(-1).collect::<Vec<_>>(), [(-10, 0)]);
        assert_eq!(c.start_of(14), 10);
        assert_eq!(c.start_of(20), 10);
        assert_eq!(c.last_end_by(13), 12);
        assert_eq!(c.last_end_holding(13), 20);
    }

    #[test]
    fn hop_windows_are_known_by_their_end() {
        let h = spec(WindowKind::Hop, 10, 4);
        assert_eq!(
            h.windows_of(9).collect::<Vec<_>>(),
            [(8, 18), (4, 14), (0, 10)]
        );
        assert_eq!(h.start_of(14), 4);
        assert_eq!(h.last_end_by(13), 10);
        assert_eq!(h.last_end_holding(9), 18);
    }
}
