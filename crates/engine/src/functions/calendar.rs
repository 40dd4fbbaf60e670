//! Proleptic Gregorian calendar arithmetic on epoch days and epoch
//! seconds, following Flink's `DateTimeUtils` (month arithmetic clamps the
//! day; FLOOR/CEIL to coarse units work on the day number).

use arrow::datatypes::TimeUnit;

/// Seconds in a day.
pub(crate) const SECS_PER_DAY: i64 = 86_400;
/// Milliseconds in a day.
pub(crate) const MILLIS_PER_DAY: i64 = 86_400_000;

/// Epoch days of a civil date (month 1..=12; the day may overflow).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of epoch days.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Whether `y` is a leap year.
pub(crate) fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// The last day of a month.
pub(crate) fn last_day(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of week, 0 = Sunday .. 6 = Saturday.
pub(crate) fn weekday_sun0(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

/// Most months arithmetic may move a date (a million years): past it the
/// result is out of every range (`checked_add_months` gives None).
const MAX_MONTHS: i64 = 12_000_000;

/// [`add_months`] when the result is a date (none past a million years).
pub(crate) fn checked_add_months(days: i64, n: i64) -> Option<i64> {
    let within = |x: i64| (-MAX_MONTHS * 31..=MAX_MONTHS * 31).contains(&x);
    if n.abs() > MAX_MONTHS || !within(days) {
        return None;
    }
    Some(add_months(days, n))
}

/// Add `n` months to a date; a day past the new month's end becomes its
/// last day (2016-01-31 + 1 month = 2016-02-29).
pub(crate) fn add_months(days: i64, n: i64) -> i64 {
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + i64::from(m) - 1 + n;
    let (y, m) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    days_from_civil(y, m, d.min(last_day(y, m)))
}

/// Whole months from date `d1` to date `d0` (Flink's `subtractMonths`).
fn subtract_month_days(d0: i64, d1: i64) -> i64 {
    if d0 < d1 {
        return -subtract_month_days(d1, d0);
    }
    // No month has more than 31 days, so this never overshoots.
    let mut m = (d0 - d1) / 31;
    loop {
        if add_months(d1, m) >= d0 || add_months(d1, m + 1) > d0 {
            return m;
        }
        m += 1;
    }
}

/// Whole months from `t1` to `t0`, both in milliseconds (Flink's
/// `subtractMonths(long, long)`, used by TIMESTAMPDIFF).
pub(crate) fn subtract_months(t0: i64, t1: i64) -> i64 {
    let (d0, ms0) = (t0.div_euclid(MILLIS_PER_DAY), t0.rem_euclid(MILLIS_PER_DAY));
    let (d1, ms1) = (t1.div_euclid(MILLIS_PER_DAY), t1.rem_euclid(MILLIS_PER_DAY));
    let mut x = subtract_month_days(d0, d1);
    if add_months(d1, x) == d0 && ms0 < ms1 {
        x -= 1;
    }
    x
}

/// Units of FLOOR/CEIL(... TO unit) and TIMESTAMPADD/TIMESTAMPDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    Decade,
    Century,
    Millennium,
}

impl Unit {
    /// Parse a unit name (Flink's `SQL_TSI_` forms included).
    pub(crate) fn parse(s: &str) -> Option<Unit> {
        let s = s.trim().to_ascii_uppercase();
        let s = s.strip_prefix("SQL_TSI_").unwrap_or(&s);
        Some(match s {
            "MILLISECOND" => Unit::Millisecond,
            "SECOND" => Unit::Second,
            "MINUTE" => Unit::Minute,
            "HOUR" => Unit::Hour,
            "DAY" => Unit::Day,
            "WEEK" => Unit::Week,
            "MONTH" => Unit::Month,
            "QUARTER" => Unit::Quarter,
            "YEAR" => Unit::Year,
            "DECADE" => Unit::Decade,
            "CENTURY" => Unit::Century,
            "MILLENNIUM" => Unit::Millennium,
            _ => return None,
        })
    }

    /// Milliseconds of a fixed-length unit (SECOND .. WEEK).
    pub(crate) fn fixed_millis(self) -> Option<i64> {
        Some(match self {
            Unit::Millisecond => 1,
            Unit::Second => 1_000,
            Unit::Minute => 60_000,
            Unit::Hour => 3_600_000,
            Unit::Day => MILLIS_PER_DAY,
            Unit::Week => 7 * MILLIS_PER_DAY,
            _ => return None,
        })
    }

    /// Months of a month-based unit.
    pub(crate) fn months(self) -> Option<i64> {
        Some(match self {
            Unit::Month => 1,
            Unit::Quarter => 3,
            Unit::Year => 12,
            Unit::Decade => 120,
            Unit::Century => 1200,
            Unit::Millennium => 12000,
            _ => return None,
        })
    }
}

/// FLOOR/CEIL of a date (epoch days) to a day-or-coarser unit (Flink's
/// `julianDateFloor`): CEIL to DAY always adds a day, CEIL to MONTH or YEAR
/// looks at the day only, WEEK starts on Sunday.
pub(crate) fn date_floor(unit: Unit, days: i64, floor: bool) -> i64 {
    let (mut year, mut month, day) = civil_from_days(days);
    match unit {
        Unit::Millennium => {
            let y = 1000 * ((year + 999).div_euclid(1000));
            days_from_civil(if floor { y - 999 } else { y + 1 }, 1, 1)
        }
        Unit::Century => {
            let y = 100 * ((year + 99).div_euclid(100));
            days_from_civil(if floor { y - 99 } else { y + 1 }, 1, 1)
        }
        Unit::Decade => {
            let y = 10 * year.div_euclid(10);
            days_from_civil(if floor { y } else { y + 10 }, 1, 1)
        }
        Unit::Year => {
            if !floor && (month > 1 || day > 1) {
                year += 1;
            }
            days_from_civil(year, 1, 1)
        }
        Unit::Quarter => {
            let mut quarter = i64::from(month.div_ceil(3));
            if !floor && (month > 1 || day > 1) {
                quarter += 1;
            }
            add_months(days_from_civil(year, 1, 1), (quarter - 1) * 3)
        }
        Unit::Month => {
            if !floor && day > 1 {
                month += 1;
            }
            add_months(days_from_civil(year, 1, 1), i64::from(month) - 1)
        }
        Unit::Week => {
            let mut offset = i64::from(weekday_sun0(days));
            if !floor && offset > 0 {
                offset -= 7;
            }
            days - offset
        }
        _ => {
            if floor {
                days
            } else {
                days + 1
            }
        }
    }
}

/// Ticks of `unit` per second.
pub(crate) fn per_second(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// A timestamp in `unit` as (epoch seconds, nanoseconds of the second).
pub(crate) fn split(v: i64, unit: &TimeUnit) -> (i64, u32) {
    let p = per_second(unit);
    let nanos_per_tick = 1_000_000_000 / p;
    (v.div_euclid(p), (v.rem_euclid(p) * nanos_per_tick) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i64, m: u32, day: u32) -> i64 {
        days_from_civil(y, m, day)
    }

    #[test]
    fn civil_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 19_723, 2_932_896] {
            let (y, m, dd) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, dd), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(d(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(weekday_sun0(d(1994, 9, 27)), 2); // a Tuesday
    }

    #[test]
    fn months_clamp_the_day() {
        // Flink ScalarFunctionsTest.testTimestampAdd.
        assert_eq!(add_months(d(2016, 5, 31), 1), d(2016, 6, 30));
        assert_eq!(add_months(d(2016, 1, 31), 5), d(2016, 6, 30));
        assert_eq!(add_months(d(2016, 3, 31), -1), d(2016, 2, 29));
        assert_eq!(add_months(d(2017, 11, 29), 3), d(2018, 2, 28));
        assert_eq!(checked_add_months(d(2016, 5, 31), i64::MAX), None);
        assert_eq!(checked_add_months(d(2016, 5, 31), 1), Some(d(2016, 6, 30)));
    }

    #[test]
    fn month_differences() {
        let ms = |days: i64| days * MILLIS_PER_DAY;
        // Flink TemporalTypesTest.testTimestampDiff.
        assert_eq!(subtract_months(ms(d(2020, 3, 1)), ms(d(2019, 9, 1))), 6);
        assert_eq!(subtract_months(ms(d(2016, 8, 1)), ms(d(2019, 9, 1))), -37);
        // Same day of month, earlier time of day: not a whole month yet.
        assert_eq!(subtract_months(ms(d(2020, 2, 1)), ms(d(2020, 1, 1)) + 1), 0);
    }

    #[test]
    fn floor_and_ceil_of_dates() {
        // Flink TemporalTypesTest.testTemporalShanghai.
        assert_eq!(date_floor(Unit::Week, d(2021, 2, 27), true), d(2021, 2, 21));
        assert_eq!(date_floor(Unit::Week, d(2021, 3, 1), false), d(2021, 3, 7));
        assert_eq!(date_floor(Unit::Day, d(2021, 2, 27), false), d(2021, 2, 28));
        assert_eq!(
            date_floor(Unit::Decade, d(2018, 1, 2), false),
            d(2020, 1, 1)
        );
        assert_eq!(
            date_floor(Unit::Century, d(2018, 3, 27), false),
            d(2101, 1, 1)
        );
        assert_eq!(
            date_floor(Unit::Millennium, d(2018, 1, 9), true),
            d(2001, 1, 1)
        );
        assert_eq!(
            date_floor(Unit::Quarter, d(2018, 5, 2), true),
            d(2018, 4, 1)
        );
        assert_eq!(
            date_floor(Unit::Quarter, d(2018, 4, 2), false),
            d(2018, 7, 1)
        );
        assert_eq!(
            date_floor(Unit::Month, d(2018, 12, 2), false),
            d(2019, 1, 1)
        );
        assert_eq!(date_floor(Unit::Year, d(2018, 1, 1), false), d(2018, 1, 1));
    }

    #[test]
    fn split_and_join() {
        assert_eq!(split(-1, &TimeUnit::Millisecond), (-1, 999_000_000));
        assert_eq!(Unit::parse("sql_tsi_day"), Some(Unit::Day));
    }
}
