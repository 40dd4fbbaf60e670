//! Statements run through a session, for the engine API tests.

use sluice_engine::{format, Session, StatementResult};

/// Run one statement.
pub async fn run(session: &Session, sql: &str) -> StatementResult {
    let stmts = session.parse(sql, None).expect("parses");
    assert_eq!(stmts.len(), 1, "one statement: {sql}");
    session.execute(&stmts[0]).await.expect("runs")
}

/// A statement's rows as strings (a query collected to its end).
pub async fn cells(session: &Session, sql: &str) -> Vec<Vec<String>> {
    match run(session, sql).await {
        StatementResult::Rows(_, batches) => format::rows_as_strings(&batches).expect("formats"),
        StatementResult::Query(h) => {
            let (batches, _) = h.collect().await.expect("query runs");
            format::rows_as_strings(&batches).expect("formats")
        }
        _ => panic!("no rows from {sql}"),
    }
}

/// The last value of the global aggregate `sql` (a streaming aggregate
/// updates per batch read: its last value covers them all).
pub async fn last_value(session: &Session, sql: &str) -> usize {
    let values = cells(session, sql).await;
    values
        .last()
        .and_then(|r| r[0].parse().ok())
        .unwrap_or_default()
}

/// A session checkpointing every `interval` into `dir` as job `name`, with
/// paced Nexmark `bids` (40,000 events over 2 s) and the table `ddl`.
pub async fn paced_session(
    dir: &std::path::Path,
    interval: &str,
    name: &str,
    ddl: &str,
) -> Session {
    let session = Session::new();
    for sql in [
        format!("SET 'execution.checkpointing.interval' = '{interval}'"),
        format!(
            "SET 'state.checkpoints.dir' = '{}/checkpoints'",
            dir.display()
        ),
        format!("SET 'pipeline.name' = '{name}'"),
        "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, \
         url STRING, datetime TIMESTAMP(3), extra STRING) WITH ('connector' = 'nexmark', \
         'nexmark.table.type' = 'bid', 'nexmark.event.num' = '40000', \
         'nexmark.use.real.time' = 'true', 'nexmark.min.event.gap.in.ns' = '50000')"
            .to_string(),
        ddl.to_string(),
    ] {
        run(&session, &sql).await;
    }
    session
}
