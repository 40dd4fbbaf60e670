//! The PostgreSQL sink under fire: bounded jobs writing into a real
//! PostgreSQL server (started by `scripts/test.sh`) are killed with SIGKILL
//! at seeded random moments and started again until they finish; the
//! tables must then hold exactly what an uninterrupted run wrote (each
//! checkpoint's rows are one transaction, committed with the checkpoint's
//! id in a progress table). And a server restarted in the middle of a job
//! without checkpoints loses no row (the sink retries on a new
//! connection).

mod kill;
mod pg;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kill::{job_settings, kill_each_job, run_to_end, settings, Rng};
use pg::{jdbc, psql, server};

/// The tests share the server, and one restarts it: one at a time.
static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `auction,price,ts` rows, ~10 ms apart.
fn bids_csv(rows: usize, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(rows * 40);
    out.push_str("auction,price,ts\n");
    let mut clock: i64 = 0;
    for i in 0..rows {
        clock += rng.below(20) as i64;
        let (secs, ms) = (clock / 1000, clock % 1000);
        let _ = writeln!(
            out,
            "{},{},2024-01-01 {:02}:{:02}:{:02}.{ms:03}",
            (i as u64 * 7 + rng.below(5)) % 500,
            1 + rng.below(1000),
            secs / 3600 % 24,
            secs % 3600 / 60,
            secs % 60
        );
    }
    out
}

/// The jobs, writing into PostgreSQL schema `schema`: the bids over 800
/// (inserts: a duplicate would show) and the count and total per auction
/// (upserts; the file read three times, so the job runs long enough to be
/// killed).
fn script(dir: &Path, url: &str, schema: &str, parallelism: usize, only: Option<usize>) -> String {
    let (jdbc, user, password) = jdbc(url);
    let input = dir.parent().unwrap_or(dir).join("bids.csv");
    let input = input.display();
    let mut s = job_settings(dir, parallelism, Some(40));
    let with = |table: &str| {
        format!(
            "WITH ('connector' = 'jdbc', 'url' = '{jdbc}', 'table-name' = '{schema}.{table}', \
             'username' = '{user}', 'password' = '{password}', \
             'sink.buffer-flush.max-rows' = '500')"
        )
    };
    let _ = writeln!(
        s,
        "CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3)) \
           WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');\n\
         CREATE TABLE big (auction BIGINT, price BIGINT, ts TIMESTAMP(3)) {};\n\
         CREATE TABLE totals (auction BIGINT, n BIGINT, total BIGINT, \
           PRIMARY KEY (auction) NOT ENFORCED) {};",
        with("big"),
        with("totals")
    );
    let jobs = [
        "SET 'pipeline.name' = 'big';\n\
         INSERT INTO big SELECT * FROM bids WHERE price > 800;",
        "SET 'pipeline.name' = 'totals';\n\
         INSERT INTO totals SELECT auction, COUNT(*), SUM(price) \
           FROM (SELECT * FROM bids UNION ALL SELECT * FROM bids UNION ALL SELECT * FROM bids) \
           GROUP BY auction;",
    ];
    for (i, j) in jobs.iter().enumerate() {
        if only.is_none_or(|o| o == i) {
            s.push_str(j);
            s.push('\n');
        }
    }
    s
}

fn create_schema(url: &str, schema: &str) {
    psql(
        url,
        &format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
             CREATE TABLE {schema}.big (auction BIGINT, price BIGINT, ts TIMESTAMP(3)); \
             CREATE TABLE {schema}.totals (auction BIGINT PRIMARY KEY, n BIGINT, total BIGINT)"
        ),
    );
}

fn contents(url: &str, schema: &str) -> (String, String) {
    (
        psql(
            url,
            &format!("SELECT * FROM {schema}.big ORDER BY ts, auction, price"),
        ),
        psql(
            url,
            &format!("SELECT * FROM {schema}.totals ORDER BY auction"),
        ),
    )
}

#[test]
fn killed_jobs_write_each_row_once() {
    let Some(url) = server() else {
        return;
    };
    let _one = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    // Fewer and later kills than the file kill tests: a checkpoint's
    // barrier waits behind the rows queued for the database (the sink is
    // the slowest part), so checkpoints complete every few hundred ms.
    let (seed, kills) = settings();
    let kills_wanted = kills.min(6);
    let mut rng = Rng(seed ^ 0x9e37);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bids.csv"), bids_csv(3_000_000, &mut rng)).expect("writes");
    let run = std::process::id();
    let (plain_schema, killed_schema) = (format!("kp{run}_plain"), format!("kp{run}_killed"));
    let plain = dir.path().join("plain");
    let killed = dir.path().join("killed");
    for (d, schema) in [(&plain, &plain_schema), (&killed, &killed_schema)] {
        std::fs::create_dir_all(d).expect("dir");
        create_schema(&url, schema);
    }
    std::fs::write(
        plain.join("job.sql"),
        script(&plain, &url, &plain_schema, 2, None),
    )
    .expect("writes");
    run_to_end(&plain, &plain.join("job.sql"));
    let expected = contents(&url, &plain_schema);
    assert!(expected.0.lines().count() > 1000, "a real result");
    assert_eq!(expected.1.lines().count(), 500);

    // The inserts wait on the database; the upserts are few.
    let (mut kills, mut runs) = (0, 0);
    for (job, delays) in [(0, 500..1500), (1, 100..400)] {
        let (k, r) = kill_each_job(&killed, &mut rng, 1, (kills_wanted, delays), &|_, p| {
            script(&killed, &url, &killed_schema, p, Some(job))
        });
        (kills, runs) = (kills + k, runs + r);
    }
    std::fs::write(
        killed.join("job.sql"),
        script(&killed, &url, &killed_schema, 2, None),
    )
    .expect("writes");
    run_to_end(&killed, &killed.join("job.sql"));
    let got = contents(&url, &killed_schema);
    assert!(
        got.0 == expected.0,
        "the inserted rows differ after {kills} kills"
    );
    assert_eq!(got.1, expected.1, "after {kills} kills ({runs} resumed)");
    let progress = psql(
        &url,
        &format!("SELECT job, sink FROM {killed_schema}.sluice_checkpoints ORDER BY job"),
    );
    assert_eq!(
        progress,
        format!("big|{killed_schema}.big\ntotals|{killed_schema}.totals\n")
    );
    for schema in [&plain_schema, &killed_schema] {
        psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
    }
}

/// `pg_ctl` of the test server with `args` (as its owner, postgres, when
/// run as root), if `scripts/test.sh` started it.
fn pg_ctl(args: &[&str]) -> Option<std::process::Output> {
    let ctl = std::env::var("SLUICE_PG_CTL").ok()?;
    let mut words: Vec<&str> = ctl.split_whitespace().collect();
    words.extend(args);
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).args(&words);
        c
    } else {
        let mut c = Command::new(words[0]);
        c.args(&words[1..]);
        c
    };
    Some(cmd.output().expect("runs pg_ctl"))
}

#[test]
fn a_server_restart_loses_no_row() {
    let Some(url) = server() else {
        return;
    };
    if std::env::var("SLUICE_PG_CTL").is_err() {
        eprintln!("skipped: the server was not started by scripts/test.sh (SLUICE_PG_CTL)");
        return;
    }
    let _one = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng(7);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bids.csv"), bids_csv(400_000, &mut rng)).expect("writes");
    let schema = format!("rs{}", std::process::id());
    create_schema(&url, &schema);
    let (jdbc, user, password) = jdbc(&url);
    let job = dir.path().join("job.sql");
    // No checkpoints: flushes of 50 rows, each retried on a new
    // connection while the server restarts.
    std::fs::write(
        &job,
        format!(
            "CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3)) \
               WITH ('connector' = 'filesystem', 'path' = 'bids.csv', 'format' = 'csv');\n\
             CREATE TABLE big (auction BIGINT, price BIGINT, ts TIMESTAMP(3)) \
               WITH ('connector' = 'jdbc', 'url' = '{jdbc}', 'table-name' = '{schema}.big', \
               'username' = '{user}', 'password' = '{password}', \
               'sink.buffer-flush.max-rows' = '50', 'sink.max-retries' = '10');\n\
             INSERT INTO big SELECT * FROM bids WHERE price > 900;\n"
        ),
    )
    .expect("writes");
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("-f")
        .arg(&job)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts sluice");
    // Restart once rows are arriving.
    let count = || psql(&url, &format!("SELECT COUNT(*) FROM {schema}.big"));
    for _ in 0..200 {
        if count().trim() != "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = pg_ctl(&["restart", "-m", "fast", "-w"]).expect("pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl restart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = child.wait_with_output().expect("waits");
    assert!(
        out.status.success(),
        "the job failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("bids.csv")).expect("reads");
    let expected = text
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(1).and_then(|p| p.parse::<u64>().ok()) > Some(900))
        .count();
    let got: usize = count().trim().parse().expect("a count");
    // At least once without checkpoints: none lost (a flush whose commit
    // was cut off may be written twice).
    assert!(
        got >= expected,
        "{got} rows in PostgreSQL, {expected} written"
    );
    psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}
