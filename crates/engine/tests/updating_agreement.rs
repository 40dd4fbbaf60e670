//! Updating results must fold to the batch answer. Random rows arrive in
//! many small INSERTs (each one batch, so every key changes many times);
//! random GROUP BY / HAVING / FILTER / DISTINCT / Top-N queries, some over another
//! updating aggregate (so the outer one retracts), and self-joins (alone or
//! aggregated), run streaming at
//! parallelism 1 and 2; the changelog folded by its upsert key must equal
//! DataFusion's batch result over the same rows.

use std::fmt::Write as _;

mod common;
use common::{batch, streaming, Lcg};

#[path = "updating_agreement/session_lateness.rs"]
mod session_lateness;

const DDL: &str = "CREATE TABLE t (k BIGINT, g BIGINT, v BIGINT, s VARCHAR)";

/// `inserts` INSERT statements of up to `rows` rows: NULLs in every column.
fn inserts(rng: &mut Lcg, inserts: usize, rows: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(inserts);
    let maybe = |rng: &mut Lcg, v: String| {
        if rng.below(15) == 0 {
            "NULL".to_string()
        } else {
            v
        }
    };
    for _ in 0..inserts {
        let mut sql = String::from("INSERT INTO t VALUES ");
        let n = 1 + rng.below(rows as u64);
        for i in 0..n {
            let (k, g, v, s) = (rng.below(12), rng.below(3), rng.below(100), rng.below(20));
            let k = maybe(rng, k.to_string());
            let g = maybe(rng, g.to_string());
            let v = maybe(rng, v.to_string());
            let s = maybe(rng, format!("'s{s}'"));
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(sql, "{sep}({k}, {g}, {v}, {s})");
        }
        out.push(sql);
    }
    out
}

const AGGREGATES: &[&str] = &[
    "COUNT(*)",
    "COUNT(v)",
    "SUM(v)",
    "MIN(v)",
    "MAX(v)",
    "ROUND(AVG(v), 6)",
    "COUNT(DISTINCT v % 7)",
    "MIN(s)",
    "MAX(s)",
    "SUM(v) FILTER (WHERE v > 50)",
    "COUNT(*) FILTER (WHERE s < 's5')",
    "ROUND(STDDEV(v), 6)",
];

/// A random query over `t`, the same text for both engines.
fn query(rng: &mut Lcg) -> String {
    let keys = rng.pick(&["k", "k, g", "g", "v % 4", ""]);
    let n_aggs = 1 + rng.below(4) as usize;
    let mut aggs: Vec<String> = (0..n_aggs)
        .map(|i| format!("{} AS a{i}", rng.pick(AGGREGATES)))
        .collect();
    aggs.insert(0, "COUNT(*) AS c".to_string());
    let select_keys = if keys.is_empty() {
        String::new()
    } else {
        let named: Vec<String> = keys
            .split(", ")
            .enumerate()
            .map(|(i, k)| format!("{k} AS k{i}"))
            .collect();
        named.join(", ") + ", "
    };
    let group = if keys.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {keys}")
    };
    let having = match rng.below(4) {
        0 => " HAVING COUNT(*) > 3".to_string(),
        1 if !keys.is_empty() => " HAVING MAX(v) < 80".to_string(),
        _ => String::new(),
    };
    let inner = format!(
        "SELECT {select_keys}{} FROM t{group}{having}",
        aggs.join(", ")
    );
    // Top-N ordered by every column, so only equal rows tie (and equal
    // rows give equal results whichever ranks first).
    let partition = rng.pick(&["k", "g", "k, g", ""]);
    let over = if partition.is_empty() {
        String::new()
    } else {
        format!("PARTITION BY {partition} ")
    };
    let dir = rng.pick(&["DESC", "ASC"]);
    let n = 1 + rng.below(3);
    let kind = rng.pick(&["INNER", "LEFT", "RIGHT", "FULL"]);
    let cut = rng.below(4);
    match rng.below(12) {
        // Joins over updating inputs: a count per key joined back to the
        // rows, and two aggregates joined on their keys.
        9 => format!(
            "SELECT a.k, a.v, b.c, b.m FROM t a {kind} JOIN (SELECT k AS k0, COUNT(*) AS c, \
             MAX(v) AS m FROM t GROUP BY k) b ON a.k = b.k0 AND b.c > {cut}"
        ),
        10 => format!(
            "SELECT x.k0, x.c, y.m FROM (SELECT k AS k0, COUNT(*) AS c FROM t GROUP BY k) x \
             {kind} JOIN (SELECT k AS k1, MAX(v) AS m FROM t WHERE g = {} GROUP BY k) y \
             ON x.k0 = y.k1",
            rng.below(3)
        ),
        // Semi and anti joins, correlated or over an updating subquery.
        11 => match rng.below(3) {
            0 => format!(
                "SELECT k, v, s FROM t a WHERE {} (SELECT 1 FROM t b WHERE b.k = a.k \
                 AND b.v > a.v + {})",
                rng.pick(&["EXISTS", "NOT EXISTS"]),
                rng.below(30)
            ),
            1 => format!(
                "SELECT k, g, v FROM t WHERE k IN (SELECT k FROM t GROUP BY k \
                 HAVING COUNT(*) > {cut})"
            ),
            _ => format!(
                "SELECT g, COUNT(*) FROM t a WHERE NOT EXISTS (SELECT 1 FROM t b \
                 WHERE b.g = a.g AND b.v = a.v + {cut}) GROUP BY g"
            ),
        },
        // Self-joins: every pair once, NULL keys never matching.
        7 => format!(
            "SELECT a.k, a.v, b.v, b.s FROM t a {} JOIN t b ON a.k = b.k AND a.g = b.g \
             AND a.v < b.v + {}",
            rng.pick(&["INNER", "LEFT", "RIGHT", "FULL"]),
            rng.below(20)
        ),
        8 => format!(
            "SELECT a.g, COUNT(*), SUM(b.v), COUNT(b.k) FROM t a {} JOIN t b ON a.k = b.k \
             AND b.v > {} GROUP BY a.g",
            rng.pick(&["INNER", "LEFT"]),
            rng.below(60)
        ),
        5 => format!(
            "SELECT k, g, v, s, rn FROM (SELECT *, ROW_NUMBER() OVER ({over}ORDER BY v {dir}, s, k, g) \
             AS rn FROM t) WHERE rn <= {n}"
        ),
        6 => format!(
            "SELECT k, g, v, s FROM (SELECT *, ROW_NUMBER() OVER ({over}ORDER BY s {dir}, v, k, g) \
             AS rn FROM t) WHERE rn = 1 AND v > 10"
        ),
        // An aggregate over the updating result: it retracts.
        0 => format!(
            "SELECT c % 5 AS b, COUNT(*), SUM(c), MIN(c), MAX(c), COUNT(DISTINCT c) \
             FROM ({inner}) GROUP BY c % 5"
        ),
        // A global aggregate over a result that may be empty: as in
        // Flink, a streaming global aggregate has no row while it has no
        // input rows (batch SQL gives one row of COUNT 0), so both sides
        // drop that row.
        1 => format!("SELECT COUNT(*), SUM(c), MAX(c) FROM ({inner}) HAVING COUNT(*) > 0"),
        // A filter over it: updates become deletes and inserts.
        2 => format!("SELECT * FROM ({inner}) WHERE c BETWEEN 2 AND 9"),
        3 => "SELECT DISTINCT g, v % 3 FROM t".to_string(),
        // A Top-N over the updating result (a retractable rank), ordered
        // by every column so only equal rows tie.
        4 if !keys.is_empty() => {
            let n_keys = keys.split(", ").count();
            let mut order: Vec<String> = vec!["c DESC".into()];
            order.extend((0..n_aggs).map(|i| format!("a{i}")));
            order.extend((0..n_keys).map(|i| format!("k{i}")));
            let over = if n_keys > 1 { "PARTITION BY k0 " } else { "" };
            format!(
                "SELECT * FROM (SELECT *, ROW_NUMBER() OVER ({over}ORDER BY {}) AS rn \
                 FROM ({inner})) WHERE rn <= {n}",
                order.join(", ")
            )
        }
        _ => inner,
    }
}

#[tokio::test]
async fn updating_queries_fold_to_the_batch_answer() {
    // More seeds for a long run: SLUICE_UPDATING_SEEDS=40.
    let seeds = std::env::var("SLUICE_UPDATING_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4u64);
    for seed in 1..=seeds {
        let mut rng = Lcg(seed * 7919);
        let statements = inserts(&mut rng, 30, 25);
        for _ in 0..12 {
            let q = query(&mut rng);
            let expected = batch(&[DDL], &statements, &q).await;
            for parallelism in [1, 2] {
                let (got, _) = streaming(&[DDL], &statements, &q, parallelism).await;
                assert_eq!(got, expected, "seed {seed}, parallelism {parallelism}: {q}");
            }
        }
    }
}
