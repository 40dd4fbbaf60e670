//! The Kafka broker the `sql-tests/kafka/` files run against.
//!
//! `scripts/test.sh` starts one and exports `SLUICE_KAFKA_BOOTSTRAP` and
//! `SLUICE_REQUIRE_KAFKA=1`; without a broker those files are skipped
//! (with a message) unless a broker is required, then they fail.
//!
//! In a test file, `system ok` with `kafka-topic create NAME PARTITIONS`
//! creates a topic; `${KAFKA}` is the bootstrap address and `${RUN}` a
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

/// Run a `system` command: `kafka-topic create NAME PARTITIONS` is handled
/// here (through the Kafka admin API), anything else by bash.
pub async fn run_command(mut command: Command) -> std::io::Result<Output> {
    let script: Option<String> = command
        .get_args()
        .nth(1)
        .map(|a| a.to_string_lossy().into_owned());
    let Some(words) = script
        .as_deref()
        .and_then(|s| s.trim().strip_prefix("kafka-topic create "))
        .map(|rest| {
            rest.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    else {
        return command.output();
    };
    let fail = |msg: String| Output {
        status: ExitStatus::from_raw(1 << 8),
        stdout: vec![],
        stderr: msg.into_bytes(),
    };
    let [name, partitions] = &words[..] else {
        return Ok(fail("usage: kafka-topic create NAME PARTITIONS".into()));
    };
    let Ok(partitions) = partitions.parse::<i32>() else {
        return Ok(fail(format!(
            "partitions must be a number, not {partitions}"
        )));
    };
    let Some(bootstrap) = bootstrap() else {
        return Ok(fail("no Kafka broker: set SLUICE_KAFKA_BOOTSTRAP".into()));
    };
    Ok(
        match sluice_connectors::kafka::create_topic(&bootstrap, name, partitions).await {
            Ok(()) => Output {
                status: ExitStatus::from_raw(0),
                stdout: vec![],
                stderr: vec![],
            },
            Err(e) => fail(e.to_string()),
        },
    )
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
