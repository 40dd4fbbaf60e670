//! Flink's LOG (natural logarithm; `LOG(base, x)`), POWER (always DOUBLE),
//! ROUND (HALF_UP on the decimal digits, keeping the argument's type) and
//! TRUNCATE (toward zero).
//!
//! Like Java's `BigDecimal.valueOf(double)`, ROUND and TRUNCATE of a
//! DOUBLE work on its shortest decimal form, so `ROUND(2.675, 2)` is 2.68.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Decimal128Type, Float32Type, Float64Type, Int64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::util::{arity, arrays, expect, finish, map_all, to_f64, to_i64, Udf};

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new("log", coerce_f64, ret_log, log).build(),
        Udf::new("power", coerce_f64, ret_power, power)
            .aliases(&["pow"])
            .build(),
        Udf::new("round", coerce_round, ret_round, round).build(),
        Udf::new("truncate", coerce_round, ret_truncate, truncate).build(),
    ]
}

fn coerce_f64(t: &[DataType]) -> Vec<DataType> {
    map_all(t, to_f64)
}

fn ret_log(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("log", t, 1, 2)?;
    (0..t.len()).try_for_each(|i| expect("log", t, i, &DataType::Float64))?;
    Ok(DataType::Float64)
}

fn ret_power(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("power", t, 2, 2)?;
    (0..2).try_for_each(|i| expect("power", t, i, &DataType::Float64))?;
    Ok(DataType::Float64)
}

fn f64s(a: &ArrayRef) -> &Float64Array {
    a.as_primitive::<Float64Type>()
}

fn log(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let out: Float64Array = if a.len() == 1 {
        f64s(&a[0]).unary(f64::ln)
    } else {
        arrow::compute::binary(f64s(&a[0]), f64s(&a[1]), |base, x| x.ln() / base.ln())?
    };
    finish(args, Arc::new(out))
}

fn power(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let out: Float64Array = arrow::compute::binary(f64s(&a[0]), f64s(&a[1]), f64::powf)?;
    finish(args, Arc::new(out))
}

fn coerce_round(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| match (i, t) {
            (0, DataType::Null) => DataType::Float64,
            (0, DataType::Float16) => DataType::Float32,
            (0, t) => t.clone(),
            (_, t) => to_i64(t),
        })
        .collect()
}

fn check_round(name: &str, t: &[DataType]) -> Result<()> {
    arity(name, t, 1, 2)?;
    if t.len() == 2 {
        expect(name, t, 1, &DataType::Int64)?;
    }
    if t[0].is_integer() || matches!(t[0], DataType::Float32 | DataType::Float64) {
        return Ok(());
    }
    match t[0] {
        DataType::Decimal128(_, _) => Ok(()),
        ref other => plan_err!(
            "{}: argument 1 must be a number, got {}",
            name.to_ascii_uppercase(),
            sluice_sql::types::sql_type_name(other)
        ),
    }
}

/// The literal number of digits (0 without a second argument).
fn digits(s: &[Option<&ScalarValue>], n_args: usize) -> Option<i64> {
    if n_args == 1 {
        return Some(0);
    }
    match s.get(1).copied().flatten() {
        Some(ScalarValue::Int64(Some(d))) => Some(*d),
        _ => None,
    }
}

/// Flink's result type for ROUND/TRUNCATE of DECIMAL(p, s) to `r` digits.
fn decimal_type(p: u8, s: i8, r: Option<i64>, rounding: bool) -> DataType {
    let (p, s) = (i64::from(p), i64::from(s));
    let extra = i64::from(rounding);
    match r {
        Some(r) if r < s && r < 0 => DataType::Decimal128((1 + p - s).clamp(1, 38) as u8, 0),
        Some(r) if r < s => DataType::Decimal128((extra + p - s + r).clamp(1, 38) as u8, r as i8),
        _ => DataType::Decimal128(p as u8, s as i8),
    }
}

fn ret_round(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check_round("round", t)?;
    Ok(match t[0] {
        DataType::Decimal128(p, sc) => decimal_type(p, sc, digits(s, t.len()), true),
        ref other => other.clone(),
    })
}

fn ret_truncate(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check_round("truncate", t)?;
    Ok(match t[0] {
        DataType::Decimal128(p, sc) => decimal_type(p, sc, digits(s, t.len()), true),
        ref other => other.clone(),
    })
}

/// Round (HALF_UP) or truncate (DOWN) an unscaled decimal value `v` at
/// scale `s` to `r` digits, returning the unscaled value at scale `out_s`.
fn scale_decimal(v: i128, s: i64, r: i64, out_s: i64, half_up: bool) -> Option<i128> {
    let drop = s - r;
    let kept = if drop <= 0 {
        v
    } else {
        let f = 10_i128.checked_pow(u32::try_from(drop).ok()?)?;
        let (q, rem) = (v / f, v % f);
        let bump = half_up && rem.unsigned_abs() * 2 >= f.unsigned_abs();
        q + if bump { v.signum() } else { 0 }
    };
    // `kept` has scale r; bring it to out_s.
    let shift = out_s - r.min(s);
    if shift >= 0 {
        kept.checked_mul(10_i128.checked_pow(u32::try_from(shift).ok()?)?)
    } else {
        Some(kept / 10_i128.checked_pow(u32::try_from(-shift).ok()?)?)
    }
}

/// Round or truncate a double through its shortest decimal form.
pub(crate) fn scale_f64(x: f64, r: i64, half_up: bool) -> f64 {
    if !x.is_finite() || r > 300 {
        return x;
    }
    // Past every digit a double can have: nothing is kept.
    if r < -400 {
        return 0.0;
    }
    // Shortest round-trip digits, as Java's Double.toString.
    let e = format!("{x:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    // value = 0.d1d2d3... * 10^(exp + 1); keep `exp + 1 + r` digits.
    let keep = exp.saturating_add(1).saturating_add(r);
    if keep >= digits.len() as i64 {
        return x;
    }
    let mut kept: i128 = 0;
    for d in digits.iter().take(keep.max(0) as usize) {
        kept = kept.saturating_mul(10).saturating_add(i128::from(*d));
    }
    let next = if keep >= 0 { digits[keep as usize] } else { 0 };
    if half_up && next >= 5 {
        kept += 1;
    }
    let v: f64 = format!("{}{kept}e{}", if negative { "-" } else { "" }, -r)
        .parse()
        .unwrap_or(x);
    // BigDecimal has no negative zero.
    if v == 0.0 {
        0.0
    } else {
        v
    }
}

/// Round or truncate an integer to `r` digits (only negative `r` changes it).
fn scale_int(v: i64, r: i64, half_up: bool) -> i64 {
    if r >= 0 {
        return v;
    }
    let Some(f) = 10_i128.checked_pow((-r) as u32) else {
        return 0;
    };
    let v = i128::from(v);
    let q = v / f;
    let bump = half_up && (v % f).unsigned_abs() * 2 >= f.unsigned_abs();
    // Java narrows the BigDecimal result with longValue() (wrapping).
    ((q + if bump { v.signum() } else { 0 }) * f) as i64
}

fn apply(args: &ScalarFunctionArgs, half_up: bool) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let n = a[0].len();
    let r: Int64Array = if a.len() > 1 {
        a[1].as_primitive::<Int64Type>().clone()
    } else {
        Int64Array::from(vec![0; n])
    };
    let t = a[0].data_type().clone();
    let out: ArrayRef = match &t {
        DataType::Float64 => Arc::new(arrow::compute::binary::<_, _, _, Float64Type>(
            f64s(&a[0]),
            &r,
            |x, r| scale_f64(x, r, half_up),
        )?),
        DataType::Float32 => Arc::new(arrow::compute::binary::<_, _, _, Float32Type>(
            a[0].as_primitive::<Float32Type>(),
            &r,
            |x, r| scale_f64(f64::from(x), r, half_up) as f32,
        )?),
        DataType::Decimal128(_, s) => {
            let DataType::Decimal128(p_out, s_out) = args.return_type().clone() else {
                return exec_err!("ROUND: unexpected result type {}", args.return_type());
            };
            let d = a[0].as_primitive::<Decimal128Type>();
            let out: Decimal128Array = (0..n)
                .map(|i| {
                    if d.is_null(i) || r.is_null(i) {
                        return None;
                    }
                    scale_decimal(
                        d.value(i),
                        i64::from(*s),
                        r.value(i),
                        i64::from(s_out),
                        half_up,
                    )
                })
                .collect();
            Arc::new(out.with_precision_and_scale(p_out, s_out)?)
        }
        t if t.is_integer() => {
            let v = arrow::compute::cast(&a[0], &DataType::Int64)?;
            let out: Int64Array =
                arrow::compute::binary(v.as_primitive::<Int64Type>(), &r, |x, r| {
                    scale_int(x, r, half_up)
                })?;
            // Back to the argument's type (a result out of its range is
            // NULL; Java's narrowing would wrap).
            arrow::compute::cast(&out, t)?
        }
        other => return exec_err!("ROUND: unsupported type {other}"),
    };
    finish(args, out)
}

fn round(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    apply(args, true)
}

fn truncate(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    apply(args, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_like_bigdecimal() {
        // Flink ScalarFunctionsTest.testRound / testTruncate.
        assert_eq!(scale_f64(1.2345, 3, true), 1.235);
        assert_eq!(scale_f64(1.2345, 0, true), 1.0);
        assert_eq!(scale_f64(-125.315, 2, true), -125.32);
        assert_eq!(scale_f64(2.675, 2, true), 2.68);
        assert_eq!(scale_f64(0.46, 1, false), 0.4);
        assert!(scale_f64(-0.123, 0, false).is_sign_positive());
        assert_eq!(scale_f64(42.324, -1, false), 40.0);
        assert_eq!(scale_f64(5.0, i64::MIN, true), 0.0);
        assert_eq!(scale_f64(5.0, i64::MAX, true), 5.0);
        assert_eq!(scale_f64(1e-20, 2, true), 0.0);
        assert_eq!(scale_int(123, -2, true), 100);
        assert_eq!(scale_int(150, -2, true), 200);
        assert_eq!(scale_int(-150, -2, true), -200);
        assert_eq!(scale_int(42, -1, false), 40);
        assert_eq!(scale_int(42, -3, false), 0);
        // 1.2345 as DECIMAL(5, 4) to 3 digits: 1.235 at scale 3.
        assert_eq!(scale_decimal(12345, 4, 3, 3, true), Some(1235));
        assert_eq!(scale_decimal(12345, 4, 0, 0, true), Some(1));
        assert_eq!(scale_decimal(-123, 3, 2, 2, false), Some(-12));
        assert_eq!(
            decimal_type(5, 4, Some(3), true),
            DataType::Decimal128(5, 3)
        );
    }
}
