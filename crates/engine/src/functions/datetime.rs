//! Flink's conversions between text and time: DATE_FORMAT, TO_TIMESTAMP,
//! TO_DATE (`epoch` has the epoch-number ones).
//! Text that does not parse gives NULL (UNIX_TIMESTAMP: Long.MIN_VALUE, as
//! in Flink); a bad pattern is an error naming the function.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Builder, Int64Array, StringBuilder};
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::calendar::{days_from_civil, last_day, per_second, split, SECS_PER_DAY};
use super::java_format::DateTime;
use super::java_parse::{parse_default_timestamp, Instant};
use super::java_time::{compile, Flavor, Pattern};
use super::util::{arity, arrays, expect, finish, map_all, str_arg, to_utf8, upper, Cache, Udf};

/// The type Flink calls TIMESTAMP(3).
pub(crate) const TIMESTAMP_MS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

/// The type Flink calls TIMESTAMP_LTZ(3).
pub(crate) fn timestamp_ltz() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Flink's valid range, 0000-01-01 00:00:00 .. 9999-12-31 23:59:59.999.
pub(crate) const MIN_MILLIS: i64 = -62_167_219_200_000;
pub(crate) const MAX_MILLIS: i64 = 253_402_300_799_999;

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new(
            "date_format",
            coerce_date_format,
            ret_date_format,
            date_format,
        )
        .build(),
        Udf::new(
            "to_timestamp",
            coerce_strings,
            ret_to_timestamp,
            to_timestamp,
        )
        .build(),
        Udf::new("to_date", coerce_strings, ret_to_date, to_date).build(),
    ]
}

/// Compile a pattern, naming the function in the error.
pub(crate) fn pattern(name: &str, p: &str, flavor: Flavor) -> Result<Pattern> {
    compile(p, flavor).or_else(|e| exec_err!("{}: invalid pattern '{p}': {e}", upper(name)))
}

/// Check a literal pattern while planning.
pub(crate) fn check_literal_pattern(
    name: &str,
    scalars: &[Option<&ScalarValue>],
    i: usize,
    flavor: Flavor,
) -> Result<()> {
    if let Some(Some(p)) = super::util::literal_str(scalars, i) {
        if let Err(e) = compile(p, flavor) {
            return plan_err!("{}: invalid pattern '{p}': {e}", upper(name));
        }
    }
    Ok(())
}

pub(crate) fn coerce_strings(t: &[DataType]) -> Vec<DataType> {
    map_all(t, to_utf8)
}

pub(crate) fn check_strings(name: &str, t: &[DataType], min: usize, max: usize) -> Result<()> {
    arity(name, t, min, max)?;
    (0..t.len()).try_for_each(|i| expect(name, t, i, &DataType::Utf8))
}

// ---- DATE_FORMAT -------------------------------------------------------

fn coerce_date_format(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| match t {
            DataType::Timestamp(_, _) | DataType::Date32 if i == 0 => t.clone(),
            DataType::Date64 if i == 0 => TIMESTAMP_MS,
            _ => to_utf8(t),
        })
        .collect()
}

fn ret_date_format(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("date_format", t, 2, 2)?;
    if !matches!(
        t[0],
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Utf8
    ) {
        return plan_err!(
            "DATE_FORMAT: argument 1 must be a TIMESTAMP, TIMESTAMP_LTZ, DATE or STRING, got {}",
            sluice_sql::types::sql_type_name(&t[0])
        );
    }
    expect("date_format", t, 1, &DataType::Utf8)?;
    let flavor = if matches!(t[0], DataType::Timestamp(_, _)) {
        Flavor::Formatter
    } else {
        Flavor::Simple
    };
    check_literal_pattern("date_format", s, 1, flavor)?;
    Ok(DataType::Utf8)
}

/// Format each row's point in time (`None` = NULL) with the row's pattern.
pub(crate) fn format_rows(
    name: &str,
    patterns: &arrow::array::StringArray,
    flavor: Flavor,
    n: usize,
    time: impl Fn(usize) -> Option<DateTime>,
) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(n, n * 20);
    let mut cache = Cache::default();
    let mut buf = String::new();
    for i in 0..n {
        match (time(i), patterns.is_valid(i)) {
            (Some(t), true) => {
                let p = cache.get(patterns.value(i), |p| pattern(name, p, flavor))?;
                buf.clear();
                p.format(&t, &mut buf);
                out.append_value(&buf);
            }
            _ => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Epoch values of a timestamp array with their unit.
pub(crate) fn timestamp_values(a: &ArrayRef) -> Result<(Int64Array, TimeUnit)> {
    let DataType::Timestamp(unit, _) = a.data_type() else {
        return exec_err!("expected a timestamp, got {}", a.data_type());
    };
    let v = arrow::compute::cast(a, &DataType::Int64)?;
    Ok((v.as_primitive::<Int64Type>().clone(), *unit))
}

fn date_format(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let patterns = str_arg("date_format", &a, 1)?;
    let n = patterns.len();
    let out = match a[0].data_type() {
        DataType::Timestamp(_, _) => {
            let (v, unit) = timestamp_values(&a[0])?;
            format_rows("date_format", patterns, Flavor::Formatter, n, |i| {
                v.is_valid(i).then(|| {
                    let (s, ns) = split(v.value(i), &unit);
                    DateTime::from_epoch(s, ns)
                })
            })?
        }
        DataType::Date32 => {
            let d = a[0].as_primitive::<arrow::datatypes::Date32Type>();
            format_rows("date_format", patterns, Flavor::Simple, n, |i| {
                d.is_valid(i)
                    .then(|| DateTime::from_epoch(i64::from(d.value(i)) * SECS_PER_DAY, 0))
            })?
        }
        _ => {
            let s = str_arg("date_format", &a, 0)?;
            let input = pattern("date_format", "yyyy-MM-dd HH:mm:ss", Flavor::Simple)?;
            format_rows("date_format", patterns, Flavor::Simple, n, |i| {
                if s.is_null(i) {
                    return None;
                }
                input
                    .parse(s.value(i))
                    .map(|t| DateTime::from_epoch(t.secs, t.nanos))
            })?
        }
    };
    finish(args, out)
}

// ---- TO_TIMESTAMP / TO_TIMESTAMP_LTZ -----------------------------------

fn ret_to_timestamp(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check_strings("to_timestamp", t, 1, 2)?;
    check_literal_pattern("to_timestamp", s, 1, Flavor::Formatter)?;
    Ok(TIMESTAMP_MS)
}

/// Flink's TO_TIMESTAMP parsing: the format (DateTimeFormatter), else the
/// default grammar on the trimmed text; milliseconds.
pub(crate) fn parse_timestamps(name: &str, a: &[ArrayRef]) -> Result<Vec<Option<i64>>> {
    let s = str_arg(name, a, 0)?;
    let formats = if a.len() > 1 {
        Some(str_arg(name, a, 1)?)
    } else {
        None
    };
    let mut cache = Cache::default();
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || formats.is_some_and(|f| f.is_null(i)) {
            out.push(None);
            continue;
        }
        let text = s.value(i);
        let parsed = match formats {
            None => parse_default_timestamp(text),
            Some(f) => cache
                .get(f.value(i), |p| pattern(name, p, Flavor::Formatter))?
                .parse(text)
                .or_else(|| parse_default_timestamp(text.trim())),
        };
        out.push(parsed.and_then(to_millis));
    }
    Ok(out)
}

pub(crate) fn to_millis(t: Instant) -> Option<i64> {
    let ms = t
        .secs
        .checked_mul(1000)?
        .checked_add(i64::from(t.nanos / 1_000_000))?;
    (MIN_MILLIS..=MAX_MILLIS).contains(&ms).then_some(ms)
}

fn to_timestamp(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let ms = parse_timestamps("to_timestamp", &a)?;
    let out: arrow::array::TimestampMillisecondArray = ms.into_iter().collect();
    finish(args, Arc::new(out))
}

// ---- TO_DATE -----------------------------------------------------------

fn ret_to_date(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check_strings("to_date", t, 1, 2)?;
    check_literal_pattern("to_date", s, 1, Flavor::Simple)?;
    Ok(DataType::Date32)
}

fn to_date(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let s = str_arg("to_date", &a, 0)?;
    let formats = if a.len() > 1 {
        Some(str_arg("to_date", &a, 1)?)
    } else {
        None
    };
    let mut cache = Cache::default();
    let mut out = Date32Builder::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || formats.is_some_and(|f| f.is_null(i)) {
            out.append_null();
            continue;
        }
        let days = match formats {
            None => parse_default_date(s.value(i)),
            Some(f) => cache
                .get(f.value(i), |p| pattern("to_date", p, Flavor::Simple))?
                .parse(s.value(i))
                .map(|t| t.secs.div_euclid(SECS_PER_DAY)),
        };
        out.append_option(days.and_then(|d| i32::try_from(d).ok()));
    }
    finish(args, Arc::new(out.finish()))
}

/// Flink's TO_DATE(string) without a format: the part before a space as
/// `y-m-d` (month and day may be missing), checked strictly; epoch days.
pub(crate) fn parse_default_date(text: &str) -> Option<i64> {
    let s = text.split(' ').next().unwrap_or(text);
    let mut parts = s.splitn(3, '-');
    let num = |p: Option<&str>| -> Option<i64> {
        match p {
            None => Some(1),
            Some(p) => {
                let p = p.trim();
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 9 {
                    None
                } else {
                    p.parse().ok()
                }
            }
        }
    };
    let y = num(Some(parts.next()?))?;
    let m = num(parts.next())?;
    let d = num(parts.next())?;
    if !(0..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    if d > i64::from(last_day(y, m as u32)) {
        return None;
    }
    Some(days_from_civil(y, m as u32, d as u32))
}

/// Milliseconds of a timestamp value in `unit`.
pub(crate) fn millis_of(v: i64, unit: &TimeUnit) -> i64 {
    let p = per_second(unit);
    if p >= 1000 {
        v.div_euclid(p / 1000)
    } else {
        v.saturating_mul(1000 / p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_parsing() {
        let s: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![
            Some("1970-01-01 08:01:40"),
            Some("abc"),
            None,
            Some("1970-01-01 00:00:00.123456789"),
        ]));
        let ms = parse_timestamps("to_timestamp", &[s]).expect("parses");
        assert_eq!(ms, vec![Some(28_900_000), None, None, Some(123)]);
        let s: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["2017-09-15"]));
        let f: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["yyyy-MM-dd HH:mm"]));
        // The format fails; Flink falls back to the default grammar.
        let ms = parse_timestamps("to_timestamp", &[s, f]).expect("parses");
        assert_eq!(ms, vec![Some(1_505_433_600_000)]);
        assert!(pattern("to_timestamp", "yyyy-bb", Flavor::Formatter)
            .expect_err("bad")
            .to_string()
            .contains("TO_TIMESTAMP: invalid pattern 'yyyy-bb': unknown pattern letter 'b'"));
    }

    #[test]
    fn default_dates() {
        // Flink ScalarFunctionsTest.testToDate, TemporalTypesTest.testInvalidInputCase.
        assert_eq!(parse_default_date("2017-09-15 00:00:00"), Some(17_424));
        assert_eq!(
            parse_default_date("2017-9-5"),
            parse_default_date("2017-09-05")
        );
        assert_eq!(parse_default_date("2017-02-30"), None);
        assert_eq!(parse_default_date("invalid value"), None);
    }

    #[test]
    fn millis_of_units() {
        assert_eq!(millis_of(-1, &TimeUnit::Microsecond), -1);
        assert_eq!(millis_of(2, &TimeUnit::Second), 2000);
        assert_eq!(millis_of(1_999_999, &TimeUnit::Nanosecond), 1);
    }
}
