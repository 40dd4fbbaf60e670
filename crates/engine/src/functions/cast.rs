//! CAST(x AS STRING) in Flink's format, as an analyzer rule that runs after
//! DataFusion's (so every type is known, implicit casts included): a cast
//! or TRY_CAST to a string type from a timestamp, date, time, boolean or
//! floating-point value becomes a call of `__flink_to_string`.
//!
//! * TIMESTAMP(p) / TIMESTAMP_LTZ(p): `2024-01-01 00:00:01.000`, as many
//!   fraction digits as the precision (0, 3, 6, 9), UTC without a zone.
//! * DATE: `2024-01-01`; TIME: `12:30:00` (a fraction only when non-zero).
//! * BOOLEAN: `TRUE` / `FALSE`.
//! * DOUBLE / FLOAT: Java's `Double.toString` / `Float.toString` (`1.0E10`,
//!   `0.001`, `NaN`, `Infinity`).
//!
//! Integers and decimals (whose scale is kept) already print as in Flink.

use std::sync::{Arc, OnceLock};

use arrow::array::{Array, AsArray, StringBuilder};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Float32Type, Float64Type, Int64Type, TimeUnit,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{exec_err, DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF,
};
use datafusion::optimizer::AnalyzerRule;

use super::calendar::{split, SECS_PER_DAY};
use super::java_format::DateTime;
use super::util::{arity, arrays, finish, Udf};

/// The analyzer rule; append it after DataFusion's rules.
#[derive(Debug, Default)]
pub struct FlinkCastRule;

/// The function the rule calls.
pub(crate) fn to_string_udf() -> Arc<ScalarUDF> {
    static UDF: OnceLock<Arc<ScalarUDF>> = OnceLock::new();
    Arc::clone(UDF.get_or_init(|| {
        Arc::new(Udf::new("__flink_to_string", |t| t.to_vec(), ret, to_string).build())
    }))
}

fn ret(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("__flink_to_string", t, 1, 1)?;
    Ok(DataType::Utf8)
}

fn flink_formatted(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp(_, _)
            | DataType::Date32
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Boolean
            | DataType::Float32
            | DataType::Float64
    )
}

impl AnalyzerRule for FlinkCastRule {
    fn name(&self) -> &str {
        "flink_cast_to_string"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let schema = if plan.inputs().is_empty() {
                plan.schema().as_ref().clone()
            } else {
                merge_schema(&plan.inputs())
            };
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|e| {
                let name = names.save(&e);
                e.transform_up(|e| rewrite(e, &schema))
                    .map(|t| t.update_data(|e| name.restore(e)))
            })
        })
        .data()
    }
}

fn rewrite(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let (inner, target) = match &e {
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            (expr, field.data_type())
        }
        _ => return Ok(Transformed::no(e)),
    };
    if !matches!(
        target,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    ) {
        return Ok(Transformed::no(e));
    }
    match inner.get_type(schema) {
        Ok(from) if flink_formatted(&from) => {}
        _ => return Ok(Transformed::no(e)),
    }
    let call = Expr::ScalarFunction(ScalarFunction::new_udf(
        to_string_udf(),
        vec![inner.as_ref().clone()],
    ));
    Ok(Transformed::yes(if *target == DataType::Utf8 {
        call
    } else {
        Expr::Cast(Cast::new(Box::new(call), target.clone()))
    }))
}

/// Java's `Double.toString` from Rust's shortest `{:e}` digits.
pub(crate) fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    java_digits(&format!("{x:e}"))
}

/// Java's `Float.toString`.
pub(crate) fn java_float(x: f32) -> String {
    if !x.is_finite() || x == 0.0 {
        return java_double(f64::from(x));
    }
    java_digits(&format!("{x:e}"))
}

fn java_digits(e: &str) -> String {
    let (mantissa, exp) = e.split_once('e').unwrap_or((e, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if (-3..7).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            (0..-exp - 1).for_each(|_| out.push('0'));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                (digits.len()..int_len).for_each(|_| out.push('0'));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        out.push_str(if digits.len() > 1 { &digits[1..] } else { "0" });
        out.push('E');
        out.push_str(&exp.to_string());
    }
    out
}

fn push_date(out: &mut String, t: &DateTime) {
    out.push_str(&format!("{:04}-{:02}-{:02}", t.year, t.month, t.day));
}

fn push_time(out: &mut String, t: &DateTime) {
    out.push_str(&format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second));
}

/// `yyyy-MM-dd HH:mm:ss[.fff]`, as many fraction digits as the unit has.
pub(crate) fn format_timestamp(v: i64, unit: &TimeUnit, out: &mut String) {
    let (s, ns) = split(v, unit);
    let t = DateTime::from_epoch(s, ns);
    push_date(out, &t);
    out.push(' ');
    push_time(out, &t);
    let digits = match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    };
    if digits > 0 {
        out.push('.');
        out.push_str(&format!("{ns:09}")[..digits]);
    }
}

/// `HH:mm:ss`, with the fraction only when it is not zero.
fn format_time(v: i64, unit: &TimeUnit, out: &mut String) {
    let (s, ns) = split(v, unit);
    push_time(out, &DateTime::from_epoch(s, ns));
    if ns > 0 {
        out.push('.');
        out.push_str(format!("{ns:09}").trim_end_matches('0'));
    }
}

fn to_string(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let col = &a[0];
    let n = col.len();
    let mut out = StringBuilder::with_capacity(n, n * 24);
    let mut buf = String::new();
    let mut each = |f: &dyn Fn(usize, &mut String)| {
        for i in 0..n {
            if col.is_null(i) {
                out.append_null();
            } else {
                buf.clear();
                f(i, &mut buf);
                out.append_value(&buf);
            }
        }
    };
    match col.data_type() {
        DataType::Boolean => {
            let b = col.as_boolean();
            each(&|i, o| o.push_str(if b.value(i) { "TRUE" } else { "FALSE" }));
        }
        DataType::Float64 => {
            let v = col.as_primitive::<Float64Type>();
            each(&|i, o| o.push_str(&java_double(v.value(i))));
        }
        DataType::Float32 => {
            let v = col.as_primitive::<Float32Type>();
            each(&|i, o| o.push_str(&java_float(v.value(i))));
        }
        DataType::Date32 => {
            let v = col.as_primitive::<Date32Type>();
            each(&|i, o| {
                let secs = i64::from(v.value(i)) * SECS_PER_DAY;
                push_date(o, &DateTime::from_epoch(secs, 0))
            });
        }
        DataType::Date64 => {
            let v = col.as_primitive::<Date64Type>();
            each(&|i, o| push_date(o, &DateTime::from_epoch(v.value(i).div_euclid(1000), 0)));
        }
        t @ (DataType::Timestamp(unit, _) | DataType::Time32(unit) | DataType::Time64(unit)) => {
            let is_time = !matches!(t, DataType::Timestamp(_, _));
            let v = arrow::compute::cast(col, &DataType::Int64)?;
            let v = v.as_primitive::<Int64Type>();
            each(&|i, o| {
                if is_time {
                    format_time(v.value(i), unit, o)
                } else {
                    format_timestamp(v.value(i), unit, o)
                }
            });
        }
        other => return exec_err!("CAST: cannot format {other} as a string"),
    }
    finish(args, Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_number_strings() {
        assert_eq!(java_double(1e10), "1.0E10");
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(100.0), "100.0");
        assert_eq!(java_double(1234567.0), "1234567.0");
        assert_eq!(java_double(12345678.0), "1.2345678E7");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(-1.5e-7), "-1.5E-7");
        assert_eq!(java_double(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(java_double(f64::NAN), "NaN");
        assert_eq!(java_double(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(java_double(-0.0), "-0.0");
        assert_eq!(java_float(0.1), "0.1");
        assert_eq!(java_float(1.0e10), "1.0E10");
        assert_eq!(java_float(4.5), "4.5");
    }

    #[test]
    fn timestamps_and_times() {
        let mut s = String::new();
        format_timestamp(1_000, &TimeUnit::Millisecond, &mut s);
        assert_eq!(s, "1970-01-01 00:00:01.000");
        s.clear();
        format_timestamp(-1, &TimeUnit::Microsecond, &mut s);
        assert_eq!(s, "1969-12-31 23:59:59.999999");
        s.clear();
        format_timestamp(5, &TimeUnit::Second, &mut s);
        assert_eq!(s, "1970-01-01 00:00:05");
        s.clear();
        format_time(45_296_500_000, &TimeUnit::Microsecond, &mut s);
        assert_eq!(s, "12:34:56.5");
    }
}
