//! Checkpoints across workers under fire: a job spread over two `sluice
//! worker` processes (a keyed TUMBLE into CSV files, an updating GROUP BY
//! into Debezium files, checkpoints every 100 ms into one shared
//! directory) is killed — both workers, with SIGKILL — at seeded random
//! moments and started again, until it finishes. Each restart resumes
//! every worker from the newest checkpoint both hold; what the sinks
//! committed must equal one uninterrupted process's output exactly.
//!
//! Needs a broker (`SLUICE_KAFKA_BOOTSTRAP`, which `scripts/test.sh` sets);
//! without one the test says so and passes, unless `SLUICE_REQUIRE_KAFKA=1`.

mod kill;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kill::{csv_rows, folded_changelogs, produce, settings, Rng};
use sluice_slt::kafka::{test_broker, unique_name};

const PARTITIONS: i32 = 4;
const PER_PARTITION: usize = 250_000;
/// Kills at most (each kill stops both workers).
const KILLS: usize = 6;

/// The script: two INSERT jobs named `<name>-...`, writing under `out`,
/// with checkpoints into `checkpoints` when given.
fn script(
    name: &str,
    out: &Path,
    checkpoints: Option<&Path>,
    bootstrap: &str,
    topic: &str,
) -> String {
    let out = out.display();
    let offsets: Vec<String> = (0..PARTITIONS)
        .map(|p| format!("partition:{p},offset:{PER_PARTITION}"))
        .collect();
    let ck = checkpoints.map_or(String::new(), |d| {
        format!(
            "SET 'execution.checkpointing.interval' = '100 ms';\n\
             SET 'state.checkpoints.dir' = '{}';\n",
            d.display()
        )
    });
    format!(
        "SET 'parallelism' = '2';\n{ck}\
         CREATE TABLE bids (auction BIGINT, price BIGINT, ts BIGINT, \
           rt AS TO_TIMESTAMP_LTZ(ts, 3), WATERMARK FOR rt AS rt - INTERVAL '1' SECOND) \
           WITH ('connector' = 'kafka', 'topic' = '{topic}', \
           'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'json', \
           'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'specific-offsets', \
           'scan.bounded.specific-offsets' = '{}');\n\
         CREATE TABLE tumbled (auction BIGINT, window_end TIMESTAMP(3), n BIGINT, total BIGINT) \
           WITH ('connector' = 'filesystem', 'path' = '{out}/tumbled', 'format' = 'csv');\n\
         CREATE TABLE totals (auction BIGINT, n BIGINT, total BIGINT) \
           WITH ('connector' = 'filesystem', 'path' = '{out}/totals', \
           'format' = 'debezium-json');\n\
         SET 'pipeline.name' = '{name}-tumble';\n\
         INSERT INTO tumbled SELECT auction, window_end, COUNT(*), SUM(price) \
           FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(rt), INTERVAL '10' SECOND)) \
           GROUP BY auction, window_start, window_end;\n\
         SET 'pipeline.name' = '{name}-totals';\n\
         INSERT INTO totals SELECT auction, COUNT(*), SUM(price) FROM bids GROUP BY auction;\n",
        offsets.join(";")
    )
}

/// How many jobs of a run (as worker 0 printed it) took up a checkpoint:
/// resumed from one, or found their last one (finished before the kill).
fn recovered(said: &str) -> usize {
    said.lines()
        .filter(|l| l.contains("worker-0"))
        .filter(|l| l.contains("the newest every worker holds") || l.contains("already finished"))
        .count()
}

/// Start workers 0..n of `job`.
fn start(job: &Path, n: usize) -> Vec<std::process::Child> {
    (0..n)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["worker", "--job"])
                .arg(job)
                .args(["--workers", &n.to_string(), "--index", &i.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starts a worker")
        })
        .collect()
}

/// Wait for every worker; what they printed (panics on a failure).
fn finish(workers: Vec<std::process::Child>) -> String {
    let mut said = String::new();
    for (i, w) in workers.into_iter().enumerate() {
        let out = w.wait_with_output().expect("waits");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "worker {i} failed:\n{text}");
        said.push_str(&text);
    }
    said
}

#[test]
fn killed_workers_resume_without_loss_or_duplicates() {
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let (seed, _) = settings();
    let mut rng = Rng(seed ^ 0x3077);
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = unique_name("kill-workers");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(sluice_connectors::kafka::create_topic(
        &bootstrap, &topic, PARTITIONS,
    ))
    .expect("create topic");
    let mut records = Vec::new();
    for p in 0..PARTITIONS {
        let mut t = 1_000_000i64;
        for _ in 0..PER_PARTITION {
            t += rng.below(40) as i64;
            let ts = t - rng.below(900) as i64;
            let (auction, price) = (rng.below(500), 1 + rng.below(10_000));
            records.push((
                p,
                format!(r#"{{"auction": {auction}, "price": {price}, "ts": {ts}}}"#),
            ));
        }
    }
    produce(&bootstrap, &topic, &records);
    // The uninterrupted run: one process.
    let run = unique_name("kw");
    let once = dir.path().join("once");
    let job = dir.path().join("once.sql");
    std::fs::write(
        &job,
        script(&format!("{run}-once"), &once, None, &bootstrap, &topic),
    )
    .expect("writes");
    finish(start(&job, 1));
    let expected = (
        csv_rows(&once.join("tumbled")),
        folded_changelogs(&once, &["totals"]),
    );
    assert!(expected.0.len() > 1000 && expected.1.len() == 500);
    // The same job on two workers, killed and restarted.
    let killed = dir.path().join("killed");
    let job = dir.path().join("killed.sql");
    let checkpoints = dir.path().join("checkpoints");
    let name = format!("{run}-killed");
    std::fs::write(
        &job,
        script(&name, &killed, Some(&checkpoints), &bootstrap, &topic),
    )
    .expect("writes");
    let (mut kills, mut resumed) = (0, 0);
    loop {
        let mut workers = start(&job, 2);
        if kills == KILLS {
            let said = finish(workers);
            resumed += recovered(&said);
            break;
        }
        let at = Instant::now() + Duration::from_millis(1000 + rng.below(2000));
        while Instant::now() < at && workers.iter_mut().all(|w| matches!(w.try_wait(), Ok(None))) {
            std::thread::sleep(Duration::from_millis(10));
        }
        if workers
            .iter_mut()
            .any(|w| !matches!(w.try_wait(), Ok(None)))
        {
            // One ended: the script is done (or failed); let both end.
            let said = finish(workers);
            resumed += recovered(&said);
            break;
        }
        for w in &mut workers {
            let _ = w.kill();
        }
        for w in workers {
            let out = w.wait_with_output().expect("waits");
            assert!(!out.status.success(), "a killed worker exited cleanly");
            let said = String::from_utf8_lossy(&out.stdout);
            resumed += recovered(&said);
        }
        kills += 1;
    }
    eprintln!(
        "killed {kills} times, jobs recovered from checkpoints {resumed} times (seed {seed})"
    );
    assert!(kills >= 3, "killed only {kills} times");
    assert!(
        resumed >= 2,
        "jobs recovered from checkpoints only {resumed} times"
    );
    let got = (
        csv_rows(&killed.join("tumbled")),
        folded_changelogs(&killed, &["totals"]),
    );
    assert!(
        got.0 == expected.0,
        "TUMBLE rows differ: {} vs {}",
        got.0.len(),
        expected.0.len()
    );
    assert!(got.1 == expected.1, "GROUP BY rows differ");
}
