//! A Kafka partition without records stops holding the watermark back after
//! `scan.watermark.idle-timeout`, so windows close on an unbounded topic.
//! Needs a broker (`SLUICE_KAFKA_BOOTSTRAP`; `scripts/test.sh` starts one).

use std::time::Duration;

use sluice_engine::{format, Session, StatementResult};
use sluice_slt::kafka::{test_broker, unique_name};

async fn run(session: &Session, sql: &str) -> StatementResult {
    let stmts = session.parse(sql, None).expect("parses");
    session.execute(&stmts[0]).await.expect("runs")
}

#[tokio::test]
async fn idle_partitions_do_not_hold_windows_open() {
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let topic = unique_name("idle");
    sluice_connectors::kafka::create_topic(&bootstrap, &topic, 2)
        .await
        .expect("topic");
    let session = Session::new();
    let table = |name: &str, extra: &str| {
        format!(
            "CREATE TABLE {name} (k INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) \
             WITH ('connector' = 'kafka', 'topic' = '{topic}', \
             'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'json'{extra})"
        )
    };
    // Everything goes to partition 0; partition 1 stays empty.
    run(&session, &table("sink", ", 'sink.partitioner' = 'fixed'")).await;
    run(
        &session,
        &table("idle", ", 'scan.watermark.idle-timeout' = '500 ms'"),
    )
    .await;
    let StatementResult::Insert(h) = run(
        &session,
        "INSERT INTO sink VALUES (1, TIMESTAMP '2024-01-01 00:00:01'), \
         (1, TIMESTAMP '2024-01-01 00:00:02'), (2, TIMESTAMP '2024-01-01 00:00:12')",
    )
    .await
    else {
        panic!("an insert");
    };
    h.wait().await.expect("written");

    let StatementResult::Query(mut q) = run(
        &session,
        "SELECT k, window_start, COUNT(*) FROM TUMBLE(idle, ts, INTERVAL '10' SECOND) \
         GROUP BY k, window_start, window_end",
    )
    .await
    else {
        panic!("a query");
    };
    // The topic is unbounded: the first window closes only because the
    // empty partition is idle (watermark 00:00:11 from partition 0).
    let batch = tokio::time::timeout(Duration::from_secs(20), q.next_batch())
        .await
        .expect("a window closes while the query runs")
        .expect("query runs")
        .expect("a batch");
    let rows = format::rows_as_strings(&[batch]).expect("formats");
    assert_eq!(rows, vec![vec!["1", "2024-01-01 00:00:00", "2"]]);
}
