//! TO_BASE64 / FROM_BASE64 (padded, as Java's `Base64`), the SHA-2 family
//! as hex strings (DataFusion's `sha256` & co. return bytes), HEX (of an
//! integer or of a string's UTF-8 bytes, upper case) and BIN.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use base64::Engine;
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};
use sha2::Digest;

use super::util::{arity, arrays, expect, finish, i64_arg, to_i64, to_utf8, Udf};

pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        Udf::new("to_base64", coerce_bytes, ret_bytes, to_base64).build(),
        Udf::new("from_base64", coerce_bytes, ret_bytes, from_base64).build(),
        Udf::new("sha224", coerce_bytes, ret_bytes, sha224).build(),
        Udf::new("sha256", coerce_bytes, ret_bytes, sha256).build(),
        Udf::new("sha384", coerce_bytes, ret_bytes, sha384).build(),
        Udf::new("sha512", coerce_bytes, ret_bytes, sha512).build(),
        Udf::new("sha2", coerce_sha2, ret_sha2, sha2).build(),
        Udf::new("hex", coerce_hex, ret_hex, hex_fn).build(),
        Udf::new("bin", coerce_hex, ret_hex, bin).build(),
    ]
}

fn bytes_type(t: &DataType) -> DataType {
    match t {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        t => to_utf8(t),
    }
}

fn coerce_bytes(t: &[DataType]) -> Vec<DataType> {
    t.iter().map(bytes_type).collect()
}

fn ret_bytes(t: &[DataType], _s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("to_base64", t, 1, 1)?;
    match &t[0] {
        DataType::Utf8 | DataType::Binary => Ok(DataType::Utf8),
        other => plan_err!(
            "expected a STRING or BYTES argument, got {}",
            sluice_sql::types::sql_type_name(other)
        ),
    }
}

fn coerce_hex(t: &[DataType]) -> Vec<DataType> {
    t.iter()
        .map(|t| {
            if t.is_integer() {
                DataType::Int64
            } else {
                bytes_type(t)
            }
        })
        .collect()
}

fn ret_hex(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("hex", t, 1, 1)?;
    if t[0] == DataType::Int64 {
        Ok(DataType::Utf8)
    } else {
        ret_bytes(t, s)
    }
}

/// HEX / BIN of each row: integers as Java's `Long.toHexString` /
/// `toBinaryString` (two's complement), strings and bytes byte by byte.
fn radix(args: &ScalarFunctionArgs, binary: bool) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    if *a[0].data_type() != DataType::Int64 {
        return map_bytes(args, |b, out| {
            for byte in b {
                if binary {
                    out.push_str(&format!("{byte:b}"));
                } else {
                    out.push_str(&format!("{byte:02X}"));
                }
            }
            Ok(())
        });
    }
    let v = i64_arg("hex", &a, 0)?;
    let out: arrow::array::StringArray = v
        .iter()
        .map(|x| {
            x.map(|x| {
                if binary {
                    format!("{:b}", x as u64)
                } else {
                    format!("{:X}", x as u64)
                }
            })
        })
        .collect();
    finish(args, Arc::new(out))
}

fn hex_fn(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    radix(args, false)
}

fn bin(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    radix(args, true)
}

fn coerce_sha2(t: &[DataType]) -> Vec<DataType> {
    let mut out = coerce_bytes(&t[..t.len().min(1)]);
    out.extend(t.iter().skip(1).map(to_i64));
    out
}

fn ret_sha2(t: &[DataType], s: &[Option<&ScalarValue>]) -> Result<DataType> {
    arity("sha2", t, 2, 2)?;
    ret_bytes(&t[..1], s)?;
    expect("sha2", t, 1, &DataType::Int64)?;
    if let Some(ScalarValue::Int64(Some(bits))) = s.get(1).copied().flatten() {
        if ![224, 256, 384, 512].contains(bits) {
            return plan_err!("SHA2: the hash length must be 224, 256, 384 or 512, got {bits}");
        }
    }
    Ok(DataType::Utf8)
}

/// Each row's bytes (a string's UTF-8), or `None` for NULL.
fn bytes_of(a: &ArrayRef, i: usize) -> Option<&[u8]> {
    if a.is_null(i) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Binary => a.as_binary::<i32>().value(i),
        _ => a.as_string::<i32>().value(i).as_bytes(),
    })
}

fn map_bytes(
    args: &ScalarFunctionArgs,
    f: impl Fn(&[u8], &mut String) -> Result<()>,
) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let n = a[0].len();
    let mut out = StringBuilder::with_capacity(n, n * 16);
    let mut buf = String::new();
    for i in 0..n {
        match bytes_of(&a[0], i) {
            Some(b) => {
                buf.clear();
                f(b, &mut buf)?;
                out.append_value(&buf);
            }
            None => out.append_null(),
        }
    }
    finish(args, Arc::new(out.finish()))
}

fn to_base64(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    map_bytes(args, |b, out| {
        base64::engine::general_purpose::STANDARD.encode_string(b, out);
        Ok(())
    })
}

fn from_base64(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    map_bytes(args, |b, out| {
        match base64::engine::general_purpose::STANDARD.decode(b) {
            // Java decodes the bytes as UTF-8, replacing bad sequences.
            Ok(bytes) => out.push_str(&String::from_utf8_lossy(&bytes)),
            Err(e) => {
                return exec_err!(
                    "FROM_BASE64: '{}' is not base64: {e}",
                    String::from_utf8_lossy(b)
                )
            }
        }
        Ok(())
    })
}

fn hex(digest: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in digest {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
}

fn digest(bits: i64, b: &[u8], out: &mut String) -> Result<()> {
    match bits {
        224 => hex(&sha2::Sha224::digest(b), out),
        256 => hex(&sha2::Sha256::digest(b), out),
        384 => hex(&sha2::Sha384::digest(b), out),
        512 => hex(&sha2::Sha512::digest(b), out),
        other => {
            return exec_err!("SHA2: the hash length must be 224, 256, 384 or 512, got {other}")
        }
    }
    Ok(())
}

fn sha224(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    map_bytes(args, |b, out| digest(224, b, out))
}

fn sha256(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    map_bytes(args, |b, out| digest(256, b, out))
}

fn sha384(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    map_bytes(args, |b, out| digest(384, b, out))
}

fn sha512(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    map_bytes(args, |b, out| digest(512, b, out))
}

fn sha2(args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let a = arrays(args)?;
    let bits = i64_arg("sha2", &a, 1)?;
    let n = a[0].len();
    let mut out = StringBuilder::with_capacity(n, n * 64);
    let mut buf = String::new();
    for i in 0..n {
        match bytes_of(&a[0], i) {
            Some(b) if bits.is_valid(i) => {
                buf.clear();
                digest(bits.value(i), b, &mut buf)?;
                out.append_value(&buf);
            }
            _ => out.append_null(),
        }
    }
    finish(args, Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digest() {
        let mut out = String::new();
        digest(256, b"", &mut out).expect("digest");
        assert_eq!(
            out,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
