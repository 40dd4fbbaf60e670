use super::*;
use crate::operators::test_util::{assert_restores, batch_ts, Feed};
use arrow::datatypes::{DataType, Field};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::median::median_udaf;
use datafusion::functions_aggregate::min_max::min_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::AggregateUDF;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::col;

/// `f(v) OVER (PARTITION BY k ORDER BY ts <frame>)` for each aggregate,
/// then `LAG(v, 2, 0)` and `LEAD(v, 1, -1)`.
fn over(frame: Frame, aggs: &[Arc<AggregateUDF>]) -> Box<dyn Operator> {
    let input = batch_ts(&[], &[], &[]).schema();
    let v = col("v", &input).expect("v");
    let mut functions: Vec<OverFunction> = aggs
        .iter()
        .map(|f| {
            let e = AggregateExprBuilder::new(Arc::clone(f), vec![Arc::clone(&v)])
                .schema(Arc::clone(&input))
                .alias(f.name())
                .build()
                .expect("aggregate");
            OverFunction::Aggregate(Arc::new(e))
        })
        .collect();
    functions.push(OverFunction::Lag {
        arg: Arc::clone(&v),
        offset: 2,
        default: ScalarValue::Int64(Some(0)),
    });
    functions.push(OverFunction::Lead {
        arg: Arc::clone(&v),
        offset: 1,
        default: ScalarValue::Int64(Some(-1)),
    });
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend((0..functions.len()).map(|i| Field::new(format!("f{i}"), DataType::Int64, true)));
    let cfg = OverConfig {
        partition: vec![col("k", &input).expect("k")],
        time_column: 0,
        frame,
        functions,
        schema: Arc::new(Schema::new(fields)),
    };
    Box::new(OverAggregate::try_new(cfg, &input).expect("over"))
}

/// Rows of three partitions across watermarks: at the snapshot some rows
/// wait for the watermark, some for their LEAD, and frames hold rows.
fn feeds() -> (Vec<Feed>, Vec<Feed>) {
    let before = vec![
        Feed::Rows(
            0,
            batch_ts(
                &[1_000, 2_000, 1_500, 3_000, 2_500, 9_000],
                &[1, 1, 2, 1, 2, 3],
                &[5, 3, 7, 8, 1, 4],
            ),
        ),
        Feed::Watermark(2_100),
        Feed::Rows(0, batch_ts(&[4_000, 3_500, 5_000], &[1, 2, 1], &[2, 6, 9])),
        Feed::Watermark(3_600),
    ];
    let after = vec![
        Feed::Rows(0, batch_ts(&[6_000, 7_000, 6_500], &[1, 2, 3], &[1, 2, 3])),
        Feed::Watermark(6_200),
        Feed::Rows(0, batch_ts(&[8_000, 9_500], &[1, 1], &[6, 7])),
        Feed::Watermark(i64::MAX),
    ];
    (before, after)
}

/// Every frame kind (with running aggregates, DataFusion's sliding and
/// plain accumulators — MEDIAN's `state()` hands its values over — LAG and
/// LEAD) restores at any parallelism and a snapshot changes nothing.
#[test]
fn restores_every_frame_kind() {
    let (before, after) = feeds();
    let by_k = |_: usize, b: &RecordBatch, range: crate::checkpoint::KeyRange| {
        range
            .filter_by(b, &[Arc::clone(b.column(1))])
            .expect("routes")
    };
    let bounded = [sum_udaf(), count_udaf(), min_udaf()];
    for frame in [Frame::Rows(Some(2)), Frame::Range(Some(1_500))] {
        assert_restores(&|| over(frame, &bounded), &before, &after, &by_k);
    }
    let unbounded = [sum_udaf(), count_udaf(), min_udaf(), median_udaf()];
    for frame in [Frame::Rows(None), Frame::Range(None)] {
        assert_restores(&|| over(frame, &unbounded), &before, &after, &by_k);
    }
}
