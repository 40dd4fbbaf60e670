//! Late rows: the engine against Flink's rule (`rule.rs`) applied to the
//! same arrivals, over memory tables fed one INSERT per batch and over files
//! read in chunks.

use sluice_engine::{format, Session, StatementResult};

use super::rule::{self, Row, Win};
use super::{format_ms, Lcg, START_MS};

/// Every aggregate the late-row tests compare.
const AGGREGATES: &str = "COUNT(*), COUNT(price), SUM(price), MAX(price), MIN(price), \
    AVG(price), COUNT(DISTINCT price % 7)";

fn sql_value(v: Option<i64>) -> String {
    v.map_or_else(|| "NULL".to_string(), |v| v.to_string())
}

fn sql_timestamp(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "NULL".to_string(),
        |ms| format!("TIMESTAMP '{}'", format_ms(ms)),
    )
}

/// A memory table `bids` with `WATERMARK FOR ts AS ts - delay`, fed one
/// INSERT per batch (so one batch, then the watermark, per INSERT).
async fn memory_session(batches: &[Vec<Row>], delay_ms: i64) -> Session {
    let session = Session::new();
    let ddl = format!(
        "CREATE TABLE bids (auction BIGINT, price BIGINT, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts - INTERVAL '{delay_ms}' MILLISECOND)"
    );
    for stmt in session.parse(&ddl, None).expect("ddl parses") {
        session.execute(&stmt).await.expect("ddl runs");
    }
    for batch in batches {
        let values: Vec<String> = batch
            .iter()
            .map(|r| {
                format!(
                    "({}, {}, {})",
                    sql_value(r.auction),
                    sql_value(r.price),
                    sql_timestamp(r.ts)
                )
            })
            .collect();
        let insert = format!("INSERT INTO bids VALUES {}", values.join(", "));
        let stmts = session.parse(&insert, None).expect("insert parses");
        let Ok(StatementResult::Insert(h)) = session.execute(&stmts[0]).await else {
            panic!("not an insert: {insert}");
        };
        let summary = h.wait().await.expect("insert runs");
        assert_eq!(summary.rows_out, batch.len() as u64, "{insert}");
    }
    session
}

/// Sorted rows and rows dropped as late of `aggregates` per auction and
/// window (start in seconds) over `win`, at `parallelism`.
async fn windowed(
    session: &Session,
    win: Win,
    aggregates: &str,
    parallelism: usize,
) -> (Vec<Vec<String>>, u64) {
    session
        .settings()
        .set("parallelism", &parallelism.to_string())
        .expect("valid setting");
    let query = format!(
        "SELECT auction, CAST(window_start AS BIGINT) / 1000 AS ws, {aggregates} \
         FROM TABLE({}) GROUP BY auction, window_start, window_end",
        win.sql()
    );
    let stmts = session.parse(&query, None).expect("query parses");
    let Ok(StatementResult::Query(handle)) = session.execute(&stmts[0]).await else {
        panic!("not a query: {query}");
    };
    let (batches, summary) = handle.collect().await.expect("query runs");
    let mut rows = format::rows_as_strings(&batches).expect("formats");
    rows.sort();
    (rows, summary.late_rows)
}

/// Batches as INSERTs would arrive: ~125 ms of event time per row on a
/// 250 ms grid give or take 1 ms (so watermarks land on, next to and just
/// before window ends: `ts - 3001 ms` of a grid time is `end - 1`), most
/// rows up to 1.75 s behind the newest (inside the bound), one in six up
/// to 25 s behind (late for some or all of their windows), NULL keys,
/// values and event times; now and then the clock jumps 15 s (many windows
/// fire at once) or a batch holds only NULL event times (no watermark).
fn late_batches(seed: u64, batches: usize) -> Vec<Vec<Row>> {
    let mut rng = Lcg(seed);
    let mut clock = START_MS;
    let mut out = Vec::new();
    for _ in 0..batches {
        let kind = rng.below(25);
        if kind == 0 {
            clock += 15_000;
        }
        let size = 1 + rng.below(40) as usize;
        let mut batch = Vec::with_capacity(size);
        for _ in 0..size {
            clock += 250 * rng.below(2) as i64;
            let jitter = [-1, 0, 0, 0, 1][rng.below(5) as usize];
            let ts = match rng.below(100) {
                _ if kind == 1 => None,
                0..=1 => None,
                2..=17 => Some(clock - 250 * rng.below(100) as i64 + jitter),
                _ => Some(clock - 250 * rng.below(8) as i64 + jitter),
            };
            let auction = (rng.below(50) != 0).then(|| rng.below(40) as i64);
            let price = (rng.below(30) != 0).then(|| rng.below(10_000) as i64);
            batch.push(Row { auction, price, ts });
        }
        out.push(batch);
    }
    out
}

/// The watermark delay of the late-row tests.
const DELAY_MS: i64 = 3001;

/// The engine at parallelism 1 and 3 against the rule, for `win` over
/// generated batches: the same rows and the same count of late rows.
async fn agrees_with_the_rule(win: Win) -> rule::Kept {
    let batches = late_batches(11, 150);
    let session = memory_session(&batches, DELAY_MS).await;
    let kept = rule::flink_rule(&rule::memory_arrivals(&batches, DELAY_MS), win);
    let want = rule::reference(&kept, AGGREGATES).await;
    for parallelism in [1, 3] {
        let (rows, late) = windowed(&session, win, AGGREGATES, parallelism).await;
        assert_eq!(rows, want, "{win:?} rows at parallelism {parallelism}");
        // Rows with a NULL event time count as late too.
        assert_eq!(
            late, kept.late,
            "{win:?} late rows at parallelism {parallelism}"
        );
    }
    kept
}

/// The rule by hand, HOP 10 s every 5 s, watermark = ts, B = 23:58:00:
/// batch 1 {B+1 s, B+6 s} (watermark B+6 s: [B-5, B+5) fires),
/// batch 2 {B+2 s: only [B, B+10) still counts it; k2 at B+12 s},
/// batch 3 {B+3 s: both windows fired, dropped; B+14 s}. Rows are
/// (auction, window start in s, COUNT(*)).
#[tokio::test]
async fn the_rule_on_a_hand_made_example() {
    let row = |auction, ts: Option<i64>| Row {
        auction: Some(auction),
        price: Some(1),
        ts: ts.map(|t| START_MS + t),
    };
    let batches = vec![
        vec![row(1, Some(1000)), row(1, Some(6000))],
        vec![row(1, Some(2000)), row(2, Some(12_000))],
        vec![row(1, Some(3000)), row(1, Some(14_000))],
    ];
    let win = Win::Hop {
        slide: 5000,
        size: 10_000,
    };
    let b = START_MS / 1000;
    let mut want: Vec<Vec<String>> = [
        (1, b - 5, 1),
        (1, b, 3),
        (1, b + 5, 2),
        (1, b + 10, 1),
        (2, b + 5, 1),
        (2, b + 10, 1),
    ]
    .iter()
    .map(|(a, ws, n)| vec![a.to_string(), ws.to_string(), n.to_string()])
    .collect();
    want.sort();
    let kept = rule::flink_rule(&rule::memory_arrivals(&batches, 0), win);
    assert_eq!((kept.late, kept.partly_late, kept.null_time), (1, 1, 0));
    assert_eq!(rule::reference(&kept, "COUNT(*)").await, want);
    let session = memory_session(&batches, 0).await;
    for parallelism in [1, 3] {
        let (rows, late) = windowed(&session, win, "COUNT(*)", parallelism).await;
        assert_eq!((rows, late), (want.clone(), 1), "parallelism {parallelism}");
    }
}

/// docs/architecture.md: "Rows whose event time is NULL are dropped and
/// counted." The window TVF (WindowAssign) drops them and counts them.
#[tokio::test]
async fn null_event_times_are_dropped_and_counted_as_late() {
    let row = |ts: Option<i64>| Row {
        auction: Some(1),
        price: Some(1),
        ts: ts.map(|t| START_MS + t),
    };
    let batches = vec![
        vec![row(Some(1000)), row(None)],
        vec![row(None), row(Some(2000))],
    ];
    let session = memory_session(&batches, 0).await;
    let b = (START_MS / 1000).to_string();
    for win in [
        Win::Tumble { size: 10_000 },
        Win::Hop {
            slide: 10_000,
            size: 20_000,
        },
    ] {
        let kept = rule::flink_rule(&rule::memory_arrivals(&batches, 0), win);
        assert_eq!((kept.late, kept.null_time), (2, 2));
        for parallelism in [1, 3] {
            let (rows, late) = windowed(&session, win, "COUNT(*)", parallelism).await;
            assert_eq!(rows, rule::reference(&kept, "COUNT(*)").await);
            assert!(rows.contains(&vec!["1".to_string(), b.clone(), "2".to_string()]));
            assert_eq!(late, 2, "{win:?} at parallelism {parallelism}");
        }
    }
}

#[tokio::test]
async fn tumble_agrees_with_the_rule() {
    let kept = agrees_with_the_rule(Win::Tumble { size: 10_000 }).await;
    // What the data holds (rows dropped, NULL times among them; partly
    // late), so a change to the generator or the rule shows.
    assert_eq!((kept.late, kept.partly_late, kept.null_time), (435, 0, 164));
}

#[tokio::test]
async fn hop_agrees_with_the_rule() {
    let kept = agrees_with_the_rule(Win::Hop {
        slide: 2000,
        size: 10_000,
    })
    .await;
    assert_eq!(
        (kept.late, kept.partly_late, kept.null_time),
        (349, 163, 164)
    );
}

/// 10 s every 3 s: panes of gcd = 1 s, three or four windows per row.
#[tokio::test]
async fn hop_with_size_not_a_multiple_of_slide_agrees_with_the_rule() {
    let kept = agrees_with_the_rule(Win::Hop {
        slide: 3000,
        size: 10_000,
    })
    .await;
    assert_eq!(
        (kept.late, kept.partly_late, kept.null_time),
        (359, 144, 164)
    );
}

/// Bytes of records per file chunk (`crates/connectors/src/file/source.rs`,
/// docs/architecture.md: 1 MiB blocks cut at record boundaries).
const FILE_CHUNK_BYTES: usize = 1 << 20;
/// Every CSV record below is this long, so a chunk is 8192 rows.
const FILE_ROW_BYTES: usize = 128;

/// Which rows are late does not depend on parallelism (chunks are emitted
/// in file order and every instance sees the same watermarks), and they are
/// those of the rule over the chunks: two files read side by side, chunks
/// of 8192 rows spanning ~14 minutes; every 97th row is 20 minutes old, so
/// it is late unless it is in its file's first chunk.
#[tokio::test]
async fn file_chunks_agree_with_the_rule_at_any_parallelism() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pad = "x".repeat(FILE_ROW_BYTES - 32);
    let mut files = Vec::new();
    for (f, offset) in [("a.csv", 0), ("b.csv", 50)] {
        let mut rng = Lcg(7 + offset as u64);
        let mut out = String::from("auction,price,pad,ts\n");
        let mut rows = Vec::new();
        for i in 0..40_000i64 {
            let mut ts = START_MS + i * 100 + offset;
            if i % 97 == 0 {
                ts -= 1_200_000;
            }
            let row = Row {
                auction: Some(rng.below(30) as i64),
                price: Some(rng.below(1000) as i64),
                ts: Some(ts),
            };
            let line = format!(
                "{:02},{:03},{pad},{}\n",
                row.auction.unwrap_or(0),
                row.price.unwrap_or(0),
                format_ms(ts)
            );
            assert_eq!(line.len(), FILE_ROW_BYTES, "{line}");
            out.push_str(&line);
            rows.push(row);
        }
        std::fs::write(dir.path().join(f), out).expect("write data");
        files.push(rows);
    }
    let win = Win::Hop {
        slide: 2000,
        size: 6000,
    };
    let kept = rule::flink_rule(
        &rule::file_arrivals(&files, FILE_CHUNK_BYTES / FILE_ROW_BYTES),
        win,
    );
    // Multiples of 97 in 8192..40000, in each file.
    assert_eq!((kept.late, kept.partly_late), (2 * 328, 0));
    let want = rule::reference(&kept, AGGREGATES).await;
    let ddl = format!(
        "CREATE TABLE bids (auction BIGINT, price BIGINT, pad STRING, ts TIMESTAMP(3), \
         WATERMARK FOR ts AS ts) \
         WITH (connector = 'filesystem', path = '{}', format = 'csv');",
        dir.path().display()
    );
    let session = Session::new();
    for stmt in session.parse(&ddl, None).expect("ddl parses") {
        session.execute(&stmt).await.expect("ddl runs");
    }
    for parallelism in [1, 2, 4] {
        let (rows, late) = windowed(&session, win, AGGREGATES, parallelism).await;
        assert_eq!(late, kept.late, "late rows at parallelism {parallelism}");
        assert_eq!(rows, want, "rows at parallelism {parallelism}");
    }
}
