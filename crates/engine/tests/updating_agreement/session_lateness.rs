//! SESSION windows with an emit strategy: random rows arrive out of order
//! in many small INSERTs behind a watermark at the newest time, so many are
//! late; with an allowed lateness longer than the disorder none is lost.
//! The changelog (early results, in-place updates, sessions grown or
//! bridged by late rows) must retract exactly what it emitted and fold to
//! the sessions of all rows, computed in DataFusion batch as gaps and
//! islands.

use std::fmt::Write as _;

use sluice_common::Fold;
use sluice_engine::{format, Session, StatementResult};

use super::common::{batch, Lcg};

const STREAM_DDL: &str = "CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3), \
    WATERMARK FOR ts AS ts)";
const BATCH_DDL: &str = "CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP)";

/// Rows up to 4 s behind the newest, time advancing ~200 ms a row; NULL
/// keys, prices and times.
fn inserts(rng: &mut Lcg, rows: usize) -> (Vec<String>, u64) {
    let mut out = Vec::new();
    let mut clock = 1_704_070_800_000i64; // 2024-01-01 01:00:00 UTC
    let (mut left, mut null_times) = (rows, 0);
    while left > 0 {
        let n = (1 + rng.below(12) as usize).min(left);
        left -= n;
        let mut sql = String::from("INSERT INTO bids VALUES ");
        for i in 0..n {
            clock += rng.below(400) as i64;
            let ts = clock - rng.below(4_000) as i64;
            let auction = match rng.below(20) {
                0 => "NULL".to_string(),
                _ => rng.below(6).to_string(),
            };
            let price = match rng.below(15) {
                0 => "NULL".to_string(),
                _ => rng.below(1_000).to_string(),
            };
            let ts = if rng.below(40) == 0 {
                null_times += 1;
                "NULL".to_string()
            } else {
                let secs = ts.div_euclid(1000) - 1_704_067_200;
                format!(
                    "TIMESTAMP '2024-01-01 {:02}:{:02}:{:02}.{:03}'",
                    secs / 3600,
                    secs % 3600 / 60,
                    secs % 60,
                    ts.rem_euclid(1000)
                )
            };
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(sql, "{sep}({auction}, {price}, {ts})");
        }
        out.push(sql);
    }
    (out, null_times)
}

/// The streaming query's changelog, checked to retract only rows it
/// emitted, folded to a table (sorted rows); and the late-row count.
async fn folded(
    settings: &[(&str, &str)],
    statements: &[String],
    query: &str,
    parallelism: usize,
) -> (Vec<Vec<String>>, u64) {
    let session = Session::new();
    {
        // The settings are locked while held.
        let mut s = session.settings();
        s.set("parallelism", &parallelism.to_string())
            .expect("valid setting");
        for (k, v) in settings {
            s.set(k, v).expect("valid setting");
        }
    }
    for sql in std::iter::once(STREAM_DDL.to_string()).chain(statements.iter().cloned()) {
        for stmt in session.parse(&sql, None).expect("parses") {
            if let StatementResult::Insert(h) = session.execute(&stmt).await.expect("runs") {
                h.wait().await.expect("insert runs");
            }
        }
    }
    let stmts = session.parse(query, None).expect("query parses");
    let Ok(StatementResult::Query(handle)) = session.execute(&stmts[0]).await else {
        panic!("not a query: {query}");
    };
    let schema = sluice_common::changelog::data_schema(&handle.schema());
    let (batches, summary) = handle.collect().await.expect("query runs");
    let mut fold = Fold::try_new(schema, None).expect("fold");
    for b in &batches {
        fold.apply(b).expect("applies");
    }
    assert_eq!(
        fold.unmatched(),
        0,
        "retracted a row never emitted: {query}"
    );
    let table = fold.table().expect("table");
    let mut rows = format::rows_as_strings(&[table]).expect("formats");
    rows.sort();
    (rows, summary.late_rows)
}

#[tokio::test]
async fn late_sessions_fold_to_the_batch_sessions() {
    let strategies: [&[(&str, &str)]; 4] = [
        &[("table.exec.emit.allow-lateness", "5 s")],
        &[
            ("table.exec.emit.allow-lateness", "5 s"),
            ("table.exec.emit.early-fire.enabled", "true"),
            ("table.exec.emit.early-fire.delay", "0 s"),
        ],
        &[
            ("table.exec.emit.allow-lateness", "5 s"),
            ("table.exec.emit.late-fire.enabled", "true"),
            ("table.exec.emit.late-fire.delay", "1 ms"),
        ],
        &[
            ("table.exec.emit.allow-lateness", "5 s"),
            ("table.exec.emit.early-fire.enabled", "true"),
            ("table.exec.emit.early-fire.delay", "2 ms"),
        ],
    ];
    let seeds = std::env::var("SLUICE_UPDATING_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3u64);
    for seed in 1..=seeds {
        let mut rng = Lcg(seed * 104_729);
        let (statements, null_times) = inserts(&mut rng, 700);
        let gap = [300, 1_000, 2_500][rng.below(3) as usize];
        let aggs = "COUNT(*), SUM(price), MAX(price), COUNT(DISTINCT price % 7)";
        let query = format!(
            "SELECT auction, CAST(window_start AS BIGINT), CAST(window_end AS BIGINT), {aggs} \
             FROM TABLE(SESSION(TABLE bids PARTITION BY auction, DESCRIPTOR(ts), \
             INTERVAL '{gap}' MILLISECOND)) GROUP BY auction, window_start, window_end"
        );
        let reference = format!(
            "WITH t AS (SELECT auction, price, CAST(ts AS BIGINT) / 1000000 AS t FROM bids \
             WHERE ts IS NOT NULL), \
             m AS (SELECT *, CASE WHEN t - LAG(t) OVER (PARTITION BY auction ORDER BY t) <= {gap} \
             THEN 0 ELSE 1 END AS new FROM t), \
             s AS (SELECT *, SUM(new) OVER (PARTITION BY auction ORDER BY t \
             ROWS UNBOUNDED PRECEDING) AS sid FROM m) \
             SELECT auction, MIN(t), MAX(t) + {gap}, {aggs} FROM s GROUP BY auction, sid"
        );
        let expected = batch(&[BATCH_DDL], &statements, &reference).await;
        assert!(expected.len() > 20, "many sessions: {}", expected.len());
        for (i, settings) in strategies.iter().enumerate() {
            let parallelism = 1 + i % 2;
            let (got, late) = folded(settings, &statements, &query, parallelism).await;
            assert_eq!(
                got, expected,
                "seed {seed}, gap {gap} ms, {settings:?}, parallelism {parallelism}"
            );
            assert_eq!(late, null_times, "only rows without a time are dropped");
        }
    }
}
