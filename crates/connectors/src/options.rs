//! Typed access to a table's `WITH (...)` options.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sluice_common::{Error, Result};

/// A duration in milliseconds: a plain number (milliseconds) or a number
/// with a unit (`ms`, `s`, `min`, `h`, `d` and their long forms), as Flink's
/// duration options.
pub fn parse_duration_ms(v: &str) -> Option<u64> {
    let v = v.trim();
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = v[..digits].parse().ok()?;
    let factor: u64 = match v[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// A size in bytes: a plain number (bytes) or a number with a unit (`b`,
/// `kb`, `mb`, `gb`, `tb`, also `k`, `m`, `g`, `kib` ...; powers of 1024), as
/// Flink's memory-size options.
pub fn parse_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = v[..digits].parse().ok()?;
    let unit = v[digits..].trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" | "kilo" | "kilobytes" => 10,
        "m" | "mega" | "megabytes" => 20,
        "g" | "giga" | "gigabytes" => 30,
        "t" | "tera" | "terabytes" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// Options of one table, with a record of which keys were read so unknown
/// keys can be reported.
#[derive(Debug)]
pub struct Options<'a> {
    table: &'a str,
    map: &'a BTreeMap<String, String>,
    used: BTreeSet<&'a str>,
}

impl<'a> Options<'a> {
    /// Wrap the options of `table`.
    pub fn new(table: &'a str, map: &'a BTreeMap<String, String>) -> Self {
        let mut used = BTreeSet::new();
        used.insert("connector");
        Options { table, map, used }
    }

    /// An optional string option.
    pub fn get(&mut self, key: &'a str) -> Option<&'a str> {
        self.used.insert(key);
        self.map.get(key).map(String::as_str)
    }

    /// A required string option.
    pub fn required(&mut self, key: &'a str) -> Result<&'a str> {
        self.get(key).ok_or_else(|| {
            Error::plan(format!("table {}: option '{key}' is required", self.table)).near("WITH")
        })
    }

    /// A boolean option (`true`/`false`).
    pub fn bool(&mut self, key: &'a str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Error::plan(format!(
                    "table {}: option '{key}' must be 'true' or 'false', not '{v}'",
                    self.table
                ))),
            },
        }
    }

    /// A duration option (see [`parse_duration_ms`]).
    pub fn duration(&mut self, key: &'a str, default: Duration) -> Result<Duration> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_duration_ms(v)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    Error::plan(format!(
                    "table {}: option '{key}' = '{v}' is not a duration such as '30 s' or '10 min'",
                    self.table
                ))
                }),
        }
    }

    /// A size option (see [`parse_bytes`]).
    pub fn bytes(&mut self, key: &'a str, default: u64) -> Result<u64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => parse_bytes(v).ok_or_else(|| {
                Error::plan(format!(
                    "table {}: option '{key}' = '{v}' is not a size such as '128 MB'",
                    self.table
                ))
            }),
        }
    }

    /// One of a fixed set of values (case-insensitive).
    pub fn one_of(&mut self, key: &'a str, allowed: &[&str], default: &str) -> Result<String> {
        let v = self.get(key).unwrap_or(default).to_ascii_lowercase();
        if allowed.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(Error::plan(format!(
                "table {}: option '{key}' = '{v}' is not one of {}",
                self.table,
                allowed.join(", ")
            )))
        }
    }

    /// `csv.field-delimiter`: one character (or `\t`), default `,`.
    pub fn csv_delimiter(&mut self) -> Result<u8> {
        let d = self.get("csv.field-delimiter").unwrap_or(",");
        match d.as_bytes() {
            [b] => Ok(*b),
            _ if d == "\\t" => Ok(b'\t'),
            _ => Err(Error::plan(format!(
                "table {}: 'csv.field-delimiter' must be one character, not '{d}'",
                self.table
            ))),
        }
    }

    /// Fail on options nobody read (typos).
    pub fn finish(self) -> Result<()> {
        let unknown: Vec<&str> = self
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| !self.used.contains(k))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(Error::plan(format!(
                "table {}: unknown option(s) {} for connector '{}'",
                self.table,
                unknown
                    .iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.map
                    .get("connector")
                    .map(String::as_str)
                    .unwrap_or("memory")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("128MB"), Some(128 << 20));
        assert_eq!(parse_bytes("1 kb"), Some(1024));
        assert_eq!(parse_bytes("2gib"), Some(2 << 30));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("1 parsec"), None);
        assert_eq!(parse_duration_ms("30 min"), Some(1_800_000));
        assert_eq!(parse_duration_ms("2s"), Some(2_000));
    }
}
