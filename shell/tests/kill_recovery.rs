//! Checkpoints under fire: a bounded job run by real `sluice -f` processes
//! is killed with SIGKILL at seeded random moments and started again, until
//! it finishes; what it committed must equal an uninterrupted run's output
//! exactly (no row lost, none twice). Runs alternate between parallelism 1
//! and 2, so each restore also changes the parallelism.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift), so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `auction,price,ts` rows, ~10 ms apart, each up to 1 s behind the newest
/// (the watermark allows 2 s: nothing is late).
fn bids_csv(rows: usize, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(rows * 40);
    out.push_str("auction,price,ts\n");
    let mut clock: i64 = 0;
    for _ in 0..rows {
        clock += rng.below(20) as i64;
        let t = clock - rng.below(1000) as i64 + 1000;
        let (secs, ms) = (t / 1000, t % 1000);
        let _ = writeln!(
            out,
            "{},{},2024-01-01 {:02}:{:02}:{:02}.{ms:03}",
            rng.below(60),
            1 + rng.below(1000),
            secs / 3600 % 24,
            secs % 3600 / 60,
            secs % 60
        );
    }
    out
}

/// The job: TUMBLE and HOP window aggregates of the file into part files,
/// each its own job (named), checkpointing every 100 ms when `checkpoint`.
fn script(dir: &Path, parallelism: usize, checkpoint: bool) -> String {
    let d = dir.display();
    let mut s = format!("SET 'parallelism' = '{parallelism}';\n");
    if checkpoint {
        let _ = writeln!(
            s,
            "SET 'execution.checkpointing.interval' = '100 ms';\n\
             SET 'state.checkpoints.dir' = '{d}/checkpoints';"
        );
    }
    let _ = writeln!(
        s,
        "CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3), \
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) \
           WITH ('connector' = 'filesystem', 'path' = '{d}/bids.csv', 'format' = 'csv');\n\
         CREATE TABLE tumbled (auction BIGINT, ws TIMESTAMP(3), n BIGINT, total BIGINT, top BIGINT) \
           WITH ('connector' = 'filesystem', 'path' = '{d}/out/tumbled', 'format' = 'csv');\n\
         CREATE TABLE hopped (auction BIGINT, we TIMESTAMP(3), n BIGINT, avg_price DOUBLE) \
           WITH ('connector' = 'filesystem', 'path' = '{d}/out/hopped', 'format' = 'json');\n\
         SET 'pipeline.name' = 'tumble';\n\
         INSERT INTO tumbled SELECT auction, window_start, COUNT(*), SUM(price), MAX(price) \
           FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
           GROUP BY auction, window_start, window_end;\n\
         SET 'pipeline.name' = 'hop';\n\
         INSERT INTO hopped SELECT auction, window_end, COUNT(*), AVG(price) \
           FROM TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '20' SECOND)) \
           GROUP BY auction, window_start, window_end;"
    );
    s
}

/// Every data line of the visible files under `dir`, sorted (headers and
/// hidden in-progress files left out).
fn committed(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("reads dir").flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                stack.push(path);
            } else if !name.starts_with('.') {
                let text = std::fs::read_to_string(&path).expect("reads");
                let table = d.file_name().map(|n| n.to_string_lossy().to_string());
                for l in text.lines().filter(|l| !l.starts_with("auction,")) {
                    lines.push(format!("{}: {l}", table.clone().unwrap_or_default()));
                }
            }
        }
    }
    lines.sort();
    lines
}

fn hidden_files(dir: &Path) -> usize {
    let mut n = 0;
    for sub in ["tumbled", "hopped"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            n += entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
                .count();
        }
    }
    n
}

fn run_to_end(dir: &Path, script: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("-f")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("runs sluice");
    assert!(
        out.status.success(),
        "sluice failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn killed_jobs_resume_without_loss_or_duplicates() {
    let seed: u64 = std::env::var("SLUICE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0ff_ee11);
    let kills_wanted: usize = std::env::var("SLUICE_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = dir.path().join("plain");
    let killed = dir.path().join("killed");
    let data = bids_csv(3_000_000, &mut rng);
    for d in [&plain, &killed] {
        std::fs::create_dir_all(d).expect("dir");
        std::fs::write(d.join("bids.csv"), &data).expect("writes");
    }
    std::fs::write(plain.join("job.sql"), script(&plain, 2, false)).expect("writes");
    run_to_end(&plain, &plain.join("job.sql"));
    let expected = committed(&plain.join("out"));
    assert!(expected.len() > 10_000, "a real result: {}", expected.len());

    let (mut kills, mut runs) = (0, 0);
    let started = Instant::now();
    while kills < kills_wanted {
        runs += 1;
        let job = killed.join("job.sql");
        std::fs::write(&job, script(&killed, 1 + runs % 2, true)).expect("writes");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("-f")
            .arg(&job)
            .current_dir(&killed)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts sluice");
        std::thread::sleep(Duration::from_millis(40 + rng.below(260)));
        match child.try_wait().expect("polls") {
            Some(status) => {
                // It ended before the kill: the whole script ran.
                let out = child.wait_with_output().expect("output");
                assert!(
                    status.success(),
                    "run {runs} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                break;
            }
            None => {
                child.kill().expect("kills");
                let _ = child.wait();
                kills += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no end after {runs} runs"
        );
    }
    // The rest of the job, uninterrupted.
    std::fs::write(killed.join("job.sql"), script(&killed, 2, true)).expect("writes");
    run_to_end(&killed, &killed.join("job.sql"));
    let got = committed(&killed.join("out"));
    assert_eq!(
        hidden_files(&killed.join("out")),
        0,
        "nothing left in progress"
    );
    assert!(
        kills >= kills_wanted,
        "the job ended after {kills} kills in {runs} runs: make it longer"
    );
    if got != expected {
        let missing = expected.iter().filter(|l| !got.contains(l)).count();
        let extra = got.len() as i64 - expected.len() as i64 + missing as i64;
        panic!(
            "after {kills} kills in {runs} runs: {missing} rows missing, {extra} extra \
             (seed {seed:#x})"
        );
    }
    eprintln!(
        "{kills} kills in {runs} runs: {} rows, all there once",
        got.len()
    );
}
