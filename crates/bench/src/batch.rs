//! The "no streaming overhead" reference: each query's result computed by
//! DataFusion in batch over the same bids held in memory. Windows are
//! computed with integer arithmetic on the millisecond timestamp; HOP joins
//! each bid with its five 2 s panes.

use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::proc_stats::cpu_seconds;

/// The batch form of a benchmark query.
pub fn batch_sql(query: &str) -> Option<&'static str> {
    Some(match query {
        "q0" => "SELECT auction, bidder, price, datetime, extra FROM bid",
        "q1" => "SELECT auction, bidder, 0.908 * price AS price, datetime, extra FROM bid",
        "q2" => "SELECT auction, price FROM bid WHERE auction % 123 = 0",
        "q5" => {
            "SELECT auction, CAST(datetime AS BIGINT) / 2000 * 2000 - k.i * 2000 AS ws, COUNT(*) \
             FROM bid CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS k(i) GROUP BY 1, 2"
        }
        "q7" => "SELECT CAST(datetime AS BIGINT) / 10000 AS w, MAX(price) FROM bid GROUP BY 1",
        "tumble" => {
            "SELECT auction, CAST(datetime AS BIGINT) / 10000 AS w, COUNT(*), SUM(price), MAX(price) \
             FROM bid GROUP BY 1, 2"
        }
        "hop" => {
            "SELECT auction, CAST(datetime AS BIGINT) / 2000 * 2000 - k.i * 2000 AS ws, \
             COUNT(*), SUM(price), MAX(price) \
             FROM bid CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS k(i) GROUP BY 1, 2"
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

/// Run `sql` over `bids` (in memory) and return (rows out, CPU seconds,
/// wall seconds) of the query alone.
pub async fn run(
    bids: Vec<RecordBatch>,
    sql: &str,
    partitions: usize,
) -> anyhow::Result<(usize, f64, f64)> {
    let schema = bids
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| anyhow::anyhow!("no bids to run the batch reference over"))?;
    let config = SessionConfig::new().with_target_partitions(partitions);
    let ctx = SessionContext::new_with_config(config);
    // One partition per core, so the scan is as parallel as the query.
    let per = bids.len().div_ceil(partitions.max(1));
    let chunks: Vec<Vec<RecordBatch>> = bids.chunks(per.max(1)).map(<[_]>::to_vec).collect();
    ctx.register_table("bid", Arc::new(MemTable::try_new(schema, chunks)?))?;
    let cpu = cpu_seconds();
    let started = Instant::now();
    let out = ctx.sql(sql).await?.collect().await?;
    let rows = out.iter().map(RecordBatch::num_rows).sum();
    Ok((rows, cpu_seconds() - cpu, started.elapsed().as_secs_f64()))
}
