//! `connector = 'datagen'`: generated rows, after Flink's datagen connector.
//!
//! Table options: `rows-per-second` (default 10000, the rate of the whole
//! source), `number-of-rows` (bounds the source; unbounded when absent) and
//! `scan.parallelism` (accepted for Flink compatibility, ignored).
//!
//! Column options `fields.<col>.<option>`:
//! * `kind`: `random` (default) or `sequence`.
//! * random: `null-rate` (0..=1, default 0) for every type, and by type
//!   - integers: `min` / `max` (inclusive; default the type's range),
//!   - `FLOAT` / `DOUBLE`: `min` / `max` (default Flink's
//!     `Float.MIN_VALUE`..`Float.MAX_VALUE`, resp. `Double.*`: the smallest
//!     positive value to the largest finite one),
//!   - `DECIMAL(p, s)`: `min` / `max` (default Flink's: from
//!     `Double.MIN_VALUE`, i.e. 0, to the largest value of the type; bounds
//!     are clamped to what the type can hold, extra digits are truncated),
//!   - `STRING`: `length` (default 100) and `var-len` (default false: every
//!     string has `length` characters; true: 1..=`length`), alphanumeric,
//!   - `DATE` / `TIMESTAMP`: `max-past` (default 0): now minus a random
//!     duration in `[0, max-past]`; milliseconds (`5000`) or `5 s`, `1 min`.
//!   - `BOOLEAN`: no options.
//! * sequence (integers and `STRING`): `start` and `end`, both required;
//!   every value of `start..=end` once, in order. The source ends when the
//!   shortest sequence does (or at `number-of-rows` if that comes first).

mod connector;
mod fields;
mod generate;
mod source;

pub use connector::DatagenConnector;
pub use source::{DatagenSource, DatagenSourceConfig};

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, SchemaRef};
use sluice_common::{Error, Result};

use crate::options::Options;

/// Default of `rows-per-second` (Flink's).
const DEFAULT_ROWS_PER_SECOND: u64 = 10_000;
/// Default of `fields.<col>.length` (Flink's).
const DEFAULT_LENGTH: usize = 100;
/// The options a `fields.<col>.` key may end with.
const FIELD_OPTIONS: &[&str] = &[
    "kind",
    "null-rate",
    "min",
    "max",
    "length",
    "var-len",
    "max-past",
    "start",
    "end",
];

/// Parsed and checked options of a datagen table.
#[derive(Debug, Clone)]
pub struct DatagenOptions {
    /// Rows per second of the whole source.
    pub rows_per_second: u64,
    /// `number-of-rows`, when set.
    pub number_of_rows: Option<u64>,
    /// One generator per column of the table's schema, in order.
    pub(crate) columns: Vec<ColumnSpec>,
}

/// How one column is generated.
#[derive(Debug, Clone)]
pub(crate) struct ColumnSpec {
    pub(crate) data_type: DataType,
    pub(crate) null_rate: f64,
    pub(crate) kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// `start..=end`, in order (integers or their decimal text).
    Sequence {
        start: i128,
        end: i128,
    },
    Random(Random),
}

#[derive(Debug, Clone)]
pub(crate) enum Random {
    Bool,
    /// Inclusive bounds.
    Int {
        min: i128,
        max: i128,
    },
    /// `[min, max)`.
    Float {
        min: f64,
        max: f64,
    },
    /// Inclusive bounds, unscaled.
    Decimal {
        min: i128,
        max: i128,
    },
    Utf8 {
        length: usize,
        var_len: bool,
    },
    /// Date or timestamp: now minus `[0, max_past_ms]`.
    Time {
        max_past_ms: u64,
    },
}

impl DatagenOptions {
    /// Read and check the options of a datagen table with `schema`.
    pub fn parse(table: &str, schema: &SchemaRef, map: &BTreeMap<String, String>) -> Result<Self> {
        let mut o = Options::new(table, map);
        let rows_per_second = match o.get("rows-per-second") {
            None => DEFAULT_ROWS_PER_SECOND,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(Error::plan(format!(
                    "table {table}: option 'rows-per-second' must be a positive integer, not '{v}'"
                )))
                }
            },
        };
        let number_of_rows = match o.get("number-of-rows") {
            None => None,
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                Error::plan(format!(
                    "table {table}: option 'number-of-rows' must be a non-negative integer, not '{v}'"
                ))
            })?),
        };
        // Flink's source parallelism; one generator here.
        let _ = o.get("scan.parallelism");

        let fields = schema.fields();
        let mut per_column: Vec<BTreeMap<&str, (&str, &str)>> = vec![BTreeMap::new(); fields.len()];
        for (key, value) in map {
            let Some(rest) = key.strip_prefix("fields.") else {
                continue;
            };
            let (col, option) = resolve_field_key(table, schema, key, rest)?;
            let _ = o.get(key);
            per_column[col].insert(option, (key.as_str(), value.as_str()));
        }
        let columns = fields
            .iter()
            .zip(&per_column)
            .map(|(f, opts)| fields::column_spec(table, f, opts))
            .collect::<Result<Vec<_>>>()?;
        o.finish()?;
        Ok(DatagenOptions {
            rows_per_second,
            number_of_rows,
            columns,
        })
    }

    /// Whether the source ends: `number-of-rows` is set or a column is a
    /// sequence.
    pub fn is_bounded(&self) -> bool {
        self.row_limit().is_some()
    }

    /// How many rows a bounded source emits: the smaller of
    /// `number-of-rows` and the length of the shortest sequence.
    pub fn row_limit(&self) -> Option<u64> {
        let sequences = self.columns.iter().filter_map(|c| match c.kind {
            Kind::Sequence { start, end } => {
                Some(u64::try_from(end - start + 1).unwrap_or(u64::MAX))
            }
            Kind::Random(_) => None,
        });
        sequences.chain(self.number_of_rows).min()
    }
}

/// The column (index) and option name of a `fields.<col>.<option>` key;
/// `rest` is the key without `fields.`.
fn resolve_field_key<'k>(
    table: &str,
    schema: &SchemaRef,
    key: &str,
    rest: &'k str,
) -> Result<(usize, &'k str)> {
    let split = |exact: bool| {
        schema
            .fields()
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let name = f.name();
                let head = rest.get(..name.len())?;
                let matches = if exact {
                    head == name
                } else {
                    head.eq_ignore_ascii_case(name)
                };
                let option = rest[name.len()..].strip_prefix('.')?;
                matches.then_some((i, name.len(), option))
            })
            .max_by_key(|&(_, len, _)| len)
            .map(|(i, _, option)| (i, option))
    };
    let Some((col, option)) = split(true).or_else(|| split(false)) else {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(Error::plan(format!(
            "table {table}: option '{key}' names no column of the table (columns: {})",
            names.join(", ")
        )));
    };
    if !FIELD_OPTIONS.contains(&option) {
        return Err(Error::plan(format!(
            "table {table}: unknown option '{key}' (field options are {})",
            FIELD_OPTIONS.join(", ")
        )));
    }
    Ok((col, option))
}

#[cfg(test)]
mod tests;
