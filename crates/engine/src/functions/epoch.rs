//! Flink's conversions between epoch numbers and time: TO_TIMESTAMP_LTZ
//! (epoch seconds or milliseconds, or text), UNIX_TIMESTAMP, FROM_UNIXTIME.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Builder};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, Volatility};

use super::datetime::{
    check_literal_pattern, check_strings, coerce_strings, format_rows, parse_timestamps, pattern,
    timestamp_ltz, MAX_MILLIS, MIN_MILLIS,
};
use super::java_format::DateTime;
use super::java_time::Flavor;
use super::util::{arity, arrays, expect, finish, i64_arg, str_arg, to_i64, to_utf8, Cache, Udf};

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new("to_timestamp_ltz", coerce_ltz, ret_ltz, to_timestamp_ltz).build(),
        Udf::with_volatility(
            "unix_timestamp",
            Volatility::Volatile,
            coerce_strings,
            ret_unix_timestamp,
            unix_timestamp,
        )
        .build(),
        Udf::new(
            "from_unixtime",
            coerce_from_unixtime,
            ret_from_unixtime,
            from_unixtime,
        )
        .build(),
    ]
}

fn coerce_ltz(t: &[DataType]) -> Vec<DataType> {
    match t.first() {
        Some(first) if first.is_numeric() => {
            let mut out = vec![match first {
                DataType::Decimal128(_, _) => first.clone(),
                DataType::Decimal256(_, _) => DataType::Float64,
                t if t.is_integer() => DataType::Int64,
                _ => DataType::Float64,
            }];
            out.extend(t[1..].iter().map(to_i64));
            out
        }
        _ => coerce_strings(t),
    }
}

fn ret_ltz(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    let name = "to_timestamp_ltz";
    match t.first() {
        Some(DataType::Int64 | DataType::Float64 | DataType::Decimal128(_, _)) => {
            arity(name, t, 1, 2)?;
            if t.len() == 2 {
                expect(name, t, 1, &DataType::Int64)?;
            }
            match s.get(1).copied().flatten() {
                Some(ScalarValue::Int64(Some(p))) if *p != 0 && *p != 3 => {
                    return plan_err!("{}", precision_message(*p))
                }
                _ => {}
            }
        }
        _ => {
            check_strings(name, t, 1, 2)?;
            check_literal_pattern(name, s, 1, Flavor::Formatter)?;
        }
    }
    Ok(timestamp_ltz())
}

fn precision_message(p: i64) -> String {
    format!(
        "The precision value '{p}' for function TO_TIMESTAMP_LTZ(numeric, precision) is \
         unsupported, the supported value is '0' for second or '3' for millisecond."
    )
}

fn to_timestamp_ltz(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let tz = Some(Arc::from("UTC"));
    let ms: Vec<Option<i64>> = match a[0].data_type() {
        DataType::Utf8 => parse_timestamps("to_timestamp_ltz", &a)?,
        t => {
            let n = a[0].len();
            let precision = if a.len() > 1 {
                Some(i64_arg("to_timestamp_ltz", &a, 1)?)
            } else {
                None
            };
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let p = match precision {
                    Some(p) if p.is_null(i) => {
                        out.push(None);
                        continue;
                    }
                    Some(p) => p.value(i),
                    None => 3,
                };
                if p != 0 && p != 3 {
                    return exec_err!("{}", precision_message(p));
                }
                out.push(
                    if a[0].is_null(i) {
                        None
                    } else if *t == DataType::Int64 {
                        let v = a[0].as_primitive::<Int64Type>().value(i);
                        if p == 0 {
                            v.checked_mul(1000)
                        } else {
                            Some(v)
                        }
                    } else if let DataType::Decimal128(_, scale) = t {
                        // Flink: the decimal truncated to an integer first.
                        let v = a[0].as_primitive::<Decimal128Type>().value(i);
                        let whole = v / 10_i128.pow(u32::from(scale.unsigned_abs()));
                        i64::try_from(whole).ok().and_then(|w| {
                            if p == 0 {
                                w.checked_mul(1000)
                            } else {
                                Some(w)
                            }
                        })
                    } else {
                        let v = a[0].as_primitive::<Float64Type>().value(i);
                        // Java's (long) cast: toward zero, saturating, NaN = 0.
                        Some(if p == 0 {
                            (v * 1000.0) as i64
                        } else {
                            v as i64
                        })
                    }
                    .filter(|ms| (MIN_MILLIS..=MAX_MILLIS).contains(ms)),
                );
            }
            out
        }
    };
    let out = arrow::array::TimestampMillisecondArray::from(ms).with_timezone_opt(tz);
    finish(args, Arc::new(out))
}

fn ret_unix_timestamp(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check_strings("unix_timestamp", t, 0, 2)?;
    check_literal_pattern("unix_timestamp", s, 1, Flavor::Simple)?;
    Ok(DataType::Int64)
}

/// The current time in milliseconds.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn unix_timestamp(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    if args.args.is_empty() {
        return Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(
            now_millis().div_euclid(1000),
        ))));
    }
    let a = arrays(args)?;
    let s = str_arg("unix_timestamp", &a, 0)?;
    let formats = if a.len() > 1 {
        Some(str_arg("unix_timestamp", &a, 1)?)
    } else {
        None
    };
    let default = pattern("unix_timestamp", "yyyy-MM-dd HH:mm:ss", Flavor::Simple)?;
    let mut cache = Cache::default();
    let mut out = Int64Builder::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || formats.is_some_and(|f| f.is_null(i)) {
            out.append_null();
            continue;
        }
        let p = match formats {
            Some(f) => cache.get(f.value(i), |p| pattern("unix_timestamp", p, Flavor::Simple))?,
            None => &default,
        };
        // Flink: seconds (millis / 1000, toward zero); Long.MIN_VALUE when
        // the text does not parse.
        out.append_value(p.parse(s.value(i)).map_or(i64::MIN, |t| {
            let ms = t.secs * 1000 + i64::from(t.nanos / 1_000_000);
            ms / 1000
        }));
    }
    finish(args, Arc::new(out.finish()))
}

fn coerce_from_unixtime(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| {
            if i == 0 && t.is_numeric() {
                DataType::Int64
            } else {
                to_utf8(t)
            }
        })
        .collect()
}

fn ret_from_unixtime(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("from_unixtime", t, 1, 2)?;
    expect("from_unixtime", t, 0, &DataType::Int64)?;
    if t.len() == 2 {
        expect("from_unixtime", t, 1, &DataType::Utf8)?;
    }
    check_literal_pattern("from_unixtime", s, 1, Flavor::Simple)?;
    Ok(DataType::Utf8)
}

fn from_unixtime(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let secs = i64_arg("from_unixtime", &a, 0)?;
    let default = arrow::array::StringArray::from(vec!["yyyy-MM-dd HH:mm:ss"; secs.len()]);
    let patterns = if a.len() > 1 {
        str_arg("from_unixtime", &a, 1)?
    } else {
        &default
    };
    let out = format_rows("from_unixtime", patterns, Flavor::Simple, secs.len(), |i| {
        secs.is_valid(i)
            .then(|| DateTime::from_epoch(secs.value(i), 0))
    })?;
    finish(args, out)
}
