//! One job spread over several `sluice worker` processes on loopback,
//! exchanging rows through the real broker: a keyed TUMBLE aggregate (with
//! a row late in every run), an updating GROUP BY and a join, over bounded
//! multi-partition topics. The union of the workers' output must equal a
//! single process's exactly, for 1, 2 and 3 workers; workers started with
//! different queries refuse to run; SHOW JOBS on one worker's shell lists
//! every worker.
//!
//! Needs a broker (`SLUICE_KAFKA_BOOTSTRAP`, which `scripts/test.sh` sets);
//! without one the test says so and passes, unless `SLUICE_REQUIRE_KAFKA=1`.

mod kill;
mod pty;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use kill::{csv_rows, folded_changelogs, produce, Rng};
use sluice_slt::kafka::{test_broker, unique_name};

/// Partitions of the bids topic, and bids in each.
const BID_PARTITIONS: i32 = 4;
const BIDS_PER_PARTITION: usize = 3000;
/// Partitions of the auctions topic, and auctions in each.
const AUCTION_PARTITIONS: i32 = 2;
const AUCTIONS_PER_PARTITION: usize = 200;
/// Bids of each partition written before the job starts; the rest are
/// written once it wrote a window, so its watermark, the minimum over
/// every partition of every worker, has passed the late bid's window.
const FIRST_PHASE: usize = 2000;
/// Where in partition 1 a bid an hour behind everything else comes (in
/// the second phase): late in every run, of one process or several.
/// Other bids are at most 900 ms out of order, less than the watermark's
/// 1 s delay, so none of them is late whatever the order partitions are
/// read in.
const LATE_AT: usize = 2900;
const LATE_AUCTION: u64 = 999_999;

/// Create the topics of one run.
fn create_topics(bootstrap: &str, bids: &str, auctions: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for (topic, n) in [(bids, BID_PARTITIONS), (auctions, AUCTION_PARTITIONS)] {
        rt.block_on(sluice_connectors::kafka::create_topic(bootstrap, topic, n))
            .expect("create topic");
    }
}

/// The bids (in time order per partition, up to 0.9 s out of order, and one
/// late bid, in the second phase) and, in the first phase, the auctions.
fn load(bootstrap: &str, bids: &str, auctions: &str, phase: usize) {
    let mut rng = Rng(0x0077_0e4b_e125);
    let mut records = Vec::new();
    for p in 0..BID_PARTITIONS {
        let mut t = 1_000_000i64;
        for i in 0..BIDS_PER_PARTITION {
            t += rng.below(40) as i64;
            let (auction, ts) = if p == 1 && i == LATE_AT {
                (LATE_AUCTION, t - 3_600_000)
            } else {
                (rng.below(400), t - rng.below(900) as i64)
            };
            let price = 1 + rng.below(10_000);
            if (i < FIRST_PHASE) == (phase == 1) {
                records.push((
                    p,
                    format!(r#"{{"auction": {auction}, "price": {price}, "ts": {ts}}}"#),
                ));
            }
        }
    }
    produce(bootstrap, bids, &records);
    if phase == 2 {
        return;
    }
    let mut records = Vec::new();
    for id in 0..(AUCTION_PARTITIONS as usize * AUCTIONS_PER_PARTITION) as u64 {
        let p = (id % AUCTION_PARTITIONS as u64) as i32;
        let category = rng.below(7);
        records.push((p, format!(r#"{{"id": {id}, "category": {category}}}"#)));
    }
    produce(bootstrap, auctions, &records);
}

fn offsets(partitions: i32, each: usize) -> String {
    (0..partitions)
        .map(|p| format!("partition:{p},offset:{each}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The script: three INSERT jobs named `<name>-...`, writing under `out`.
fn script(name: &str, out: &Path, bootstrap: &str, bids: &str, auctions: &str) -> String {
    let out = out.display();
    let kafka = |topic: &str, partitions: i32, each: usize| {
        format!(
            "'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = \
             '{bootstrap}', 'format' = 'json', 'scan.startup.mode' = 'earliest-offset', \
             'scan.bounded.mode' = 'specific-offsets', 'scan.bounded.specific-offsets' = '{}', \
             'properties.max.partition.fetch.bytes' = '8192'",
            offsets(partitions, each)
        )
    };
    format!(
        "SET 'parallelism' = '2';\n\
         CREATE TABLE bids (auction BIGINT, price BIGINT, ts BIGINT, \
           rt AS TO_TIMESTAMP_LTZ(ts, 3), WATERMARK FOR rt AS rt - INTERVAL '1' SECOND) \
           WITH ({});\n\
         CREATE TABLE auctions (id BIGINT, category BIGINT) WITH ({});\n\
         CREATE TABLE tumbled (auction BIGINT, window_end TIMESTAMP(3), n BIGINT, total BIGINT) \
           WITH ('connector' = 'filesystem', 'path' = '{out}/tumbled', 'format' = 'csv');\n\
         CREATE TABLE totals (auction BIGINT, n BIGINT, total BIGINT, top BIGINT) \
           WITH ('connector' = 'filesystem', 'path' = '{out}/totals', \
           'format' = 'debezium-json');\n\
         CREATE TABLE joined (auction BIGINT, price BIGINT, category BIGINT) \
           WITH ('connector' = 'filesystem', 'path' = '{out}/joined', 'format' = 'csv');\n\
         SET 'pipeline.name' = '{name}-tumble';\n\
         INSERT INTO tumbled SELECT auction, window_end, COUNT(*), SUM(price) \
           FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(rt), INTERVAL '10' SECOND)) \
           GROUP BY auction, window_start, window_end;\n\
         SET 'pipeline.name' = '{name}-totals';\n\
         INSERT INTO totals SELECT auction, COUNT(*), SUM(price), MAX(price) FROM bids \
           GROUP BY auction;\n\
         SET 'pipeline.name' = '{name}-join';\n\
         INSERT INTO joined SELECT b.auction, b.price, a.category FROM bids b \
           JOIN auctions a ON b.auction = a.id;\n",
        kafka(bids, BID_PARTITIONS, BIDS_PER_PARTITION),
        kafka(auctions, AUCTION_PARTITIONS, AUCTIONS_PER_PARTITION),
    )
}

/// What a run wrote under `out`: the three tables.
fn results(out: &Path) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        csv_rows(&out.join("tumbled")),
        folded_changelogs(out, &["totals"]),
        csv_rows(&out.join("joined")),
    )
}

/// `got` and `want` hold the same rows (sorted); else a few that differ.
fn same(got: &[String], want: &[String], what: &str) {
    if got == want {
        return;
    }
    let missing: Vec<&String> = want.iter().filter(|r| !got.contains(r)).take(5).collect();
    let extra: Vec<&String> = got.iter().filter(|r| !want.contains(r)).take(5).collect();
    panic!(
        "{what}: {} rows, {} expected; missing {missing:?}, unexpected {extra:?}",
        got.len(),
        want.len()
    );
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Start workers 0..n of `script`.
fn start_workers(script: &Path, n: usize) -> Vec<std::process::Child> {
    (0..n)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["worker", "--job"])
                .arg(script)
                .args(["--workers", &n.to_string(), "--index", &i.to_string()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("starts a worker")
        })
        .collect()
}

/// Wait until each of `n` processes wrote a row of windows to `dir` (its
/// part files are named by process), or one of them ended.
fn wait_for_windows(dir: &Path, n: usize, workers: &mut [std::process::Child]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut writers = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            // Part files, in progress (hidden) or rolled.
            let name = e.file_name().to_string_lossy().to_string();
            let rows = std::fs::read_to_string(e.path()).map_or(0, |t| t.lines().count());
            if rows > 1 {
                let name = name.trim_start_matches('.');
                writers.insert(name.rsplitn(3, '-').nth(2).unwrap_or_default().to_string());
            }
        }
        if writers.len() >= n
            || workers
                .iter_mut()
                .any(|w| !matches!(w.try_wait(), Ok(None)))
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no windows in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Run the job with `n` workers on fresh topics: the first phase of the
/// input, the workers, the second phase once they wrote windows. What
/// they wrote.
fn run(bootstrap: &str, dir: &Path, n: usize) -> (Vec<String>, Vec<String>, Vec<String>) {
    let bids = unique_name("workers-bids");
    let auctions = unique_name("workers-auctions");
    create_topics(bootstrap, &bids, &auctions);
    load(bootstrap, &bids, &auctions, 1);
    let out = dir.join(format!("out-{n}"));
    let job = dir.join(format!("workers-{n}.sql"));
    let name = unique_name(&format!("workers-{n}"));
    std::fs::write(&job, script(&name, &out, bootstrap, &bids, &auctions)).expect("writes");
    let mut workers = start_workers(&job, n);
    wait_for_windows(&out.join("tumbled"), n, &mut workers);
    load(bootstrap, &bids, &auctions, 2);
    for (i, w) in workers.into_iter().enumerate() {
        let out = w.wait_with_output().expect("waits");
        check(&out, &format!("worker {i} of {n}"));
        if n > 1 {
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                said.contains(&format!("runs as worker {i} of {n}")),
                "{said}"
            );
        }
    }
    results(&out)
}

#[test]
fn workers_write_what_one_process_writes() {
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // One worker is one process on its own: the reference.
    let expected = run(&bootstrap, dir.path(), 1);
    let late = format!("{LATE_AUCTION},");
    assert!(
        !expected.0.iter().any(|r| r.starts_with(&late)),
        "the late bid was not dropped"
    );
    assert!(expected.0.len() > 1000 && expected.1.len() == 400 + 1);
    assert_eq!(
        expected.2.len(),
        BID_PARTITIONS as usize * BIDS_PER_PARTITION - 1
    );
    for n in [2, 3] {
        let got = run(&bootstrap, dir.path(), n);
        same(&got.0, &expected.0, &format!("{n} workers: TUMBLE"));
        same(&got.1, &expected.1, &format!("{n} workers: GROUP BY"));
        same(&got.2, &expected.2, &format!("{n} workers: join"));
    }
}

#[test]
fn workers_of_different_queries_refuse_to_run() {
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = unique_name("workers-mismatch");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(sluice_connectors::kafka::create_topic(
        &bootstrap, &topic, 2,
    ))
    .expect("create topic");
    let name = unique_name("mismatch");
    let job = |agg: &str| {
        format!(
            "SET 'pipeline.name' = '{name}';\n\
             CREATE TABLE t (k BIGINT, v BIGINT) WITH ('connector' = 'kafka', 'topic' = \
               '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'json', \
               'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset');\n\
             CREATE TABLE out (k BIGINT, x BIGINT) WITH ('connector' = 'blackhole');\n\
             INSERT INTO out SELECT k, {agg}(v) FROM t GROUP BY k;\n"
        )
    };
    let (a, b) = (dir.path().join("a.sql"), dir.path().join("b.sql"));
    std::fs::write(&a, job("SUM")).expect("writes");
    std::fs::write(&b, job("MAX")).expect("writes");
    let spawn = |script: &Path, i: usize| {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["worker", "--job"])
            .arg(script)
            .args(["--workers", "2", "--index", &i.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starts a worker")
    };
    let (w0, w1) = (spawn(&a, 0), spawn(&b, 1));
    for w in [w0, w1] {
        let out = w.wait_with_output().expect("waits");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("planned a different query"), "{err}");
    }
}

/// SHOW JOBS in the shell of one worker lists every worker of the job:
/// its state, counters, last checkpoint and the Kafka partitions it reads.
#[test]
fn show_jobs_on_a_worker_lists_every_worker() {
    use pty::{prompt, shell, type_line};
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = unique_name("workers-status");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(sluice_connectors::kafka::create_topic(
        &bootstrap, &topic, 2,
    ))
    .expect("create topic");
    let records: Vec<(i32, String)> = (0..100)
        .map(|i| (i % 2, format!(r#"{{"k": {}, "v": {i}}}"#, i % 7)))
        .collect();
    produce(&bootstrap, &topic, &records);
    let name = unique_name("status");
    let checkpoints = dir.path().join("checkpoints");
    let statements = [
        format!(
            "SET 'execution.checkpointing.interval' = '200 ms'; SET 'state.checkpoints.dir' = \
             '{}';",
            checkpoints.display()
        ),
        format!("SET 'pipeline.name' = '{name}';"),
        format!(
            "CREATE TABLE t (k BIGINT, v BIGINT) WITH ('connector' = 'kafka', 'topic' = \
             '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'json', \
             'scan.startup.mode' = 'earliest-offset');"
        ),
        "CREATE TABLE o (k BIGINT, n BIGINT) WITH ('connector' = 'blackhole');".to_string(),
        "INSERT INTO o SELECT k, COUNT(*) FROM t GROUP BY k;".to_string(),
    ];
    // Worker 1 runs the job as a script (unbounded: until killed).
    let job = dir.path().join("job.sql");
    std::fs::write(&job, statements.join("\n")).expect("writes");
    let mut other = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["worker", "--job"])
        .arg(&job)
        .args(["--workers", "2", "--index", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts worker 1");
    // Worker 0 is a shell; its job runs in the background.
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    for s in [
        "SET 'sluice.workers' = '2';",
        "SET 'sluice.worker.index' = '0';",
    ] {
        type_line(&mut p, s);
        prompt(&mut p);
    }
    for s in &statements[..4] {
        type_line(&mut p, s);
        prompt(&mut p);
    }
    type_line(&mut p, &statements[4]);
    p.exp_string("runs as worker 0 of 2")
        .expect("the workers met");
    p.exp_string("Job 1 started (unbounded")
        .expect("job started");
    prompt(&mut p);
    type_line(&mut p, "SET 'format' = 'csv';");
    prompt(&mut p);
    // Each worker reports every second: ask until both have, each with
    // its partition and every record read.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        type_line(&mut p, "SHOW JOBS;");
        let out = prompt(&mut p);
        let line = |w: usize| {
            out.lines()
                .find(|l| l.starts_with(&format!("1 worker {w},RUNNING")))
                .map(str::to_string)
        };
        if let (Some(w0), Some(w1)) = (line(0), line(1)) {
            // Both read their 50 records and completed a checkpoint.
            if w0.contains(",50,") && w1.contains(",50,") && w0.contains(",#") && w1.contains(",#")
            {
                assert!(w0.contains("Kafka partitions [0], lag "), "{w0}");
                assert!(w1.contains("Kafka partitions [1], lag "), "{w1}");
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no status of both workers:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    type_line(&mut p, "STOP JOB 1;");
    p.exp_string("Job 1 stopped").expect("stopped");
    prompt(&mut p);
    let _ = other.kill();
    let _ = other.wait();
    pty::exit(p);
}
