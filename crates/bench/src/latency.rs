//! Latency at a fixed input rate: the Nexmark generator paced to real time
//! at 100,000 events/s.
//!
//! - Window emit: TUMBLE 1 s MAX(price), watermark equal to event time. A
//!   window can close once the first event at or after its end has been
//!   generated, at `start + (window_end - base)`; its latency is the time
//!   from then until its row reaches the query's output.
//! - Into a materialized view: the view keeps the newest bid's processing
//!   time (`PROCTIME()`, the wall clock when the source read it) and the
//!   bids counted; a reader runs `SELECT` on it in a loop. Each answer's
//!   staleness is the wall-clock time of the answer minus the newest
//!   processing time it shows: the time from a change in the input to a
//!   reader seeing it.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use arrow::array::AsArray;
use arrow::datatypes::TimestampMillisecondType;
use sluice_engine::{Session, StatementResult};

/// Run for `seconds` of input at `parallelism` and print p50, p99 and max
/// latency.
pub async fn run(seconds: u64, parallelism: usize) -> anyhow::Result<()> {
    let (session, base_ms) = paced_bids(seconds, parallelism).await?;
    let query = "SELECT window_end, MAX(price) FROM TUMBLE(bid, dateTime, INTERVAL '1' SECOND) \
                 GROUP BY window_start, window_end";
    let stmts = session.parse(query, None)?;
    let started = Instant::now();
    let StatementResult::Query(mut handle) = session.execute(&stmts[0]).await? else {
        bail!("the latency query did not start");
    };
    let mut latencies_ms: Vec<f64> = Vec::new();
    while let Some(batch) = handle.next_batch().await? {
        let now_ms = started.elapsed().as_secs_f64() * 1000.0;
        let ends = batch.column(0).as_primitive::<TimestampMillisecondType>();
        for i in 0..ends.len() {
            let due_ms = (ends.value(i) - base_ms) as f64;
            // The last window closes at the end of input, not by time.
            if due_ms < (seconds * 1000) as f64 {
                latencies_ms.push(now_ms - due_ms);
            }
        }
    }
    if latencies_ms.is_empty() {
        bail!("no window closed during {seconds} s");
    }
    let what = format!("window-emit latency at 100000 events/s, parallelism {parallelism}");
    report(&what, seconds, "windows", latencies_ms);
    Ok(())
}

/// A session at `parallelism` with the paced `bid` table: `seconds` of
/// bids at 100K events/s from now; and now, in epoch milliseconds.
async fn paced_bids(seconds: u64, parallelism: usize) -> anyhow::Result<(Session, i64)> {
    let base_ms = now_ms()? as i64;
    let session = Session::new();
    session
        .settings()
        .set("parallelism", &parallelism.to_string())?;
    let events = seconds * 100_000;
    let ddl = format!(
        "CREATE TABLE bid (auction BIGINT, price BIGINT, dateTime TIMESTAMP(3), \
         pt AS PROCTIME(), WATERMARK FOR dateTime AS dateTime) WITH ('connector' = 'nexmark', \
         'nexmark.table.type' = 'bid', 'nexmark.event.num' = '{events}', \
         'nexmark.min.event.gap.in.ns' = '10000', 'nexmark.use.real.time' = 'true', \
         'nexmark.max.chunk.size' = '100', 'nexmark.base.time' = '{base_ms}')"
    );
    for stmt in session.parse(&ddl, None)? {
        session.execute(&stmt).await?;
    }
    Ok((session, base_ms))
}

/// Print p50, p99 and max of `samples` (ms).
fn report(what: &str, seconds: u64, unit: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}, over {seconds} s ({} {unit}): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
}

fn now_ms() -> anyhow::Result<f64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64() * 1000.0)
}

/// Run `seconds` of input into a materialized view at `parallelism`,
/// reading it in a loop, and print the staleness readers saw.
pub async fn run_view(seconds: u64, parallelism: usize) -> anyhow::Result<()> {
    let (session, _) = paced_bids(seconds, parallelism).await?;
    let view = "CREATE MATERIALIZED VIEW newest AS SELECT MAX(pt) AS t, COUNT(*) AS n FROM bid";
    let stmts = session.parse(view, None)?;
    let StatementResult::Insert(job) = session.execute(&stmts[0]).await? else {
        bail!("the view's job did not start");
    };
    let job = tokio::spawn(job.wait());
    let read = session.parse("SELECT t FROM newest", None)?;
    let mut staleness_ms = Vec::new();
    while !job.is_finished() {
        let StatementResult::Query(h) = session.execute(&read[0]).await? else {
            bail!("the view's SELECT did not run");
        };
        let (batches, _) = h.collect().await?;
        let seen_at = now_ms()?;
        let newest = batches
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| {
                b.column(0)
                    .as_primitive::<TimestampMillisecondType>()
                    .value(0)
            })
            .max();
        if let Some(t) = newest {
            staleness_ms.push(seen_at - t as f64);
        }
    }
    job.await??;
    if staleness_ms.is_empty() {
        bail!("no read saw a bid");
    }
    let what = format!("view latency at 100000 events/s, parallelism {parallelism}");
    report(&what, seconds, "reads", staleness_ms);
    Ok(())
}
