//! One column's generator from its `fields.<col>.*` options.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, Field};
use sluice_common::sql_type_name;
use sluice_common::{Error, Result};

use crate::options::parse_duration_ms;

use super::{ColumnSpec, Kind, Random, DEFAULT_LENGTH};

/// What a column's type allows.
enum TypeClass {
    Bool,
    Int { min: i128, max: i128 },
    Float { min: f64, max: f64 },
    Decimal { precision: u8, scale: i8 },
    Utf8,
    Time,
}

fn classify(t: &DataType) -> Option<TypeClass> {
    use DataType as D;
    let int = |min: i128, max: i128| Some(TypeClass::Int { min, max });
    match t {
        D::Boolean => Some(TypeClass::Bool),
        D::Int8 => int(i8::MIN.into(), i8::MAX.into()),
        D::Int16 => int(i16::MIN.into(), i16::MAX.into()),
        D::Int32 => int(i32::MIN.into(), i32::MAX.into()),
        D::Int64 => int(i64::MIN.into(), i64::MAX.into()),
        D::UInt8 => int(0, u8::MAX.into()),
        D::UInt16 => int(0, u16::MAX.into()),
        D::UInt32 => int(0, u32::MAX.into()),
        D::UInt64 => int(0, u64::MAX.into()),
        // Flink's defaults: Float.MIN_VALUE / Double.MIN_VALUE (the smallest
        // positive values) up to the largest finite ones.
        D::Float32 => Some(TypeClass::Float {
            min: f32::from_bits(1).into(),
            max: f32::MAX.into(),
        }),
        D::Float64 => Some(TypeClass::Float {
            min: f64::from_bits(1),
            max: f64::MAX,
        }),
        D::Decimal128(precision, scale) if *scale >= 0 => Some(TypeClass::Decimal {
            precision: *precision,
            scale: *scale,
        }),
        D::Utf8 => Some(TypeClass::Utf8),
        D::Date32 | D::Timestamp(_, _) => Some(TypeClass::Time),
        _ => None,
    }
}

/// The generator of one column from its `fields.<col>.*` options.
pub(super) fn column_spec(
    table: &str,
    field: &Field,
    opts: &BTreeMap<&str, (&str, &str)>,
) -> Result<ColumnSpec> {
    let name = field.name();
    let ty = sql_type_name(field.data_type());
    let class = classify(field.data_type()).ok_or_else(|| {
        Error::plan(format!(
            "table {table}: the datagen connector cannot generate column {name} of type {ty}"
        ))
    })?;
    let kind = opts
        .get("kind")
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "random".into());
    let allowed: &[&str] = match (kind.as_str(), &class) {
        ("sequence", TypeClass::Int { .. } | TypeClass::Utf8) => &["kind", "start", "end"],
        ("sequence", _) => {
            return Err(Error::plan(format!(
                "table {table}: 'fields.{name}.kind' = 'sequence' is not supported for column \
                 {name} of type {ty} (sequences are for integer and STRING columns)"
            )))
        }
        ("random", TypeClass::Bool) => &["kind", "null-rate"],
        ("random", TypeClass::Int { .. } | TypeClass::Float { .. } | TypeClass::Decimal { .. }) => {
            &["kind", "null-rate", "min", "max"]
        }
        ("random", TypeClass::Utf8) => &["kind", "null-rate", "length", "var-len"],
        ("random", TypeClass::Time) => &["kind", "null-rate", "max-past"],
        (other, _) => {
            return Err(Error::plan(format!(
            "table {table}: option 'fields.{name}.kind' = '{other}' is not one of random, sequence"
        )))
        }
    };
    if let Some((key, _)) = opts
        .iter()
        .find(|(o, _)| !allowed.contains(o))
        .map(|(_, kv)| kv)
    {
        return Err(Error::plan(format!(
            "table {table}: option '{key}' does not apply to column {name} of type {ty} with kind \
             {kind} (its options are {})",
            allowed
                .iter()
                .map(|o| format!("fields.{name}.{o}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let bad = |key: &str, v: &str, what: &str| {
        Error::plan(format!(
            "table {table}: option '{key}' must be {what}, not '{v}'"
        ))
    };
    let get = |o: &str| opts.get(o).copied();
    let data_type = field.data_type().clone();
    if kind == "sequence" {
        let (lo, hi) = match class {
            TypeClass::Int { min, max } => (min, max),
            _ => (i64::MIN.into(), i64::MAX.into()),
        };
        let bound = |o: &str| -> Result<i128> {
            let (key, v) = get(o).ok_or_else(|| {
                Error::plan(format!(
                    "table {table}: option 'fields.{name}.{o}' is required for a sequence column"
                ))
            })?;
            match v.trim().parse::<i128>() {
                Ok(n) if (lo..=hi).contains(&n) => Ok(n),
                _ => Err(bad(key, v, &format!("an integer in {lo}..={hi}"))),
            }
        };
        let (start, end) = (bound("start")?, bound("end")?);
        if start > end {
            return Err(Error::plan(format!(
                "table {table}: sequence of column {name} is empty: start {start} > end {end}"
            )));
        }
        return Ok(ColumnSpec {
            data_type,
            null_rate: 0.0,
            kind: Kind::Sequence { start, end },
        });
    }
    let null_rate = match get("null-rate") {
        None => 0.0,
        Some((key, v)) => match v.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => return Err(bad(key, v, "a number in 0..=1")),
        },
    };
    let random = match class {
        TypeClass::Bool => Random::Bool,
        TypeClass::Int { min: lo, max: hi } => {
            let bound = |o: &str, default: i128| match get(o) {
                None => Ok(default),
                Some((key, v)) => match v.trim().parse::<i128>() {
                    Ok(n) if (lo..=hi).contains(&n) => Ok(n),
                    _ => Err(bad(key, v, &format!("an integer in {lo}..={hi}"))),
                },
            };
            Random::Int {
                min: bound("min", lo)?,
                max: bound("max", hi)?,
            }
        }
        TypeClass::Float { min, max } => {
            let limit: f64 = match field.data_type() {
                DataType::Float32 => f32::MAX.into(),
                _ => f64::MAX,
            };
            let bound = |o: &str, default: f64| match get(o) {
                None => Ok(default),
                Some((key, v)) => match v.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() && x.abs() <= limit => Ok(x),
                    _ => Err(bad(key, v, &format!("a finite number of type {ty}"))),
                },
            };
            Random::Float {
                min: bound("min", min)?,
                max: bound("max", max)?,
            }
        }
        TypeClass::Decimal { precision, scale } => {
            let largest = 10i128.pow(u32::from(precision.min(38))) - 1;
            let bound = |o: &str, default: i128| match get(o) {
                None => Ok(default),
                Some((key, v)) => parse_decimal(v, scale)
                    .map(|n| n.clamp(-largest, largest))
                    .ok_or_else(|| bad(key, v, "a decimal number")),
            };
            Random::Decimal {
                min: bound("min", 0)?,
                max: bound("max", largest)?,
            }
        }
        TypeClass::Utf8 => {
            let length = match get("length") {
                None => DEFAULT_LENGTH,
                Some((key, v)) => v
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| bad(key, v, "a non-negative integer"))?,
            };
            let var_len = match get("var-len") {
                None => false,
                Some((key, v)) => match v.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad(key, v, "'true' or 'false'")),
                },
            };
            Random::Utf8 { length, var_len }
        }
        TypeClass::Time => {
            let max_past_ms = match get("max-past") {
                None => 0,
                Some((key, v)) => parse_duration_ms(v).ok_or_else(|| {
                    bad(key, v, "a duration such as '5000' (ms), '5 s' or '1 min'")
                })?,
            };
            Random::Time { max_past_ms }
        }
    };
    let empty = match &random {
        Random::Int { min, max } | Random::Decimal { min, max } => min > max,
        Random::Float { min, max } => min > max,
        _ => false,
    };
    if empty {
        return Err(Error::plan(format!(
            "table {table}: column {name}: 'fields.{name}.min' is greater than 'fields.{name}.max'"
        )));
    }
    Ok(ColumnSpec {
        data_type,
        null_rate,
        kind: Kind::Random(random),
    })
}

/// A plain decimal number (`-12.345`) as an unscaled integer with `scale`
/// fraction digits; further digits are dropped (Flink rounds down), values
/// too large for `i128` saturate.
pub(super) fn parse_decimal(v: &str, scale: i8) -> Option<i128> {
    let v = v.trim();
    let (negative, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let scale = usize::try_from(scale).ok()?;
    let frac_digits = frac.bytes().chain(std::iter::repeat(b'0')).take(scale);
    let mut n: i128 = 0;
    for b in int.bytes().chain(frac_digits) {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(i128::from(b - b'0')))
            .unwrap_or(i128::MAX);
    }
    Some(if negative { -n } else { n })
}
