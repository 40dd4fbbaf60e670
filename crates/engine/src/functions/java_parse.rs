//! Parsing text with a compiled Java date pattern, and Flink's default
//! timestamp and date grammars.
//!
//! * `Flavor::Formatter` (`DateTimeFormatter`, TO_TIMESTAMP): the whole text
//!   must match; `MM`, `dd`, `HH` ... take exactly two digits, `S..S` exactly
//!   as many fraction digits; a day past the month's end becomes its last
//!   day (the SMART resolver); a parsed zone offset is ignored (Flink reads
//!   the local fields).
//! * `Flavor::Simple` (`SimpleDateFormat`, UNIX_TIMESTAMP, TO_DATE): lenient.
//!   Text after the pattern is ignored, a number takes as many digits as
//!   there are (exactly the letter count when another number follows
//!   directly), `S` is a number of milliseconds, out-of-range values roll
//!   over (February 30 is March 1 or 2) and a zone offset is applied.
//!
//! Missing fields default to 1970-01-01 00:00:00.

use super::calendar::{days_from_civil, last_day, SECS_PER_DAY};
use super::java_format::{MONTHS, WEEKDAYS};
use super::java_time::{Field, Flavor, Item, Pattern};

/// A parsed point in time: epoch seconds and nanoseconds (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Instant {
    pub secs: i64,
    pub nanos: u32,
}

#[derive(Default)]
struct Fields {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    day_of_year: Option<i64>,
    hour: Option<i64>,
    hour12: Option<i64>,
    pm: Option<bool>,
    minute: i64,
    second: i64,
    nanos: i64,
    offset_secs: i64,
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<(i64, usize)> {
        let start = self.pos;
        let mut v: i64 = 0;
        while self.pos < self.s.len() && self.pos - start < max && self.s[self.pos].is_ascii_digit()
        {
            v = v
                .checked_mul(10)?
                .checked_add(i64::from(self.s[self.pos] - b'0'))?;
            self.pos += 1;
        }
        let n = self.pos - start;
        (n >= min).then_some((v, n))
    }

    fn literal(&mut self, lit: &str) -> Option<()> {
        let rest = &self.s[self.pos..];
        if rest.starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            Some(())
        } else {
            None
        }
    }

    /// One of `names` (full or three-letter), case-insensitively; its index.
    fn name(&mut self, names: &[&str]) -> Option<usize> {
        let rest = &self.s[self.pos..];
        for short in [false, true] {
            for (i, n) in names.iter().enumerate() {
                let n = if short { n.get(..3).unwrap_or(n) } else { n };
                if rest.len() >= n.len() && rest[..n.len()].eq_ignore_ascii_case(n.as_bytes()) {
                    self.pos += n.len();
                    return Some(i);
                }
            }
        }
        None
    }

    fn offset(&mut self) -> Option<i64> {
        if (self.name(&["UTC", "GMT"]).is_some() || self.literal("Z").is_some())
            && !matches!(self.s.get(self.pos), Some(b'+' | b'-'))
        {
            return Some(0);
        }
        let sign = match self.s.get(self.pos) {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return None,
        };
        self.pos += 1;
        let (h, _) = self.digits(1, 2)?;
        let _ = self.literal(":");
        let m = self.digits(2, 2).map_or(0, |(m, _)| m);
        Some(sign * (h * 3600 + m * 60))
    }
}

fn two_digit_year(yy: i64) -> i64 {
    // SimpleDateFormat puts a two-digit year within 80 years before and 20
    // years after now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let this_year = super::calendar::civil_from_days(now / SECS_PER_DAY).0;
    let start = this_year - 80;
    let y = start - start.rem_euclid(100) + yy;
    if y < start {
        y + 100
    } else {
        y
    }
}

impl Pattern {
    /// Parse `text`; `None` when it does not match.
    pub(crate) fn parse(&self, text: &str) -> Option<Instant> {
        let mut c = Cursor {
            s: text.as_bytes(),
            pos: 0,
        };
        let mut f = Fields::default();
        let simple = self.flavor == Flavor::Simple;
        for (i, item) in self.items.iter().enumerate() {
            let (field, n) = match item {
                Item::Literal(l) => {
                    c.literal(l)?;
                    continue;
                }
                Item::Field(field, n) => (*field, *n),
            };
            let abutting = matches!(self.items.get(i + 1),
                Some(Item::Field(next, m)) if next.is_numeric(*m));
            // Digits a number may take: exactly n when another number
            // follows; otherwise any (Simple), or n for two or more letters
            // (Formatter; years take 4 or more unless `yy`).
            let (min, max) = match (simple, abutting, n) {
                (_, true, _) => (n, n),
                (true, false, _) => (1, 18),
                (false, false, 1) => (1, 18),
                (false, false, _) => (n, n),
            };
            match field {
                Field::Year | Field::WeekYear => {
                    let (min, max) = if !simple && !abutting && n != 2 {
                        (n.max(1), 18)
                    } else {
                        (min, max)
                    };
                    let (v, digits) = c.digits(min, max)?;
                    f.year = Some(if n == 2 && digits == 2 {
                        if simple {
                            two_digit_year(v)
                        } else {
                            2000 + v
                        }
                    } else {
                        v
                    });
                }
                Field::Month if n >= 3 => f.month = Some(c.name(&MONTHS)? as i64 + 1),
                Field::Month => f.month = Some(c.digits(min, max)?.0),
                Field::Day => f.day = Some(c.digits(min, max)?.0),
                Field::DayOfYear => f.day_of_year = Some(c.digits(min, max)?.0),
                Field::Hour23 => f.hour = Some(c.digits(min, max)?.0),
                Field::Hour24 => f.hour = Some(c.digits(min, max)?.0 % 24),
                Field::Hour11 | Field::Hour12 => f.hour12 = Some(c.digits(min, max)?.0 % 12),
                Field::Minute => f.minute = c.digits(min, max)?.0,
                Field::Second => f.second = c.digits(min, max)?.0,
                Field::Fraction if simple => {
                    // Milliseconds; may exceed 999 and carry into seconds.
                    f.nanos = c.digits(min, max)?.0.checked_mul(1_000_000)?;
                }
                Field::Fraction => {
                    let (v, digits) = c.digits(n, n)?;
                    f.nanos = v * 10_i64.pow(9 - digits.min(9) as u32);
                }
                Field::Nano => f.nanos = c.digits(min, max.min(9))?.0,
                Field::AmPm => f.pm = Some(c.name(&["AM", "PM"])? == 1),
                Field::WeekdayName => {
                    c.name(&WEEKDAYS)?;
                }
                Field::Era => {
                    c.name(&["AD"])?;
                }
                Field::ZoneName
                | Field::ZoneOffset
                | Field::IsoOffset
                | Field::LocalOffset
                | Field::GmtOffset => f.offset_secs = c.offset()?,
                Field::WeekOfYear | Field::Quarter | Field::WeekdayNumber => {
                    c.digits(min, max)?;
                }
            }
        }
        if !simple && c.pos != c.s.len() {
            return None;
        }
        f.resolve(simple)
    }
}

impl Fields {
    fn resolve(self, lenient: bool) -> Option<Instant> {
        let year = self.year.unwrap_or(1970);
        let hour = match (self.hour, self.hour12) {
            (Some(h), _) => h,
            (None, Some(h)) => h + if self.pm == Some(true) { 12 } else { 0 },
            (None, None) => 0,
        };
        let days = match (self.month, self.day, self.day_of_year) {
            (None, None, Some(doy)) => days_from_civil(year, 1, 1) + doy - 1,
            (m, d, _) => {
                let (m, d) = (m.unwrap_or(1), d.unwrap_or(1));
                if lenient {
                    let total = year * 12 + m - 1;
                    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
                    days_from_civil(y, m, 1) + d - 1
                } else {
                    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
                        return None;
                    }
                    let m = m as u32;
                    days_from_civil(year, m, (d as u32).min(last_day(year, m)))
                }
            }
        };
        if !lenient && (hour > 23 || self.minute > 59 || self.second > 59) {
            return None;
        }
        let secs = days
            .checked_mul(SECS_PER_DAY)?
            .checked_add(hour * 3600 + self.minute * 60 + self.second)?
            .checked_add(self.nanos.div_euclid(1_000_000_000))?;
        let secs = if lenient {
            secs - self.offset_secs
        } else {
            secs
        };
        Some(Instant {
            secs,
            nanos: self.nanos.rem_euclid(1_000_000_000) as u32,
        })
    }
}

/// Flink's default timestamp grammar, `yyyy-M[M]-d[d][ H[H]:m[m]:s[s][.f..]]`
/// with up to nine fraction digits, the whole text matching (TO_TIMESTAMP
/// without a format, and its fallback with one).
pub(crate) fn parse_default_timestamp(text: &str) -> Option<Instant> {
    let mut c = Cursor {
        s: text.as_bytes(),
        pos: 0,
    };
    let mut f = Fields {
        year: Some(c.digits(4, 9)?.0),
        ..Fields::default()
    };
    c.literal("-")?;
    f.month = Some(c.digits(1, 2)?.0);
    c.literal("-")?;
    f.day = Some(c.digits(1, 2)?.0);
    if c.literal(" ").is_some() {
        f.hour = Some(c.digits(1, 2)?.0);
        c.literal(":")?;
        f.minute = c.digits(1, 2)?.0;
        c.literal(":")?;
        f.second = c.digits(1, 2)?.0;
        if c.literal(".").is_some() {
            let (v, n) = c.digits(0, 9)?;
            f.nanos = v * 10_i64.pow(9 - n as u32);
        }
    }
    if c.pos != c.s.len() {
        return None;
    }
    f.resolve(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::java_time::compile;

    fn parse(p: &str, flavor: Flavor, text: &str) -> Option<i64> {
        compile(p, flavor)
            .expect("compiles")
            .parse(text)
            .map(|i| i.secs)
    }

    fn millis(p: &str, flavor: Flavor, text: &str) -> Option<i64> {
        compile(p, flavor)
            .expect("compiles")
            .parse(text)
            .map(|i| i.secs * 1000 + i64::from(i.nanos / 1_000_000))
    }

    #[test]
    fn formatter_rules() {
        use Flavor::Formatter as F;
        // Flink TemporalTypesTest.testToTimeStampFunctionWithHighPrecision.
        assert_eq!(
            millis("yyyy-MM-dd HH:mm:ss.SSSSS", F, "1970-01-01 00:00:00.12345"),
            Some(123)
        );
        assert_eq!(
            millis("yyyyMMdd mm:ss.SSSSSSS", F, "20000202 59:59.1234567"),
            Some(949_453_199_123)
        );
        assert_eq!(millis("SSSSSSS", F, "1234567"), Some(123));
        assert_eq!(parse("yyyyMMddHH", F, "2000020210"), Some(949_485_600));
        assert_eq!(
            parse("yyyyMMddHHmmss", F, "20170915000000"),
            Some(1_505_433_600)
        );
        assert_eq!(parse("yyyy-MM-dd", F, "2017-09-15"), Some(1_505_433_600));
        // The whole text must match; two-letter fields take two digits.
        assert_eq!(parse("yyyy-MM-dd", F, "2017-09-15 00:00:00"), None);
        assert_eq!(parse("yyyy-MM-dd", F, "2017-9-15"), None);
        assert_eq!(parse("yyyy-MM-dd", F, "invalid value"), None);
        // SMART: February 30 is February's last day.
        assert_eq!(
            parse("yyyy-MM-dd", F, "2021-02-30"),
            parse("yyyy-MM-dd", F, "2021-02-28")
        );
        assert_eq!(
            parse("dd/MMM/yyyy:HH:mm:ss", F, "10/Oct/2000:13:55:36"),
            Some(971_186_136)
        );
    }

    #[test]
    fn simple_rules() {
        use Flavor::Simple as S;
        // Flink TemporalTypesTest.testUnixTimestamp: '.5' is 5 milliseconds.
        assert_eq!(
            parse("yyyy/MM/dd HH:mm:ss.S", S, "2015/07/24 10:00:00.5"),
            Some(1_437_732_000)
        );
        // Text after the pattern is ignored.
        assert_eq!(
            parse("yyyy-MM-dd HH:mm:ss", S, "1970-01-01 00:00:01.001 +0800"),
            Some(1)
        );
        // Offsets apply (Flink docs, UNIX_TIMESTAMP).
        assert_eq!(
            parse(
                "yyyy-MM-dd HH:mm:ss.SSS X",
                S,
                "1970-01-01 08:00:01.001 +0800"
            ),
            Some(1)
        );
        assert_eq!(
            parse("yyyy-MM-dd HH:mm:ss.SSS X", S, "1970-01-01 08:00:01.001"),
            None
        );
        assert_eq!(
            parse("yyyy-MM-dd", S, "2017-9-5"),
            parse("yyyy-MM-dd", S, "2017-09-05")
        );
        assert_eq!(
            parse("yyyyMMdd", S, "20170905"),
            parse("yyyy-MM-dd", S, "2017-09-05")
        );
        assert_eq!(parse("hh:mm a", S, "01:30 PM"), Some(13 * 3600 + 1800));
    }

    #[test]
    fn defaults() {
        assert_eq!(
            parse_default_timestamp("1970-01-01 00:00:01.5").map(|i| (i.secs, i.nanos)),
            Some((1, 500_000_000))
        );
        assert_eq!(
            parse_default_timestamp("1999-9-10").map(|i| i.secs),
            Some(936_921_600)
        );
        assert_eq!(parse_default_timestamp("abc"), None);
    }
}
