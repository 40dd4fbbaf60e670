//! Flink SQL types to Arrow types.

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::sql::sqlparser::ast::{DataType as SqlType, ExactNumberInfo, TimezoneInfo};
use sluice_common::{Error, Result};

/// Map a column type of `CREATE TABLE` to its Arrow type.
///
/// `TIMESTAMP` and `TIMESTAMP(0..=3)` are millisecond timestamps (event time
/// is kept in milliseconds), `TIMESTAMP(4..=6)` microseconds and
/// `TIMESTAMP(7..=9)` nanoseconds. `TIMESTAMP WITH [LOCAL] TIME ZONE` is UTC.
pub fn sql_type_to_arrow(t: &SqlType) -> Result<DataType> {
    use SqlType as S;
    Ok(match t {
        S::Boolean | S::Bool => DataType::Boolean,
        S::TinyInt(_) => DataType::Int8,
        S::SmallInt(_) => DataType::Int16,
        S::Int(_) | S::Integer(_) | S::Int32 => DataType::Int32,
        S::BigInt(_) | S::Int64 => DataType::Int64,
        S::Float(ExactNumberInfo::Precision(p)) if *p > 24 => DataType::Float64,
        S::Float(_) | S::Float4 | S::Float32 | S::Real => DataType::Float32,
        S::Double(_) | S::DoublePrecision | S::Float8 | S::Float64 => DataType::Float64,
        S::Decimal(info) | S::Numeric(info) => {
            let (p, s) = match info {
                ExactNumberInfo::None => (10, 0),
                ExactNumberInfo::Precision(p) => (*p, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
            };
            if !(1..=38).contains(&p) || s < 0 || s as u64 > p {
                return Err(Error::plan(format!(
                    "DECIMAL({p}, {s}) is out of range: precision must be 1..=38 and scale 0..=precision"
                )));
            }
            DataType::Decimal128(p as u8, s as i8)
        }
        S::String(_) | S::Varchar(_) | S::Char(_) | S::Text => DataType::Utf8,
        S::Bytes(_) | S::Varbinary(_) | S::Binary(_) => DataType::Binary,
        S::Date => DataType::Date32,
        S::Time(_, _) => DataType::Time64(TimeUnit::Microsecond),
        S::Timestamp(p, tz) => timestamp(
            *p,
            !matches!(tz, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone),
        )?,
        S::TimestampNtz(p) | S::Datetime(p) => timestamp(*p, false)?,
        S::Custom(name, args) => custom(&name.to_string(), args)?,
        other => {
            return Err(Error::plan(format!("unsupported column type {other}")));
        }
    })
}

fn timestamp(precision: Option<u64>, utc: bool) -> Result<DataType> {
    let unit = match precision.unwrap_or(3) {
        0..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        7..=9 => TimeUnit::Nanosecond,
        p => {
            return Err(Error::plan(format!(
                "TIMESTAMP({p}): precision must be 0..=9"
            )))
        }
    };
    Ok(DataType::Timestamp(unit, utc.then(|| "UTC".into())))
}

fn custom(name: &str, args: &[String]) -> Result<DataType> {
    let precision = args.first().and_then(|a| a.parse::<u64>().ok());
    match name.to_ascii_uppercase().as_str() {
        "TIMESTAMP_LTZ" => timestamp(precision, true),
        "BYTES" => Ok(DataType::Binary),
        "STRING" => Ok(DataType::Utf8),
        other => Err(Error::plan(format!("unsupported column type {other}"))),
    }
}

pub use sluice_common::sql_type_name;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse_sql, SluiceStatement};

    fn types(cols: &str) -> Vec<DataType> {
        let sql = format!("CREATE TABLE t ({cols})");
        let stmts = parse_sql(&sql, None).expect("parses");
        let SluiceStatement::CreateTable(c) = &stmts[0].statement else {
            panic!("not create table")
        };
        c.columns
            .iter()
            .map(|c| sql_type_to_arrow(&c.data_type).expect("maps"))
            .collect()
    }

    #[test]
    fn flink_types() {
        let t = types(
            "a BOOLEAN, b INT, c BIGINT, d FLOAT, e DOUBLE, f DECIMAL(10, 2), g STRING, \
             h VARCHAR(20), i DATE, j TIMESTAMP, k TIMESTAMP(3), l TIMESTAMP(6)",
        );
        assert_eq!(
            t,
            vec![
                DataType::Boolean,
                DataType::Int32,
                DataType::Int64,
                DataType::Float32,
                DataType::Float64,
                DataType::Decimal128(10, 2),
                DataType::Utf8,
                DataType::Utf8,
                DataType::Date32,
                DataType::Timestamp(TimeUnit::Millisecond, None),
                DataType::Timestamp(TimeUnit::Millisecond, None),
                DataType::Timestamp(TimeUnit::Microsecond, None),
            ]
        );
    }
}
