use std::time::Duration;

use arrow::array::Array;
use arrow::datatypes::{DataType, Field, TimeUnit};
use arrow::util::display::array_value_to_string;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::col;
use sluice_common::changelog::{self, RowKind};

use super::*;
use crate::operators::test_util::batch_ts;

/// SUM(v) per session of `k` (gap 5 s) over `ts, k, v` rows, each row's
/// own window starting at its `ts`.
fn session_sum(emit: Option<EmitStrategy>) -> SessionAggregate {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let input = batch_ts(&[], &[], &[]).schema();
    let sum = AggregateExprBuilder::new(sum_udaf(), vec![col("v", &input).expect("v")])
        .schema(Arc::clone(&input))
        .alias("s")
        .build()
        .expect("sum");
    let schema = Arc::new(Schema::new(vec![
        Field::new("window_start", ts.clone(), false),
        Field::new("window_end", ts, false),
        Field::new("k", DataType::Int64, true),
        Field::new("s", DataType::Int64, true),
    ]));
    let cfg = SessionConfig {
        gap: 5_000,
        window_column: 0,
        window_role: WindowRole::Start,
        keys: vec![
            GroupKey::Window(WindowRole::Start),
            GroupKey::Window(WindowRole::End),
            GroupKey::Expr(col("k", &input).expect("k")),
        ],
        aggregates: vec![AggregateCall {
            expr: Arc::new(sum),
            filter: None,
        }],
        schema,
    };
    SessionAggregate::try_new(cfg, &input, emit).expect("builds")
}

/// Each output row as "kind start end k s" (times in seconds), `+I` for
/// append-only output.
fn changes(out: &mut Output) -> Vec<String> {
    let mut rows = Vec::new();
    for b in out.take_batches() {
        let ops = changelog::ops(&b).cloned();
        let data = changelog::data(&b).expect("data");
        for r in 0..b.num_rows() {
            let kind = ops.as_ref().map_or(RowKind::Insert, |o| {
                RowKind::from_code(o.value(r)).expect("kind")
            });
            let mut cells = vec![kind.short().to_string()];
            for c in data.columns() {
                let cell = match c.as_any().downcast_ref::<TimestampMillisecondArray>() {
                    Some(t) => (t.value(r) / 1000).to_string(),
                    None => array_value_to_string(c, r).expect("formats"),
                };
                cells.push(cell);
            }
            rows.push(cells.join(" "));
        }
    }
    rows
}

/// Feed rows `(ts in ms, k, v)` as one batch.
fn rows(agg: &mut SessionAggregate, rows: &[(i64, i64, i64)], out: &mut Output) {
    let ts: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let k: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let v: Vec<i64> = rows.iter().map(|r| r.2).collect();
    agg.on_batch(0, batch_ts(&ts, &k, &v), out)
        .expect("aggregates");
}

fn watermark(agg: &mut SessionAggregate, wm: i64, out: &mut Output) {
    agg.on_watermark(Watermark(wm), out).expect("fires");
}

fn lateness(ms: i64) -> Option<EmitStrategy> {
    Some(EmitStrategy {
        lateness: ms,
        ..EmitStrategy::default()
    })
}

/// Without a strategy a session is emitted once, when it fires; a bridging
/// row merges two open sessions first.
#[test]
fn sessions_merge_then_fire_once() {
    let mut agg = session_sum(None);
    let mut out = Output::default();
    rows(
        &mut agg,
        &[(0, 1, 1), (9_000, 1, 2), (1_000, 2, 5)],
        &mut out,
    );
    rows(&mut agg, &[(4_500, 1, 10)], &mut out);
    watermark(&mut agg, 13_999, &mut out);
    assert_eq!(changes(&mut out), ["+I 1 6 2 5", "+I 0 14 1 13"]);
    assert_eq!(agg.state_size().map(|s| s.0), Some(0), "state freed");
}

/// Allowed lateness: a fired session is kept; late rows update it in place
/// (`-U/+U`), grow it (`-D` old bounds, `+I` new), and bridge it with an
/// open session (its row retracted at once, the merged one emitted when it
/// fires); past the lateness a row is dropped and the state freed.
#[test]
fn late_rows_update_grow_and_bridge_fired_sessions() {
    let mut agg = session_sum(lateness(10_000));
    let mut out = Output::default();
    rows(&mut agg, &[(0, 1, 1), (3_000, 1, 2)], &mut out);
    watermark(&mut agg, 9_000, &mut out);
    assert_eq!(changes(&mut out), ["+I 0 8 1 3"]);
    rows(&mut agg, &[(2_000, 1, 10)], &mut out);
    assert_eq!(changes(&mut out), ["-U 0 8 1 3", "+U 0 8 1 13"]);
    rows(&mut agg, &[(4_000, 1, 100)], &mut out);
    assert_eq!(changes(&mut out), ["-D 0 8 1 13", "+I 0 9 1 113"]);
    rows(&mut agg, &[(12_000, 1, 1_000)], &mut out);
    assert!(changes(&mut out).is_empty(), "an open session waits");
    rows(&mut agg, &[(8_500, 1, 10_000)], &mut out);
    assert_eq!(changes(&mut out), ["-D 0 9 1 113"]);
    watermark(&mut agg, 16_999, &mut out);
    assert_eq!(changes(&mut out), ["+I 0 17 1 11113"]);
    watermark(&mut agg, 26_999, &mut out);
    assert_eq!(agg.state_size().map(|s| s.0), Some(0), "state freed");
    rows(&mut agg, &[(1_000, 1, 1)], &mut out);
    assert!(changes(&mut out).is_empty());
    assert_eq!(out.late_rows, 1, "past the lateness");
}

/// Early fire after every batch: the session so far, updated in place or
/// replaced as it grows; nothing more when it fires unchanged.
#[test]
fn early_fire_shows_a_growing_session() {
    let mut agg = session_sum(Some(EmitStrategy {
        early: Some(Duration::ZERO),
        ..EmitStrategy::default()
    }));
    let mut out = Output::default();
    rows(&mut agg, &[(0, 1, 1)], &mut out);
    assert_eq!(changes(&mut out), ["+I 0 5 1 1"]);
    rows(&mut agg, &[(1_000, 1, 2), (0, 2, 7)], &mut out);
    assert_eq!(
        changes(&mut out),
        ["+I 0 5 2 7", "-D 0 5 1 1", "+I 0 6 1 3"]
    );
    rows(&mut agg, &[(500, 1, 4)], &mut out);
    assert_eq!(changes(&mut out), ["-U 0 6 1 3", "+U 0 6 1 7"]);
    watermark(&mut agg, 10_000, &mut out);
    assert!(changes(&mut out).is_empty(), "unchanged when fired");
    assert_eq!(agg.state_size().map(|s| s.0), Some(0), "state freed");
}

/// A late-fire delay: late changes wait for the timer; a session past the
/// lateness with changes still waiting emits them before it is freed.
#[test]
fn late_fire_on_a_timer_and_at_expiry() {
    let mut agg = session_sum(Some(EmitStrategy {
        lateness: 10_000,
        late: Duration::from_millis(20),
        early: None,
    }));
    let mut out = Output::default();
    rows(&mut agg, &[(0, 1, 1)], &mut out);
    watermark(&mut agg, 6_000, &mut out);
    assert_eq!(changes(&mut out), ["+I 0 5 1 1"]);
    rows(&mut agg, &[(1_000, 1, 2)], &mut out);
    assert!(changes(&mut out).is_empty(), "waits for the timer");
    let at = agg.deadline().expect("armed");
    std::thread::sleep(at.saturating_duration_since(std::time::Instant::now()));
    agg.on_timer(&mut out).expect("fires");
    assert_eq!(changes(&mut out), ["-D 0 5 1 1", "+I 0 6 1 3"]);
    assert!(agg.deadline().is_none(), "nothing waits");
    // Grown past the watermark: its row is retracted on the late timer
    // (not run here) and the session fires again.
    rows(&mut agg, &[(2_000, 1, 4)], &mut out);
    assert!(changes(&mut out).is_empty(), "waits for the timer");
    watermark(&mut agg, 20_000, &mut out);
    assert_eq!(changes(&mut out), ["-D 0 6 1 3", "+I 0 7 1 7"]);
    assert_eq!(agg.state_size().map(|s| s.0), Some(0), "state freed");
}

/// The output is a changelog only with a strategy.
#[test]
fn a_strategy_makes_the_output_a_changelog() {
    assert!(!changelog::is_changelog(&session_sum(None).output_schema()));
    let agg = session_sum(lateness(1));
    assert!(changelog::is_changelog(&agg.output_schema()));
    assert!(agg.describe().ends_with("lateness=1ms late=batch"));
}

/// Restored mid-stream at any parallelism, sessions (open, fired and kept
/// for the lateness, shown downstream) continue as if uninterrupted.
#[test]
fn sessions_restore_with_and_without_a_strategy() {
    use crate::operators::test_util::{assert_restores, Feed};
    let b = |ts: &[i64], k: &[i64], v: &[i64]| batch_ts(ts, k, v);
    let before = [
        Feed::Rows(0, b(&[0, 3_000, 1_000], &[1, 1, 2], &[1, 2, 3])),
        Feed::Watermark(9_000),
        Feed::Rows(0, b(&[12_000, 2_000], &[1, 1], &[4, 5])),
    ];
    let after = [
        Feed::Rows(0, b(&[8_500, 4_000, 13_000], &[1, 2, 3], &[6, 7, 8])),
        Feed::Watermark(16_999),
        Feed::Rows(0, b(&[20_000], &[2], &[9])),
        Feed::Watermark(i64::MAX),
    ];
    let route = |_: usize, batch: &RecordBatch, range: crate::checkpoint::KeyRange| {
        range
            .filter_by(batch, &[Arc::clone(batch.column(1))])
            .expect("routes")
    };
    for emit in [
        None,
        lateness(10_000),
        Some(EmitStrategy {
            early: Some(Duration::ZERO),
            lateness: 10_000,
            late: Duration::ZERO,
        }),
    ] {
        assert_restores(&|| Box::new(session_sum(emit)), &before, &after, &route);
    }
}
