//! The Kafka broker the `sql-tests/kafka/` files run against.
//!
//! `scripts/test.sh` starts one and exports `SLUICE_KAFKA_BOOTSTRAP` and
//! `SLUICE_REQUIRE_KAFKA=1`; without a broker those files are skipped
//! (with a message) unless a broker is required, then they fail.
//!
//! In a test file, `system ok` with `kafka-topic create NAME PARTITIONS`
//! creates a topic, `kafka-group-offset GROUP TOPIC OFFSET` sets a consumer
//! group's offset of partition 0; `${KAFKA}` is the bootstrap address and `${RUN}` a
//! prefix unique to this run, so topic names never collide.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Output};

/// The broker's bootstrap address, if one is configured.
pub fn bootstrap() -> Option<String> {
    std::env::var("SLUICE_KAFKA_BOOTSTRAP")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Whether Kafka tests must run (CI): a missing broker is then a failure.
pub fn required() -> bool {
    std::env::var("SLUICE_REQUIRE_KAFKA").is_ok_and(|v| v == "1")
}

/// Run a `system` command: `kafka-topic create NAME PARTITIONS` and
/// `kafka-group-offset GROUP TOPIC OFFSET` (partition 0) are handled here
/// (through the Kafka API), anything else by bash.
pub async fn run_command(mut command: Command) -> std::io::Result<Output> {
    let script: Option<String> = command
        .get_args()
        .nth(1)
        .map(|a| a.to_string_lossy().into_owned());
    let words: Vec<String> = script
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let fail = |msg: String| Output {
        status: ExitStatus::from_raw(1 << 8),
        stdout: vec![],
        stderr: msg.into_bytes(),
    };
    let done = |r: sluice_common::Result<()>| match r {
        Ok(()) => Output {
            status: ExitStatus::from_raw(0),
            stdout: vec![],
            stderr: vec![],
        },
        Err(e) => fail(e.to_string()),
    };
    let Some(&tool) = words.first().filter(|w| w.starts_with("kafka-")) else {
        return command.output();
    };
    let Some(bootstrap) = bootstrap() else {
        return Ok(fail("no Kafka broker: set SLUICE_KAFKA_BOOTSTRAP".into()));
    };
    use sluice_connectors::kafka::{create_topic, set_group_offset};
    Ok(match (tool, &words[1..]) {
        ("kafka-topic", ["create", name, partitions]) => match partitions.parse::<i32>() {
            Ok(n) => done(create_topic(&bootstrap, name, n).await),
            Err(_) => fail(format!("partitions must be a number, not {partitions}")),
        },
        ("kafka-group-offset", [group, topic, offset]) => match offset.parse::<i64>() {
            Ok(n) => done(set_group_offset(&bootstrap, group, topic, n).await),
            Err(_) => fail(format!("the offset must be a number, not {offset}")),
        },
        _ => fail(
            "usage: kafka-topic create NAME PARTITIONS | kafka-group-offset GROUP TOPIC OFFSET"
                .into(),
        ),
    })
}

/// The broker for a Kafka test: `None` (after saying so) when there is none
/// and none is required; a panic when one is required but missing.
pub fn test_broker() -> Option<String> {
    match bootstrap() {
        Some(b) => Some(b),
        None => {
            assert!(
                !required(),
                "SLUICE_REQUIRE_KAFKA=1 but SLUICE_KAFKA_BOOTSTRAP is not set"
            );
            eprintln!("skipped: no Kafka broker (./scripts/test.sh starts one)");
            None
        }
    }
}

/// `prefix` plus the current time in nanoseconds: a topic name no other
/// run uses.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{nanos}")
}
