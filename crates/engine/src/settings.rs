//! Session settings changed with `SET key = value` and `RESET [key]`.
//!
//! Keys are Sluice's short names; Flink SQL client names are accepted as
//! aliases so pasted Flink scripts keep working.

use std::collections::BTreeMap;

use sluice_common::{Error, Result};

mod checkpoint;
mod emit;
mod workers;

pub use checkpoint::CheckpointSettings;
pub use workers::WorkerSettings;

/// One known setting.
struct Spec {
    key: &'static str,
    aliases: &'static [&'static str],
    default: &'static str,
    help: &'static str,
    check: fn(&str) -> std::result::Result<String, String>,
}

const SPECS: &[Spec] = &[
    Spec {
        key: "format",
        aliases: &["sql-client.execution.result-mode"],
        default: "table",
        help: "how SELECT results are shown: table | changelog | csv | json",
        check: check_format,
    },
    Spec {
        key: "max-rows",
        aliases: &["sql-client.execution.max-table-result.rows"],
        default: "auto",
        help: "rows a table shows: a number (the newest), or auto (a running stream: what \
               fits the terminal; a bounded result: all of it)",
        check: check_max_rows,
    },
    Spec {
        key: "pager",
        aliases: &[],
        default: "auto",
        help: "page a bounded result taller than the terminal through $PAGER (or less): \
               auto | off",
        check: check_pager,
    },
    Spec {
        key: "timing",
        aliases: &[],
        default: "off",
        help: "print how long each statement took: on | off",
        check: check_on_off,
    },
    Spec {
        key: "parallelism",
        aliases: &[
            "parallelism.default",
            "table.exec.resource.default-parallelism",
        ],
        default: "auto",
        help: "parallel instances of keyed operators and decode threads of file and nexmark \
               sources: a number, or auto (the number of cores)",
        check: check_parallelism,
    },
    Spec {
        key: "table.exec.state.ttl",
        aliases: &["idle-state-retention"],
        default: "0 ms",
        help: "how long updating operators keep the state of a key that is not updated \
               (0: forever), e.g. '1 h'",
        check: check_duration,
    },
    Spec {
        key: "table.exec.mini-batch.allow-latency",
        aliases: &[],
        default: "0 ms",
        help: "how long an updating aggregate collects input before it emits its changes \
               (0: one mini-batch per input batch), e.g. '2 s'",
        check: check_duration,
    },
    Spec {
        key: "table.exec.mini-batch.size",
        aliases: &[],
        default: "100000",
        help: "most input rows in one mini-batch (a mini-batch ends at whichever of \
               allow-latency and size comes first)",
        check: check_positive,
    },
    Spec {
        key: "table.exec.mini-batch.enabled",
        aliases: &[],
        default: "auto",
        help: "collect updating aggregates' input into mini-batches: true | false | auto \
               (on when allow-latency is above 0)",
        check: check_true_false_auto,
    },
    Spec {
        key: "table.exec.source.idle-timeout",
        aliases: &[],
        default: "0 ms",
        help: "how long a Kafka partition without records holds the watermark back, for tables \
               without their own 'scan.watermark.idle-timeout' (0: forever)",
        check: check_duration,
    },
    Spec {
        key: "table.exec.emit.early-fire.enabled",
        aliases: &[],
        default: "false",
        help: "window aggregates emit results before their window closes (updating \
               output), every early-fire.delay: true | false",
        check: check_true_false,
    },
    Spec {
        key: "table.exec.emit.early-fire.delay",
        aliases: &[],
        default: "unset",
        help: "how often early results are emitted (wall clock; 0: after every input batch), \
               e.g. '1 s'",
        check: check_duration,
    },
    Spec {
        key: "table.exec.emit.allow-lateness",
        aliases: &[],
        default: "0 ms",
        help: "how long a window aggregate keeps a window after it fired; a late row within \
               it updates the result (updating output), e.g. '1 min'",
        check: check_duration,
    },
    Spec {
        key: "table.exec.emit.late-fire.enabled",
        aliases: &[],
        default: "false",
        help: "emit late rows' updates every late-fire.delay instead of after every input \
               batch: true | false",
        check: check_true_false,
    },
    Spec {
        key: "table.exec.emit.late-fire.delay",
        aliases: &[],
        default: "unset",
        help: "how often late updates are emitted when late-fire is enabled (wall clock; \
               0: after every input batch)",
        check: check_duration,
    },
];

fn check_true_false(v: &str) -> std::result::Result<String, String> {
    match v.to_ascii_lowercase().as_str() {
        s @ ("true" | "false") => Ok(s.to_string()),
        _ => Err("true or false".into()),
    }
}

fn check_positive(v: &str) -> std::result::Result<String, String> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n.to_string()),
        _ => Err("a positive number".into()),
    }
}

fn check_true_false_auto(v: &str) -> std::result::Result<String, String> {
    match v.to_ascii_lowercase().as_str() {
        s @ ("true" | "false" | "auto") => Ok(s.to_string()),
        _ => Err("true, false or auto".into()),
    }
}

fn check_duration(v: &str) -> std::result::Result<String, String> {
    match sluice_connectors::options::parse_duration_ms(v) {
        Some(ms) => Ok(format!("{ms} ms")),
        None => Err("a duration such as '1 h', '30 min' or '0 ms'".into()),
    }
}

/// Most instances a query may ask for.
const MAX_PARALLELISM: usize = 256;

fn check_parallelism(v: &str) -> std::result::Result<String, String> {
    if v.eq_ignore_ascii_case("auto") {
        return Ok("auto".into());
    }
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_PARALLELISM).contains(&n) => Ok(n.to_string()),
        _ => Err(format!("a number from 1 to {MAX_PARALLELISM}, or auto")),
    }
}

fn check_pager(v: &str) -> std::result::Result<String, String> {
    match v.to_ascii_lowercase().as_str() {
        "auto" | "on" => Ok("auto".into()),
        "off" => Ok("off".into()),
        _ => Err("auto or off".into()),
    }
}

fn check_format(v: &str) -> std::result::Result<String, String> {
    match v.to_ascii_lowercase().as_str() {
        // Flink's `tableau` prints rows as they come, as our table does.
        "table" | "tableau" => Ok("table".into()),
        "changelog" => Ok("changelog".into()),
        "csv" => Ok("csv".into()),
        "json" => Ok("json".into()),
        _ => Err("table, changelog, csv or json".into()),
    }
}

fn check_max_rows(v: &str) -> std::result::Result<String, String> {
    if v.eq_ignore_ascii_case("auto") {
        return Ok("auto".into());
    }
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n.to_string()),
        _ => Err("a positive number or auto".into()),
    }
}

fn check_on_off(v: &str) -> std::result::Result<String, String> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" => Ok("on".into()),
        "off" | "false" => Ok("off".into()),
        _ => Err("on or off".into()),
    }
}

/// Every known setting.
fn specs() -> impl Iterator<Item = &'static Spec> {
    SPECS.iter().chain(checkpoint::SPECS).chain(workers::SPECS)
}

fn spec(key: &str) -> Result<&'static Spec> {
    let k = key.to_ascii_lowercase();
    specs()
        .find(|s| s.key == k || s.aliases.contains(&k.as_str()))
        .ok_or_else(|| {
            // Flink's `table.exec.*` and checkpoint keys are listed for a
            // key of their family, the short ones otherwise (`SET;` lists
            // them all).
            let family = |k: &str| {
                if k.starts_with("table.") {
                    1
                } else if ["execution.", "state.", "pipeline."]
                    .iter()
                    .any(|p| k.starts_with(p))
                {
                    2
                } else if k.starts_with("sluice.") {
                    3
                } else {
                    0
                }
            };
            let mut known: Vec<&str> = specs()
                .map(|s| s.key)
                .filter(|key| family(key) == family(&k))
                .collect();
            if family(&k) == 0 {
                known.push(
                    "table.exec.*, execution.checkpointing.*, sluice.worker* (SET; lists every \
                     setting)",
                );
            }
            // A long key is echoed by its start only.
            let shown: String = key.chars().take(40).collect();
            let more = if shown.len() < key.len() { "..." } else { "" };
            Error::plan(format!(
                "unknown setting '{shown}{more}' (known: {})",
                known.join(", ")
            ))
        })
}

/// Current values (only those changed from their defaults are stored).
#[derive(Debug, Default)]
pub struct Settings {
    values: BTreeMap<&'static str, String>,
}

impl Settings {
    /// Set `key` to `value` after checking it; returns the canonical key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&'static str> {
        let s = spec(key)?;
        let v = (s.check)(value).map_err(|expected| {
            Error::plan(format!(
                "setting '{}' must be {expected}, not '{value}'",
                s.key
            ))
        })?;
        self.values.insert(s.key, v);
        Ok(s.key)
    }

    /// Back to the default: one key, or all.
    pub fn reset(&mut self, key: Option<&str>) -> Result<()> {
        match key {
            Some(k) => {
                let s = spec(k)?;
                self.values.remove(s.key);
            }
            None => self.values.clear(),
        }
        Ok(())
    }

    /// The value of a known key (its default when unset).
    pub fn get(&self, key: &str) -> Result<String> {
        let s = spec(key)?;
        Ok(self
            .values
            .get(s.key)
            .cloned()
            .unwrap_or_else(|| s.default.to_string()))
    }

    /// Every setting as (key, value, description).
    pub fn all(&self) -> Vec<(String, String, String)> {
        specs()
            .map(|s| {
                let v = self
                    .values
                    .get(s.key)
                    .cloned()
                    .unwrap_or_else(|| s.default.to_string());
                (s.key.to_string(), v, s.help.to_string())
            })
            .collect()
    }

    /// Parallelism for new queries: the setting, or the number of cores.
    pub fn parallelism(&self) -> usize {
        match self.values.get("parallelism").map(|v| v.parse::<usize>()) {
            Some(Ok(n)) => n,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// `table.exec.state.ttl`: `None` keeps state forever.
    pub fn state_ttl(&self) -> Option<std::time::Duration> {
        self.nonzero_duration("table.exec.state.ttl")
    }

    /// `table.exec.source.idle-timeout`: `None` when 0.
    pub fn source_idle_timeout(&self) -> Option<std::time::Duration> {
        self.nonzero_duration("table.exec.source.idle-timeout")
    }

    /// A duration setting's stored value (`None` when unset).
    fn duration(&self, key: &str) -> Option<std::time::Duration> {
        self.value(key)
            .and_then(sluice_connectors::options::parse_duration_ms)
            .map(std::time::Duration::from_millis)
    }

    /// A duration setting, `None` when unset or 0.
    fn nonzero_duration(&self, key: &str) -> Option<std::time::Duration> {
        self.duration(key).filter(|d| !d.is_zero())
    }

    /// `table.exec.mini-batch.*`: how long and how many rows an updating
    /// aggregate collects before emitting, when mini-batches are on.
    pub fn mini_batch(&self) -> Option<(std::time::Duration, usize)> {
        let get = |k: &str| self.values.get(k).map(String::as_str);
        let ms = get("table.exec.mini-batch.allow-latency")
            .and_then(sluice_connectors::options::parse_duration_ms)
            .unwrap_or(0);
        let size = get("table.exec.mini-batch.size")
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000);
        let on = match get("table.exec.mini-batch.enabled") {
            Some("false") => false,
            _ => ms > 0,
        };
        on.then(|| (std::time::Duration::from_millis(ms), size))
    }

    /// A stored value (`None` when unset).
    pub(crate) fn value(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Names of every setting (for completion).
    pub fn keys() -> Vec<&'static str> {
        specs().map(|s| s.key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_checks_values_and_accepts_flink_names() {
        let mut s = Settings::default();
        assert_eq!(s.get("format").expect("known"), "table");
        s.set("sql-client.execution.result-mode", "tableau")
            .expect("alias");
        assert_eq!(s.get("format").expect("known"), "table");
        s.set("FORMAT", "changelog").expect("case-insensitive");
        assert_eq!(s.get("format").expect("known"), "changelog");
        let err = s.set("format", "xml").expect_err("bad value");
        assert!(err.to_string().contains("table, changelog, csv or json"));
        assert!(s.set("max-rows", "0").is_err());
        s.set("max-rows", "15").expect("number");
        let err = s.set("nope", "1").expect_err("unknown");
        assert!(err.to_string().contains("unknown setting 'nope'"));
        s.reset(Some("format")).expect("reset");
        assert_eq!(s.get("format").expect("known"), "table");
        s.set("parallelism.default", "2").expect("Flink name");
        assert_eq!(s.parallelism(), 2);
        assert!(s.set("parallelism", "0").is_err());
        s.reset(None).expect("reset all");
        // Reset means the default again: the number of cores.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(s.parallelism(), cores);
        assert_eq!(s.get("max-rows").expect("known"), "auto");
    }
}
