//! EXTRACT(unit FROM x) and its shorthands YEAR, QUARTER, MONTH, WEEK,
//! DAYOFYEAR, DAYOFMONTH, DAYOFWEEK, HOUR, MINUTE, SECOND, with Flink's
//! units and BIGINT results: DOW counts from Sunday = 1 (DataFusion's from
//! 0), ISODOW from Monday = 1, WEEK is the ISO week, MILLISECOND is the
//! millisecond of the second, EPOCH whole seconds. The SQL rewrite turns
//! `EXTRACT(DOW FROM x)` into `__flink_extract('DOW', x)`.

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::{date_part, DatePart};
use arrow::datatypes::{DataType, Date32Type, Int64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::datetime::{millis_of, timestamp_values};
use super::util::{arity, arrays, finish, literal_str, to_utf8, Udf};

/// Flink's EXTRACT units (the rewrite of `EXTRACT(unit FROM x)` knows them too).
use sluice_sql::flink_calls::EXTRACT_UNITS as UNITS;

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new("year", coerce, ret_date, year).build(),
        Udf::new("quarter", coerce, ret_date, quarter).build(),
        Udf::new("month", coerce, ret_date, month).build(),
        Udf::new("week", coerce, ret_date, week).build(),
        Udf::new("dayofyear", coerce, ret_date, dayofyear).build(),
        Udf::new("dayofmonth", coerce, ret_date, dayofmonth).build(),
        Udf::new("dayofweek", coerce, ret_date, dayofweek).build(),
        Udf::new("hour", coerce, ret_time, hour).build(),
        Udf::new("minute", coerce, ret_time, minute).build(),
        Udf::new("second", coerce, ret_time, second).build(),
        Udf::new("__flink_extract", coerce_extract, ret_extract, extract).build(),
    ]
}

fn coerce(t: &[DataType]) -> Vec<DataType> {
    t.to_vec()
}

fn check(t: &[DataType], time_ok: bool) -> Result<DataType> {
    arity("date part", t, 1, 1)?;
    match &t[0] {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => Ok(DataType::Int64),
        DataType::Time32(_) | DataType::Time64(_) if time_ok => Ok(DataType::Int64),
        other => plan_err!(
            "expected a DATE or TIMESTAMP{}, got {}",
            if time_ok { " or TIME" } else { "" },
            sluice_sql::types::sql_type_name(other)
        ),
    }
}

fn ret_date(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check(t, false)
}

fn ret_time(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check(t, true)
}

fn coerce_extract(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| if i == 0 { to_utf8(t) } else { t.clone() })
        .collect()
}

fn ret_extract(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("extract", t, 2, 2)?;
    match literal_str(s, 0) {
        Some(Some(u)) if UNITS.contains(&u) => {}
        Some(Some(u)) => return plan_err!("EXTRACT: unsupported unit {u}"),
        _ => return plan_err!("EXTRACT: the unit must be a keyword such as YEAR"),
    }
    check(&t[1..], true)
}

/// The unit of `x` (a date, time or timestamp) as BIGINT.
fn unit_of(x: &ArrayRef, unit: &str) -> Result<ArrayRef> {
    let p = match unit {
        "YEAR" => DatePart::Year,
        "QUARTER" => DatePart::Quarter,
        "MONTH" => DatePart::Month,
        "WEEK" => DatePart::Week,
        "DAY" => DatePart::Day,
        "DOY" => DatePart::DayOfYear,
        "DOW" => DatePart::DayOfWeekSunday1,
        "ISODOW" => DatePart::DayOfWeekMonday1,
        "ISOYEAR" => DatePart::YearISO,
        "HOUR" => DatePart::Hour,
        "MINUTE" => DatePart::Minute,
        "SECOND" => DatePart::Second,
        "MILLISECOND" => DatePart::Millisecond,
        "MICROSECOND" => DatePart::Microsecond,
        "NANOSECOND" => DatePart::Nanosecond,
        "EPOCH" => return epoch(x),
        "DECADE" | "CENTURY" | "MILLENNIUM" => {
            let y = unit_of(x, "YEAR")?;
            let y = y.as_primitive::<Int64Type>();
            // Java integer division, as Flink's julianExtract.
            let out: Int64Array = match unit {
                "DECADE" => y.unary(|y| y / 10),
                "CENTURY" => y.unary(|y| {
                    if y > 0 {
                        (y + 99) / 100
                    } else {
                        (y - 99) / 100
                    }
                }),
                _ => y.unary(|y| {
                    if y > 0 {
                        (y + 999) / 1000
                    } else {
                        (y - 999) / 1000
                    }
                }),
            };
            return Ok(std::sync::Arc::new(out));
        }
        other => return exec_err!("EXTRACT: unsupported unit {other}"),
    };
    Ok(arrow::compute::cast(&date_part(x, p)?, &DataType::Int64)?)
}

/// Seconds since the epoch (toward zero, as Flink's `utcTs / 1000`).
fn epoch(x: &ArrayRef) -> Result<ArrayRef> {
    let out: Int64Array = match x.data_type() {
        DataType::Date32 => x
            .as_primitive::<Date32Type>()
            .unary(|d| i64::from(d) * 86_400),
        DataType::Timestamp(_, _) => {
            let (v, unit) = timestamp_values(x)?;
            v.unary(|v| millis_of(v, &unit) / 1000)
        }
        other => return exec_err!("EXTRACT: EPOCH of {other} is not supported"),
    };
    Ok(std::sync::Arc::new(out))
}

fn extract(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    match a[0].as_string_opt::<i32>() {
        Some(u) if !u.is_empty() && u.is_valid(0) => finish(args, unit_of(&a[1], u.value(0))?),
        _ => exec_err!("EXTRACT: missing unit"),
    }
}

fn part(args: &ScalarFunctionArgs, unit: &str) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    finish(args, unit_of(&a[0], unit)?)
}

fn year(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    part(args, "YEAR")
}

fn quarter(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    part(args, "QUARTER")
}

fn month(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    part(args, "MONTH")
}

fn week(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    part(args, "WEEK")
}

fn dayofyear(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    part(args, "DOY")
}

fn dayofmonth(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    part(args, "DAY")
}

fn dayofweek(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    part(args, "DOW")
}

fn hour(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    part(args, "HOUR")
}

fn minute(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    part(args, "MINUTE")
}

fn second(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    part(args, "SECOND")
}
