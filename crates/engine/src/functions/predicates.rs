//! IS_ALPHA, IS_DIGIT and IS_DECIMAL: Flink's string tests, FALSE (never
//! NULL) for NULL and for the empty string.
//!
//! * IS_ALPHA: every character is a letter.
//! * IS_DIGIT: every character is a digit.
//! * IS_DECIMAL: Java's `Integer`/`Long.parseLong` or `Double.parseDouble`
//!   accepts it (surrounding whitespace, `1e5`, `1.5d`, `NaN`, `Infinity`).

use std::sync::Arc;

use arrow::array::{Array, BooleanArray};
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::util::{arity, arrays, expect, finish, map_all, str_arg, to_utf8, Udf};

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new("is_alpha", coerce, ret, is_alpha).build(),
        Udf::new("is_digit", coerce, ret, is_digit).build(),
        Udf::new("is_decimal", coerce, ret, is_decimal).build(),
    ]
}

fn coerce(t: &[DataType]) -> Vec<DataType> {
    map_all(t, to_utf8)
}

fn ret(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("is_alpha", t, 1, 1)?;
    expect("is_alpha", t, 0, &DataType::Utf8)?;
    Ok(DataType::Boolean)
}

fn test(args: &ScalarFunctionArgs, f: fn(&str) -> bool) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let s = str_arg("is_alpha", &a, 0)?;
    let out: BooleanArray = (0..s.len())
        .map(|i| Some(s.is_valid(i) && !s.value(i).is_empty() && f(s.value(i))))
        .collect();
    finish(args, Arc::new(out))
}

fn is_alpha(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    test(args, |s| s.chars().all(char::is_alphabetic))
}

fn is_digit(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    test(args, |s| s.chars().all(|c| c.is_numeric()))
}

fn is_decimal(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    test(args, java_number)
}

/// Whether Java's integer or double parsing accepts `s`.
fn java_number(s: &str) -> bool {
    if s.parse::<i64>().is_ok() {
        return true;
    }
    // Double.parseDouble trims ASCII control characters and spaces.
    let t = s.trim_matches(|c: char| c <= ' ');
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "NaN" || unsigned == "Infinity" {
        return true;
    }
    let body = unsigned
        .strip_suffix(['d', 'D', 'f', 'F'])
        .unwrap_or(unsigned);
    // Rust also accepts "inf" and "nan"; Java does not.
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && body.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_numbers() {
        for ok in [
            "1",
            "-42",
            "1.5",
            " 1.5 ",
            "1e5",
            "1.5d",
            "2F",
            "NaN",
            "-Infinity",
            ".5",
        ] {
            assert!(java_number(ok), "{ok}");
        }
        for bad in ["", "abc", "1.2.3", "inf", "nan", "1,5", "0x10"] {
            assert!(!java_number(bad), "{bad}");
        }
    }
}
