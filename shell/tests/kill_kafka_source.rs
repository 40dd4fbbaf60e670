//! A Kafka source under fire: an updating GROUP BY over a bounded read of
//! a two-partition topic, written as a Debezium changelog into files, is
//! killed with SIGKILL at seeded random moments and started again
//! (alternating parallelism 1 and 2) until it finishes. Each restart
//! resumes each partition at its checkpointed offset; the committed
//! changes, folded, must give the uninterrupted run's table exactly.
//!
//! Needs a broker (`SLUICE_KAFKA_BOOTSTRAP`, which `scripts/test.sh` sets);
//! without one the test says so and passes, unless `SLUICE_REQUIRE_KAFKA=1`.

mod kill;

use std::fmt::Write as _;
use std::path::Path;

use kill::{folded_changelogs, job_settings, kill_each_job, run_to_end, settings, Rng};
use sluice_slt::kafka::{test_broker, unique_name};

/// Records per partition.
const PER_PARTITION: usize = 2_000_000;

/// The topic's table, read from the start to the offsets the producer
/// reached (exact: one producer writes the partitions in turn).
fn topic_table(topic: &str, bootstrap: &str) -> String {
    format!(
        "CREATE TABLE bids (auction BIGINT, price BIGINT) WITH ('connector' = 'kafka', \
           'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', \
           'format' = 'json', 'scan.startup.mode' = 'earliest-offset', \
           'scan.bounded.mode' = 'specific-offsets', \
           'scan.bounded.specific-offsets' = \
           'partition:0,offset:{PER_PARTITION};partition:1,offset:{PER_PARTITION}');"
    )
}

fn job(dir: &Path, parallelism: usize, checkpoint: bool, topic: &str, bootstrap: &str) -> String {
    let d = dir.display();
    let mut s = job_settings(dir, parallelism, checkpoint.then_some(60));
    let _ = writeln!(
        s,
        "SET 'pipeline.name' = 'kafka-totals';\n{}\n\
         CREATE TABLE per_auction (auction BIGINT, n BIGINT, total BIGINT, top BIGINT) \
           WITH ('connector' = 'filesystem', 'path' = '{d}/out/per_auction', \
           'format' = 'debezium-json');\n\
         INSERT INTO per_auction SELECT auction, COUNT(*), SUM(price), MAX(price) \
           FROM bids GROUP BY auction;",
        topic_table(topic, bootstrap)
    );
    s
}

#[test]
fn killed_kafka_reads_resume_without_loss_or_duplicates() {
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let (seed, kills_wanted) = settings();
    let mut rng = Rng(seed ^ 0x6b61);
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = unique_name("kill-source");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(sluice_connectors::kafka::create_topic(
        &bootstrap, &topic, 2,
    ))
    .expect("create topic");
    // The records, written in turn to the two partitions.
    let mut csv = String::from("auction,price\n");
    for _ in 0..2 * PER_PARTITION {
        let _ = writeln!(csv, "{},{}", rng.below(5000), 1 + rng.below(10_000));
    }
    std::fs::write(dir.path().join("bids.csv"), csv).expect("writes");
    let produce = dir.path().join("produce.sql");
    std::fs::write(
        &produce,
        format!(
            "CREATE TABLE file_bids (auction BIGINT, price BIGINT) WITH ('connector' = \
               'filesystem', 'path' = '{}/bids.csv', 'format' = 'csv');\n\
             CREATE TABLE out (auction BIGINT, price BIGINT) WITH ('connector' = 'kafka', \
               'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', \
               'format' = 'json', 'sink.partitioner' = 'round-robin');\n\
             INSERT INTO out SELECT * FROM file_bids;",
            dir.path().display()
        ),
    )
    .expect("writes");
    run_to_end(dir.path(), &produce);

    let plain = dir.path().join("plain");
    let killed = dir.path().join("killed");
    for d in [&plain, &killed] {
        std::fs::create_dir_all(d).expect("dir");
    }
    std::fs::write(
        plain.join("job.sql"),
        job(&plain, 2, false, &topic, &bootstrap),
    )
    .expect("writes");
    run_to_end(&plain, &plain.join("job.sql"));
    let expected = folded_changelogs(&plain.join("out"), &["per_auction"]);
    assert!(expected.len() > 4000, "a real result: {}", expected.len());

    let (kills, resumed) =
        kill_each_job(&killed, &mut rng, 1, (kills_wanted, 250..600), &|_, p| {
            job(&killed, p, true, &topic, &bootstrap)
        });
    std::fs::write(
        killed.join("job.sql"),
        job(&killed, 2, true, &topic, &bootstrap),
    )
    .expect("writes");
    run_to_end(&killed, &killed.join("job.sql"));
    let got = folded_changelogs(&killed.join("out"), &["per_auction"]);
    assert!(
        got == expected,
        "after {kills} kills the table differs (seed {seed:#x}): {} rows, {} expected",
        got.len(),
        expected.len()
    );
    eprintln!(
        "{kills} kills, {resumed} runs resumed: {} rows, as uninterrupted",
        got.len()
    );
}
