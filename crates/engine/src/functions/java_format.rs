//! Formatting a point in time with a compiled Java date pattern (see
//! `java_time` for the two flavors).

use super::calendar::{civil_from_days, days_from_civil, weekday_sun0, SECS_PER_DAY};
use super::java_time::{Field, Flavor, Item, Pattern};

/// English month names.
pub(crate) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// English day names, Sunday first.
pub(crate) const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// A point in time broken into calendar fields (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateTime {
    pub days: i64,
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nano: u32,
}

impl DateTime {
    /// From epoch seconds and nanoseconds.
    pub(crate) fn from_epoch(secs: i64, nano: u32) -> Self {
        let days = secs.div_euclid(SECS_PER_DAY);
        let sod = secs.rem_euclid(SECS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            days,
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod / 60 % 60,
            second: sod % 60,
            nano,
        }
    }

    fn day_of_year(&self) -> i64 {
        self.days - days_from_civil(self.year, 1, 1) + 1
    }

    /// Week of the year with weeks starting on Sunday and week 1 holding
    /// January 1st (the US rules of Java's default locale), with its year.
    fn week_and_year(&self) -> (i64, i64) {
        let next_jan1 = days_from_civil(self.year + 1, 1, 1);
        let week_start = self.days - i64::from(weekday_sun0(self.days));
        if week_start + 6 >= next_jan1 {
            return (1, self.year + 1);
        }
        let jan1 = days_from_civil(self.year, 1, 1);
        let first_week_start = jan1 - i64::from(weekday_sun0(jan1));
        ((week_start - first_week_start) / 7 + 1, self.year)
    }
}

fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    let digits = v.unsigned_abs().to_string();
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

fn text(out: &mut String, full: &str, count: usize) {
    match count {
        1..=3 => out.push_str(&full[..3]),
        4 => out.push_str(full),
        _ => out.push_str(&full[..1]),
    }
}

impl Pattern {
    /// Format a point in time.
    pub(crate) fn format(&self, t: &DateTime, out: &mut String) {
        for item in &self.items {
            match item {
                Item::Literal(s) => out.push_str(s),
                Item::Field(f, n) => self.field(*f, *n, t, out),
            }
        }
    }

    fn field(&self, f: Field, n: usize, t: &DateTime, out: &mut String) {
        let hour12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
        match f {
            Field::Era => out.push_str(if n == 4 { "Anno Domini" } else { "AD" }),
            Field::Year | Field::WeekYear => {
                let y = if f == Field::Year {
                    t.year
                } else {
                    t.week_and_year().1
                };
                if n == 2 {
                    pad(out, y.rem_euclid(100), 2)
                } else {
                    pad(out, y, n)
                }
            }
            Field::Month if n >= 3 => text(out, MONTHS[t.month as usize - 1], n),
            Field::Month => pad(out, i64::from(t.month), n),
            Field::Day => pad(out, i64::from(t.day), n),
            Field::DayOfYear => pad(out, t.day_of_year(), n),
            Field::WeekOfYear => pad(out, t.week_and_year().0, n),
            Field::Quarter => {
                let q = t.month.div_ceil(3);
                match n {
                    1 | 2 => pad(out, i64::from(q), n),
                    3 => out.push_str(&format!("Q{q}")),
                    4 => out.push_str(["1st", "2nd", "3rd", "4th"][q as usize - 1]),
                    _ => out.push_str(&q.to_string()),
                }
                if n == 4 {
                    out.push_str(" quarter");
                }
            }
            Field::WeekdayName => text(out, WEEKDAYS[weekday_sun0(t.days) as usize], n),
            Field::WeekdayNumber => {
                let w = weekday_sun0(t.days);
                pad(out, i64::from(if w == 0 { 7 } else { w }), n)
            }
            Field::AmPm => out.push_str(if t.hour < 12 { "AM" } else { "PM" }),
            Field::Hour23 => pad(out, i64::from(t.hour), n),
            Field::Hour24 => pad(out, i64::from(if t.hour == 0 { 24 } else { t.hour }), n),
            Field::Hour11 => pad(out, i64::from(t.hour % 12), n),
            Field::Hour12 => pad(out, i64::from(hour12(t.hour)), n),
            Field::Minute => pad(out, i64::from(t.minute), n),
            Field::Second => pad(out, i64::from(t.second), n),
            Field::Fraction if self.flavor == Flavor::Simple => {
                pad(out, i64::from(t.nano / 1_000_000), n)
            }
            Field::Fraction => {
                let digits = format!("{:09}", t.nano);
                out.push_str(&digits[..n.min(9)]);
                for _ in 9..n {
                    out.push('0');
                }
            }
            Field::Nano => pad(out, i64::from(t.nano), n),
            Field::ZoneName => out.push_str(if n >= 4 && self.flavor == Flavor::Simple {
                "Coordinated Universal Time"
            } else {
                "UTC"
            }),
            Field::ZoneOffset => out.push_str(match n {
                4 => "GMT",
                5 => "Z",
                _ => "+0000",
            }),
            Field::IsoOffset => out.push('Z'),
            Field::LocalOffset => out.push_str(match n {
                1 => "+00",
                2 | 4 => "+0000",
                _ => "+00:00",
            }),
            Field::GmtOffset => out.push_str("GMT"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::java_time::compile;

    fn fmt(p: &str, flavor: Flavor, secs: i64, nano: u32) -> String {
        let pattern = compile(p, flavor).expect("compiles");
        let mut out = String::new();
        pattern.format(&DateTime::from_epoch(secs, nano), &mut out);
        out
    }

    // 2018-03-14 01:02:03.123456789 UTC
    const T: i64 = 1_520_989_323;

    #[test]
    fn formats_like_java() {
        use Flavor::*;
        // Flink TemporalTypesTest.testDateFormat / testHighPrecisionTimestamp.
        assert_eq!(
            fmt("yyyy/MM/dd HH:mm:ss", Formatter, T, 0),
            "2018/03/14 01:02:03"
        );
        assert_eq!(
            fmt("yyyy-MM-dd HH:mm:ss.SSSSSSSSS", Formatter, T, 123_456_789),
            "2018-03-14 01:02:03.123456789"
        );
        assert_eq!(fmt("SSSSSS", Formatter, T, 123_456_789), "123456");
        // SimpleDateFormat: S is the millisecond number.
        assert_eq!(fmt("ss.S", Simple, T, 5_000_000), "03.5");
        assert_eq!(fmt("ss.SSS", Simple, T, 5_000_000), "03.005");
        assert_eq!(fmt("yy-MM-dd HH-mm-ss", Simple, 44, 0), "70-01-01 00-00-44");
        assert_eq!(fmt("EEE, d MMM yyyy", Simple, T, 0), "Wed, 14 Mar 2018");
        assert_eq!(fmt("EEEE MMMM", Formatter, T, 0), "Wednesday March");
        assert_eq!(fmt("h:mm a", Formatter, T + 12 * 3600, 0), "1:02 PM");
        assert_eq!(fmt("D w u", Simple, T, 0), "73 11 3");
        assert_eq!(fmt("yyyy-QQ", Formatter, T, 0), "2018-01");
        assert_eq!(
            fmt("'at' HH 'o''clock' z X", Formatter, T, 0),
            "at 01 o'clock UTC Z"
        );
    }

    #[test]
    fn week_of_year() {
        // 2021-12-26 is a Sunday whose week holds 2022-01-01: week 1 of 2022.
        let t = days_from_civil(2021, 12, 26) * SECS_PER_DAY;
        assert_eq!(fmt("w YYYY", Flavor::Simple, t, 0), "1 2022");
        let t = days_from_civil(2021, 1, 2) * SECS_PER_DAY;
        assert_eq!(fmt("w", Flavor::Simple, t, 0), "1");
    }
}
