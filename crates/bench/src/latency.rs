//! Window-emit latency at a fixed input rate: the Nexmark generator paced
//! to real time at 100,000 events/s, TUMBLE 1 s MAX(price), watermark equal
//! to event time. A window can close once the first event at or after its
//! end has been generated, at `start + (window_end - base)`; its latency is
//! the time from then until its row reaches the query's output.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use arrow::array::AsArray;
use arrow::datatypes::TimestampMillisecondType;
use sluice_engine::{Session, StatementResult};

/// Run for `seconds` of input at `parallelism` and print p50, p99 and max
/// latency.
pub async fn run(seconds: u64, parallelism: usize) -> anyhow::Result<()> {
    let base_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let events = seconds * 100_000;
    let session = Session::new();
    session
        .settings()
        .set("parallelism", &parallelism.to_string())?;
    let ddl = format!(
        "CREATE TABLE bid (auction BIGINT, price BIGINT, dateTime TIMESTAMP(3), \
         WATERMARK FOR dateTime AS dateTime) WITH ('connector' = 'nexmark', \
         'nexmark.table.type' = 'bid', 'nexmark.event.num' = '{events}', \
         'nexmark.min.event.gap.in.ns' = '10000', 'nexmark.use.real.time' = 'true', \
         'nexmark.max.chunk.size' = '100', 'nexmark.base.time' = '{base_ms}')"
    );
    for stmt in session.parse(&ddl, None)? {
        session.execute(&stmt).await?;
    }
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
    latencies_ms.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies_ms[((latencies_ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "window-emit latency at 100000 events/s, parallelism {parallelism}, over {seconds} s \
         ({} windows): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies_ms.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
    Ok(())
}
