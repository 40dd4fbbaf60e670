//! Parsing and checking a Kafka table's options.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_common::{Error, Result};

use crate::options::{parse_duration_ms, Options};

/// How a value (or key) is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// One JSON object per record, fields by name.
    Json,
    /// One CSV line per record, fields in column order.
    Csv {
        /// Field delimiter.
        delimiter: u8,
    },
    /// The record's bytes as the only column (STRING or BYTES).
    Raw,
    /// Debezium's JSON change envelope (a changelog; values only).
    DebeziumJson {
        /// Envelopes are the `payload` of a message that also has a
        /// `schema` (Debezium's JSON converter with schemas enabled).
        schema_include: bool,
    },
}

impl ValueFormat {
    /// Whether rows in this format carry row kinds.
    pub fn is_changelog(self) -> bool {
        matches!(self, ValueFormat::DebeziumJson { .. })
    }
}

/// Where reading starts (`scan.startup.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// `earliest-offset`.
    Earliest,
    /// `latest-offset`: only records produced after the start.
    Latest,
    /// `timestamp`: the first record at or after this time (ms).
    Timestamp(i64),
    /// `specific-offsets`: per partition; others start at the earliest.
    Specific(BTreeMap<i32, i64>),
}

/// Where reading ends (`scan.bounded.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bounded {
    /// Never: an unbounded stream.
    Unbounded,
    /// `latest-offset`: the end offsets seen when the query starts.
    Latest,
    /// `timestamp`: records before this time (ms).
    Timestamp(i64),
    /// `specific-offsets`: per partition, exclusive.
    Specific(BTreeMap<i32, i64>),
}

/// How the sink picks partitions (`sink.partitioner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioner {
    /// By key hash when there is a key, else librdkafka's sticky choice.
    Default,
    /// Everything to partition 0 (Flink: one sink instance, one partition).
    Fixed,
    /// Partitions in turn.
    RoundRobin,
}

/// A Kafka table's options.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Table name, for messages.
    pub table: String,
    /// Topic.
    pub topic: String,
    /// `properties.*` passed to librdkafka (prefix removed), including
    /// `bootstrap.servers`.
    pub properties: Vec<(String, String)>,
    /// Value format.
    pub format: ValueFormat,
    /// Skip (and count) records that do not decode.
    pub ignore_parse_errors: bool,
    /// Key format, when `key.fields` is set.
    pub key_format: Option<ValueFormat>,
    /// Columns that make the record key.
    pub key_fields: Vec<String>,
    /// `value.fields-include = 'EXCEPT_KEY'`: key columns are not in the value.
    pub value_except_key: bool,
    /// Start position.
    pub startup: Startup,
    /// End position.
    pub bounded: Bounded,
    /// A partition without records this long stops holding the watermark.
    pub idle_timeout: Option<Duration>,
    /// Sink partitioning.
    pub partitioner: Partitioner,
    /// Malformed records go here (with their origin in headers) instead of
    /// failing the query or being skipped.
    pub dead_letter_topic: Option<String>,
    /// `connector = 'upsert-kafka'`: records are upserts keyed by the
    /// PRIMARY KEY (a tombstone deletes the key).
    pub upsert: bool,
    /// `sink.delivery-guarantee = 'exactly-once'`: its
    /// `sink.transactional-id-prefix`.
    pub exactly_once: Option<String>,
}

impl KafkaOptions {
    /// Read and check the options of a Kafka table.
    pub fn parse(table: &str, map: &BTreeMap<String, String>) -> Result<Self> {
        Self::parse_with(table, map, None)
    }

    /// Read and check the options of an upsert-kafka table whose PRIMARY
    /// KEY is `primary_key` (the record key's columns).
    pub fn parse_upsert(
        table: &str,
        map: &BTreeMap<String, String>,
        primary_key: &[String],
    ) -> Result<Self> {
        Self::parse_with(table, map, Some(primary_key))
    }

    fn parse_with(
        table: &str,
        map: &BTreeMap<String, String>,
        upsert: Option<&[String]>,
    ) -> Result<Self> {
        let err = |msg: String| Error::plan(format!("table {table}: {msg}"));
        let mut o = Options::new(table, map);
        let topic = o.required("topic")?.to_string();
        if map.contains_key("topic-pattern") {
            return Err(err(
                "'topic-pattern' is not supported; name one topic".into()
            ));
        }
        let mut properties = Vec::new();
        for (k, v) in map {
            if let Some(p) = k.strip_prefix("properties.") {
                let _ = o.get(k);
                properties.push((p.to_string(), v.clone()));
            }
        }
        if !properties.iter().any(|(k, _)| k == "bootstrap.servers") {
            return Err(err(
                "option 'properties.bootstrap.servers' is required".into()
            ));
        }
        let format_name = match (o.get("format"), o.get("value.format")) {
            (Some(f), _) | (None, Some(f)) => f.to_ascii_lowercase(),
            (None, None) => {
                return Err(err("option 'format' is required (json, csv or raw)".into()))
            }
        };
        let format = value_format(&mut o, &format_name, table)?;
        let ignore_parse_errors = match format {
            ValueFormat::Json => o.bool("json.ignore-parse-errors", false)?,
            ValueFormat::Csv { .. } => o.bool("csv.ignore-parse-errors", false)?,
            ValueFormat::DebeziumJson { .. } => {
                o.bool("debezium-json.ignore-parse-errors", false)?
            }
            ValueFormat::Raw => false,
        };
        let (key_fields, key_format) = match upsert {
            Some(pk) => upsert_key(&mut o, table, pk, format)?,
            None => plain_key(&mut o, table)?,
        };
        if key_format.is_some_and(ValueFormat::is_changelog) {
            return Err(err(
                "'key.format' cannot be 'debezium-json' (a key is not a change)".into(),
            ));
        }
        let value_except_key =
            o.one_of("value.fields-include", &["all", "except_key"], "all")? == "except_key";
        if upsert.is_some() && map.contains_key("scan.startup.mode") {
            return Err(err(
                "upsert-kafka has no 'scan.startup.mode': it always reads the topic from its \
                 start, since the table is the latest value of every key"
                    .into(),
            ));
        }
        let startup = match o
            .one_of(
                "scan.startup.mode",
                &[
                    "earliest-offset",
                    "latest-offset",
                    "timestamp",
                    "specific-offsets",
                    "group-offsets",
                ],
                "earliest-offset",
            )?
            .as_str()
        {
            "latest-offset" => Startup::Latest,
            "timestamp" => {
                Startup::Timestamp(millis(&mut o, "scan.startup.timestamp-millis", table)?)
            }
            "specific-offsets" => {
                Startup::Specific(offsets(&mut o, "scan.startup.specific-offsets", table)?)
            }
            "group-offsets" => return Err(err(
                "scan.startup.mode 'group-offsets' is not supported: Sluice assigns partitions \
                     itself and keeps offsets in its own state"
                    .into(),
            )),
            _ => Startup::Earliest,
        };
        let bounded = match o
            .one_of(
                "scan.bounded.mode",
                &[
                    "unbounded",
                    "latest-offset",
                    "timestamp",
                    "specific-offsets",
                ],
                "unbounded",
            )?
            .as_str()
        {
            "latest-offset" => Bounded::Latest,
            "timestamp" => {
                Bounded::Timestamp(millis(&mut o, "scan.bounded.timestamp-millis", table)?)
            }
            "specific-offsets" => {
                Bounded::Specific(offsets(&mut o, "scan.bounded.specific-offsets", table)?)
            }
            _ => Bounded::Unbounded,
        };
        let idle_timeout = match o.get("scan.watermark.idle-timeout") {
            Some(v) => Some(Duration::from_millis(parse_duration_ms(v).ok_or_else(|| {
                err(format!(
                    "'scan.watermark.idle-timeout' must be a duration like '5 s' or '500 ms', not '{v}'"
                ))
            })?)),
            None => None,
        };
        let partitioner = match o
            .one_of(
                "sink.partitioner",
                &["default", "fixed", "round-robin"],
                "default",
            )?
            .as_str()
        {
            "fixed" => Partitioner::Fixed,
            "round-robin" => Partitioner::RoundRobin,
            _ => Partitioner::Default,
        };
        let guarantee = o.one_of(
            "sink.delivery-guarantee",
            &["at-least-once", "none", "exactly-once"],
            "at-least-once",
        )?;
        let prefix = o.get("sink.transactional-id-prefix").map(str::to_string);
        let exactly_once =
            match (guarantee.as_str(), prefix) {
                ("exactly-once", Some(p)) if !p.trim().is_empty() => Some(p),
                ("exactly-once", _) => return Err(err(
                    "sink.delivery-guarantee 'exactly-once' needs 'sink.transactional-id-prefix' \
                     (unique to this job: its Kafka transactional ids start with it)"
                        .into(),
                )),
                _ => None,
            };
        // Flink's upsert-kafka buffers to reduce writes per key; each
        // batch here is already one net change per key.
        let _ = o.get("sink.buffer-flush.max-rows");
        let _ = o.get("sink.buffer-flush.interval");
        let dead_letter_topic = o.get("scan.dead-letter-topic").map(str::to_string);
        if dead_letter_topic.is_some() && ignore_parse_errors {
            return Err(err(
                "choose one of 'scan.dead-letter-topic' and '*.ignore-parse-errors'".into(),
            ));
        }
        o.finish()?;
        Ok(KafkaOptions {
            table: table.to_string(),
            topic,
            properties,
            format,
            ignore_parse_errors,
            key_format,
            key_fields,
            value_except_key,
            startup,
            bounded,
            idle_timeout,
            partitioner,
            dead_letter_topic,
            upsert: upsert.is_some(),
            exactly_once,
        })
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> &str {
        self.properties
            .iter()
            .find(|(k, _)| k == "bootstrap.servers")
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Whether the table ends by itself when read.
    pub fn is_bounded(&self) -> bool {
        self.bounded != Bounded::Unbounded
    }
}

/// `key.fields` and `key.format` of a plain Kafka table.
fn plain_key<'a>(o: &mut Options<'a>, table: &str) -> Result<(Vec<String>, Option<ValueFormat>)> {
    let err = |msg: &str| Error::plan(format!("table {table}: {msg}"));
    let key_fields: Vec<String> = o
        .get("key.fields")
        .map(|s| {
            s.split(';')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let key_format = match o.get("key.format") {
        Some(f) => Some(value_format(o, &f.to_ascii_lowercase(), table)?),
        None if key_fields.is_empty() => None,
        None => return Err(err("'key.fields' needs 'key.format'")),
    };
    if key_format.is_some() && key_fields.is_empty() {
        return Err(err("'key.format' needs 'key.fields' (the key columns)"));
    }
    Ok((key_fields, key_format))
}

/// The key of an upsert-kafka table: its PRIMARY KEY, in `key.format`.
fn upsert_key<'a>(
    o: &mut Options<'a>,
    table: &str,
    primary_key: &[String],
    value: ValueFormat,
) -> Result<(Vec<String>, Option<ValueFormat>)> {
    let err = |msg: &str| Error::plan(format!("table {table}: {msg}"));
    if primary_key.is_empty() {
        return Err(err(
            "upsert-kafka needs a PRIMARY KEY (the record key), e.g. \
             PRIMARY KEY (user_id) NOT ENFORCED",
        ));
    }
    if o.get("key.fields").is_some() {
        return Err(err(
            "upsert-kafka takes its key from the PRIMARY KEY; remove 'key.fields'",
        ));
    }
    if value.is_changelog() {
        return Err(err(
            "upsert-kafka values are rows, not changes: use 'value.format' = 'json', 'csv' \
             or 'raw' (or connector 'kafka' with 'format' = 'debezium-json')",
        ));
    }
    let Some(f) = o.get("key.format") else {
        return Err(err("option 'key.format' is required (json, csv or raw)"));
    };
    let key_format = value_format(o, &f.to_ascii_lowercase(), table)?;
    Ok((primary_key.to_vec(), Some(key_format)))
}

fn value_format<'a>(o: &mut Options<'a>, name: &str, table: &str) -> Result<ValueFormat> {
    match name {
        "json" => Ok(ValueFormat::Json),
        "debezium-json" => Ok(ValueFormat::DebeziumJson {
            schema_include: o.bool("debezium-json.schema-include", false)?,
        }),
        "raw" => Ok(ValueFormat::Raw),
        "csv" => Ok(ValueFormat::Csv {
            delimiter: o.csv_delimiter()?,
        }),
        other => Err(Error::plan(format!(
            "table {table}: format '{other}' is not supported (json, csv, raw or debezium-json)"
        ))),
    }
}

fn millis<'a>(o: &mut Options<'a>, key: &'a str, table: &str) -> Result<i64> {
    let v = o.required(key)?;
    v.trim().parse().map_err(|_| {
        Error::plan(format!(
            "table {table}: '{key}' must be milliseconds since the epoch, not '{v}'"
        ))
    })
}

/// `partition:0,offset:42;partition:1,offset:300`.
fn offsets<'a>(o: &mut Options<'a>, key: &'a str, table: &str) -> Result<BTreeMap<i32, i64>> {
    let v = o.required(key)?;
    let bad = || {
        Error::plan(format!(
            "table {table}: '{key}' must look like 'partition:0,offset:42;partition:1,offset:7', not '{v}'"
        ))
    };
    let mut out = BTreeMap::new();
    for part in v.split(';').filter(|p| !p.trim().is_empty()) {
        let (p, off) = part.split_once(',').ok_or_else(bad)?;
        let p = p.trim().strip_prefix("partition:").ok_or_else(bad)?;
        let off = off.trim().strip_prefix("offset:").ok_or_else(bad)?;
        out.insert(
            p.trim().parse().map_err(|_| bad())?,
            off.trim().parse().map_err(|_| bad())?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<KafkaOptions> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KafkaOptions::parse("t", &map)
    }

    const BASE: [(&str, &str); 4] = [
        ("connector", "kafka"),
        ("topic", "x"),
        ("properties.bootstrap.servers", "127.0.0.1:9092"),
        ("format", "json"),
    ];

    #[test]
    fn flink_options() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("scan.startup.mode", "specific-offsets"),
            (
                "scan.startup.specific-offsets",
                "partition:0,offset:42;partition:1,offset:300",
            ),
            ("scan.bounded.mode", "latest-offset"),
            ("scan.watermark.idle-timeout", "5 s"),
            ("properties.sasl.password", "hunter2"),
            ("key.format", "raw"),
            ("key.fields", "device"),
        ]);
        let o = parse(&pairs).expect("valid");
        assert_eq!(o.startup, Startup::Specific([(0, 42), (1, 300)].into()));
        assert_eq!(o.bounded, Bounded::Latest);
        assert_eq!(o.idle_timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.key_fields, vec!["device"]);
        assert_eq!(o.bootstrap(), "127.0.0.1:9092");
        assert!(o
            .properties
            .contains(&("sasl.password".into(), "hunter2".into())));
    }

    #[test]
    fn option_errors() {
        let e = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = BASE.to_vec();
            pairs.extend_from_slice(extra);
            parse(&pairs).expect_err("invalid").to_string()
        };
        assert!(e(&[("scan.startup.mode", "sometime")]).contains("is not one of"));
        assert!(e(&[("scan.startup.mode", "timestamp")]).contains("scan.startup.timestamp-millis"));
        assert!(e(&[("key.fields", "a")]).contains("needs 'key.format'"));
        assert!(e(&[("colour", "red")]).contains("unknown option(s) 'colour'"));
        assert!(e(&[
            ("scan.startup.mode", "specific-offsets"),
            ("scan.startup.specific-offsets", "p0=1")
        ])
        .contains("must look like"));
        assert!(e(&[("sink.delivery-guarantee", "exactly-once")])
            .contains("needs 'sink.transactional-id-prefix'"));
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("sink.delivery-guarantee", "exactly-once"),
            ("sink.transactional-id-prefix", "job-7"),
        ]);
        let o = parse(&pairs).expect("valid");
        assert_eq!(o.exactly_once.as_deref(), Some("job-7"));
        let no_servers = parse(&[("topic", "x"), ("format", "json")]).expect_err("invalid");
        assert!(no_servers.to_string().contains("bootstrap.servers"));
    }
}
