//! TIMESTAMPADD, TIMESTAMPDIFF and FLOOR/CEIL(time TO unit), with Flink's
//! (Calcite's) semantics. The unit arrives as a string literal: the SQL
//! rewrite in `sluice_sql::flink_calls` turns the keyword into one, and
//! FLOOR/CEIL(x TO unit) into `__flink_floor('UNIT', x)` / `__flink_ceil`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int32Array, Int64Array};
use arrow::datatypes::{DataType, Date32Type, Int64Type, TimeUnit};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::calendar::{
    checked_add_months, date_floor, per_second, subtract_months, Unit, MILLIS_PER_DAY,
};
use super::datetime::{millis_of, timestamp_values};
use super::util::{arrays, finish, i64_arg, literal_str, to_i64, to_utf8, upper, Udf};

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new("timestampadd", coerce_add, ret_add, timestampadd).build(),
        Udf::new("timestampdiff", coerce_diff, ret_diff, timestampdiff).build(),
        Udf::new("__flink_floor", coerce_diff, ret_floor, floor).build(),
        Udf::new("__flink_ceil", coerce_diff, ret_floor, ceil).build(),
    ]
}

fn is_time(t: &DataType) -> bool {
    matches!(t, DataType::Time32(_) | DataType::Time64(_))
}

fn is_temporal(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, _) | DataType::Date32) || is_time(t)
}

/// The literal unit of argument 0.
fn unit(name: &str, s: &[Option<&ScalarValue>], allowed: &[Unit]) -> Result<Unit> {
    let shown = match name {
        "__flink_floor" => "FLOOR".to_string(),
        "__flink_ceil" => "CEIL".to_string(),
        n => upper(n),
    };
    let Some(Some(text)) = literal_str(s, 0) else {
        return plan_err!("{shown}: the time unit must be a keyword such as SECOND or DAY");
    };
    match Unit::parse(text) {
        Some(u) if allowed.contains(&u) => Ok(u),
        _ => plan_err!("{shown}: unsupported time unit {text}"),
    }
}

/// Argument 0 at run time (the planner checked it is a known literal).
fn unit_arg(name: &str, a: &[ArrayRef]) -> Result<Unit> {
    let unit = a[0]
        .as_string_opt::<i32>()
        .filter(|s| !s.is_empty() && s.is_valid(0))
        .and_then(|s| Unit::parse(s.value(0)));
    match unit {
        Some(u) => Ok(u),
        None => exec_err!("{}: bad time unit", upper(name)),
    }
}

const ADD_UNITS: [Unit; 8] = [
    Unit::Second,
    Unit::Minute,
    Unit::Hour,
    Unit::Day,
    Unit::Week,
    Unit::Month,
    Unit::Quarter,
    Unit::Year,
];

fn coerce_add(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| match i {
            0 => to_utf8(t),
            1 => to_i64(t),
            _ => t.clone(),
        })
        .collect()
}

fn ret_add(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    super::util::arity("timestampadd", t, 3, 3)?;
    let u = unit("timestampadd", s, &ADD_UNITS)?;
    super::util::expect("timestampadd", t, 1, &DataType::Int64)?;
    Ok(match &t[2] {
        DataType::Date32 if u.fixed_millis().is_some_and(|ms| ms < MILLIS_PER_DAY) => {
            DataType::Timestamp(TimeUnit::Millisecond, None)
        }
        t if is_temporal(t) => t.clone(),
        other => {
            return plan_err!(
                "TIMESTAMPADD: argument 3 must be a TIMESTAMP, DATE or TIME, got {}",
                sluice_sql::types::sql_type_name(other)
            )
        }
    })
}

/// Ticks per day of a time or timestamp type.
fn ticks_per_day(t: &DataType) -> i64 {
    let unit = match t {
        DataType::Timestamp(u, _) | DataType::Time32(u) | DataType::Time64(u) => *u,
        _ => TimeUnit::Second,
    };
    per_second(&unit) * 86_400
}

/// `ms` milliseconds in ticks of a type with `per_day` ticks a day
/// (rounded down: a millisecond is 0 seconds).
fn ticks_of(ms: i64, per_day: i64) -> i64 {
    if per_day >= MILLIS_PER_DAY {
        ms * (per_day / MILLIS_PER_DAY)
    } else {
        ms / (MILLIS_PER_DAY / per_day)
    }
}

/// `v` (ticks of a type with `per_day` ticks a day) plus `n` units.
fn add_ticks(v: i64, n: i64, u: Unit, per_day: i64) -> Option<i64> {
    match (u.fixed_millis(), u.months()) {
        (Some(ms), _) => v.checked_add(n.checked_mul(ticks_of(ms, per_day))?),
        (None, Some(m)) => {
            let (day, rem) = (v.div_euclid(per_day), v.rem_euclid(per_day));
            checked_add_months(day, n.checked_mul(m)?)?
                .checked_mul(per_day)?
                .checked_add(rem)
        }
        (None, None) => None,
    }
}

fn timestampadd(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let u = unit_arg("timestampadd", &a)?;
    let n = i64_arg("timestampadd", &a, 1)?;
    let t = a[2].data_type().clone();
    let out_type = args.return_type().clone();
    let overflow = || exec_err!("TIMESTAMPADD: result out of range");
    let out: ArrayRef = match (&t, &out_type) {
        (DataType::Date32, DataType::Date32) => {
            let d = a[2].as_primitive::<Date32Type>();
            let mut out = Vec::with_capacity(d.len());
            for i in 0..d.len() {
                if d.is_null(i) || n.is_null(i) {
                    out.push(None);
                    continue;
                }
                match add_ticks(i64::from(d.value(i)), n.value(i), u, 1)
                    .and_then(|v| i32::try_from(v).ok())
                {
                    Some(v) => out.push(Some(v)),
                    None => return overflow(),
                }
            }
            Arc::new(Date32Array::from(out))
        }
        (DataType::Date32, _) => {
            let d = a[2].as_primitive::<Date32Type>();
            let mut out = Vec::with_capacity(d.len());
            for i in 0..d.len() {
                if d.is_null(i) || n.is_null(i) {
                    out.push(None);
                    continue;
                }
                let ms = i64::from(d.value(i)) * MILLIS_PER_DAY;
                match add_ticks(ms, n.value(i), u, MILLIS_PER_DAY) {
                    Some(v) => out.push(Some(v)),
                    None => return overflow(),
                }
            }
            Arc::new(arrow::array::TimestampMillisecondArray::from(out))
        }
        _ => {
            let v = arrow::compute::cast(&a[2], &DataType::Int64)?;
            let v = v.as_primitive::<Int64Type>();
            let per_day = ticks_per_day(&t);
            let mut out = Vec::with_capacity(v.len());
            for i in 0..v.len() {
                if v.is_null(i) || n.is_null(i) {
                    out.push(None);
                    continue;
                }
                let r = if is_time(&t) {
                    // TIME wraps around midnight; days and months leave it.
                    match u.fixed_millis() {
                        Some(ms) if ms < MILLIS_PER_DAY => {
                            add_ticks(v.value(i), n.value(i) % (MILLIS_PER_DAY / ms), u, per_day)
                                .map(|x| x.rem_euclid(per_day))
                        }
                        _ => Some(v.value(i)),
                    }
                } else {
                    add_ticks(v.value(i), n.value(i), u, per_day)
                };
                match r {
                    Some(x) => out.push(Some(x)),
                    None => return overflow(),
                }
            }
            arrow::compute::cast(&Int64Array::from(out), &t)?
        }
    };
    finish(args, out)
}

fn coerce_diff(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| if i == 0 { to_utf8(t) } else { t.clone() })
        .collect()
}

fn ret_diff(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    super::util::arity("timestampdiff", t, 3, 3)?;
    unit("timestampdiff", s, &ADD_UNITS)?;
    for (i, t) in t.iter().enumerate().skip(1) {
        if !is_temporal(t) {
            return plan_err!(
                "TIMESTAMPDIFF: argument {} must be a TIMESTAMP, DATE or TIME, got {}",
                i + 1,
                sluice_sql::types::sql_type_name(t)
            );
        }
    }
    let ltz = |t: &DataType| matches!(t, DataType::Timestamp(_, Some(_)));
    if ltz(&t[1]) != ltz(&t[2]) {
        return plan_err!("TIMESTAMPDIFF: TIMESTAMP_LTZ only supports diff between the same type");
    }
    Ok(DataType::Int32)
}

/// Milliseconds since the epoch of a timestamp, date or time (a TIME is a
/// time on 1970-01-01, as in Flink).
fn as_millis(a: &ArrayRef) -> Result<Int64Array> {
    Ok(match a.data_type() {
        DataType::Date32 => a
            .as_primitive::<Date32Type>()
            .unary(|d| i64::from(d) * MILLIS_PER_DAY),
        DataType::Timestamp(_, _) => {
            let (v, unit) = timestamp_values(a)?;
            v.unary(|x| millis_of(x, &unit))
        }
        t => {
            let unit = match t {
                DataType::Time32(u) | DataType::Time64(u) => *u,
                _ => return exec_err!("expected a time, got {t}"),
            };
            let v = arrow::compute::cast(a, &DataType::Int64)?;
            v.as_primitive::<Int64Type>().unary(|x| millis_of(x, &unit))
        }
    })
}

fn timestampdiff(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let u = unit_arg("timestampdiff", &a)?;
    let (t1, t2) = (as_millis(&a[1])?, as_millis(&a[2])?);
    let out: Int32Array = match (u.fixed_millis(), u.months()) {
        // Java int arithmetic: truncated toward zero, then narrowed.
        (Some(ms), _) => arrow::compute::binary(&t1, &t2, |x, y| (y.wrapping_sub(x) / ms) as i32)?,
        (None, Some(m)) => {
            arrow::compute::binary(&t1, &t2, |x, y| (subtract_months(y, x) / m) as i32)?
        }
        (None, None) => return exec_err!("TIMESTAMPDIFF: bad time unit"),
    };
    finish(args, Arc::new(out))
}

const FLOOR_UNITS: [Unit; 12] = [
    Unit::Millisecond,
    Unit::Second,
    Unit::Minute,
    Unit::Hour,
    Unit::Day,
    Unit::Week,
    Unit::Month,
    Unit::Quarter,
    Unit::Year,
    Unit::Decade,
    Unit::Century,
    Unit::Millennium,
];

fn ret_floor(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    super::util::arity("floor", t, 2, 2)?;
    unit("__flink_floor", s, &FLOOR_UNITS)?;
    if !is_temporal(&t[1]) {
        return plan_err!(
            "FLOOR/CEIL(... TO unit): the value must be a TIMESTAMP, DATE or TIME, got {}",
            sluice_sql::types::sql_type_name(&t[1])
        );
    }
    Ok(t[1].clone())
}

fn round_to(args: &ScalarFunctionArgs, floor: bool) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let u = unit_arg("floor", &a)?;
    let t = a[1].data_type().clone();
    let out: ArrayRef = if t == DataType::Date32 {
        let d = a[1].as_primitive::<Date32Type>();
        let out: Date32Array = if u.fixed_millis().is_some_and(|ms| ms < MILLIS_PER_DAY) {
            d.clone()
        } else {
            d.unary(|x| date_floor(u, i64::from(x), floor) as i32)
        };
        Arc::new(out)
    } else {
        let per_day = ticks_per_day(&t);
        let v = arrow::compute::cast(&a[1], &DataType::Int64)?;
        let v = v.as_primitive::<Int64Type>();
        let out: Int64Array = match u.fixed_millis() {
            Some(ms) if ms <= MILLIS_PER_DAY => {
                let step = ticks_of(ms, per_day);
                v.unary(|x| {
                    let rem = if step > 0 { x.rem_euclid(step) } else { 0 };
                    let r = if floor || rem == 0 {
                        x - rem
                    } else {
                        x - rem + step
                    };
                    if is_time(&t) {
                        r.rem_euclid(per_day)
                    } else {
                        r
                    }
                })
            }
            _ if is_time(&t) => v.clone(),
            _ => v.unary(|x| date_floor(u, x.div_euclid(per_day), floor) * per_day),
        };
        arrow::compute::cast(&out, &t)?
    };
    finish(args, out)
}

fn floor(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    round_to(args, true)
}

fn ceil(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    round_to(args, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::calendar::days_from_civil;

    fn ms(y: i64, m: u32, d: u32, hh: i64, mm: i64, ss: i64) -> i64 {
        days_from_civil(y, m, d) * MILLIS_PER_DAY + (hh * 3600 + mm * 60 + ss) * 1000
    }

    #[test]
    fn adds_units() {
        // Flink ScalarFunctionsTest.testTimestampAdd, 2017-11-29 22:58:58.998.
        let t = ms(2017, 11, 29, 22, 58, 58) + 998;
        let add = |n, u| add_ticks(t, n, u, MILLIS_PER_DAY);
        assert_eq!(
            add(1, Unit::Quarter),
            Some(ms(2018, 2, 28, 22, 58, 58) + 998)
        );
        assert_eq!(
            add(-61, Unit::Quarter),
            Some(ms(2002, 8, 29, 22, 58, 58) + 998)
        );
        assert_eq!(
            add(-1000, Unit::Week),
            Some(ms(1998, 9, 30, 22, 58, 58) + 998)
        );
        assert_eq!(
            add(-1000, Unit::Minute),
            Some(ms(2017, 11, 29, 6, 18, 58) + 998)
        );
        assert_eq!(add(3, Unit::Hour), Some(ms(2017, 11, 30, 1, 58, 58) + 998));
    }
}
