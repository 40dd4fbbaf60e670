//! Checkpoints under fire: a bounded job run by real `sluice -f` processes
//! is killed with SIGKILL at seeded random moments and started again, until
//! it finishes; what it committed must equal an uninterrupted run's output
//! exactly (no row lost, none twice). Runs alternate between parallelism 1
//! and 2, so each restore also changes the parallelism.

mod kill;

use std::fmt::Write as _;
use std::path::Path;

use kill::{folded_changelogs, job_settings, kill_each_job, run_to_end, settings, Rng};

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
/// each its own job (named), checkpointing every 40 ms when `checkpoint`.
fn script(dir: &Path, parallelism: usize, checkpoint: bool, only: Option<usize>) -> String {
    let d = dir.display();
    let input = dir.parent().unwrap_or(dir).join("bids.csv");
    let input = input.display();
    let mut s = job_settings(dir, parallelism, checkpoint.then_some(40));
    let _ = writeln!(
        s,
        "CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3), \
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) \
           WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');\n\
         CREATE TABLE tumbled (auction BIGINT, ws TIMESTAMP(3), n BIGINT, total BIGINT, top BIGINT) \
           WITH ('connector' = 'filesystem', 'path' = '{d}/out/tumbled', 'format' = 'csv');\n\
         CREATE TABLE hopped (auction BIGINT, we TIMESTAMP(3), n BIGINT, avg_price DOUBLE) \
           WITH ('connector' = 'filesystem', 'path' = '{d}/out/hopped', 'format' = 'json');"
    );
    let jobs = [
        "SET 'pipeline.name' = 'tumble';\n\
         INSERT INTO tumbled SELECT auction, window_start, COUNT(*), SUM(price), MAX(price) \
           FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
           GROUP BY auction, window_start, window_end;",
        "SET 'pipeline.name' = 'hop';\n\
         INSERT INTO hopped SELECT auction, window_end, COUNT(*), AVG(price) \
           FROM TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '20' SECOND)) \
           GROUP BY auction, window_start, window_end;",
    ];
    with_jobs(s, &jobs, only)
}

/// `ddl` and the jobs, or only job `only`.
fn with_jobs(mut ddl: String, jobs: &[&str], only: Option<usize>) -> String {
    for (i, j) in jobs.iter().enumerate() {
        if only.is_none_or(|o| o == i) {
            ddl.push_str(j);
            ddl.push('\n');
        }
    }
    ddl
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

#[test]
fn killed_jobs_resume_without_loss_or_duplicates() {
    let (seed, kills_wanted) = settings();
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = dir.path().join("plain");
    let killed = dir.path().join("killed");
    // One input for both runs, big enough for 20 kills of each job.
    std::fs::write(dir.path().join("bids.csv"), bids_csv(7_000_000, &mut rng)).expect("writes");
    for d in [&plain, &killed] {
        std::fs::create_dir_all(d).expect("dir");
    }
    std::fs::write(plain.join("job.sql"), script(&plain, 2, false, None)).expect("writes");
    run_to_end(&plain, &plain.join("job.sql"));
    let expected = committed(&plain.join("out"));
    assert!(expected.len() > 10_000, "a real result: {}", expected.len());

    // Each job killed in turn (a script runs its INSERTs one after the
    // other).
    let (kills, runs) = kill_each_job(&killed, &mut rng, 2, (kills_wanted, 80..260), &|job, p| {
        script(&killed, p, true, Some(job))
    });
    // The rest of the job, uninterrupted.
    std::fs::write(killed.join("job.sql"), script(&killed, 2, true, None)).expect("writes");
    run_to_end(&killed, &killed.join("job.sql"));
    let got = committed(&killed.join("out"));
    assert_eq!(
        hidden_files(&killed.join("out")),
        0,
        "nothing left in progress"
    );
    if got != expected {
        let mut count: std::collections::HashMap<&String, i64> = std::collections::HashMap::new();
        for l in &expected {
            *count.entry(l).or_default() += 1;
        }
        for l in &got {
            *count.entry(l).or_default() -= 1;
        }
        let missing: i64 = count.values().filter(|&&n| n > 0).sum();
        let extra: i64 = -count.values().filter(|&&n| n < 0).sum::<i64>();
        panic!(
            "after {kills} kills in {runs} runs: {missing} rows missing, {extra} extra \
             (seed {seed:#x})"
        );
    }
    eprintln!(
        "{kills} kills, {runs} runs resumed: {} rows, all there once",
        got.len()
    );
}

/// Updating results under fire: a GROUP BY without a window and a LEFT
/// JOIN (whose padded rows are retracted when a match arrives) over Nexmark
/// bids generated at 50,000 events a second (so each job runs about 5 s;
/// the events are a function of their number, so a restored generator
/// continues the same stream), written as Debezium changelogs. The
/// committed changes, folded, must give the uninterrupted run's final
/// tables.
fn updating_script(
    dir: &Path,
    parallelism: usize,
    checkpoint: bool,
    only: Option<usize>,
) -> String {
    let d = dir.display();
    let mut s = job_settings(dir, parallelism, checkpoint.then_some(60));
    let _ = writeln!(
        s,
        "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, \
           url STRING, datetime TIMESTAMP(3), extra STRING) \
           WITH ('connector' = 'nexmark', 'nexmark.table.type' = 'bid', \
           'nexmark.event.num' = '600000', 'nexmark.use.real.time' = 'true', \
           'nexmark.min.event.gap.in.ns' = '20000');\n\
         CREATE TABLE names (id BIGINT, name STRING) \
           WITH ('connector' = 'filesystem', 'path' = '{d}/names.csv', 'format' = 'csv');\n\
         CREATE TABLE per_auction (auction BIGINT, n BIGINT, total BIGINT, top BIGINT, lo BIGINT) \
           WITH ('connector' = 'filesystem', 'path' = '{d}/out/per_auction', 'format' = 'debezium-json');\n\
         CREATE TABLE named (auction BIGINT, price BIGINT, name STRING) \
           WITH ('connector' = 'filesystem', 'path' = '{d}/out/named', 'format' = 'debezium-json');"
    );
    let jobs = [
        "SET 'pipeline.name' = 'per-auction';\n\
         INSERT INTO per_auction SELECT auction, COUNT(*), SUM(price), MAX(price), MIN(price) \
           FROM bids GROUP BY auction;",
        "SET 'pipeline.name' = 'named';\n\
         INSERT INTO named SELECT b.auction, b.price, n.name \
           FROM bids b LEFT JOIN names n ON b.auction = n.id;",
    ];
    with_jobs(s, &jobs, only)
}

#[test]
fn killed_updating_jobs_resume_without_loss_or_duplicates() {
    let (seed, kills_wanted) = settings();
    let mut rng = Rng(seed ^ 0x9e37);
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = dir.path().join("plain");
    let killed = dir.path().join("killed");
    let mut names = String::from("id,name\n");
    // Auction ids grow with the stream (about 3 per 50 events): names for
    // a third of them all along.
    for id in (1000..40_000).step_by(3) {
        let _ = writeln!(names, "{id},n{id}");
    }
    for d in [&plain, &killed] {
        std::fs::create_dir_all(d).expect("dir");
        std::fs::write(d.join("names.csv"), &names).expect("writes");
    }
    std::fs::write(
        plain.join("job.sql"),
        updating_script(&plain, 2, false, None),
    )
    .expect("writes");
    run_to_end(&plain, &plain.join("job.sql"));
    let expected = folded_changelogs(&plain.join("out"), &["per_auction", "named"]);
    assert!(expected.len() > 1000, "a real result: {}", expected.len());
    let (kills, runs) = kill_each_job(&killed, &mut rng, 2, (kills_wanted, 150..500), &|job, p| {
        updating_script(&killed, p, true, Some(job))
    });
    std::fs::write(
        killed.join("job.sql"),
        updating_script(&killed, 2, true, None),
    )
    .expect("writes");
    run_to_end(&killed, &killed.join("job.sql"));
    let got = folded_changelogs(&killed.join("out"), &["per_auction", "named"]);
    assert_eq!(
        got.len(),
        expected.len(),
        "after {kills} kills (seed {seed:#x})"
    );
    assert!(
        got == expected,
        "after {kills} kills the tables differ (seed {seed:#x})"
    );
    eprintln!(
        "{kills} kills, {runs} runs resumed: {} result rows, as uninterrupted",
        got.len()
    );
}
