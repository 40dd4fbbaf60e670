//! REGEXP_EXTRACT, REGEXP_REPLACE and REGEXP with Flink's semantics:
//! REGEXP_REPLACE replaces every match with the replacement taken
//! literally; a regex that does not compile gives NULL (REGEXP: FALSE), as
//! Flink catches the exception. Regexes are Rust `regex` syntax, which
//! matches Java's for the common constructs; Java-only features
//! (look-around, back-references, possessive quantifiers) are errors rather
//! than a silent NULL.

use std::sync::Arc;

use arrow::array::{Array, BooleanBuilder, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};
use regex::{NoExpand, Regex};

use super::util::{
    arity, arrays, expect, finish, i64_arg, str_arg, to_i64, to_utf8, upper, Cache, Udf,
};

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new(
            "regexp_extract",
            coerce_extract,
            ret_extract,
            regexp_extract,
        )
        .build(),
        Udf::new(
            "regexp_replace",
            coerce_strings,
            ret_replace,
            regexp_replace,
        )
        .build(),
        Udf::new("regexp", coerce_strings, ret_regexp, regexp).build(),
    ]
}

fn coerce_strings(t: &[DataType]) -> Vec<DataType> {
    super::util::map_all(t, to_utf8)
}

fn coerce_extract(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| if i == 2 { to_i64(t) } else { to_utf8(t) })
        .collect()
}

fn strings(name: &str, t: &[DataType], n: usize) -> Result<()> {
    arity(name, t, n, n)?;
    (0..n).try_for_each(|i| expect(name, t, i, &DataType::Utf8))
}

fn ret_extract(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("regexp_extract", t, 2, 3)?;
    strings("regexp_extract", &t[..2], 2)?;
    if t.len() == 3 {
        expect("regexp_extract", t, 2, &DataType::Int64)?;
    }
    Ok(DataType::Utf8)
}

fn ret_replace(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    strings("regexp_replace", t, 3)?;
    Ok(DataType::Utf8)
}

fn ret_regexp(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    strings("regexp", t, 2)?;
    Ok(DataType::Boolean)
}

/// Compile a regex: `Ok(None)` when it is not a valid regex (Flink gives
/// NULL), an error when it uses Java syntax Sluice does not support.
fn compile(name: &str, re: &str) -> Result<Option<Regex>> {
    match Regex::new(re) {
        Ok(r) => Ok(Some(r)),
        Err(regex::Error::Syntax(msg)) if msg.contains("not supported") => exec_err!(
            "{}: regex '{re}' uses Java syntax Sluice does not support: {}",
            upper(name),
            msg.lines().last().unwrap_or_default().trim()
        ),
        Err(_) => Ok(None),
    }
}

fn regexp_extract(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let (s, re) = (
        str_arg("regexp_extract", &a, 0)?,
        str_arg("regexp_extract", &a, 1)?,
    );
    let index = if a.len() > 2 {
        Some(i64_arg("regexp_extract", &a, 2)?)
    } else {
        None
    };
    let mut cache = Cache::default();
    let mut out = StringBuilder::with_capacity(s.len(), s.len() * 8);
    for i in 0..s.len() {
        if s.is_null(i) || re.is_null(i) || index.is_some_and(|x| x.is_null(i)) {
            out.append_null();
            continue;
        }
        let group = index.map_or(0, |x| x.value(i));
        let Some(r) = cache.get(re.value(i), |p| compile("regexp_extract", p))? else {
            out.append_null();
            continue;
        };
        let found = usize::try_from(group)
            .ok()
            .and_then(|g| r.captures(s.value(i))?.get(g).map(|m| m.as_str()));
        out.append_option(found);
    }
    finish(args, Arc::new(out.finish()))
}

fn regexp_replace(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let s = str_arg("regexp_replace", &a, 0)?;
    let re = str_arg("regexp_replace", &a, 1)?;
    let rep = str_arg("regexp_replace", &a, 2)?;
    let mut cache = Cache::default();
    let mut out = StringBuilder::with_capacity(s.len(), s.value_data().len());
    for i in 0..s.len() {
        if s.is_null(i) || re.is_null(i) || rep.is_null(i) {
            out.append_null();
            continue;
        }
        match cache.get(re.value(i), |p| compile("regexp_replace", p))? {
            Some(r) => out.append_value(r.replace_all(s.value(i), NoExpand(rep.value(i)))),
            None => out.append_null(),
        }
    }
    finish(args, Arc::new(out.finish()))
}

fn regexp(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let (s, re) = (str_arg("regexp", &a, 0)?, str_arg("regexp", &a, 1)?);
    let mut cache = Cache::default();
    let mut out = BooleanBuilder::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || re.is_null(i) {
            out.append_null();
            continue;
        }
        // Flink: an empty or invalid regex matches nothing.
        let hit = !re.value(i).is_empty()
            && cache
                .get(re.value(i), |p| compile("regexp", p))?
                .as_ref()
                .is_some_and(|r| r.is_match(s.value(i)));
        out.append_value(hit);
    }
    finish(args, Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_only_syntax_is_an_error() {
        assert!(compile("regexp", "(?<=a)b").is_err());
        assert!(matches!(compile("regexp", "(unclosed"), Ok(None)));
        assert!(matches!(compile("regexp", "foo(.*?)(bar)"), Ok(Some(_))));
    }
}
