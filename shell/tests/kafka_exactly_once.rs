//! The exactly-once Kafka sink under fire: a TUMBLE job over paced Nexmark
//! bids writes a topic with `sink.delivery-guarantee = 'exactly-once'`; its
//! `sluice -f` process is killed (SIGKILL) at seeded random moments and
//! started again until it finishes. Every restart fences the dead
//! process's transactions and resumes from the checkpoint whose commit
//! the topic records. Then the topic is read back.
//!
//! The test broker (Tansu) returns records of aborted transactions to
//! `read_committed` consumers, so against it the test proves no row is
//! lost (each expected row is there at least once); against a broker that
//! isolates transactions (`SLUICE_KAFKA_ISOLATES_TRANSACTIONS=1`, e.g.
//! Apache Kafka) it also proves none is there twice.
//!
//! Needs a broker (`SLUICE_KAFKA_BOOTSTRAP`, which `scripts/test.sh` sets);
//! without one the test says so and passes, unless `SLUICE_REQUIRE_KAFKA=1`.

mod kill;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use kill::{kill_until_done, run_to_end, Rng};

use sluice_slt::kafka::{test_broker, unique_name};

/// Bids at 50,000 events a second for 6 s (their times a function of their
/// number, so a restored generator continues the same stream).
const BIDS: &str = "CREATE TABLE bids (auction BIGINT, price BIGINT, dateTime TIMESTAMP(3), \
      WATERMARK FOR dateTime AS dateTime - INTERVAL '1' SECOND) \
    WITH ('connector' = 'nexmark', 'nexmark.table.type' = 'bid', \
      'nexmark.event.num' = '300000', 'nexmark.use.real.time' = 'true', \
      'nexmark.min.event.gap.in.ns' = '20000');";

const QUERY: &str = "SELECT auction % 10, window_start, COUNT(*), SUM(price) \
    FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(dateTime), INTERVAL '100' MILLISECOND)) \
    GROUP BY auction % 10, window_start, window_end";

/// Kills before the job may finish.
const KILLS: usize = 5;

const COLUMNS: &str = "(k BIGINT, ws TIMESTAMP(3), n BIGINT, total BIGINT)";

fn kafka_table(name: &str, topic: &str, bootstrap: &str, extra: &str) -> String {
    format!(
        "CREATE TABLE {name} {COLUMNS} WITH ('connector' = 'kafka', 'topic' = '{topic}', \
           'properties.bootstrap.servers' = '{bootstrap}', \
           'properties.batch.num.messages' = '1', 'format' = 'json'{extra});"
    )
}

fn file_table(name: &str, dir: &Path) -> String {
    format!(
        "CREATE TABLE {name} {COLUMNS} WITH ('connector' = 'filesystem', \
           'path' = '{}/{name}', 'format' = 'csv');",
        dir.display()
    )
}

/// Run `sluice -f` on `script` in `dir` to its end.
fn run(dir: &Path, script: &str) {
    let file = dir.join("run.sql");
    std::fs::write(&file, script).expect("writes");
    run_to_end(dir, &file);
}

/// The data lines of the visible files of `dir`.
fn lines(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("reads dir").flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).expect("reads");
        out.extend(
            text.lines()
                .filter(|l| !l.starts_with("k,"))
                .map(str::to_string),
        );
    }
    out.sort();
    out
}

#[test]
fn killed_exactly_once_job_loses_nothing() {
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    run(
        d,
        &format!(
            "{BIDS}\n{}\nINSERT INTO expected {QUERY};",
            file_table("expected", d)
        ),
    );
    let expected = lines(&d.join("expected"));
    assert!(expected.len() > 300, "a real result: {}", expected.len());

    let topic = unique_name("exactly-once");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(sluice_connectors::kafka::create_topic(
        &bootstrap, &topic, 2,
    ))
    .expect("create topic");
    let job = |parallelism: usize| {
        let mut job = format!("SET 'parallelism' = '{parallelism}';\n");
        let _ = writeln!(
            job,
            "SET 'execution.checkpointing.interval' = '100 ms';\n\
             SET 'state.checkpoints.dir' = '{}/checkpoints';\n\
             SET 'pipeline.name' = 'eo';\n{BIDS}\n{}\nINSERT INTO out {QUERY};",
            d.display(),
            kafka_table(
                "out",
                &topic,
                &bootstrap,
                &format!(
                    ", 'sink.delivery-guarantee' = 'exactly-once', \
                     'sink.transactional-id-prefix' = '{topic}'"
                )
            )
        );
        job
    };
    // Runs live 1.5 to 3 s (start-up, fencing, then the first checkpoints);
    // the input lasts 6 s.
    let (kills, resumed) = kill_until_done(d, &mut Rng(0x5eed_0e0e), (KILLS, 1500..3000), &job);
    assert!(
        resumed >= 1,
        "none of {kills} runs resumed from a checkpoint"
    );
    run(d, &job(2));

    let read = kafka_table(
        "back",
        &topic,
        &bootstrap,
        ", 'scan.bounded.mode' = 'latest-offset'",
    );
    run(
        d,
        &format!(
            "{read}\n{}\nINSERT INTO got SELECT * FROM back;",
            file_table("got", d)
        ),
    );
    let got = lines(&d.join("got"));
    let mut count: HashMap<&String, i64> = HashMap::new();
    for l in &expected {
        *count.entry(l).or_default() += 1;
    }
    for l in &got {
        *count.entry(l).or_default() -= 1;
    }
    let missing: i64 = count.values().filter(|&&n| n > 0).sum();
    assert_eq!(missing, 0, "{missing} rows lost ({} read)", got.len());
    if std::env::var("SLUICE_KAFKA_ISOLATES_TRANSACTIONS").is_ok_and(|v| v == "1") {
        assert_eq!(got, expected, "rows written twice");
    }
    eprintln!(
        "{kills} kills, {resumed} runs resumed: {} rows expected, all there ({} read)",
        expected.len(),
        got.len()
    );
}
