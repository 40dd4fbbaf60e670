//! Flink's string functions where DataFusion has none or one that differs:
//! CONCAT (NULL if any argument is NULL), CONCAT_WS, LPAD/RPAD (NULL for a
//! negative length or an empty pad), SUBSTR/SUBSTRING (a negative start
//! counts from the end), LEFT/RIGHT (empty for a negative length), CHR
//! (`n & 0xFF`), LOCATE and SPLIT_INDEX. Positions count characters.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::util::{arity, arrays, expect, finish, i64_arg, map_all, str_arg, to_i64, to_utf8, Udf};

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new("concat", coerce_strings, ret_concat, concat).build(),
        Udf::new("concat_ws", coerce_strings, ret_concat_ws, concat_ws).build(),
        Udf::new("lpad", coerce_pad, ret_pad, lpad).build(),
        Udf::new("rpad", coerce_pad, ret_pad, rpad).build(),
        Udf::new("substr", coerce_str_ints, ret_substr, substr)
            .aliases(&["substring"])
            .build(),
        Udf::new("left", coerce_str_ints, ret_left, left).build(),
        Udf::new("right", coerce_str_ints, ret_left, right).build(),
        Udf::new("chr", coerce_ints, ret_chr, chr).build(),
        Udf::new("locate", coerce_locate, ret_locate, locate).build(),
        Udf::new("split_index", coerce_split, ret_split, split_index).build(),
    ]
}

fn coerce_strings(t: &[DataType]) -> Vec<DataType> {
    // Other types are cast to STRING (Flink's own cast format applies).
    t.iter().map(|_| DataType::Utf8).collect()
}

fn coerce_str_ints(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| if i == 0 { to_utf8(t) } else { to_i64(t) })
        .collect()
}

fn coerce_ints(t: &[DataType]) -> Vec<DataType> {
    map_all(t, to_i64)
}

fn coerce_pad(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| if i == 1 { to_i64(t) } else { to_utf8(t) })
        .collect()
}

fn coerce_locate(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| if i == 2 { to_i64(t) } else { to_utf8(t) })
        .collect()
}

fn coerce_split(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .enumerate()
        .map(|(i, t)| match i {
            1 if t.is_integer() => DataType::Int64,
            2 => to_i64(t),
            _ => to_utf8(t),
        })
        .collect()
}

fn check(name: &str, t: &[DataType], want: &[DataType], min: usize) -> Result<DataType> {
    arity(name, t, min, want.len())?;
    for (i, w) in want.iter().enumerate().take(t.len()) {
        expect(name, t, i, w)?;
    }
    Ok(DataType::Utf8)
}

const S: DataType = DataType::Utf8;
const I: DataType = DataType::Int64;

fn ret_concat(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("concat", t, 1, usize::MAX)?;
    Ok(S)
}

fn ret_concat_ws(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("concat_ws", t, 1, usize::MAX)?;
    Ok(S)
}

fn ret_pad(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check("lpad", t, &[S, I, S], 3)
}

fn ret_substr(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check("substr", t, &[S, I, I], 2)
}

fn ret_left(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check("left", t, &[S, I], 2)
}

fn ret_chr(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check("chr", t, &[I], 1)
}

fn ret_locate(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    check("locate", t, &[S, S, I], 2)?;
    Ok(DataType::Int32)
}

fn ret_split(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("split_index", t, 3, 3)?;
    expect("split_index", t, 0, &S)?;
    if t[1] != I {
        expect("split_index", t, 1, &S)?;
    }
    expect("split_index", t, 2, &I)?;
    Ok(S)
}

/// Apply `f` row by row over string and integer arguments; a NULL argument
/// or `None` from `f` gives NULL.
fn rows(
    args: &ScalarFunctionArgs,
    f: impl Fn(&[ArrayRef], usize, &mut String) -> Result<bool>,
) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let n = a.first().map_or(1, |x| x.len());
    let mut out = StringBuilder::with_capacity(n, n * 8);
    let mut buf = String::new();
    for i in 0..n {
        buf.clear();
        if a.iter().any(|x| x.is_null(i)) || !f(&a, i, &mut buf)? {
            out.append_null();
        } else {
            out.append_value(&buf);
        }
    }
    finish(args, Arc::new(out.finish()))
}

fn s(a: &[ArrayRef], j: usize, i: usize) -> &str {
    a[j].as_string::<i32>().value(i)
}

fn n(a: &[ArrayRef], j: usize, i: usize) -> i64 {
    a[j].as_primitive::<Int64Type>().value(i)
}

fn concat(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    rows(args, |a, i, out| {
        (0..a.len()).for_each(|j| out.push_str(s(a, j, i)));
        Ok(true)
    })
}

fn concat_ws(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let sep = str_arg("concat_ws", &a, 0)?;
    let parts: Vec<&StringArray> = (1..a.len())
        .map(|j| str_arg("concat_ws", &a, j))
        .collect::<Result<_>>()?;
    let mut out = StringBuilder::with_capacity(sep.len(), sep.len() * 8);
    let mut buf = String::new();
    for i in 0..sep.len() {
        if sep.is_null(i) {
            out.append_null();
            continue;
        }
        buf.clear();
        let mut first = true;
        for p in parts.iter().filter(|p| p.is_valid(i)) {
            if !first {
                buf.push_str(sep.value(i));
            }
            buf.push_str(p.value(i));
            first = false;
        }
        out.append_value(&buf);
    }
    finish(args, Arc::new(out.finish()))
}

fn pad(args: &ScalarFunctionArgs, left: bool) -> Result<ColumnarValue> {
    rows(args, |a, i, out| {
        let (base, len, pad) = (s(a, 0, i), n(a, 1, i), s(a, 2, i));
        if len < 0 || pad.is_empty() {
            return Ok(false);
        }
        let len = len as usize;
        let have = base.chars().count();
        let fill = pad.chars().cycle().take(len.saturating_sub(have));
        if left {
            out.extend(fill);
            out.extend(base.chars().take(len));
        } else {
            out.extend(base.chars().take(len));
            out.extend(fill);
        }
        Ok(true)
    })
}

fn lpad(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    pad(args, true)
}

fn rpad(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    pad(args, false)
}

/// Flink's SUBSTRING(s, pos[, len]): pos 1 is the first character, 0 is
/// the start too, a negative pos counts from the end; a negative len is
/// NULL.
pub(crate) fn substring(text: &str, pos: i64, len: Option<i64>, out: &mut String) -> bool {
    let len = match len {
        Some(l) if l < 0 => return false,
        Some(l) => l,
        None => i64::MAX,
    };
    let chars = text.chars().count() as i64;
    let start = match pos {
        p if p > 0 => p - 1,
        p if p < 0 => chars + p,
        _ => 0,
    };
    if start < 0 || start >= chars {
        return true;
    }
    let take = len.min(chars - start);
    out.extend(text.chars().skip(start as usize).take(take as usize));
    true
}

fn substr(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    rows(args, |a, i, out| {
        let len = (a.len() > 2).then(|| n(a, 2, i));
        Ok(substring(s(a, 0, i), n(a, 1, i), len, out))
    })
}

fn left(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    rows(args, |a, i, out| {
        let k = n(a, 1, i).max(0) as usize;
        out.extend(s(a, 0, i).chars().take(k));
        Ok(true)
    })
}

fn right(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    rows(args, |a, i, out| {
        let text = s(a, 0, i);
        let k = n(a, 1, i).max(0) as usize;
        let skip = text.chars().count().saturating_sub(k);
        out.extend(text.chars().skip(skip));
        Ok(true)
    })
}

fn chr(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    rows(args, |a, i, out| {
        let v = n(a, 0, i);
        if v >= 0 {
            // Latin-1 code points are the first 256 of Unicode.
            out.push(char::from((v & 0xFF) as u8));
        }
        Ok(true)
    })
}

fn locate(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let needle = str_arg("locate", &a, 0)?;
    let hay = str_arg("locate", &a, 1)?;
    let from = if a.len() > 2 {
        Some(i64_arg("locate", &a, 2)?)
    } else {
        None
    };
    let out: arrow::array::Int32Array = (0..hay.len())
        .map(|i| {
            if needle.is_null(i) || hay.is_null(i) || from.is_some_and(|f| f.is_null(i)) {
                return None;
            }
            let start = from.map_or(0, |f| (f.value(i) - 1).max(0)) as usize;
            let h = hay.value(i);
            // Byte offset of the start character, if there is one.
            let offset = match h.char_indices().nth(start) {
                Some((b, _)) => b,
                None if start == h.chars().count() => h.len(),
                None => return Some(0),
            };
            Some(match h[offset..].find(needle.value(i)) {
                Some(b) => (start + h[offset..offset + b].chars().count() + 1) as i32,
                None => 0,
            })
        })
        .collect();
    finish(args, Arc::new(out))
}

fn split_index(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    rows(args, |a, i, out| {
        let (text, index) = (s(a, 0, i), n(a, 2, i));
        if index < 0 || text.is_empty() {
            return Ok(false);
        }
        let piece = if *a[1].data_type() == DataType::Int64 {
            let c = a[1].as_primitive::<Int64Type>().value(i);
            if !(1..=255).contains(&c) {
                return Ok(false);
            }
            text.split(char::from(c as u8)).nth(index as usize)
        } else {
            match s(a, 1, i) {
                // Commons Lang splits on whitespace for an empty separator.
                "" => text.split(char::is_whitespace).nth(index as usize),
                sep => text.split(sep).nth(index as usize),
            }
        };
        match piece {
            Some(p) => {
                out.push_str(p);
                Ok(true)
            }
            None => Ok(false),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(t: &str, pos: i64, len: Option<i64>) -> Option<String> {
        let mut out = String::new();
        substring(t, pos, len, &mut out).then_some(out)
    }

    #[test]
    fn substring_like_flink() {
        // Flink ScalarFunctionsTest.testSubstring / testSubString.
        let f0 = "This is a test String.";
        assert_eq!(sub(f0, 2, None).as_deref(), Some("his is a test String."));
        assert_eq!(sub(f0, 2, Some(5)).as_deref(), Some("his i"));
        assert_eq!(sub(f0, -2, None).as_deref(), Some("g."));
        assert_eq!(sub(f0, -2, Some(1)).as_deref(), Some("g"));
        assert_eq!(sub(f0, -2, Some(0)).as_deref(), Some(""));
        assert_eq!(sub(f0, 100, Some(10)).as_deref(), Some(""));
        assert_eq!(sub(f0, 2, Some(-1)), None);
        assert_eq!(sub("1世界", 1, Some(2)).as_deref(), Some("1世"));
    }
}
