use super::*;
use crate::operators::test_util::{batch_ts, pretty, windowed_schema};
use crate::operators::window_assign::WindowAssignOperator;
use crate::row::RowFunction;
use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::col;
use sluice_sql::window::WindowKind;

/// TUMBLE 10 s, SUM(v) per k over `ts, k, v` rows: the window assignment,
/// the aggregate's config and its input schema.
fn tumble_sum() -> (WindowAssignOperator, WindowAggConfig, SchemaRef) {
    let spec = WindowSpec {
        kind: WindowKind::Tumble,
        size: 10_000,
        slide: 10_000,
        offset: 0,
    };
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let windowed = windowed_schema(&batch_ts(&[], &[], &[]).schema());
    let assign = WindowAssignOperator::new(spec, 0, Arc::clone(&windowed));
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
        panes: false,
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
    let rows: usize = out.take_batches().iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 1, "window [10, 20) with k = 2");
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
