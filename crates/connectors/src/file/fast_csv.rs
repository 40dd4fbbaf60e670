//! A fast path for the common CSV block: no quotes, no blank lines, every
//! value in its plain form. Lines and fields are found with `memchr` (a
//! vectorised search) instead of csv_core's byte-at-a-time state machine,
//! only the projected fields are looked at, and integers, floats, strings
//! and `YYYY-MM-DD HH:MM:SS[.fff]` timestamps are parsed in place with no
//! per-row allocation.
//!
//! Anything else (a quote anywhere in the block, a blank line, a row with
//! another number of fields, invalid UTF-8, a value in another form) gives
//! `None`, and the block goes to arrow-csv as before, which reads what it
//! can and reports the bad record with its file and line. The values this
//! path accepts are parsed to what arrow-csv makes of them (empty fields
//! are NULL, integers by the same checked rules, floats with the same
//! `lexical-core`, timestamps without a zone as UTC).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, PrimitiveArray,
    StringArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow::record_batch::RecordBatch;

/// Whether the fast paths (CSV, JSON) can make every column of `schema`.
pub fn supports_all(schema: &arrow::datatypes::Schema) -> bool {
    schema.fields().iter().all(|f| supports(f.data_type()))
}

/// Whether the fast path can make a column of type `t`.
fn supports(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::Timestamp(_, None)
    )
}

/// One output column being built.
enum Column {
    Int(Vec<i64>, DataType),
    Float(Vec<f64>, DataType),
    Str(Vec<i32>, Vec<u8>),
    Timestamp(Vec<i64>, TimeUnit),
}

pub(super) struct Builder {
    column: Column,
    valid: Vec<bool>,
    nulls: usize,
    /// The last date parsed (`YYYY-MM-DD`) and its day number: rows of a
    /// block mostly share their date.
    last_date: ([u8; 10], i64),
}

impl Builder {
    pub(super) fn new(t: &DataType, rows: usize) -> Self {
        let column = match t {
            DataType::Float32 | DataType::Float64 => {
                Column::Float(Vec::with_capacity(rows), t.clone())
            }
            DataType::Utf8 => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Column::Str(offsets, Vec::new())
            }
            DataType::Timestamp(unit, _) => Column::Timestamp(Vec::with_capacity(rows), *unit),
            _ => Column::Int(Vec::with_capacity(rows), t.clone()),
        };
        Builder {
            column,
            valid: Vec::with_capacity(rows),
            nulls: 0,
            last_date: ([0; 10], 0),
        }
    }

    /// Add one CSV field: empty is NULL, else its value; `None` when it
    /// is not in a plain form.
    pub(super) fn push(&mut self, field: &[u8]) -> Option<()> {
        if field.is_empty() {
            self.push_null();
            Some(())
        } else {
            self.push_value(field)
        }
    }

    /// Add a NULL.
    pub(super) fn push_null(&mut self) {
        self.valid.push(false);
        self.nulls += 1;
        match &mut self.column {
            Column::Int(v, _) | Column::Timestamp(v, _) => v.push(0),
            Column::Float(v, _) => v.push(0.0),
            Column::Str(offsets, values) => offsets.push(values.len() as i32),
        }
    }

    /// Add a value (a string may be empty); `None` when it is not in a
    /// plain form.
    pub(super) fn push_value(&mut self, field: &[u8]) -> Option<()> {
        match &mut self.column {
            Column::Int(v, t) => v.push(int(field, t)?),
            // A FLOAT is parsed as f32 (as arrow-csv does: no double
            // rounding), then held exactly as f64.
            Column::Float(v, DataType::Float32) => {
                v.push(f64::from(lexical_core::parse::<f32>(field).ok()?))
            }
            Column::Float(v, _) => v.push(lexical_core::parse(field).ok()?),
            Column::Str(offsets, values) => {
                values.extend_from_slice(field);
                offsets.push(i32::try_from(values.len()).ok()?);
            }
            Column::Timestamp(v, unit) => v.push(timestamp(field, *unit, &mut self.last_date)?),
        }
        self.valid.push(true);
        Some(())
    }

    /// Whether the column holds numbers (else strings or timestamps).
    pub(super) fn is_number(&self) -> bool {
        matches!(self.column, Column::Int(..) | Column::Float(..))
    }

    pub(super) fn finish(self) -> Option<ArrayRef> {
        let nulls = (self.nulls > 0).then(|| NullBuffer::from(self.valid));
        Some(match self.column {
            Column::Int(v, DataType::Int16) => {
                let v = v.into_iter().map(|x| x as i16).collect::<Vec<_>>();
                Arc::new(Int16Array::new(ScalarBuffer::from(v), nulls))
            }
            Column::Int(v, DataType::Int32) => {
                let v = v.into_iter().map(|x| x as i32).collect::<Vec<_>>();
                Arc::new(Int32Array::new(ScalarBuffer::from(v), nulls))
            }
            Column::Int(v, _) => Arc::new(Int64Array::new(ScalarBuffer::from(v), nulls)),
            Column::Float(v, DataType::Float32) => {
                let v = v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
                Arc::new(Float32Array::new(ScalarBuffer::from(v), nulls))
            }
            Column::Float(v, _) => Arc::new(Float64Array::new(ScalarBuffer::from(v), nulls)),
            Column::Str(offsets, values) => {
                // Checked once for the whole block by the caller.
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                Arc::new(StringArray::try_new(offsets, values.into(), nulls).ok()?)
            }
            Column::Timestamp(v, unit) => match unit {
                TimeUnit::Second => ts::<TimestampSecondType>(v, nulls),
                TimeUnit::Millisecond => ts::<TimestampMillisecondType>(v, nulls),
                TimeUnit::Microsecond => ts::<TimestampMicrosecondType>(v, nulls),
                TimeUnit::Nanosecond => ts::<TimestampNanosecondType>(v, nulls),
            },
        })
    }
}

fn ts<T: ArrowPrimitiveType<Native = i64>>(v: Vec<i64>, nulls: Option<NullBuffer>) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::from(v), nulls))
}

/// A plain integer (optional sign, digits) that fits `t`.
fn int(field: &[u8], t: &DataType) -> Option<i64> {
    let (negative, digits) = match field {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, field),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + i64::from(d);
    }
    let n = if negative { -n } else { n };
    let fits = match t {
        DataType::Int16 => i16::try_from(n).is_ok(),
        DataType::Int32 => i32::try_from(n).is_ok(),
        _ => true,
    };
    fits.then_some(n)
}

/// `n` ASCII digits as a number.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| {
        let d = c.wrapping_sub(b'0');
        (d <= 9).then(|| n * 10 + u32::from(d))
    })
}

/// Days from 1970-01-01 to a valid civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DD HH:MM:SS` (or `T` between), then optionally `.` and 1 to 9
/// digits, as UTC in `unit`; `last` is the date parsed before and its day.
fn timestamp(b: &[u8], unit: TimeUnit, last: &mut ([u8; 10], i64)) -> Option<i64> {
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (h, mi, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let day = if b[..10] == last.0 {
        last.1
    } else {
        let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
        let y = i64::from(y);
        if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
            return None;
        }
        let day = days_from_civil(y, mo, d);
        last.0.copy_from_slice(&b[..10]);
        last.1 = day;
        day
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            digits(frac)? * 10u32.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    let secs = day * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    let nanos = i64::from(nanos);
    Some(match unit {
        TimeUnit::Second => secs,
        TimeUnit::Millisecond => secs * 1_000 + nanos / 1_000_000,
        TimeUnit::Microsecond => secs * 1_000_000 + nanos / 1_000,
        TimeUnit::Nanosecond => secs.checked_mul(1_000_000_000)?.checked_add(nanos)?,
    })
}

/// Decode `bytes` (whole lines of `fields` fields) into `out`, whose
/// columns are the fields at `projection`; `None` when the block is not
/// in the plain form (see the module docs).
pub fn decode(
    bytes: &[u8],
    delimiter: u8,
    fields: usize,
    projection: &[usize],
    out: &SchemaRef,
    rows: usize,
) -> Option<RecordBatch> {
    if memchr::memchr(b'"', bytes).is_some() || std::str::from_utf8(bytes).is_err() {
        return None;
    }
    // arrow-csv ends a record at a lone carriage return too.
    if memchr::memchr_iter(b'\r', bytes).any(|p| bytes.get(p + 1) != Some(&b'\n')) {
        return None;
    }
    // For each field of a line, the output column it feeds.
    let mut feeds = vec![usize::MAX; fields];
    for (j, &p) in projection.iter().enumerate() {
        *feeds.get_mut(p)? = j;
    }
    let mut builders: Vec<Builder> = out
        .fields()
        .iter()
        .map(|f| Builder::new(f.data_type(), rows))
        .collect();
    // One pass over every delimiter and newline of the block.
    let (mut n, mut field, mut at) = (0, 0, 0);
    for pos in memchr::memchr2_iter(delimiter, b'\n', bytes) {
        let newline = bytes[pos] == b'\n';
        let mut end = pos;
        if newline && end > at && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        if newline && field == 0 && end == at {
            return None;
        }
        let j = *feeds.get(field)?;
        if j != usize::MAX {
            builders[j].push(&bytes[at..end])?;
        }
        at = pos + 1;
        field += 1;
        if newline {
            if field != fields {
                return None;
            }
            field = 0;
            n += 1;
        }
    }
    if at != bytes.len() {
        return None;
    }
    let columns = builders
        .into_iter()
        .map(Builder::finish)
        .collect::<Option<Vec<_>>>()?;
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(n));
    RecordBatch::try_new_with_options(Arc::clone(out), columns, &options).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};

    fn schema(types: &[DataType]) -> SchemaRef {
        let fields: Vec<Field> = types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// The fast path's batch equals arrow-csv's over the same block.
    fn agrees(block: &str, file: &[DataType], projection: &[usize]) {
        let out = schema(
            &projection
                .iter()
                .map(|&p| file[p].clone())
                .collect::<Vec<_>>(),
        );
        let fast =
            decode(block.as_bytes(), b',', file.len(), projection, &out, 4).expect("plain block");
        let mut d = arrow::csv::ReaderBuilder::new(schema(file))
            .with_header(false)
            .with_projection(projection.to_vec())
            .build_decoder();
        d.decode(block.as_bytes()).expect("decodes");
        let slow = d.flush().expect("flushes").expect("rows");
        assert_eq!(fast.columns(), slow.columns(), "{block}");
    }

    #[test]
    fn agrees_with_arrow_csv() {
        let types = [
            DataType::Int64,
            DataType::Utf8,
            DataType::Timestamp(TimeUnit::Millisecond, None),
            DataType::Float64,
            DataType::Int32,
            DataType::Timestamp(TimeUnit::Nanosecond, None),
        ];
        let block = "1,a,2024-02-29 23:59:59.5,1.5,-7,1969-12-31T23:59:59.123456789\n\
                     -9223372036854775,,1900-01-01 00:00:00,,+3,2000-01-01 00:00:00\r\n\
                     ,é,2015-07-15 00:00:00.000,1e3,0,\n\
                     7,x,2015-07-16 00:00:00,16777217.000000001,1,\n";
        agrees(block, &types, &[0, 1, 2, 3, 4, 5]);
        agrees(block, &types, &[5, 2, 0]);
        let mut floats = types.clone();
        floats[3] = DataType::Float32;
        agrees(block, &floats, &[3]);
    }

    #[test]
    fn anything_else_goes_to_arrow_csv() {
        let file = [DataType::Int64, DataType::Utf8];
        let out = schema(&file);
        let slow = |b: &str| decode(b.as_bytes(), b',', 2, &[0, 1], &out, 1).is_none();
        assert!(slow("1,\"a\"\n"), "quotes");
        assert!(slow("1,a\n\n2,b\n"), "a blank line");
        assert!(slow("1,a,x\n"), "a field too many");
        assert!(slow("1\n"), "a field too few");
        assert!(slow(" 1,a\n"), "a space before a number");
        assert!(slow("1,a"), "no newline at the end");
        assert!(slow("1,a\r2,b\n"), "a lone carriage return");
        let ts = schema(&[DataType::Timestamp(TimeUnit::Millisecond, None)]);
        let slow_ts = |b: &str| decode(b.as_bytes(), b',', 1, &[0], &ts, 1).is_none();
        assert!(slow_ts("2023-02-29 00:00:00\n"), "no such day");
        assert!(slow_ts("2023-01-01\n"), "a date alone");
        assert!(slow_ts("2023-01-01 00:00:00Z\n"), "a zone");
        let small = schema(&[DataType::Int16]);
        assert!(
            decode(b"40000\n", b',', 1, &[0], &small, 1).is_none(),
            "overflow"
        );
    }
}
