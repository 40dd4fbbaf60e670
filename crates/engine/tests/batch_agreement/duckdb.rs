//! SESSION, CUMULATE and OVER against DuckDB's batch answer over the same
//! generated file (the seeded rows of `generate`), at parallelism 1 and 3.
//! DuckDB runs in a Python interpreter with the `duckdb` package, named by
//! `SLUICE_DUCKDB_PYTHON` (`scripts/test.sh` installs it). Without one the
//! tests say so and pass, unless `SLUICE_REQUIRE_DUCKDB` is set (as in CI).

use std::process::Command;

use super::{setup, streaming_rows};

/// The Python that imports duckdb, if any.
fn python() -> Option<String> {
    let py = std::env::var("SLUICE_DUCKDB_PYTHON").ok()?;
    let ok = Command::new(&py)
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(py)
}

/// DuckDB's sorted rows for `query` over the file at `path` (as `bids`),
/// each value as Sluice prints it (integers, NULL).
fn duckdb_rows(py: &str, path: &str, query: &str) -> Vec<Vec<String>> {
    let script = r#"
import duckdb, sys
con = duckdb.connect()
con.execute("CREATE TABLE bids AS SELECT * FROM read_csv(?, header = true, columns = {'auction': 'BIGINT', 'price': 'BIGINT', 'ts': 'TIMESTAMP'})", [sys.argv[1]])
for row in con.execute(sys.argv[2]).fetchall():
    print("\t".join("NULL" if v is None else str(v) for v in row))
"#;
    let out = Command::new(py)
        .args(["-c", script, path, query])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<Vec<String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    rows.sort();
    rows
}

/// DuckDB, or why the test is not run.
fn duckdb() -> Option<String> {
    let py = python();
    if py.is_none() {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_DUCKDB").is_none(),
            "SLUICE_REQUIRE_DUCKDB is set but SLUICE_DUCKDB_PYTHON cannot import duckdb"
        );
        eprintln!("no DuckDB (set SLUICE_DUCKDB_PYTHON): the DuckDB comparison is not run");
    }
    py
}

/// `streaming` over the table of `ddl` equals `duck` over the file at
/// `path`; the number of rows.
async fn agree(py: &str, (ddl, path): (&str, &str), streaming: &str, duck: &str) -> usize {
    let streaming = streaming_rows(ddl, streaming).await;
    assert_eq!(streaming, duckdb_rows(py, path, duck));
    streaming.len()
}

#[tokio::test]
async fn session_agrees_with_duckdb() {
    let Some(py) = duckdb() else { return };
    let (_dir, path, ddl) = setup(20_000);
    let rows = agree(
        &py,
        (&ddl, &path),
        "SELECT auction, CAST(window_start AS BIGINT), CAST(window_end AS BIGINT), \
         COUNT(*), SUM(price), MAX(price) \
         FROM TABLE(SESSION(TABLE bids PARTITION BY auction, DESCRIPTOR(ts), INTERVAL '2' SECOND)) \
         GROUP BY auction, window_start, window_end",
        "WITH t AS (SELECT auction, price, epoch_ms(ts) AS t FROM bids), \
         m AS (SELECT *, CASE WHEN t - LAG(t) OVER (PARTITION BY auction ORDER BY t) <= 2000 \
               THEN 0 ELSE 1 END AS new FROM t), \
         s AS (SELECT *, SUM(new) OVER (PARTITION BY auction ORDER BY t \
               ROWS UNBOUNDED PRECEDING) AS sid FROM m) \
         SELECT auction, MIN(t), MAX(t) + 2000, COUNT(*), SUM(price), MAX(price) \
         FROM s GROUP BY auction, sid",
    )
    .await;
    assert!(rows > 500, "many sessions: {rows}");
}

#[tokio::test]
async fn cumulate_agrees_with_duckdb() {
    let Some(py) = duckdb() else { return };
    let (_dir, path, ddl) = setup(20_000);
    // Each row is in the windows of its 10 s period that end after it.
    let rows = agree(
        &py,
        (&ddl, &path),
        "SELECT auction, CAST(window_start AS BIGINT), CAST(window_end AS BIGINT), \
         COUNT(*), SUM(price), MAX(price) \
         FROM TABLE(CUMULATE(TABLE bids, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) \
         GROUP BY auction, window_start, window_end",
        "WITH t AS (SELECT auction, price, epoch_ms(ts) AS t FROM bids), \
         w AS (SELECT auction, price, t - t % 10000 AS ws, t - t % 10000 + 2000 * k AS we \
               FROM t CROSS JOIN range(1, 6) AS r(k) WHERE t - t % 10000 + 2000 * k > t) \
         SELECT auction, ws, we, COUNT(*), SUM(price), MAX(price) FROM w GROUP BY auction, ws, we",
    )
    .await;
    assert!(rows > 1000, "many windows: {rows}");
}

#[tokio::test]
async fn over_agrees_with_duckdb() {
    let Some(py) = duckdb() else { return };
    let (_dir, path, ddl) = setup(20_000);
    // RANGE frames (peers share a value in both engines); LEAD of the time
    // (the same whatever order ties take).
    let rows = agree(
        &py,
        (&ddl, &path),
        "SELECT auction, CAST(ts AS BIGINT), price, SUM(price) OVER w, MAX(price) OVER w, \
         COUNT(price) OVER w, COUNT(*) OVER w \
         FROM bids WINDOW w AS (PARTITION BY auction ORDER BY ts \
         RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW)",
        "SELECT auction, epoch_ms(ts), price, SUM(price) OVER w, MAX(price) OVER w, \
         COUNT(price) OVER w, COUNT(*) OVER w \
         FROM bids WINDOW w AS (PARTITION BY auction ORDER BY ts \
         RANGE BETWEEN INTERVAL 2 SECOND PRECEDING AND CURRENT ROW)",
    )
    .await;
    assert!(rows > 10_000, "every row: {rows}");
    let rows = agree(
        &py,
        (&ddl, &path),
        "SELECT auction, CAST(ts AS BIGINT), CAST(LEAD(ts) OVER w AS BIGINT), \
         CAST(LEAD(ts, 3) OVER w AS BIGINT) FROM bids \
         WINDOW w AS (PARTITION BY auction ORDER BY ts)",
        "SELECT auction, epoch_ms(ts), epoch_ms(LEAD(ts) OVER w), epoch_ms(LEAD(ts, 3) OVER w) \
         FROM bids WINDOW w AS (PARTITION BY auction ORDER BY ts)",
    )
    .await;
    assert!(rows > 10_000, "every row: {rows}");
}
