//! SHOW CREATE TABLE and background jobs through the engine API.

use std::path::PathBuf;

use sluice_engine::jobs::JobState;
use sluice_engine::{Session, StatementResult};

mod sessions;
use sessions::{cells, last_value, paced_session, run};

#[tokio::test]
async fn show_create_table_prints_the_definition() {
    let session = Session::new();
    run(
        &session,
        "CREATE TABLE bids (id BIGINT NOT NULL, name VARCHAR(10), ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '5' SECOND, PRIMARY KEY (id) NOT ENFORCED) \
         WITH ('connector' = 'filesystem', 'path' = '../../sql-tests/data/bids.csv', 'format' = 'csv')",
    )
    .await;
    let rows = cells(&session, "SHOW CREATE TABLE bids").await;
    assert_eq!(
        rows,
        vec![vec!["CREATE TABLE `bids` (\n  \
              `id` BIGINT NOT NULL,\n  \
              `name` VARCHAR(10),\n  \
              `ts` TIMESTAMP(3),\n  \
              WATERMARK FOR `ts` AS ts - INTERVAL '5' SECOND,\n  \
              PRIMARY KEY (id) NOT ENFORCED\n\
              ) WITH (\n  \
              'connector' = 'filesystem',\n  \
              'format' = 'csv',\n  \
              'path' = '../../sql-tests/data/bids.csv'\n\
              )"
        .to_string()]]
    );
}

#[tokio::test]
async fn show_create_table_prints_computed_columns() {
    let session = Session::new();
    run(
        &session,
        "CREATE TABLE orders (price DOUBLE, qty INT, total AS price * qty, \
         ts AS TO_TIMESTAMP_LTZ(qty, 3), WATERMARK FOR ts AS ts)",
    )
    .await;
    let rows = cells(&session, "SHOW CREATE TABLE orders").await;
    assert_eq!(
        rows,
        vec![vec!["CREATE TABLE `orders` (\n  \
              `price` DOUBLE,\n  \
              `qty` INT,\n  \
              `total` AS price * qty,\n  \
              `ts` AS TO_TIMESTAMP_LTZ(qty, 3),\n  \
              WATERMARK FOR `ts` AS ts\n\
              ) WITH (\n  \
              'connector' = 'memory'\n\
              )"
        .to_string()]]
    );
}

#[tokio::test]
async fn a_background_job_runs_to_its_end_and_is_listed() {
    let session = Session::new();
    run(&session, "CREATE TABLE src (a INT)").await;
    run(&session, "INSERT INTO src VALUES (1), (2), (3)")
        .await
        .wait_insert()
        .await;
    run(&session, "CREATE TABLE dst (a INT)").await;
    let text = "INSERT INTO dst SELECT a * 10 FROM src";
    let StatementResult::Insert(handle) = run(&session, text).await else {
        panic!("an insert");
    };
    let id = session.jobs().submit(text.to_string(), handle);
    assert_eq!(id, 1);
    // Wait for the job's task to end (an event, not a poll).
    let waited = session.jobs().wait(id).await.expect("job 1 exists");
    assert_eq!(waited.state, JobState::Finished);
    assert_eq!(waited.summary.rows_in, 3);
    assert_eq!(waited.summary.rows_out, 3);
    assert_eq!(waited.statement, text);
    // Waiting is not reporting: the shell's notice still comes, once.
    let ended = session.jobs().take_ended();
    assert_eq!(ended.len(), 1, "the job ended and is reported once");
    assert_eq!(ended[0].state, JobState::Finished);
    assert_eq!(ended[0].summary.rows_out, 3);
    assert!(session.jobs().take_ended().is_empty());

    let jobs = cells(&session, "SHOW JOBS").await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0][0], "1");
    assert_eq!(jobs[0][1], "FINISHED");
    assert_eq!(jobs[0][3], "3", "rows in");
    assert_eq!(jobs[0][4], "3", "rows out");
    assert_eq!(jobs[0][6], "0 keys, 0 B", "state");
    assert_eq!(jobs[0][8], "-", "no checkpoints");
    assert_eq!(jobs[0][9], text);

    let rows = cells(&session, "SELECT a FROM dst").await;
    assert_eq!(rows, vec![vec!["10"], vec!["20"], vec!["30"]]);

    let stmts = session.parse("STOP JOB 1", None).expect("parses");
    let err = session.execute(&stmts[0]).await.err().expect("not running");
    assert!(
        err.to_string()
            .contains("job 1 is not running: it is FINISHED"),
        "{err}"
    );
}

trait WaitInsert {
    async fn wait_insert(self);
}

impl WaitInsert for StatementResult {
    async fn wait_insert(self) {
        match self {
            StatementResult::Insert(h) => {
                h.wait().await.expect("insert runs");
            }
            _ => panic!("not an insert"),
        }
    }
}

#[tokio::test]
async fn kafka_secrets_never_show() {
    let session = Session::new();
    run(
        &session,
        "CREATE TABLE k (a INT) WITH ('connector' = 'kafka', 'topic' = 't', \
         'properties.bootstrap.servers' = '127.0.0.1:1', 'format' = 'json', \
         'properties.security.protocol' = 'SASL_PLAINTEXT', 'properties.sasl.mechanism' = 'PLAIN', \
         'properties.sasl.username' = 'alice', 'properties.sasl.password' = 'hunter2', \
         'scan.bounded.mode' = 'latest-offset')",
    )
    .await;
    let create = cells(&session, "SHOW CREATE TABLE k").await;
    let text = &create[0][0];
    assert!(
        text.contains("'properties.sasl.password' = '******'"),
        "{text}"
    );
    assert!(
        text.contains("'properties.sasl.username' = 'alice'"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    let plan = cells(&session, "EXPLAIN SELECT a FROM k").await;
    assert!(!format!("{plan:?}").contains("hunter2"), "{plan:?}");
    // The broker cannot be reached: the error says so, without the secret.
    let stmts = session.parse("SELECT a FROM k", None).expect("parses");
    let StatementResult::Query(h) = session.execute(&stmts[0]).await.expect("plans") else {
        panic!("a query");
    };
    let err = h.collect().await.expect_err("no broker there");
    let msg = err.to_string();
    assert!(msg.contains("cannot reach Kafka at 127.0.0.1:1"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn waiting_on_a_job_returns_when_it_is_stopped() {
    let session = Session::new();
    run(
        &session,
        "CREATE TABLE g (a INT) WITH ('connector' = 'datagen', 'rows-per-second' = '10')",
    )
    .await;
    run(
        &session,
        "CREATE TABLE sink (a INT) WITH ('connector' = 'blackhole')",
    )
    .await;
    let text = "INSERT INTO sink SELECT a FROM g";
    let StatementResult::Insert(handle) = run(&session, text).await else {
        panic!("an insert");
    };
    let id = session.jobs().submit(text.to_string(), handle);
    let jobs = session.jobs();
    // The unbounded job never ends by itself: the wait returns because
    // the job is stopped while it waits.
    let (waited, ()) = tokio::join!(jobs.wait(id), async {
        jobs.stop(id).expect("the job is running");
    });
    let waited = waited.expect("job exists");
    assert_eq!(waited.state, JobState::Stopped);
    assert!(!waited.bounded);
    assert!(
        jobs.take_ended().is_empty(),
        "a stopped job is not reported as ended by itself"
    );
    // Waiting again on an ended job returns at once.
    assert_eq!(
        jobs.wait(id).await.expect("job exists").state,
        JobState::Stopped
    );
    let err = jobs.wait(99).await.expect_err("no job 99");
    assert!(err.to_string().contains("there is no job 99"), "{err}");
}

#[tokio::test]
async fn mini_batches_of_an_unbounded_input_end_on_time() {
    let session = Session::new();
    run(
        &session,
        "CREATE TABLE g (a INT) WITH ('connector' = 'datagen', 'rows-per-second' = '200')",
    )
    .await;
    run(
        &session,
        "SET 'table.exec.mini-batch.allow-latency' = '300 ms'",
    )
    .await;
    let StatementResult::Query(mut h) = run(&session, "SELECT COUNT(*) FROM g").await else {
        panic!("a query");
    };
    // The input never reaches the size limit (100,000 rows): only the
    // latency ends a mini-batch, each one net change of the one group.
    for _ in 0..3 {
        let next = tokio::time::timeout(std::time::Duration::from_secs(30), h.next_batch());
        let batch = next
            .await
            .expect("a mini-batch ends within its latency")
            .expect("runs")
            .expect("unbounded");
        assert!(batch.num_rows() <= 2, "one change: {batch:?}");
    }
}

/// EXPLAIN VERBOSE of `query` in a fresh session at `parallelism`.
async fn verbose_plan(query: &str, parallelism: usize) -> Vec<String> {
    let session = Session::new();
    session
        .settings()
        .set("parallelism", &parallelism.to_string())
        .expect("setting");
    run(&session, "CREATE TABLE c (a INT, b STRING)").await;
    cells(&session, &format!("EXPLAIN VERBOSE {query}"))
        .await
        .into_iter()
        .map(|r| r.join(" "))
        .collect()
}

#[tokio::test]
async fn the_same_query_gets_the_same_plan_ids_and_fingerprint() {
    let q = "SELECT b, COUNT(*) FROM c WHERE a > 1 GROUP BY b";
    let first = verbose_plan(q, 2).await;
    assert_eq!(first, verbose_plan(q, 2).await, "planned twice alike");
    assert!(first[0].starts_with("plan fingerprint "), "{first:?}");
    // Ids: inputs first, the root last.
    assert!(first[1].starts_with("#3 Stateless"), "{first:?}");
    assert!(first
        .iter()
        .any(|l| l.trim_start().starts_with("#0 MemorySource")));
    assert!(first.iter().any(|l| l.contains("columns: b STRING")));
    // Another parallelism or another query is another plan.
    assert_ne!(first[0], verbose_plan(q, 1).await[0]);
    let other = verbose_plan("SELECT a, COUNT(*) FROM c GROUP BY a", 2).await;
    assert_ne!(first[0], other[0]);
}

/// Run `insert` as a background job, stop it with a savepoint after `ms`;
/// the savepoint's id and directory.
async fn stopped_with_savepoint(session: &Session, insert: &str, ms: u64) -> (u64, PathBuf) {
    let StatementResult::Insert(h) = run(session, insert).await else {
        panic!("not an insert");
    };
    let id = session.jobs().submit(insert.to_string(), h);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    let stopped = session.jobs().stop_with_savepoint(id).await;
    let stopped = stopped.expect("savepoint");
    assert_eq!(session.jobs().list()[0].state, JobState::Stopped);
    stopped
}

/// Start `insert` again and check it resumes from `checkpoint`; wait for
/// its end.
async fn resumed(session: &Session, insert: &str, checkpoint: u64) {
    let StatementResult::Insert(h) = run(session, insert).await else {
        panic!("not an insert");
    };
    let notice = h.notice().unwrap_or_default().to_string();
    assert!(
        notice.contains(&format!("resumes from checkpoint {checkpoint}")),
        "{notice}"
    );
    h.wait().await.expect("the rest runs");
}

/// `STOP JOB n WITH SAVEPOINT` takes a checkpoint, stops the job, and the
/// same INSERT started again resumes from it: its committed output is
/// every generated event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_stops_a_job_that_then_resumes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let ddl = format!(
        "CREATE TABLE out (auction BIGINT, price BIGINT) WITH ('connector' = \
         'filesystem', 'path' = '{d}/out', 'format' = 'csv')"
    );
    let session = paced_session(dir.path(), "1 h", "paced", &ddl).await;
    let insert = "INSERT INTO out SELECT auction, price FROM bids";
    let (checkpoint, path) = stopped_with_savepoint(&session, insert, 600).await;
    assert!(path.join("_metadata").exists(), "{}", path.display());
    // The rows after the savepoint are not visible, and come again.
    resumed(&session, insert, checkpoint).await;
    let mut rows = 0;
    for e in std::fs::read_dir(dir.path().join("out"))
        .expect("out")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        assert!(!name.starts_with('.'), "left in progress: {name}");
        let text = std::fs::read_to_string(e.path()).expect("reads");
        rows += text.lines().count() - 1;
    }
    assert_eq!(rows, 36_800, "every bid of 40,000 events once");
}

/// The rows of memory table `table` now.
async fn rows_of(session: &Session, table: &str) -> usize {
    last_value(session, &format!("SELECT COUNT(*) FROM {table}")).await
}

/// A memory table written by a checkpointing job: rows become visible with
/// each checkpoint; `STOP JOB n WITH SAVEPOINT` returns once the savepoint's
/// rows are in the table, and the INSERT started again in the same session
/// resumes from it, so the table ends with every bid once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_table_job_resumes_in_the_same_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ddl = "CREATE TABLE kept (auction BIGINT, price BIGINT)";
    let session = paced_session(dir.path(), "200 ms", "to-memory", ddl).await;
    let insert = "INSERT INTO kept SELECT auction, price FROM bids";
    let (checkpoint, _) = stopped_with_savepoint(&session, insert, 700).await;
    let at_stop: usize = rows_of(&session, "kept").await;
    assert!(
        at_stop > 0 && at_stop < 36_800,
        "{at_stop} rows at the stop"
    );
    resumed(&session, insert, checkpoint).await;
    assert_eq!(
        rows_of(&session, "kept").await,
        36_800,
        "every bid of 40,000 events once"
    );
}

/// A materialized view over an unbounded stream is kept up to date by a
/// background job: reads see it grow (every read a whole number of
/// change batches: each auction's count is its bids so far), SHOW
/// MATERIALIZED VIEWS names the job, and DROP MATERIALIZED VIEW stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_materialized_view_is_kept_up_to_date() {
    let session = Session::new();
    run(
        &session,
        "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, \
         url STRING, datetime TIMESTAMP(3), extra STRING) WITH ('connector' = 'nexmark', \
         'nexmark.table.type' = 'bid', 'nexmark.use.real.time' = 'true', \
         'nexmark.min.event.gap.in.ns' = '100000')",
    )
    .await;
    let create = "CREATE MATERIALIZED VIEW counts AS \
                  SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction";
    let StatementResult::Insert(h) = run(&session, create).await else {
        panic!("a job");
    };
    assert!(h
        .notice()
        .unwrap_or_default()
        .contains("Materialized view 'counts' created"));
    let id = session.jobs().submit(create.to_string(), h);
    // Read until it has grown twice (changes come a batch at a time).
    let mut seen = Vec::new();
    let mut grown: Vec<usize> = Vec::new();
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        seen.push(last_value(&session, "SELECT SUM(n) FROM counts").await);
        grown = seen.iter().copied().filter(|&n| n > 0).collect();
        grown.dedup();
        if grown.len() >= 2 {
            break;
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]) && grown.len() >= 2,
        "{seen:?}"
    );
    let shown = cells(&session, "SHOW MATERIALIZED VIEWS").await;
    assert_eq!(shown[0][0], "counts");
    assert_eq!(shown[0][1], format!("job {id}: RUNNING"));
    run(&session, "DROP MATERIALIZED VIEW counts").await;
    let job = session.jobs().wait(id).await.expect("listed");
    assert_eq!(job.state, JobState::Stopped);
    assert!(cells(&session, "SHOW MATERIALIZED VIEWS").await.is_empty());
}

/// A lookup join (an unbounded stream with a bounded table) checkpoints
/// without waiting forever for its paused stream: the table is read again
/// when the job resumes, the stream goes on from its checkpointed position,
/// and every committed row is joined with its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_join_checkpoints_and_resumes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let mut names = String::from("id,name\n");
    for id in 1000..2000 {
        names.push_str(&format!("{id},n{id}\n"));
    }
    std::fs::write(dir.path().join("names.csv"), names).expect("writes");
    let session = Session::new();
    for sql in [
        "SET 'execution.checkpointing.interval' = '100 ms'".to_string(),
        format!("SET 'state.checkpoints.dir' = '{d}/checkpoints'"),
        "SET 'pipeline.name' = 'lookup'".to_string(),
        "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, \
         url STRING, datetime TIMESTAMP(3), extra STRING) WITH ('connector' = 'nexmark', \
         'nexmark.table.type' = 'bid', 'nexmark.use.real.time' = 'true', \
         'nexmark.min.event.gap.in.ns' = '100000')"
            .to_string(),
        format!(
            "CREATE TABLE names (id BIGINT, name STRING) WITH ('connector' = 'filesystem', \
             'path' = '{d}/names.csv', 'format' = 'csv')"
        ),
        format!(
            "CREATE TABLE out (auction BIGINT, name STRING) WITH ('connector' = \
             'filesystem', 'path' = '{d}/out', 'format' = 'csv')"
        ),
    ] {
        run(&session, &sql).await;
    }
    let insert = "INSERT INTO out SELECT b.auction, n.name FROM bids b JOIN names n \
                  ON b.auction = n.id";
    let explain = cells(&session, &format!("EXPLAIN {insert}")).await;
    assert!(
        explain.iter().flatten().any(|l| l.contains("LookupJoin")),
        "{explain:?}"
    );
    let mut last = 0;
    for round in 0..2 {
        let StatementResult::Insert(h) = run(&session, insert).await else {
            panic!("not an insert");
        };
        if round > 0 {
            let notice = h.notice().unwrap_or_default().to_string();
            assert!(notice.contains("resumes from checkpoint"), "{notice}");
        }
        let id = session.jobs().submit(insert.to_string(), h);
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let (checkpoint, _) = session
            .jobs()
            .stop_with_savepoint(id)
            .await
            .expect("savepoint");
        assert!(
            checkpoint > last,
            "checkpoints go on: {checkpoint} after {last}"
        );
        last = checkpoint;
    }
    let mut rows = 0;
    for e in std::fs::read_dir(dir.path().join("out"))
        .expect("out")
        .flatten()
    {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).expect("reads");
        for line in text.lines().skip(1) {
            assert!(line.contains(",n1"), "joined with its name: {line}");
            rows += 1;
        }
    }
    assert!(rows > 0, "rows were committed");
}
