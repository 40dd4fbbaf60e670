//! Column generators: whole columns of a batch at once.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{
    ArrayRef, BooleanArray, BooleanBufferBuilder, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, StringArray, StringBuilder,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

use super::{ColumnSpec, Kind, Random};

/// Characters of random strings.
const ALPHANUMERIC: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const MILLIS_PER_DAY: i64 = 86_400_000;

/// SplitMix64: small, fast and good enough for test data (not for secrets).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded from the clock (and a counter, so sources created at the same
    /// instant differ).
    pub(crate) fn from_clock() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Rng(nanos ^ n.wrapping_mul(0xA076_1D64_78BD_642F))
    }

    /// Its state: a restored generator continues the same sequence.
    pub(crate) fn state(&self) -> u64 {
        self.0
    }

    /// A generator at state `s` (see [`Rng::state`]).
    pub(crate) fn at(s: u64) -> Self {
        Rng(s)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, span)`; `span > 0`.
    fn below(&mut self, span: u128) -> u128 {
        if span <= 1 << 64 {
            // Lemire's multiply-shift: bias below 2^-64 * span, negligible.
            return (u128::from(self.next_u64()) * span) >> 64;
        }
        let zone = u128::MAX - u128::MAX % span;
        loop {
            let r = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
            if r < zone {
                return r % span;
            }
        }
    }

    /// Uniform in `[min, max]`; `min <= max`.
    fn between(&mut self, min: i128, max: i128) -> i128 {
        // The span of any supported range fits in u128 (|bounds| < 2^127).
        let span = max.abs_diff(min).saturating_add(1);
        min.wrapping_add(self.below(span) as i128)
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Produces batches of a datagen table.
#[derive(Debug)]
pub(crate) struct Generator {
    schema: SchemaRef,
    columns: Vec<ColumnSpec>,
    /// Next value of each sequence column (unused for random columns).
    cursors: Vec<i128>,
    rng: Rng,
}

impl Generator {
    /// Its random state and each sequence column's next value.
    pub(crate) fn position(&self) -> (u64, Vec<i128>) {
        (self.rng.state(), self.cursors.clone())
    }

    /// Continue from a [`Generator::position`].
    pub(crate) fn resume(&mut self, rng: u64, cursors: Vec<i128>) {
        self.rng = Rng::at(rng);
        if cursors.len() == self.cursors.len() {
            self.cursors = cursors;
        }
    }

    pub(crate) fn new(schema: SchemaRef, columns: Vec<ColumnSpec>, rng: Rng) -> Self {
        let cursors = columns
            .iter()
            .map(|c| match c.kind {
                Kind::Sequence { start, .. } => start,
                Kind::Random(_) => 0,
            })
            .collect();
        Generator {
            schema,
            columns,
            cursors,
            rng,
        }
    }

    /// Rows per batch: `max`, fewer for wide string columns so that one
    /// batch holds at most 64 MiB of string data.
    pub(crate) fn batch_rows(&self, max: usize) -> usize {
        let row_bytes: usize = self
            .columns
            .iter()
            .map(|c| match c.kind {
                Kind::Random(Random::Utf8 { length, .. }) => length,
                Kind::Sequence { .. } => 40,
                Kind::Random(_) => 0,
            })
            .fold(0usize, usize::saturating_add);
        ((64 << 20) / row_bytes.max(1)).clamp(1, max.max(1))
    }

    /// The next `n` rows; `now_ms` is the wall clock for date and time
    /// columns.
    pub(crate) fn batch(&mut self, n: usize, now_ms: i64) -> Result<RecordBatch> {
        let mut arrays = Vec::with_capacity(self.columns.len());
        for i in 0..self.columns.len() {
            let spec = &self.columns[i];
            let array = match &spec.kind {
                Kind::Sequence { end, .. } => {
                    let first = self.cursors[i];
                    let next = first + n as i128;
                    if next - 1 > *end {
                        return Err(Error::internal("datagen sequence overrun"));
                    }
                    self.cursors[i] = next;
                    sequence(&spec.data_type, first, n)?
                }
                Kind::Random(r) => {
                    let nulls = null_buffer(&mut self.rng, n, spec.null_rate);
                    random(&mut self.rng, &spec.data_type, r, n, nulls, now_ms)?
                }
            };
            arrays.push(array);
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), arrays)?)
    }
}

fn null_buffer(rng: &mut Rng, n: usize, rate: f64) -> Option<NullBuffer> {
    if rate <= 0.0 {
        return None;
    }
    if rate >= 1.0 {
        return Some(NullBuffer::new_null(n));
    }
    let mut valid = BooleanBufferBuilder::new(n);
    for _ in 0..n {
        valid.append(rng.unit() >= rate);
    }
    Some(NullBuffer::new(valid.finish()))
}

/// An integer column of type `t` from values that fit it.
fn ints(
    t: &DataType,
    values: impl Iterator<Item = i128>,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef> {
    macro_rules! build {
        ($array:ty, $native:ty) => {
            Arc::new(<$array>::try_new(
                values.map(|v| v as $native).collect::<ScalarBuffer<_>>(),
                nulls,
            )?) as ArrayRef
        };
    }
    Ok(match t {
        DataType::Int8 => build!(Int8Array, i8),
        DataType::Int16 => build!(Int16Array, i16),
        DataType::Int32 => build!(Int32Array, i32),
        DataType::Int64 => build!(Int64Array, i64),
        DataType::UInt8 => build!(UInt8Array, u8),
        DataType::UInt16 => build!(UInt16Array, u16),
        DataType::UInt32 => build!(UInt32Array, u32),
        DataType::UInt64 => build!(UInt64Array, u64),
        other => {
            return Err(Error::internal(format!(
                "datagen: {other} is not an integer type"
            )))
        }
    })
}

fn sequence(t: &DataType, first: i128, n: usize) -> Result<ArrayRef> {
    let values = (0..n).map(|k| first + k as i128);
    if *t != DataType::Utf8 {
        return ints(t, values, None);
    }
    let mut b = StringBuilder::with_capacity(n, n * 8);
    for v in values {
        write!(b, "{v}").map_err(|e| Error::internal(e.to_string()))?;
        b.append_value("");
    }
    Ok(Arc::new(b.finish()))
}

fn random(
    rng: &mut Rng,
    t: &DataType,
    r: &Random,
    n: usize,
    nulls: Option<NullBuffer>,
    now_ms: i64,
) -> Result<ArrayRef> {
    Ok(match *r {
        Random::Bool => {
            let mut values = BooleanBufferBuilder::new(n);
            let mut bits = 0;
            for k in 0..n {
                if k % 64 == 0 {
                    bits = rng.next_u64();
                }
                values.append(bits & (1 << (k % 64)) != 0);
            }
            Arc::new(BooleanArray::new(values.finish(), nulls))
        }
        Random::Int { min, max } => ints(t, (0..n).map(|_| rng.between(min, max)), nulls)?,
        Random::Float { min, max } => {
            let mut values = (0..n).map(|_| {
                let u = rng.unit();
                // Never overflows, unlike `min + (max - min) * u`.
                (min * (1.0 - u) + max * u).clamp(min, max)
            });
            if *t == DataType::Float32 {
                let v: ScalarBuffer<f32> = values.by_ref().map(|v| v as f32).collect();
                Arc::new(Float32Array::try_new(v, nulls)?)
            } else {
                Arc::new(Float64Array::try_new(values.collect(), nulls)?)
            }
        }
        Random::Decimal { min, max } => {
            let DataType::Decimal128(p, s) = *t else {
                return Err(Error::internal(format!("datagen: {t} is not a decimal")));
            };
            let values: ScalarBuffer<i128> = (0..n).map(|_| rng.between(min, max)).collect();
            Arc::new(Decimal128Array::try_new(values, nulls)?.with_precision_and_scale(p, s)?)
        }
        Random::Utf8 { length, var_len } => strings(rng, n, length, var_len, nulls)?,
        Random::Time { max_past_ms } => {
            let span = u128::from(max_past_ms) + 1;
            let millis = (0..n)
                .map(|_| now_ms.saturating_sub(i64::try_from(rng.below(span)).unwrap_or(i64::MAX)));
            match t {
                DataType::Date32 => {
                    let days = millis.map(|ms| ms.div_euclid(MILLIS_PER_DAY) as i32);
                    Arc::new(Date32Array::try_new(days.collect(), nulls)?)
                }
                DataType::Timestamp(unit, tz) => {
                    let tz = tz.clone();
                    match unit {
                        TimeUnit::Second => Arc::new(
                            TimestampSecondArray::try_new(
                                millis.map(|ms| ms.div_euclid(1000)).collect(),
                                nulls,
                            )?
                            .with_timezone_opt(tz),
                        ),
                        TimeUnit::Millisecond => Arc::new(
                            TimestampMillisecondArray::try_new(millis.collect(), nulls)?
                                .with_timezone_opt(tz),
                        ),
                        TimeUnit::Microsecond => Arc::new(
                            TimestampMicrosecondArray::try_new(
                                millis.map(|ms| ms.saturating_mul(1_000)).collect(),
                                nulls,
                            )?
                            .with_timezone_opt(tz),
                        ),
                        TimeUnit::Nanosecond => Arc::new(
                            TimestampNanosecondArray::try_new(
                                millis.map(|ms| ms.saturating_mul(1_000_000)).collect(),
                                nulls,
                            )?
                            .with_timezone_opt(tz),
                        ),
                    }
                }
                other => {
                    return Err(Error::internal(format!(
                        "datagen: {other} is not a time type"
                    )))
                }
            }
        }
    })
}

/// Random alphanumeric strings of `length` characters (1..=`length` with
/// `var_len`); null rows are empty.
fn strings(
    rng: &mut Rng,
    n: usize,
    length: usize,
    var_len: bool,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef> {
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0i32);
    let mut bytes = Vec::with_capacity(n.saturating_mul(length));
    for row in 0..n {
        let len = match &nulls {
            Some(nb) if nb.is_null(row) => 0,
            _ if var_len && length > 1 => 1 + rng.below(length as u128) as usize,
            _ => length,
        };
        let mut bits = 0u64;
        for k in 0..len {
            if k % 4 == 0 {
                bits = rng.next_u64();
            }
            // 16 random bits per character: bias below 0.1%.
            let chunk = (bits >> (16 * (k % 4))) & 0xFFFF;
            bytes.push(ALPHANUMERIC[((chunk * 62) >> 16) as usize]);
        }
        let end = i32::try_from(bytes.len())
            .map_err(|_| Error::internal("datagen: string batch larger than 2 GiB"))?;
        offsets.push(end);
    }
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    Ok(Arc::new(StringArray::try_new(
        offsets,
        Buffer::from_vec(bytes),
        nulls,
    )?))
}
