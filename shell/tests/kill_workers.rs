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

/// The topic loaded with the bids, and what one uninterrupted process
/// writes from it.
struct Setup {
    dir: tempfile::TempDir,
    bootstrap: String,
    topic: String,
    run: String,
    expected: (Vec<String>, Vec<String>),
}

fn setup(bootstrap: String, rng: &mut Rng) -> Setup {
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
    let run = unique_name("kw");
    let once = dir.path().join("once");
    let job = dir.path().join("once.sql");
    let text = script(&format!("{run}-once"), &once, None, &bootstrap, &topic);
    std::fs::write(&job, text).expect("writes");
    finish(start(&job, 1));
    let expected = (
        csv_rows(&once.join("tumbled")),
        folded_changelogs(&once, &["totals"]),
    );
    assert!(expected.0.len() > 1000 && expected.1.len() == 500);
    Setup {
        dir,
        bootstrap,
        topic,
        run,
        expected,
    }
}

/// The checkpointing job of `s` on two workers, named `name`: its
/// script, and where it writes.
fn killed_job(
    s: &Setup,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let out = s.dir.path().join(name);
    let job = s.dir.path().join(format!("{name}.sql"));
    let checkpoints = s.dir.path().join(format!("{name}-checkpoints"));
    let text = script(
        &format!("{}-{name}", s.run),
        &out,
        Some(&checkpoints),
        &s.bootstrap,
        &s.topic,
    );
    std::fs::write(&job, text).expect("writes");
    (job, out, checkpoints)
}

/// What the killed job committed equals the uninterrupted run's output.
fn check_output(s: &Setup, out: &Path) {
    let got = (
        csv_rows(&out.join("tumbled")),
        folded_changelogs(out, &["totals"]),
    );
    assert!(
        got.0 == s.expected.0,
        "TUMBLE rows differ: {} vs {}",
        got.0.len(),
        s.expected.0.len()
    );
    assert!(got.1 == s.expected.1, "GROUP BY rows differ");
}

/// The complete checkpoints under `dir` (`<job>/worker-<i>-of-2/chk-<n>`)
/// that every worker of their job holds, as `(job, n)`.
fn complete_everywhere(dir: &Path) -> std::collections::BTreeSet<(String, u64)> {
    let mut seen: std::collections::BTreeMap<(String, u64), usize> = Default::default();
    for job in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for worker in std::fs::read_dir(job.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for chk in std::fs::read_dir(worker.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = chk.file_name().to_string_lossy().to_string();
                let n = name
                    .strip_prefix("chk-")
                    .and_then(|n| n.parse::<u64>().ok());
                if let (Some(n), true) = (n, chk.path().join("_metadata").exists()) {
                    let key = (job.file_name().to_string_lossy().to_string(), n);
                    *seen.entry(key).or_default() += 1;
                }
            }
        }
    }
    seen.into_iter()
        .filter(|(_, c)| *c == 2)
        .map(|(k, _)| k)
        .collect()
}

/// Wait until every worker holds a checkpoint it did not hold before
/// (so a kill now loses something to recover), then a random while more;
/// whether all of `workers` still run.
fn run_past_a_checkpoint(
    workers: &mut [std::process::Child],
    checkpoints: &Path,
    rng: &mut Rng,
) -> bool {
    let before = complete_everywhere(checkpoints);
    let deadline = Instant::now() + Duration::from_secs(120);
    while complete_everywhere(checkpoints).is_subset(&before) {
        if workers
            .iter_mut()
            .any(|w| !matches!(w.try_wait(), Ok(None)))
        {
            return false;
        }
        assert!(Instant::now() < deadline, "no new checkpoint in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    run_until(
        workers,
        Instant::now() + Duration::from_millis(rng.below(1500)),
    )
}

/// Wait until `at` or until one of `workers` ends; whether all still run.
fn run_until(workers: &mut [std::process::Child], at: Instant) -> bool {
    while Instant::now() < at {
        if workers
            .iter_mut()
            .any(|w| !matches!(w.try_wait(), Ok(None)))
        {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    workers.iter_mut().all(|w| matches!(w.try_wait(), Ok(None)))
}

#[test]
fn killed_workers_resume_without_loss_or_duplicates() {
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let (seed, _) = settings();
    let mut rng = Rng(seed ^ 0x3077);
    let s = setup(bootstrap, &mut rng);
    let (job, out, checkpoints) = killed_job(&s, "all");
    let (mut kills, mut resumed) = (0, 0);
    loop {
        let mut workers = start(&job, 2);
        if kills == KILLS || !run_past_a_checkpoint(&mut workers, &checkpoints, &mut rng) {
            // The last run, or one ended: the script is done (or failed).
            resumed += recovered(&finish(workers));
            break;
        }
        for w in &mut workers {
            let _ = w.kill();
        }
        for w in workers {
            let out = w.wait_with_output().expect("waits");
            assert!(!out.status.success(), "a killed worker exited cleanly");
            resumed += recovered(&String::from_utf8_lossy(&out.stderr));
        }
        kills += 1;
    }
    eprintln!(
        "killed {kills} times, jobs recovered from checkpoints {resumed} times (seed {seed})"
    );
    assert!(kills >= 2, "killed only {kills} times");
    // Every run after a kill took up a checkpoint (each kill came after one).
    assert!(resumed >= kills, "{kills} kills, only {resumed} recoveries");
    check_output(&s, &out);
}

/// One worker killed and started again, alone: the other sees it start,
/// rolls back to the last checkpoint both hold and goes on with it.
#[test]
fn the_other_workers_roll_back_when_one_restarts() {
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let (seed, _) = settings();
    let mut rng = Rng(seed ^ 0x0b0c);
    let s = setup(bootstrap, &mut rng);
    let (job, out, checkpoints) = killed_job(&s, "one");
    let mut workers = start(&job, 2);
    let (mut kills, mut said) = (0, String::new());
    while kills < KILLS / 2 {
        if !run_past_a_checkpoint(&mut workers, &checkpoints, &mut rng) {
            break;
        }
        let k = rng.below(2) as usize;
        let _ = workers[k].kill();
        let again = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["worker", "--job"])
            .arg(&job)
            .args(["--workers", "2", "--index", &k.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("restarts the worker");
        let dead = std::mem::replace(&mut workers[k], again);
        let printed = dead.wait_with_output().expect("waits");
        said.push_str(&String::from_utf8_lossy(&printed.stderr));
        kills += 1;
    }
    said.push_str(&finish(workers));
    let rollbacks = said.matches("rolls back to the last checkpoint").count();
    eprintln!("killed one worker {kills} times, {rollbacks} roll-backs (seed {seed})");
    assert!(kills >= 1, "the job ended before a kill");
    assert!(rollbacks >= 1, "no worker rolled back:\n{said}");
    check_output(&s, &out);
}
