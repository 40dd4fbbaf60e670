//! What the kill tests share: a seeded generator, running `sluice -f` to
//! its end or killing it at random moments until it finishes, and the
//! tables Debezium changelog files fold to.

#![allow(dead_code)] // each test file uses its own part

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift), so runs are repeatable.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Run the script at `script` in `dir` to its end.
pub fn run_to_end(dir: &Path, script: &Path) {
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

/// A kill test's script settings: `parallelism`, and with `checkpoint_ms`
/// checkpoints that often into `dir/checkpoints`.
pub fn job_settings(dir: &Path, parallelism: usize, checkpoint_ms: Option<u64>) -> String {
    let mut s = format!("SET 'parallelism' = '{parallelism}';\n");
    if let Some(ms) = checkpoint_ms {
        s.push_str(&format!(
            "SET 'execution.checkpointing.interval' = '{ms} ms';\n\
             SET 'state.checkpoints.dir' = '{}/checkpoints';\n",
            dir.display()
        ));
    }
    s
}

/// Kill each of `jobs` jobs of a script in turn (`script(job,
/// parallelism)`; a script runs its INSERTs one after the other) as
/// [`kill_until_done`] does, checking each was killed `kills_wanted` times
/// and at least half of its runs resumed from a checkpoint. Returns the
/// kills and the runs that resumed.
pub fn kill_each_job(
    dir: &Path,
    rng: &mut Rng,
    jobs: usize,
    (kills_wanted, delays): (usize, std::ops::Range<u64>),
    script: &dyn Fn(usize, usize) -> String,
) -> (usize, usize) {
    let (mut kills, mut runs) = (0, 0);
    for job in 0..jobs {
        let (k, r) = kill_until_done(dir, rng, (kills_wanted, delays.clone()), &|p| {
            script(job, p)
        });
        assert!(
            k >= kills_wanted,
            "job {job} ended after {k} kills: make it longer"
        );
        assert!(
            r * 2 >= k,
            "job {job}: only {r} of {k} runs resumed from a checkpoint"
        );
        (kills, runs) = (kills + k, runs + r);
    }
    (kills, runs)
}

/// Run the script `script(parallelism)` in `dir` again and again, killing
/// each run at a random moment, until `kills_wanted` kills (or the job
/// ended first); runs alternate between parallelism 1 and 2. Returns the
/// kills, and how many runs resumed from a checkpoint.
pub fn kill_until_done(
    dir: &Path,
    rng: &mut Rng,
    (kills_wanted, delays): (usize, std::ops::Range<u64>),
    script: &dyn Fn(usize) -> String,
) -> (usize, usize) {
    let (mut kills, mut runs, mut resumed) = (0, 0, 0);
    let started = Instant::now();
    while kills < kills_wanted {
        runs += 1;
        let job = dir.join("job.sql");
        std::fs::write(&job, script(1 + runs % 2)).expect("writes");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("-f")
            .arg(&job)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts sluice");
        let delay = delays.start + rng.below(delays.end - delays.start);
        std::thread::sleep(Duration::from_millis(delay));
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
                let out = child.wait_with_output().expect("output");
                if String::from_utf8_lossy(&out.stderr).contains("resumes from checkpoint") {
                    resumed += 1;
                }
                kills += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no end after {runs} runs"
        );
    }
    (kills, resumed)
}

/// The tables the Debezium part files under `dir` leave: every change
/// applied in file order (part files by their number), as sorted lines.
pub fn folded_changelogs(dir: &Path, tables: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for &table in tables {
        let mut files: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir.join(table))
            .expect("reads dir")
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let n = name
                    .rsplit('-')
                    .next()
                    .and_then(|t| t.split('.').next())
                    .and_then(|n| n.parse().ok())
                    .expect("part number");
                (n, e.path())
            })
            .collect();
        files.sort();
        let mut rows: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for (_, f) in files {
            for line in std::fs::read_to_string(&f).expect("reads").lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("a JSON envelope");
                for (side, sign) in [("before", -1), ("after", 1)] {
                    if let Some(row) = v.get(side).filter(|r| !r.is_null()) {
                        *rows.entry(format!("{table}: {row}")).or_default() += sign;
                    }
                }
            }
        }
        for (row, n) in rows {
            assert!(n >= 0, "{row} retracted more often than written");
            out.extend(std::iter::repeat_n(row, n as usize));
        }
    }
    out.sort();
    out
}

/// The seed and the kills wanted (`SLUICE_KILL_SEED`, `SLUICE_KILLS`).
pub fn settings() -> (u64, usize) {
    let seed = std::env::var("SLUICE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0ff_ee11);
    let kills = std::env::var("SLUICE_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    (seed, kills)
}

/// Write `records` (partition, JSON value) to `topic`, every delivery
/// awaited.
pub fn produce(bootstrap: &str, topic: &str, records: &[(i32, String)]) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("producer");
        let mut waiting = std::collections::VecDeque::with_capacity(records.len());
        for (p, value) in records {
            loop {
                let record = rdkafka::producer::FutureRecord::<(), str>::to(topic)
                    .partition(*p)
                    .payload(value);
                match producer.send_result(record) {
                    Ok(delivery) => {
                        waiting.push_back(delivery);
                        break;
                    }
                    // The client's queue is full: wait for the oldest.
                    Err((e, _)) => {
                        let oldest = waiting.pop_front().unwrap_or_else(|| panic!("{e}"));
                        oldest
                            .await
                            .expect("delivered")
                            .map_err(|(e, _)| e)
                            .expect("delivered");
                    }
                }
            }
        }
        for w in waiting {
            w.await
                .expect("delivered")
                .map_err(|(e, _)| e)
                .expect("delivered");
        }
    });
}

/// Sorted data lines of the CSV part files under `dir` (headers left out).
pub fn csv_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for e in std::fs::read_dir(dir).expect("reads dir").flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).expect("reads");
        rows.extend(text.lines().skip(1).map(str::to_string));
    }
    rows.sort();
    rows
}
