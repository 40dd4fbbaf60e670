//! A fast path for the common JSON-lines block: flat objects whose values
//! are numbers, strings without escapes, or `null`. One pass over the
//! bytes finds each key, looks it up among the output columns, and parses
//! only the values of those columns, in place, with the CSV fast path's
//! parsers (`fast_csv::Builder`): no tape of every token, no per-row
//! allocation.
//!
//! Anything else (a backslash anywhere in the block, invalid UTF-8, a
//! nested object or array, even under a key no column wants, a boolean or a string where a number is wanted
//! or the other way round, a key twice in one object, a number or
//! timestamp in another form) gives `None`, and the block goes to
//! arrow-json as before, which decodes what it can and reports the bad
//! record. Keys not among the columns are skipped, as arrow-json does;
//! a missing key or `null` is NULL.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::fast_csv::Builder;

/// Decode the JSON objects of `bytes` into `out`; `None` when the block is
/// not in the plain form (see the module docs).
pub fn decode(bytes: &[u8], out: &SchemaRef, rows: usize) -> Option<RecordBatch> {
    if memchr::memchr(b'\\', bytes).is_some() || std::str::from_utf8(bytes).is_err() {
        return None;
    }
    let names: Vec<&[u8]> = out.fields().iter().map(|f| f.name().as_bytes()).collect();
    let mut builders: Vec<Builder> = out
        .fields()
        .iter()
        .map(|f| Builder::new(f.data_type(), rows))
        .collect();
    // The row each column last got a value in: a second value in one row
    // is a duplicate key, no value at the row's end a NULL.
    let mut set = vec![usize::MAX; names.len()];
    let mut p = Cursor { b: bytes, i: 0 };
    let mut n = 0;
    loop {
        p.skip_space();
        if p.i == bytes.len() {
            break;
        }
        p.take(b'{')?;
        p.skip_space();
        if p.peek()? == b'}' {
            p.i += 1;
        } else {
            let mut guess = 0;
            loop {
                let key = p.string()?;
                p.skip_space();
                p.take(b':')?;
                p.skip_space();
                // Keys mostly come in the columns' order.
                let col = match names.get(guess) {
                    Some(&name) if name == key => Some(guess),
                    _ => names.iter().position(|&name| name == key),
                };
                if let Some(j) = col {
                    if set[j] == n {
                        return None;
                    }
                    set[j] = n;
                    guess = j + 1;
                }
                value(&mut p, col.map(|j| &mut builders[j]))?;
                p.skip_space();
                match p.next()? {
                    b',' => p.skip_space(),
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        for (j, b) in builders.iter_mut().enumerate() {
            if set[j] != n {
                b.push_null();
            }
        }
        n += 1;
    }
    let columns = builders
        .into_iter()
        .map(Builder::finish)
        .collect::<Option<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(n));
    RecordBatch::try_new_with_options(Arc::clone(out), columns, &options).ok()
}

/// Read one value into `into` (or past it when no column wants it).
fn value(p: &mut Cursor<'_>, into: Option<&mut Builder>) -> Option<()> {
    match p.peek()? {
        b'"' => {
            let s = p.string()?;
            match into {
                Some(b) if b.is_number() => None,
                Some(b) => b.push_value(s),
                None => Some(()),
            }
        }
        b'n' => {
            p.literal(b"null")?;
            if let Some(b) = into {
                b.push_null();
            }
            Some(())
        }
        b'-' | b'0'..=b'9' => {
            let token = p.number()?;
            match into {
                Some(b) if b.is_number() => b.push_value(token),
                Some(_) => None,
                None => Some(()),
            }
        }
        b't' if into.is_none() => p.literal(b"true"),
        b'f' if into.is_none() => p.literal(b"false"),
        _ => None,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn take(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string's contents (the block has no escapes).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.take(b'"')?;
        let len = memchr::memchr(b'"', &self.b[self.i..])?;
        let s = &self.b[self.i..self.i + len];
        self.i += len + 1;
        Some(s)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A number in JSON's grammar (no `+`, no leading zeros, digits
    /// around a point).
    fn number(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int = self.digits();
        if int == 0 || (int > 1 && self.b[self.i - int] == b'0') {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(&self.b[start..self.i])
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("f", DataType::Float64, true),
            Field::new("g", DataType::Float32, true),
            Field::new("i", DataType::Int32, true),
        ]))
    }

    /// The fast path's batch equals arrow-json's over the same block.
    fn agrees(block: &str) {
        let out = schema();
        let fast = decode(block.as_bytes(), &out, 2).expect("plain block");
        let mut d = arrow::json::ReaderBuilder::new(Arc::clone(&out))
            .build_decoder()
            .expect("decoder");
        d.decode(block.as_bytes()).expect("decodes");
        let slow = d.flush().expect("flushes").expect("rows");
        assert_eq!(fast.num_rows(), slow.num_rows(), "{block}");
        assert_eq!(fast.columns(), slow.columns(), "{block}");
    }

    #[test]
    fn agrees_with_arrow_json() {
        agrees(
            "{\"a\":1,\"s\":\"x\",\"t\":\"2015-07-15T00:00:00\",\"f\":1.5,\"g\":16777217.5,\"i\":-7}\n\
             { \"i\" : 3 , \"a\" : -9223372036854775 , \"other\": \"y\", \"s\": \"\" }\r\n\
             {}\n\
             {\"s\":null,\"t\":\"2024-02-29 23:59:59.5\",\"f\":1e3,\"g\":-0.0}\n\
             {\"a\":null,\"s\":\"é\",\"skip\":true,\"no\":false,\"z\":null,\"f\":2}{\"a\":0}",
        );
    }

    #[test]
    fn anything_else_goes_to_arrow_json() {
        let out = schema();
        let slow = |b: &str| decode(b.as_bytes(), &out, 1).is_none();
        assert!(slow("{\"s\":\"a\\\"b\"}\n"), "an escape");
        assert!(slow("{\"a\":{\"b\":1}}\n"), "a nested object in a column");
        assert!(slow("{\"x\":[1]}\n"), "a nested value under another key");
        assert!(slow("{\"a\":\"1\"}\n"), "a string for a number");
        assert!(slow("{\"s\":1}\n"), "a number for a string");
        assert!(slow("{\"a\":true}\n"), "a boolean for a number");
        assert!(slow("{\"a\":1,\"a\":2}\n"), "a key twice");
        assert!(slow("{\"a\":1.5}\n"), "a fraction for an integer");
        assert!(slow("{\"a\":01}\n"), "a leading zero");
        assert!(slow("{\"a\":+1}\n"), "a plus sign");
        assert!(slow("{\"i\":3000000000}\n"), "out of range");
        assert!(slow("{\"t\":\"2015-07-15T00:00:00Z\"}\n"), "a zone");
        assert!(slow("{\"t\":1}\n"), "a number for a timestamp");
        assert!(slow("[1]\n"), "not an object");
        assert!(slow("{\"a\":1\n"), "cut short");
        assert!(slow("{\"a\":1 \"s\":\"x\"}\n"), "no comma");
    }
}
