use super::*;
use crate::operators::test_util::{batch_ts, pretty, windowed_schema};
use crate::operators::window_assign::WindowAssignOperator;
use crate::row::RowFunction;
use arrow::datatypes::{DataType, Field, TimeUnit};
use arrow::util::display::array_value_to_string;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::col;
use sluice_common::window::WindowKind;

const TUMBLE_10S: WindowSpec = WindowSpec {
    kind: WindowKind::Tumble,
    size: 10_000,
    slide: 10_000,
    offset: 0,
};

const HOP_5S_10S: WindowSpec = WindowSpec {
    kind: WindowKind::Hop,
    size: 10_000,
    slide: 5_000,
    offset: 0,
};

/// SUM(v) per window and k over `ts, k, v` rows: the window assignment
/// (of panes, for HOP), the aggregate's config and its input schema.
fn window_sum(spec: WindowSpec) -> (WindowAssignOperator, WindowAggConfig, SchemaRef) {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let windowed = windowed_schema(&batch_ts(&[], &[], &[]).schema());
    let panes = spec.kind == WindowKind::Hop;
    let assign_spec = WindowSpec {
        kind: WindowKind::Tumble,
        size: spec.pane(),
        slide: spec.pane(),
        offset: spec.offset,
    };
    let assign = WindowAssignOperator::new(assign_spec, 0, Arc::clone(&windowed));
    let sum = AggregateExprBuilder::new(sum_udaf(), vec![col("v", &windowed).expect("v")])
        .schema(Arc::clone(&windowed))
        .alias("s")
        .build()
        .expect("sum");
    let out_schema = Arc::new(Schema::new(vec![
        Field::new("window_start", ts, false),
        Field::new("k", DataType::Int64, true),
        Field::new("s", DataType::Int64, true),
    ]));
    let cfg = WindowAggConfig {
        spec,
        panes,
        window_column: 3,
        window_role: WindowRole::Start,
        keys: vec![
            GroupKey::Window(WindowRole::Start),
            GroupKey::Expr(col("k", &windowed).expect("k")),
        ],
        aggregates: vec![AggregateCall {
            expr: Arc::new(sum),
            filter: None,
        }],
        schema: out_schema,
        input: AggInput::Rows,
    };
    (assign, cfg, windowed)
}

fn tumble_sum() -> (WindowAssignOperator, WindowAggConfig, SchemaRef) {
    window_sum(TUMBLE_10S)
}

/// What one step of a message-stream test feeds the operator.
enum Step {
    Rows(&'static [i64], &'static [i64], &'static [i64]),
    Watermark(i64),
}

/// Feed `steps` to a fresh operator; every output row (as a table) and the
/// late-row count.
fn run_steps(spec: WindowSpec, steps: &[Step]) -> (Vec<String>, u64) {
    let (assign, cfg, windowed) = window_sum(spec);
    let mut agg = WindowAggregateOperator::try_new(cfg, &windowed).expect("builds");
    let mut out = Output::default();
    for step in steps {
        match step {
            Step::Rows(ts, k, v) => {
                let rows = assign.apply(batch_ts(ts, k, v)).expect("assigns");
                agg.on_batch(0, rows, &mut out).expect("aggregates");
            }
            Step::Watermark(wm) => {
                agg.on_watermark(Watermark(*wm), &mut out).expect("fires");
            }
        }
    }
    let mut rows = Vec::new();
    for b in out.take_batches() {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, r).expect("formats"))
                .collect();
            rows.push(cells.join(" "));
        }
    }
    (rows, out.late_rows)
}

/// Flink's HOP rule: a row late for its first window is still counted by
/// the windows holding it that have not fired; late for all, it is dropped.
#[test]
fn hop_late_row_counts_in_windows_still_open() {
    let (rows, late) = run_steps(
        HOP_5S_10S,
        &[
            Step::Rows(&[1_000, 8_000], &[1, 1], &[1, 2]),
            // [-5 s, 5 s) fires; [0, 10 s) is open.
            Step::Watermark(7_000),
            // Late for [-5, 5), in time for [0, 10).
            Step::Rows(&[4_000], &[1], &[100]),
            // [0, 10) fires at its last millisecond.
            Step::Watermark(9_999),
            // Late for every window holding it: dropped.
            Step::Rows(&[2_000], &[1], &[999]),
            Step::Watermark(i64::MAX),
        ],
    );
    assert_eq!(
        rows,
        [
            "1969-12-31T23:59:55 1 1",
            "1970-01-01T00:00:00 1 103",
            "1970-01-01T00:00:05 1 2",
        ]
    );
    assert_eq!(late, 1);
}

/// A window that fired empty stays unemitted when a late row lands in one
/// of its panes; the later window holding the row counts it.
#[test]
fn hop_window_that_fired_empty_is_not_emitted_late() {
    let (rows, late) = run_steps(
        HOP_5S_10S,
        &[
            // [5 s, 15 s) fires with no rows; [10 s, 20 s) is open.
            Step::Watermark(14_999),
            Step::Rows(&[12_000], &[1], &[7]),
            Step::Watermark(i64::MAX),
        ],
    );
    assert_eq!(rows, ["1970-01-01T00:00:10 1 7"]);
    assert_eq!(late, 0);
}

/// Windows close on the watermark, late rows are dropped and counted.
#[test]
fn tumble_emits_on_watermark_and_drops_late_rows() {
    let (assign, cfg, windowed) = tumble_sum();
    let input = batch_ts(&[1_000, 9_000, 12_000], &[1, 1, 2], &[5, 6, 7]);
    let mut agg = WindowAggregateOperator::try_new(cfg, &windowed).expect("builds");
    let mut out = Output::default();
    let assigned = assign.apply(input).expect("assigns");
    agg.on_batch(0, assigned, &mut out).expect("aggregates");
    agg.on_watermark(Watermark(10_000), &mut out)
        .expect("fires");
    assert_eq!(
        pretty(&out.take_batches()),
        "+---------------------+---+----+\n| window_start        | k | s  |\n+---------------------+---+----+\n| 1970-01-01T00:00:00 | 1 | 11 |\n+---------------------+---+----+"
    );
    // A row for the closed window is late.
    let late = assign
        .apply(batch_ts(&[2_000], &[1], &[100]))
        .expect("assigns");
    agg.on_batch(0, late, &mut out).expect("aggregates");
    assert_eq!(out.late_rows, 1);
    agg.on_watermark(Watermark::MAX, &mut out).expect("fires");
    assert_eq!(
        pretty(&out.take_batches()),
        "+---------------------+---+---+\n| window_start        | k | s |\n+---------------------+---+---+\n| 1970-01-01T00:00:10 | 2 | 7 |\n+---------------------+---+---+"
    );
}

/// A window fires when the watermark reaches its last millisecond (Flink),
/// not one millisecond later.
#[test]
fn tumble_fires_at_end_minus_one() {
    let (rows, late) = run_steps(
        TUMBLE_10S,
        &[
            Step::Rows(&[9_999], &[1], &[5]),
            Step::Watermark(9_998),
            Step::Rows(&[9_999], &[1], &[6]),
            Step::Watermark(9_999),
            // Behind the watermark of 9.999 s: late.
            Step::Rows(&[9_999], &[1], &[100]),
        ],
    );
    assert_eq!(rows, ["1970-01-01T00:00:00 1 11"]);
    assert_eq!(late, 1);
}

/// Per-chunk partials merged downstream give the rows, and the late-row
/// count, of aggregating the rows directly.
#[test]
fn partials_merge_to_the_same_windows_and_late_rows() {
    use crate::operators::partial_aggregate::PartialAggregate;
    let (assign, cfg, windowed) = tumble_sum();
    let chunks = [
        batch_ts(&[1_000, 9_000, 12_000, 3_000], &[1, 1, 2, 1], &[5, 6, 7, 8]),
        // After watermark 10 s: two late rows of one group, one on time.
        batch_ts(&[2_000, 4_000, 15_000], &[1, 1, 2], &[100, 200, 9]),
    ];
    let run = |two_phase: bool| {
        let (first, second) =
            PartialAggregate::split(cfg.clone(), Arc::clone(&windowed)).expect("splits");
        let mut agg = if two_phase {
            WindowAggregateOperator::try_new(second, &first.output_schema())
        } else {
            WindowAggregateOperator::try_new(cfg.clone(), &windowed)
        }
        .expect("builds");
        let mut out = Output::default();
        for (chunk, wm) in chunks.iter().zip([10_000, i64::MAX]) {
            let rows = assign.apply(chunk.clone()).expect("assigns");
            let input = if two_phase {
                first.apply(rows).expect("partials")
            } else {
                rows
            };
            agg.on_batch(0, input, &mut out).expect("aggregates");
            agg.on_watermark(Watermark(wm), &mut out).expect("fires");
        }
        (pretty(&out.take_batches()), out.late_rows)
    };
    let direct = run(false);
    assert_eq!(direct.1, 2);
    assert_eq!(run(true), direct);
}

/// Each output row as "kind cells".
fn changes(out: &mut Output) -> Vec<String> {
    let mut rows = Vec::new();
    for b in out.take_batches() {
        let ops = sluice_common::changelog::ops(&b).expect("a changelog");
        for r in 0..b.num_rows() {
            let kind = sluice_common::changelog::RowKind::from_code(ops.value(r)).expect("kind");
            let mut cells = vec![kind.short().to_string()];
            for c in &b.columns()[..b.num_columns() - 1] {
                cells.push(array_value_to_string(c, r).expect("formats"));
            }
            rows.push(cells.join(" "));
        }
    }
    rows
}

/// Early fire on a delay: nothing until the timer, then the result so far;
/// a changed result is retracted and replaced; closing unchanged emits
/// nothing, and the window's state is freed.
#[test]
fn early_fire_on_a_timer_then_nothing_when_unchanged() {
    let (assign, mut cfg, windowed) = tumble_sum();
    cfg.panes = false;
    let strategy = EmitStrategy {
        early: Some(std::time::Duration::from_millis(20)),
        ..EmitStrategy::default()
    };
    let mut agg = EmitWindowAggregate::try_new(cfg, &windowed, strategy).expect("builds");
    let mut out = Output::default();
    let rows = assign.apply(batch_ts(&[1_000, 2_000], &[1, 2], &[1, 2]));
    agg.on_batch(0, rows.expect("assigns"), &mut out)
        .expect("aggregates");
    assert!(changes(&mut out).is_empty(), "nothing before the timer");
    let at = agg.deadline().expect("armed");
    std::thread::sleep(at.saturating_duration_since(std::time::Instant::now()));
    agg.on_timer(&mut out).expect("fires");
    assert_eq!(
        changes(&mut out),
        ["+I 1970-01-01T00:00:00 1 1", "+I 1970-01-01T00:00:00 2 2"]
    );
    assert!(agg.deadline().is_none(), "nothing changed since");
    let rows = assign.apply(batch_ts(&[3_000], &[2], &[10]));
    agg.on_batch(0, rows.expect("assigns"), &mut out)
        .expect("aggregates");
    let at = agg.deadline().expect("armed again");
    std::thread::sleep(at.saturating_duration_since(std::time::Instant::now()));
    agg.on_timer(&mut out).expect("fires");
    assert_eq!(
        changes(&mut out),
        ["-U 1970-01-01T00:00:00 2 2", "+U 1970-01-01T00:00:00 2 12"]
    );
    agg.on_watermark(Watermark(9_999), &mut out)
        .expect("closes");
    assert!(changes(&mut out).is_empty(), "unchanged when it closed");
    assert_eq!(agg.state_size().map(|s| s.0), Some(0), "state freed");
}

/// Rows of one step fed to a fresh instance `i` of `p` (the rows whose key
/// it owns, as the hash exchange routes them).
fn owned_rows(batch: RecordBatch, i: usize, p: usize) -> RecordBatch {
    let keys = [Arc::clone(batch.column(1))];
    let range = crate::checkpoint::KeyRange {
        instance: i,
        parallelism: p,
    };
    range.filter_by(&batch, &keys).expect("filters")
}

/// Sorted output rows of `out`.
fn sorted_rows(out: &mut Output) -> Vec<String> {
    let mut rows = Vec::new();
    for b in out.take_batches() {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, r).expect("formats"))
                .collect();
            rows.push(cells.join(" "));
        }
    }
    rows.sort();
    rows
}

/// A snapshot taken mid-stream and restored, at the same or another
/// parallelism, gives the output the uninterrupted operator gives after
/// the snapshot: open panes, closed HOP panes and the watermark included.
#[test]
fn snapshot_and_restore_continue_the_same_windows() {
    for spec in [TUMBLE_10S, HOP_5S_10S] {
        let before = [
            Step::Rows(&[1_000, 6_000, 12_000], &[1, 2, 3], &[1, 2, 3]),
            Step::Watermark(9_000),
            Step::Rows(&[8_000, 16_000, 4_000], &[2, 1, 4], &[10, 20, 30]),
        ];
        let after = [
            Step::Watermark(14_999),
            Step::Rows(&[13_000, 21_000, 9_000], &[1, 2, 3], &[100, 200, 300]),
            Step::Watermark(i64::MAX),
        ];
        let (assign, cfg, windowed) = window_sum(spec);
        let feed = |agg: &mut WindowAggregateOperator,
                    steps: &[Step],
                    keep: &dyn Fn(RecordBatch) -> RecordBatch,
                    out: &mut Output| {
            for step in steps {
                match step {
                    Step::Rows(ts, k, v) => {
                        let rows = keep(assign.apply(batch_ts(ts, k, v)).expect("assigns"));
                        agg.on_batch(0, rows, out).expect("aggregates");
                    }
                    Step::Watermark(wm) => {
                        agg.on_watermark(Watermark(*wm), out).expect("fires");
                    }
                }
            }
        };
        let mut whole = WindowAggregateOperator::try_new(cfg.clone(), &windowed).expect("builds");
        let mut out = Output::default();
        feed(&mut whole, &before, &|b| b, &mut out);
        out.take_batches();
        let state = whole.snapshot().expect("snapshots");
        feed(&mut whole, &after, &|b| b, &mut out);
        let expected = sorted_rows(&mut out);
        assert!(expected.len() >= 4, "{expected:?}");
        // Taking the snapshot changed nothing.
        let mut plain = WindowAggregateOperator::try_new(cfg.clone(), &windowed).expect("builds");
        feed(&mut plain, &before, &|b| b, &mut out);
        out.take_batches();
        feed(&mut plain, &after, &|b| b, &mut out);
        assert_eq!(sorted_rows(&mut out), expected);
        for p in [1, 2, 3] {
            let mut got = Vec::new();
            for i in 0..p {
                let mut agg =
                    WindowAggregateOperator::try_new(cfg.clone(), &windowed).expect("builds");
                let range = crate::checkpoint::KeyRange {
                    instance: i,
                    parallelism: p,
                };
                agg.restore(std::slice::from_ref(&state), range)
                    .expect("restores");
                let mut out = Output::default();
                feed(&mut agg, &after, &|b| owned_rows(b, i, p), &mut out);
                got.extend(sorted_rows(&mut out));
            }
            got.sort();
            assert_eq!(got, expected, "{:?} at parallelism {p}", spec.kind);
        }
    }
}

/// An emitting window aggregate (early fire, allowed lateness) restored at
/// any parallelism keeps each window's state and what it last showed, so
/// its updates retract exactly what was emitted before the checkpoint.
#[test]
fn emitting_windows_restore() {
    use crate::operators::test_util::{assert_restores, Feed};
    let (assign, mut cfg, windowed) = tumble_sum();
    cfg.panes = false;
    let rows =
        |ts: &[i64], k: &[i64], v: &[i64]| assign.apply(batch_ts(ts, k, v)).expect("assigns");
    let before = [
        Feed::Rows(0, rows(&[1_000, 2_000, 12_000], &[1, 2, 1], &[1, 2, 3])),
        Feed::Watermark(10_500),
        Feed::Rows(0, rows(&[3_000], &[2], &[10])),
    ];
    let after = [
        Feed::Rows(
            0,
            rows(&[4_000, 13_000, 5_000], &[1, 1, 3], &[100, 200, 300]),
        ),
        Feed::Watermark(19_999),
        Feed::Rows(0, rows(&[6_000], &[2], &[1_000])),
        Feed::Watermark(i64::MAX),
    ];
    for early in [None, Some(std::time::Duration::ZERO)] {
        let strategy = EmitStrategy {
            early,
            lateness: 30_000,
            late: std::time::Duration::ZERO,
        };
        let make = || -> Box<dyn Operator> {
            Box::new(
                EmitWindowAggregate::try_new(cfg.clone(), &windowed, strategy).expect("builds"),
            )
        };
        let route = |_: usize, b: &RecordBatch, range: crate::checkpoint::KeyRange| {
            range
                .filter_by(b, &[Arc::clone(b.column(1))])
                .expect("routes")
        };
        assert_restores(&make, &before, &after, &route);
    }
}
