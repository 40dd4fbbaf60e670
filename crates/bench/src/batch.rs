//! The "no streaming overhead" reference: each query's result computed by
//! DataFusion in batch over the same bids held in memory. Windows are
//! computed with integer arithmetic on the millisecond timestamp; HOP joins
//! each bid with its five 2 s panes. Join queries read the person and
//! auction tables of the same events.

use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::proc_stats::cpu_seconds;

/// The tables a query reads.
pub fn tables(query: &str) -> &'static [&'static str] {
    match query {
        "q3" | "q8" => &["person", "auction"],
        "q4" | "q9" | "q20" => &["auction", "bid"],
        _ => &["bid"],
    }
}

/// The batch form of a benchmark query.
pub fn batch_sql(query: &str) -> Option<&'static str> {
    Some(match query {
        "q3" => {
            "SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P \
             ON A.seller = P.id WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')"
        }
        "q4" => {
            "SELECT Q.category, AVG(Q.final) FROM (SELECT MAX(B.price) AS final, A.category \
             FROM auction A, bid B WHERE A.id = B.auction AND B.datetime BETWEEN A.datetime \
             AND A.expires GROUP BY A.id, A.category) Q GROUP BY Q.category"
        }
        "q5" => {
            "WITH c AS (SELECT auction, CAST(datetime AS BIGINT) / 2000 * 2000 - k.i * 2000 AS ws, \
             COUNT(*) AS num FROM bid CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS k(i) \
             GROUP BY 1, 2), m AS (SELECT ws, MAX(num) AS maxn FROM c GROUP BY ws) \
             SELECT c.auction, c.num FROM c JOIN m ON c.ws = m.ws AND c.num >= m.maxn"
        }
        "q7" => {
            "WITH m AS (SELECT CAST(datetime AS BIGINT) / 10000 * 10000 + 9999 AS t, \
             MAX(price) AS maxprice FROM bid GROUP BY 1) SELECT b.auction, b.price, b.bidder, \
             b.datetime, b.extra FROM bid b JOIN m ON b.price = m.maxprice \
             WHERE CAST(b.datetime AS BIGINT) BETWEEN m.t - 10000 AND m.t"
        }
        "q8" => {
            "WITH p AS (SELECT id, name, CAST(datetime AS BIGINT) / 10000 AS w FROM person \
             GROUP BY 1, 2, 3), a AS (SELECT seller, CAST(datetime AS BIGINT) / 10000 AS w \
             FROM auction GROUP BY 1, 2) SELECT p.id, p.name, p.w FROM p JOIN a \
             ON p.id = a.seller AND p.w = a.w"
        }
        "q9" => {
            "SELECT * FROM (SELECT A.*, B.auction, B.bidder, B.price, B.datetime AS bid_datetime, \
             B.extra AS bid_extra, ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, \
             B.datetime ASC) AS rownum FROM auction A, bid B WHERE A.id = B.auction \
             AND B.datetime BETWEEN A.datetime AND A.expires) WHERE rownum <= 1"
        }
        "q20" => {
            "SELECT auction, bidder, price, channel, url, B.datetime, B.extra, itemname, \
             description, initialbid, reserve, A.datetime, expires, seller, category, A.extra \
             FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id WHERE A.category = 10"
        }
        "q0" => "SELECT auction, bidder, price, datetime, extra FROM bid",
        "q1" => "SELECT auction, bidder, 0.908 * price AS price, datetime, extra FROM bid",
        "q2" => "SELECT auction, price FROM bid WHERE auction % 123 = 0",
        "tumble" => {
            "SELECT auction, CAST(datetime AS BIGINT) / 10000 AS w, COUNT(*), SUM(price), MAX(price) \
             FROM bid GROUP BY 1, 2"
        }
        "hop" => {
            "SELECT auction, CAST(datetime AS BIGINT) / 2000 * 2000 - k.i * 2000 AS ws, \
             COUNT(*), SUM(price), MAX(price) \
             FROM bid CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS k(i) GROUP BY 1, 2"
        }
        "cumulate" => {
            "SELECT auction, CAST(datetime AS BIGINT) / 10000 * 10000 AS ws, \
             CAST(datetime AS BIGINT) / 10000 * 10000 + k.j * 2000 AS we, \
             COUNT(*), SUM(price), MAX(price) \
             FROM bid CROSS JOIN (VALUES (1), (2), (3), (4), (5)) AS k(j) \
             WHERE CAST(datetime AS BIGINT) / 10000 * 10000 + k.j * 2000 > CAST(datetime AS BIGINT) \
             GROUP BY 1, 2, 3"
        }
        // Sessions by gaps and islands: a bid more than 10 s after the
        // bidder's previous one starts a new session.
        "q11" => {
            "WITH t AS (SELECT bidder, CAST(datetime AS BIGINT) AS t FROM bid), \
             m AS (SELECT *, CASE WHEN t - LAG(t) OVER (PARTITION BY bidder ORDER BY t) <= 10000 \
             THEN 0 ELSE 1 END AS new FROM t), \
             s AS (SELECT *, SUM(new) OVER (PARTITION BY bidder ORDER BY t \
             ROWS UNBOUNDED PRECEDING) AS sid FROM m) \
             SELECT bidder, COUNT(*), MIN(t), MAX(t) + 10000 FROM s GROUP BY bidder, sid"
        }
        "over" => {
            "SELECT auction, price, datetime, AVG(price) OVER w, COUNT(*) OVER w FROM bid \
             WINDOW w AS (PARTITION BY auction ORDER BY datetime \
             RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW)"
        }
        "q15" => Q15_BATCH,
        "q16" => Q16_BATCH,
        "q17" => {
            "SELECT auction, to_char(datetime, '%Y-%m-%d') AS day, COUNT(*), \
             COUNT(*) FILTER (WHERE price < 10000), \
             COUNT(*) FILTER (WHERE price >= 10000 AND price < 1000000), \
             COUNT(*) FILTER (WHERE price >= 1000000), \
             MIN(price), MAX(price), AVG(price), SUM(price) FROM bid GROUP BY 1, 2"
        }
        "q18" => {
            "SELECT auction, bidder, price, channel, url, datetime, extra FROM \
             (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY datetime DESC) \
             AS rn FROM bid) WHERE rn <= 1"
        }
        "q19" => {
            "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) \
             AS rn FROM bid) WHERE rn <= 10"
        }
        _ => return None,
    })
}

/// q15's counts per price range, for q15 (per day) and q16 (per channel
/// and day).
macro_rules! ranges {
    () => {
        "COUNT(*), COUNT(*) FILTER (WHERE price < 10000), \
         COUNT(*) FILTER (WHERE price >= 10000 AND price < 1000000), \
         COUNT(*) FILTER (WHERE price >= 1000000), COUNT(DISTINCT bidder), \
         COUNT(DISTINCT bidder) FILTER (WHERE price < 10000), \
         COUNT(DISTINCT bidder) FILTER (WHERE price >= 10000 AND price < 1000000), \
         COUNT(DISTINCT bidder) FILTER (WHERE price >= 1000000), COUNT(DISTINCT auction), \
         COUNT(DISTINCT auction) FILTER (WHERE price < 10000), \
         COUNT(DISTINCT auction) FILTER (WHERE price >= 10000 AND price < 1000000), \
         COUNT(DISTINCT auction) FILTER (WHERE price >= 1000000)"
    };
}

const Q15_BATCH: &str = concat!(
    "SELECT to_char(datetime, '%Y-%m-%d') AS day, ",
    ranges!(),
    " FROM bid GROUP BY 1"
);

const Q16_BATCH: &str = concat!(
    "SELECT channel, to_char(datetime, '%Y-%m-%d') AS day, \
     MAX(to_char(datetime, '%H:%M')), ",
    ranges!(),
    " FROM bid GROUP BY 1, 2"
);

/// Run `sql` over `tables` (in memory) and return (rows out, CPU seconds,
/// wall seconds) of the query alone.
pub async fn run(
    tables: Vec<(&str, Vec<RecordBatch>)>,
    sql: &str,
    partitions: usize,
) -> anyhow::Result<(usize, f64, f64)> {
    let config = SessionConfig::new().with_target_partitions(partitions);
    let ctx = SessionContext::new_with_config(config);
    for (name, rows) in tables {
        let schema = rows
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| anyhow::anyhow!("no {name} rows to run the batch reference over"))?;
        // One partition per core, so the scan is as parallel as the query.
        let per = rows.len().div_ceil(partitions.max(1));
        let chunks: Vec<Vec<RecordBatch>> = rows.chunks(per.max(1)).map(<[_]>::to_vec).collect();
        ctx.register_table(name, Arc::new(MemTable::try_new(schema, chunks)?))?;
    }
    let cpu = cpu_seconds();
    let started = Instant::now();
    let out = ctx.sql(sql).await?.collect().await?;
    let rows = out.iter().map(RecordBatch::num_rows).sum();
    Ok((rows, cpu_seconds() - cpu, started.elapsed().as_secs_f64()))
}
