//! Nexmark q5's and q7's window aggregations (and q2) over the generator
//! agree with DataFusion computing the same results in batch over the same
//! bids.

use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use sluice_engine::{format, Session, StatementResult};

const BID: &str = "CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, \
    dateTime TIMESTAMP(3), WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND) \
    WITH ('connector' = 'nexmark', 'nexmark.table.type' = 'bid', 'nexmark.event.num' = '300000')";

async fn streaming(session: &Session, sql: &str) -> Vec<arrow::record_batch::RecordBatch> {
    let stmts = session.parse(sql, None).expect("parses");
    let Ok(StatementResult::Query(h)) = session.execute(&stmts[0]).await else {
        panic!("not a query: {sql}");
    };
    let (batches, summary) = h.collect().await.expect("runs");
    assert_eq!(summary.late_rows, 0);
    batches
}

fn sorted(batches: &[arrow::record_batch::RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = format::rows_as_strings(batches).expect("formats");
    rows.sort();
    rows
}

/// The bids of `bid` as DataFusion table `b` (auction, price, ms).
async fn batch_reference(session: &Session) -> SessionContext {
    let bids = streaming(
        session,
        "SELECT auction, price, CAST(dateTime AS BIGINT) AS ms FROM bid",
    )
    .await;
    let ctx = SessionContext::new();
    let schema = bids[0].schema();
    ctx.register_table(
        "b",
        Arc::new(MemTable::try_new(schema, vec![bids]).expect("mem")),
    )
    .expect("register");
    ctx
}

/// A batch query over `b`: sorted rows.
async fn batch(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    let out = ctx
        .sql(sql)
        .await
        .expect("plans")
        .collect()
        .await
        .expect("runs");
    sorted(&out)
}

#[tokio::test]
async fn window_aggregates_agree_with_batch() {
    let session = Session::new();
    let stmts = session.parse(BID, None).expect("parses");
    session.execute(&stmts[0]).await.expect("creates");
    let ctx = batch_reference(&session).await;
    let cases = [
        (
            "SELECT auction, CAST(window_start AS BIGINT), COUNT(*) \
             FROM HOP(bid, dateTime, INTERVAL '2' SECOND, INTERVAL '10' SECOND) \
             GROUP BY auction, window_start, window_end",
            "SELECT auction, ms / 2000 * 2000 - k.i * 2000, COUNT(*) \
             FROM b CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS k(i) GROUP BY 1, 2",
        ),
        (
            "SELECT CAST(window_start AS BIGINT), MAX(price) \
             FROM TUMBLE(bid, dateTime, INTERVAL '10' SECOND) GROUP BY window_start, window_end",
            "SELECT ms / 10000 * 10000, MAX(price) FROM b GROUP BY 1",
        ),
        (
            "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0",
            "SELECT auction, price FROM b WHERE auction % 123 = 0",
        ),
    ];
    for (stream_sql, batch_sql) in cases {
        let want = batch(&ctx, batch_sql).await;
        assert!(!want.is_empty(), "{batch_sql}");
        // Hash-shuffled instances and parallel generator chunks give the
        // same rows as one instance.
        for parallelism in ["1", "3"] {
            session
                .settings()
                .set("parallelism", parallelism)
                .expect("valid setting");
            let got = sorted(&streaming(&session, stream_sql).await);
            assert_eq!(got, want, "{stream_sql} at parallelism {parallelism}");
        }
    }
}

/// At a given parallelism the gathered output is the same, row for row, on
/// every run: instances' segments are merged by watermark, then instance.
/// (And it is the right output: batch's rows, in some order.)
#[tokio::test]
async fn parallel_output_order_is_repeatable() {
    let session = Session::new();
    session
        .settings()
        .set("parallelism", "3")
        .expect("valid setting");
    let stmts = session.parse(BID, None).expect("parses");
    session.execute(&stmts[0]).await.expect("creates");
    let sql = "SELECT auction, CAST(window_start AS BIGINT), COUNT(*), MAX(price) \
               FROM HOP(bid, dateTime, INTERVAL '2' SECOND, INTERVAL '10' SECOND) \
               GROUP BY auction, window_start, window_end";
    let first = format::rows_as_strings(&streaming(&session, sql).await).expect("formats");
    let mut rows = first.clone();
    rows.sort();
    let ctx = batch_reference(&session).await;
    let want = batch(
        &ctx,
        "SELECT auction, ms / 2000 * 2000 - k.i * 2000, COUNT(*), MAX(price) \
         FROM b CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS k(i) GROUP BY 1, 2",
    )
    .await;
    assert_eq!(rows, want, "the rows of batch");
    for _ in 0..3 {
        let again = format::rows_as_strings(&streaming(&session, sql).await).expect("formats");
        assert_eq!(again, first, "same rows in the same order");
    }
}
