//! Arrow type names in messages, as the SQL type names users write.

use arrow::datatypes::{DataType, TimeUnit};

/// Arrow's names (as `DataType` displays them) and the SQL name shown
/// instead, longest first so `Utf8View` is not read as `Utf8`.
const NAMES: &[(&str, &str)] = &[
    ("Timestamp(Millisecond, Some(\"UTC\"))", "TIMESTAMP_LTZ(3)"),
    ("Timestamp(Microsecond, Some(\"UTC\"))", "TIMESTAMP_LTZ(6)"),
    ("Timestamp(Nanosecond, Some(\"UTC\"))", "TIMESTAMP_LTZ(9)"),
    ("Timestamp(Second, Some(\"UTC\"))", "TIMESTAMP_LTZ(0)"),
    ("Timestamp(Millisecond, None)", "TIMESTAMP(3)"),
    ("Timestamp(Microsecond, None)", "TIMESTAMP(6)"),
    ("Timestamp(Nanosecond, None)", "TIMESTAMP(9)"),
    ("Timestamp(Second, None)", "TIMESTAMP(0)"),
    ("Timestamp(ms, \"UTC\")", "TIMESTAMP_LTZ(3)"),
    ("Timestamp(µs, \"UTC\")", "TIMESTAMP_LTZ(6)"),
    ("Timestamp(ns, \"UTC\")", "TIMESTAMP_LTZ(9)"),
    ("Timestamp(s, \"UTC\")", "TIMESTAMP_LTZ(0)"),
    ("Timestamp(ms)", "TIMESTAMP(3)"),
    ("Timestamp(µs)", "TIMESTAMP(6)"),
    ("Timestamp(ns)", "TIMESTAMP(9)"),
    ("Timestamp(s)", "TIMESTAMP(0)"),
    ("Interval(MonthDayNano)", "INTERVAL"),
    ("Interval(YearMonth)", "INTERVAL"),
    ("Interval(DayTime)", "INTERVAL"),
    ("Time64(µs)", "TIME"),
    ("Time64(ns)", "TIME"),
    ("Time32(ms)", "TIME"),
    ("Time32(s)", "TIME"),
    ("Decimal128(", "DECIMAL("),
    ("Decimal256(", "DECIMAL("),
    ("BinaryView", "BYTES"),
    ("LargeBinary", "BYTES"),
    ("Binary", "BYTES"),
    ("Utf8View", "STRING"),
    ("LargeUtf8", "STRING"),
    ("Utf8", "STRING"),
    ("Float16", "FLOAT"),
    ("Float32", "FLOAT"),
    ("Float64", "DOUBLE"),
    ("Int8", "TINYINT"),
    ("Int16", "SMALLINT"),
    ("Int32", "INT"),
    ("Int64", "BIGINT"),
    ("Date32", "DATE"),
    ("Date64", "DATE"),
    ("Boolean", "BOOLEAN"),
];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `msg` with every Arrow type name (a whole word) replaced by its SQL name:
/// `Cannot cast Utf8 to Int32` reads `Cannot cast STRING to INT`.
pub fn arrow_to_sql_names(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    let mut prev: Option<char> = None;
    'outer: while let Some(c) = rest.chars().next() {
        if !prev.is_some_and(is_word) {
            for (arrow, sql) in NAMES {
                if let Some(mut after) = rest.strip_prefix(arrow) {
                    // `Int32Array` is the array of an `Int32`.
                    if let Some(a) = after.strip_prefix("Array") {
                        if !a.starts_with(is_word) {
                            after = a;
                        }
                    }
                    let ends_word = arrow.ends_with(['(', ')']) || !after.starts_with(is_word);
                    if ends_word {
                        out.push_str(sql);
                        prev = arrow.chars().last();
                        rest = after;
                        continue 'outer;
                    }
                }
            }
        }
        out.push(c);
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Flink's name for an Arrow type.
pub fn sql_type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTES".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(unit, tz) => {
            let p = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            };
            if tz.is_some() {
                format!("TIMESTAMP_LTZ({p})")
            } else {
                format!("TIMESTAMP({p})")
            }
        }
        other => other.to_string().to_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_names_become_sql_names() {
        assert_eq!(
            arrow_to_sql_names("Cannot cast Utf8 to Int32 or Timestamp(ms)"),
            "Cannot cast STRING to INT or TIMESTAMP(3)"
        );
        assert_eq!(
            arrow_to_sql_names("Decimal128(10, 2) + Utf8View, MyInt32x"),
            "DECIMAL(10, 2) + STRING, MyInt32x"
        );
        assert_eq!(
            arrow_to_sql_names("Timestamp(ms, \"UTC\")"),
            "TIMESTAMP_LTZ(3)"
        );
        assert_eq!(
            arrow_to_sql_names("Int32Array overflow on abs(-2147483648)"),
            "INT overflow on abs(-2147483648)"
        );
    }
}
