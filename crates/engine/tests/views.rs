//! Materialized views feeding other streaming jobs: a job reading a view
//! whose own job runs follows it (its rows, then its changes) until that
//! job ends.

use std::time::Duration;

use sluice_engine::jobs::JobState;
use sluice_engine::{Session, StatementResult};

mod sessions;
use sessions::{cells, last_value, paced_session, run};

const BIDS: &str = "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price BIGINT, \
    channel STRING, url STRING, datetime TIMESTAMP(3), extra STRING) WITH ('connector' = \
    'nexmark', 'nexmark.table.type' = 'bid', 'nexmark.use.real.time' = 'true', \
    'nexmark.min.event.gap.in.ns' = '100000')";

/// Start `sql` (a view or an INSERT) as a background job; its id.
async fn start(session: &Session, sql: &str) -> u64 {
    let StatementResult::Insert(h) = run(session, sql).await else {
        panic!("a job: {sql}");
    };
    assert!(!h.is_bounded(), "follows an unbounded view: {sql}");
    session.jobs().submit(sql.to_string(), h)
}

/// Wait until `sql`'s value has grown twice.
async fn grows(session: &Session, sql: &str) {
    let mut seen = Vec::new();
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        seen.push(last_value(session, sql).await);
        let mut grown: Vec<usize> = seen.iter().copied().filter(|&n| n > 0).collect();
        grown.dedup();
        if grown.len() >= 2 {
            return;
        }
    }
    panic!("{sql} did not grow: {seen:?}");
}

/// Stop job `id`, and wait until each job of `followers` ends by itself.
async fn stop_then_followers_end(session: &Session, id: u64, followers: &[u64]) {
    session.jobs().stop(id).expect("stops");
    for &f in followers {
        let job = tokio::time::timeout(Duration::from_secs(30), session.jobs().wait(f))
            .await
            .expect("a follower ends when its view's job does")
            .expect("listed");
        assert_eq!(job.state, JobState::Finished, "follower {f}");
    }
}

/// An updating view over an updating view: every count the first view
/// changes reaches the second as -U/+U, so once the first view's job stops
/// and the follower has read all, the totals agree exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updating_view_follows_an_updating_view() {
    let session = Session::new();
    run(&session, BIDS).await;
    let counts = start(
        &session,
        "CREATE MATERIALIZED VIEW counts AS \
         SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction",
    )
    .await;
    let per_n = start(
        &session,
        "CREATE MATERIALIZED VIEW per_n AS \
         SELECT n, COUNT(*) AS auctions FROM counts GROUP BY n",
    )
    .await;
    grows(&session, "SELECT SUM(auctions) FROM per_n").await;
    stop_then_followers_end(&session, counts, &[per_n]).await;
    let expected = cells(
        &session,
        "SELECT n, COUNT(*) FROM counts GROUP BY n ORDER BY n",
    )
    .await;
    let got = cells(&session, "SELECT n, auctions FROM per_n ORDER BY n").await;
    assert!(expected.len() > 1, "{expected:?}");
    assert_eq!(got, expected);
}

/// An append-only view followed into a memory table, and the view's rows
/// at the start are not read twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_follows_an_append_only_view() {
    let session = Session::new();
    run(&session, BIDS).await;
    run(&session, "CREATE TABLE copy (auction BIGINT, price BIGINT)").await;
    let cheap = start(
        &session,
        "CREATE MATERIALIZED VIEW cheap AS \
         SELECT auction, price FROM bids WHERE price < 1000",
    )
    .await;
    grows(&session, "SELECT COUNT(*) FROM cheap").await;
    let insert = "INSERT INTO copy SELECT * FROM cheap";
    let plan = cells(&session, &format!("EXPLAIN {insert}")).await;
    assert!(
        plan.iter()
            .flatten()
            .any(|l| l.contains("FollowView: cheap")),
        "{plan:?}"
    );
    // A SELECT reads the view as it is.
    let plan = cells(&session, "EXPLAIN SELECT * FROM cheap").await;
    assert!(
        plan.iter()
            .flatten()
            .any(|l| l.contains("MemorySource: cheap")),
        "{plan:?}"
    );
    let copy = start(&session, insert).await;
    grows(&session, "SELECT COUNT(*) FROM copy").await;
    let refused = session
        .execute(
            &session
                .parse("INSERT INTO cheap SELECT * FROM copy", None)
                .expect("parses")[0],
        )
        .await;
    let err = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("only its own query writes it"), "{err}");
    stop_then_followers_end(&session, cheap, &[copy]).await;
    let query = |t: &str| format!("SELECT auction, price FROM {t} ORDER BY auction, price");
    let expected = cells(&session, &query("cheap")).await;
    assert!(expected.len() > 10);
    assert_eq!(cells(&session, &query("copy")).await, expected);
}

/// With checkpoints on, a view's job started again in a new session (as
/// in a new process: the view's table starts empty) restores the view's
/// rows from the newest checkpoint and goes on from there: the view ends
/// with every bid counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_is_restored_from_its_checkpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let create = "CREATE MATERIALIZED VIEW counts AS \
                  SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction";
    let unused = "CREATE TABLE unused (x BIGINT)";
    let first = paced_session(dir.path(), "100 ms", "view", unused).await;
    let StatementResult::Insert(h) = run(&first, create).await else {
        panic!("a job");
    };
    let id = first.jobs().submit(create.to_string(), h);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(first.jobs().list()[0].id, id);
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = paced_session(dir.path(), "100 ms", "view", unused).await;
    let StatementResult::Insert(h) = run(&second, create).await else {
        panic!("a job");
    };
    let notice = h.notice().unwrap_or_default().to_string();
    assert!(notice.contains("resumes from checkpoint"), "{notice}");
    let restored = last_value(&second, "SELECT SUM(n) FROM counts").await;
    assert!(
        restored > 0 && restored < 36_800,
        "{restored} bids restored"
    );
    h.wait().await.expect("the rest runs");
    let total = last_value(&second, "SELECT SUM(n) FROM counts").await;
    assert_eq!(total, 36_800, "every bid of 40,000 events once");
    drop(second);
    // Its job finished: a third start restores the whole view, runs nothing.
    let third = paced_session(dir.path(), "100 ms", "view", unused).await;
    let StatementResult::Done(msg) = run(&third, create).await else {
        panic!("nothing to run");
    };
    assert!(msg.contains("restored from its checkpoint"), "{msg}");
    let total = last_value(&third, "SELECT SUM(n) FROM counts").await;
    assert_eq!(total, 36_800, "the finished view restored whole");
    assert_eq!(cells(&third, "SHOW MATERIALIZED VIEWS").await.len(), 1);
}
