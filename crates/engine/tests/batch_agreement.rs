//! Streaming window aggregates must agree with a batch GROUP BY over the same
//! rows. The input is generated: disordered, NULL keys and values, many
//! groups, crossing midnight. The reference is plain DataFusion with the
//! window computed by arithmetic.
//!
//! Inside the watermark bound (CSV files) nothing is late and the reference
//! is a GROUP BY over the file. With late rows (`late_rows.rs`: memory
//! tables fed one INSERT per batch, and files read in chunks), the
//! reference first applies Flink's rule (`rule.rs`) to the same arrivals,
//! so results and the count of dropped rows must agree exactly. SESSION,
//! CUMULATE and OVER are also checked against DuckDB (`duckdb.rs`).

#[path = "batch_agreement/duckdb.rs"]
mod duckdb;
#[path = "batch_agreement/late_rows.rs"]
mod late_rows;
#[path = "batch_agreement/rule.rs"]
mod rule;

use std::fmt::Write as _;

use datafusion::prelude::{CsvReadOptions, SessionContext};
use sluice_engine::{format, Session, StatementResult};

/// A small deterministic generator (64-bit LCG), so runs are repeatable.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Rows `auction,price,ts`: time advances ~100 ms per row from 23:58 so the
/// data crosses midnight; each row is up to 2 s behind the newest time
/// (the watermark bound is 3 s, so nothing is late).
fn generate(rows: usize) -> String {
    let mut rng = Lcg(42);
    let start = START_MS;
    let mut out = String::from("auction,price,ts\n");
    let mut clock = start;
    for _ in 0..rows {
        clock += rng.below(200) as i64;
        let ts = clock - rng.below(2000) as i64;
        let auction = if rng.below(50) == 0 {
            String::new()
        } else {
            (rng.below(40)).to_string()
        };
        let price = if rng.below(30) == 0 {
            String::new()
        } else {
            (rng.below(10_000)).to_string()
        };
        let _ = writeln!(out, "{auction},{price},{}", format_ms(ts));
    }
    out
}

/// 2024-01-01 23:58:00 UTC.
const START_MS: i64 = 1_704_153_480_000;

fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // 2024-01-01 is day 19723 since the epoch; the data spans two days.
    let day = match days {
        19_723 => "2024-01-01",
        19_724 => "2024-01-02",
        other => panic!("generated time out of range: day {other}"),
    };
    format!(
        "{day} {:02}:{:02}:{:02}.{millis:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Sorted result rows and late rows dropped, at `parallelism`.
async fn run_streaming(ddl: &str, query: &str, parallelism: usize) -> (Vec<Vec<String>>, u64) {
    let session = Session::new();
    session
        .settings()
        .set("parallelism", &parallelism.to_string())
        .expect("valid setting");
    for stmt in session.parse(ddl, None).expect("ddl parses") {
        session.execute(&stmt).await.expect("ddl runs");
    }
    let stmts = session.parse(query, None).expect("query parses");
    let Some(StatementResult::Query(handle)) = session.execute(&stmts[0]).await.ok() else {
        panic!("not a query: {query}");
    };
    let (batches, summary) = handle.collect().await.expect("query runs");
    let mut rows = format::rows_as_strings(&batches).expect("formats");
    rows.sort();
    (rows, summary.late_rows)
}

/// The streaming result, the same at parallelism 1 and 3, with no late row.
async fn streaming_rows(ddl: &str, query: &str) -> Vec<Vec<String>> {
    let (rows, late) = run_streaming(ddl, query, 1).await;
    assert_eq!(late, 0, "no row is late inside the bound");
    let (parallel, late) = run_streaming(ddl, query, 3).await;
    assert_eq!(late, 0, "no row is late at parallelism 3 either");
    assert_eq!(
        rows, parallel,
        "parallelism 3 gives the rows of parallelism 1"
    );
    rows
}

async fn batch_rows(path: &str, query: &str) -> Vec<Vec<String>> {
    let ctx = SessionContext::new();
    ctx.register_csv("bids", path, CsvReadOptions::new().has_header(true))
        .await
        .expect("csv registers");
    let batches = ctx
        .sql(query)
        .await
        .expect("batch query plans")
        .collect()
        .await
        .expect("batch query runs");
    let mut rows = format::rows_as_strings(&batches).expect("formats");
    rows.sort();
    rows
}

fn setup(rows: usize) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bids.csv");
    std::fs::write(&path, generate(rows)).expect("write data");
    let path = path.to_string_lossy().into_owned();
    let ddl = format!(
        "CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '3' SECOND) \
         WITH (connector = 'filesystem', path = '{path}', format = 'csv');"
    );
    (dir, path, ddl)
}

/// The batch side casts `ts` the same way and buckets by integer arithmetic.
const BATCH_TS: &str = "CAST(CAST(ts AS TIMESTAMP) AS BIGINT) / 1000000";

#[tokio::test]
async fn tumble_agrees_with_batch_group_by() {
    let (_dir, path, ddl) = setup(20_000);
    let streaming = streaming_rows(
        &ddl,
        "SELECT auction, CAST(window_start AS BIGINT) / 1000 AS ws, \
         COUNT(*), COUNT(price), SUM(price), MAX(price), MIN(price), COUNT(DISTINCT price % 7) \
         FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
         GROUP BY auction, window_start",
    )
    .await;
    let batch = batch_rows(
        &path,
        &format!(
            "SELECT auction, ({BATCH_TS}) / 10000 * 10000 / 1000 AS ws, \
             COUNT(*), COUNT(price), SUM(price), MAX(price), MIN(price), COUNT(DISTINCT price % 7) \
             FROM bids GROUP BY 1, 2"
        ),
    )
    .await;
    assert!(streaming.len() > 100, "many groups: {}", streaming.len());
    assert_eq!(streaming, batch);
}

#[tokio::test]
async fn hop_agrees_with_batch_group_by() {
    let (_dir, path, ddl) = setup(20_000);
    let streaming = streaming_rows(
        &ddl,
        "SELECT auction, CAST(window_start AS BIGINT) / 1000 AS ws, \
         COUNT(*), SUM(price), MAX(price), AVG(price) \
         FROM TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) \
         GROUP BY auction, window_start",
    )
    .await;
    // Each row belongs to the five 10 s windows starting at its 2 s pane
    // start minus 0, 2, 4, 6 and 8 seconds.
    let batch = batch_rows(
        &path,
        &format!(
            "SELECT auction, (({BATCH_TS}) / 2000 * 2000 - k.i * 2000) / 1000 AS ws, \
             COUNT(*), SUM(price), MAX(price), AVG(price) \
             FROM bids CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS k(i) GROUP BY 1, 2"
        ),
    )
    .await;
    assert!(streaming.len() > 500, "many groups: {}", streaming.len());
    assert_eq!(streaming, batch);
}

#[tokio::test]
async fn cumulate_agrees_with_batch_group_by() {
    let (_dir, path, ddl) = setup(20_000);
    let streaming = streaming_rows(
        &ddl,
        "SELECT auction, CAST(window_start AS BIGINT) / 1000 AS ws, \
         CAST(window_end AS BIGINT) / 1000 AS we, COUNT(*), SUM(price), MAX(price), AVG(price) \
         FROM TABLE(CUMULATE(TABLE bids, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) \
         GROUP BY auction, window_start, window_end",
    )
    .await;
    // Each row belongs to the windows of its 10 s period that end after
    // it: ends at the period start plus 2, 4, 6, 8 and 10 seconds.
    let batch = batch_rows(
        &path,
        &format!(
            "SELECT auction, ({BATCH_TS}) / 10000 * 10000 / 1000 AS ws, \
             (({BATCH_TS}) / 10000 * 10000 + k.j * 2000) / 1000 AS we, \
             COUNT(*), SUM(price), MAX(price), AVG(price) \
             FROM bids CROSS JOIN (VALUES (1), (2), (3), (4), (5)) AS k(j) \
             WHERE ({BATCH_TS}) / 10000 * 10000 + k.j * 2000 > {BATCH_TS} GROUP BY 1, 2, 3"
        ),
    )
    .await;
    assert!(streaming.len() > 500, "many groups: {}", streaming.len());
    assert_eq!(streaming, batch);
}

#[tokio::test]
async fn session_agrees_with_gaps_and_islands() {
    let (_dir, path, ddl) = setup(20_000);
    let streaming = streaming_rows(
        &ddl,
        "SELECT auction, CAST(window_start AS BIGINT) AS ws, CAST(window_end AS BIGINT) AS we, \
         COUNT(*), SUM(price), MAX(price) \
         FROM TABLE(SESSION(TABLE bids PARTITION BY auction, DESCRIPTOR(ts), INTERVAL '2' SECOND)) \
         GROUP BY auction, window_start, window_end",
    )
    .await;
    // A row more than the gap after its key's previous row starts a new
    // session (rows exactly the gap apart share one, as in Flink).
    let batch = batch_rows(
        &path,
        &format!(
            "WITH t AS (SELECT auction, price, {BATCH_TS} AS t FROM bids), \
             m AS (SELECT *, CASE WHEN t - LAG(t) OVER (PARTITION BY auction ORDER BY t) <= 2000 \
                   THEN 0 ELSE 1 END AS new FROM t), \
             s AS (SELECT *, SUM(new) OVER (PARTITION BY auction ORDER BY t \
                   ROWS UNBOUNDED PRECEDING) AS sid FROM m) \
             SELECT auction, MIN(t), MAX(t) + 2000, COUNT(*), SUM(price), MAX(price) \
             FROM s GROUP BY auction, sid"
        ),
    )
    .await;
    assert!(streaming.len() > 500, "many sessions: {}", streaming.len());
    assert_eq!(streaming, batch);
}

#[tokio::test]
async fn over_agrees_with_batch_window_functions() {
    let (_dir, path, ddl) = setup(20_000);
    // RANGE frames (peers share a value in both engines) and a ROWS count
    // (the same whatever order ties take).
    let streaming = streaming_rows(
        &ddl,
        "SELECT auction, CAST(ts AS BIGINT), price, \
         SUM(price) OVER w, MAX(price) OVER w, COUNT(price) OVER w \
         FROM bids WINDOW w AS (PARTITION BY auction ORDER BY ts \
         RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW)",
    )
    .await;
    let batch = batch_rows(
        &path,
        &format!(
            "SELECT auction, {BATCH_TS}, price, SUM(price) OVER w, MAX(price) OVER w, \
             COUNT(price) OVER w FROM (SELECT auction, price, \
             CAST(CAST(ts AS TIMESTAMP) AS TIMESTAMP(3)) AS ts FROM bids) \
             WINDOW w AS (PARTITION BY auction ORDER BY ts \
             RANGE BETWEEN INTERVAL '2' SECOND PRECEDING AND CURRENT ROW)"
        ),
    )
    .await;
    assert!(streaming.len() > 10_000, "every row: {}", streaming.len());
    assert_eq!(streaming, batch);
    let streaming = streaming_rows(
        &ddl,
        "SELECT auction, CAST(ts AS BIGINT), COUNT(*) OVER (PARTITION BY auction ORDER BY ts \
         ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) FROM bids",
    )
    .await;
    let batch = batch_rows(
        &path,
        &format!(
            "SELECT auction, {BATCH_TS}, COUNT(*) OVER (PARTITION BY auction ORDER BY ts \
             ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) FROM bids"
        ),
    )
    .await;
    assert_eq!(streaming, batch);
    // LEAD of the time itself: the same whatever order ties take.
    let lead = "SELECT auction, CAST(ts AS BIGINT), CAST(LEAD(ts) OVER w AS BIGINT), \
                CAST(LEAD(ts, 3) OVER w AS BIGINT) FROM {from} \
                WINDOW w AS (PARTITION BY auction ORDER BY ts)";
    let streaming = streaming_rows(&ddl, &lead.replace("{from}", "bids")).await;
    let from = "(SELECT auction, CAST(CAST(ts AS TIMESTAMP) AS TIMESTAMP(3)) AS ts FROM bids)";
    let batch = batch_rows(&path, &lead.replace("{from}", from)).await;
    assert!(streaming.len() > 10_000, "every row: {}", streaming.len());
    assert_eq!(streaming, batch);
}
