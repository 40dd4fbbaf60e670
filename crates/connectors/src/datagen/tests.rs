use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float64Type, Int16Type, Int64Type, Schema,
    SchemaRef, TimeUnit, TimestampMillisecondType,
};
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::expressions::{cast, col};
use sluice_common::{Message, Watermark};
use sluice_exec::metrics::NodeMetrics;
use sluice_exec::source::{ScanColumns, Source, SourceContext};
use sluice_exec::watermark::WatermarkExpr;

use super::fields::parse_decimal;
use super::generate::now_millis;
use super::source::{Pacer, Step};
use super::{DatagenOptions, DatagenSource, DatagenSourceConfig};
use crate::options::parse_duration_ms;

fn schema(cols: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.insert("connector".into(), "datagen".into());
    m
}

fn parse_err(s: &SchemaRef, pairs: &[(&str, &str)]) -> String {
    DatagenOptions::parse("t", s, &opts(pairs))
        .expect_err("options should be rejected")
        .to_string()
}

/// Runs a source over the whole `schema` (with an optional watermark on
/// column `wm`) and returns everything it sent.
async fn run(s: &SchemaRef, pairs: &[(&str, &str)], wm: Option<&str>) -> Vec<Message> {
    let options = DatagenOptions::parse("t", s, &opts(pairs)).expect("options");
    // The watermark is the column itself, read as milliseconds.
    let watermark = wm.map(|c| {
        let ms = DataType::Timestamp(TimeUnit::Millisecond, None);
        let e = cast(col(c, s).expect("column"), s, ms).expect("cast");
        WatermarkExpr::new(e)
    });
    let src = DatagenSource::try_new(DatagenSourceConfig {
        table: "t".into(),
        options,
        scan: ScanColumns::try_new(Arc::clone(s), None, watermark).expect("columns"),
    })
    .expect("source");
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let ctx = SourceContext::new(tx, Arc::new(NodeMetrics::default()));
    let task = tokio::spawn(Box::new(src).run(ctx));
    let mut out = Vec::new();
    while let Some(m) = rx.recv().await {
        out.push(m);
    }
    task.await.expect("join").expect("run");
    out
}

fn batches(msgs: &[Message]) -> Vec<RecordBatch> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Batch(b) => Some(b.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn option_errors() {
    let s = schema(&[
        ("id", DataType::Int64),
        ("ts", DataType::Timestamp(TimeUnit::Millisecond, None)),
    ]);
    let e = parse_err(&s, &[("rows-per-sec", "5")]);
    assert!(e.contains("unknown option(s) 'rows-per-sec'"), "{e}");
    let e = parse_err(&s, &[("fields.nope.kind", "random")]);
    assert!(e.contains("'fields.nope.kind' names no column"), "{e}");
    let e = parse_err(
        &s,
        &[("fields.id.kind", "sequence"), ("fields.id.start", "1")],
    );
    assert!(e.contains("'fields.id.end' is required"), "{e}");
    let e = parse_err(&s, &[("fields.id.length", "5")]);
    assert!(
        e.contains("'fields.id.length' does not apply to column id of type BIGINT"),
        "{e}"
    );
    let e = parse_err(&s, &[("fields.ts.kind", "sequence")]);
    assert!(
        e.contains("not supported for column ts of type TIMESTAMP(3)"),
        "{e}"
    );
    let e = parse_err(&s, &[("fields.id.start", "1")]);
    assert!(e.contains("'fields.id.start' does not apply"), "{e}");
    let e = parse_err(&s, &[("fields.id.color", "red")]);
    assert!(e.contains("unknown option 'fields.id.color'"), "{e}");
    let e = parse_err(&s, &[("fields.id.min", "5"), ("fields.id.max", "1")]);
    assert!(e.contains("greater than"), "{e}");
    let e = parse_err(&s, &[("fields.id.null-rate", "1.5")]);
    assert!(e.contains("0..=1"), "{e}");
    let e = parse_err(&s, &[("fields.ts.max-past", "5 weeks")]);
    assert!(e.contains("duration"), "{e}");
    let e = parse_err(&s, &[("rows-per-second", "0")]);
    assert!(e.contains("positive integer"), "{e}");
    let small = schema(&[("x", DataType::Int16)]);
    let e = parse_err(&small, &[("fields.x.max", "40000")]);
    assert!(e.contains("an integer in -32768..=32767"), "{e}");
    let bin = schema(&[("b", DataType::Binary)]);
    let e = parse_err(&bin, &[]);
    assert!(e.contains("cannot generate column b of type BYTES"), "{e}");
}

#[test]
fn bounds_and_helpers() {
    let s = schema(&[("a", DataType::Int32), ("b", DataType::Int32)]);
    let o = DatagenOptions::parse("t", &s, &opts(&[])).expect("options");
    assert!(!o.is_bounded());
    assert_eq!(o.rows_per_second, 10_000);
    let o = DatagenOptions::parse(
        "t",
        &s,
        &opts(&[
            ("number-of-rows", "50"),
            ("fields.A.kind", "sequence"),
            ("fields.A.start", "1"),
            ("fields.A.end", "10"),
        ]),
    )
    .expect("options");
    assert!(o.is_bounded());
    assert_eq!(o.row_limit(), Some(10));
    assert_eq!(parse_duration_ms("5000"), Some(5000));
    assert_eq!(parse_duration_ms("5 s"), Some(5000));
    assert_eq!(parse_duration_ms("1min"), Some(60_000));
    assert_eq!(parse_duration_ms("2 h"), Some(7_200_000));
    assert_eq!(parse_duration_ms("s"), None);
    assert_eq!(parse_decimal("-12.345", 2), Some(-1234));
    assert_eq!(parse_decimal("7", 3), Some(7000));
    assert_eq!(parse_decimal("1.2.3", 1), None);
}

#[tokio::test]
async fn bounded_sequence_in_order() {
    let s = schema(&[("id", DataType::Int64), ("name", DataType::Utf8)]);
    let msgs = run(
        &s,
        &[
            ("rows-per-second", "1000000"),
            ("fields.id.kind", "sequence"),
            ("fields.id.start", "5"),
            ("fields.id.end", "20004"),
            ("fields.name.kind", "sequence"),
            ("fields.name.start", "-3"),
            ("fields.name.end", "100000"),
        ],
        Some("id"),
    )
    .await;
    let bs = batches(&msgs);
    // Full batches of 8192 (a batch is full before it may leave at this
    // rate, whatever the clock does), then the rest.
    let sizes: Vec<usize> = bs.iter().map(|b| b.num_rows()).collect();
    assert_eq!(sizes, vec![8192, 8192, 3616]);
    let ids: Vec<i64> = bs
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(ids, (5..=20004).collect::<Vec<i64>>());
    let names: Vec<String> = bs
        .iter()
        .flat_map(|b| {
            let a = b.column(1).as_string::<i32>();
            (0..a.len())
                .map(|i| a.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(names[0], "-3");
    assert_eq!(names[20_000 - 1], "19996");
    let n = msgs.len();
    assert!(matches!(msgs[n - 1], Message::EndOfStream));
    assert!(matches!(msgs[n - 2], Message::Watermark(Watermark::MAX)));
    let wms: Vec<i64> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::Watermark(w) if *w != Watermark::MAX => Some(w.0),
            _ => None,
        })
        .collect();
    assert!(wms.windows(2).all(|w| w[0] < w[1]), "{wms:?}");
    assert_eq!(wms.last(), Some(&20004));
}

#[tokio::test]
async fn random_values_in_range() {
    let s = schema(&[
        ("i", DataType::Int16),
        ("d", DataType::Float64),
        ("m", DataType::Decimal128(5, 2)),
        ("s", DataType::Utf8),
        ("v", DataType::Utf8),
        ("n", DataType::Int64),
        ("b", DataType::Boolean),
    ]);
    let msgs = run(
        &s,
        &[
            ("rows-per-second", "1000000"),
            ("number-of-rows", "3000"),
            ("fields.i.min", "-5"),
            ("fields.i.max", "7"),
            ("fields.d.min", "-1.5"),
            ("fields.d.max", "2.5"),
            ("fields.m.min", "-1.5"),
            ("fields.m.max", "99999"),
            ("fields.s.length", "12"),
            ("fields.v.length", "4"),
            ("fields.v.var-len", "true"),
            ("fields.n.null-rate", "1.0"),
        ],
        None,
    )
    .await;
    let bs = batches(&msgs);
    assert_eq!(bs.iter().map(|b| b.num_rows()).sum::<usize>(), 3000);
    assert!(matches!(msgs.last(), Some(Message::EndOfStream)));
    let mut seen = std::collections::BTreeSet::new();
    for b in &bs {
        for &v in b.column(0).as_primitive::<Int16Type>().values() {
            assert!((-5..=7).contains(&v), "{v}");
            seen.insert(v);
        }
        for &v in b.column(1).as_primitive::<Float64Type>().values() {
            assert!((-1.5..2.5).contains(&v), "{v}");
        }
        let m = b.column(2).as_primitive::<Decimal128Type>();
        assert_eq!(m.data_type(), &DataType::Decimal128(5, 2));
        assert!(m.values().iter().all(|v| (-150..=99_999).contains(v)));
        let st = b.column(3).as_string::<i32>();
        for i in 0..st.len() {
            let v = st.value(i);
            assert_eq!(v.len(), 12);
            assert!(v.bytes().all(|c| c.is_ascii_alphanumeric()), "{v}");
        }
        let vl = b.column(4).as_string::<i32>();
        assert!((0..vl.len()).all(|i| (1..=4).contains(&vl.value(i).len())));
        assert_eq!(b.column(5).null_count(), b.num_rows());
        assert_eq!(b.column(6).null_count(), 0);
    }
    assert_eq!(seen.len(), 13, "all of -5..=7 appear in 3000 draws");
}

#[tokio::test]
async fn timestamps_within_max_past() {
    let s = schema(&[
        ("ts", DataType::Timestamp(TimeUnit::Millisecond, None)),
        ("day", DataType::Date32),
    ]);
    let before = now_millis();
    let msgs = run(
        &s,
        &[
            ("rows-per-second", "1000000"),
            ("number-of-rows", "1000"),
            ("fields.ts.max-past", "5 s"),
            ("fields.day.max-past", "3 d"),
        ],
        Some("ts"),
    )
    .await;
    let after = now_millis();
    for b in batches(&msgs) {
        for &v in b
            .column(0)
            .as_primitive::<TimestampMillisecondType>()
            .values()
        {
            assert!(
                v >= before - 5000 && v <= after,
                "{v} not in [{before}-5s, {after}]"
            );
        }
        for &d in b.column(1).as_primitive::<Date32Type>().values() {
            let today = (after / 86_400_000) as i32;
            assert!(d <= today && d >= today - 4, "{d}");
        }
    }
    // After each batch the watermark is the newest timestamp so far (the
    // expression is the column itself), sent only when it advances.
    let mut newest = i64::MIN;
    let mut watermarks = 0;
    for m in &msgs {
        match m {
            Message::Batch(b) => {
                let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
                newest = ts.values().iter().copied().fold(newest, i64::max);
            }
            Message::Watermark(w) if *w != Watermark::MAX => {
                assert_eq!(w.0, newest, "watermark is the newest timestamp");
                watermarks += 1;
            }
            _ => {}
        }
    }
    assert!(watermarks >= 1, "a watermark follows the rows");
}

/// Runs `pacer` on a simulated clock that jumps to each wake-up time,
/// `late` after it (tokio never wakes early): when each batch leaves and
/// its rows, until the pacer is done or would sleep past `horizon`.
fn schedule(mut pacer: Pacer, late: Duration, horizon: Duration) -> Vec<(Duration, u64)> {
    let mut now = Duration::ZERO;
    let mut out = Vec::new();
    loop {
        match pacer.step(now) {
            Step::Emit(n) => out.push((now, n)),
            Step::SleepUntil(t) => {
                assert!(t > now, "sleeps forward: {t:?} at {now:?}");
                if t > horizon {
                    return out;
                }
                now = t + late;
            }
            Step::Done => return out,
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Rows sent by each batch's time never exceed the rows due at the rate.
fn assert_never_ahead(rate: u64, batches: &[(Duration, u64)]) {
    let mut sent = 0u64;
    for (at, n) in batches {
        sent += n;
        let due = (at.as_nanos() * u128::from(rate) / 1_000_000_000) as u64;
        assert!(sent <= due, "{sent} rows sent by {at:?}, {due} due");
    }
}

#[test]
fn paced_to_rows_per_second() {
    // 100 rows/s: a batch waits at most 200 ms for more rows, so 50 rows
    // leave as 20 at 200 ms, 20 at 400 ms and the last 10 when due.
    let got = schedule(Pacer::new(100, Some(50), 8192), Duration::ZERO, ms(10_000));
    assert_eq!(got, vec![(ms(200), 20), (ms(400), 20), (ms(500), 10)]);
    // 20 rows are all due at 200 ms: one batch.
    let got = schedule(Pacer::new(100, Some(20), 8192), Duration::ZERO, ms(10_000));
    assert_eq!(got, vec![(ms(200), 20)]);
    // A clock waking 30 ms late sends what is due by then, never more.
    let got = schedule(Pacer::new(100, Some(50), 8192), ms(30), ms(10_000));
    assert_eq!(got, vec![(ms(230), 23), (ms(460), 23), (ms(530), 4)]);
    assert_never_ahead(100, &got);
}

#[test]
fn fast_rates_send_full_batches_at_least_min_sleep_apart() {
    // 100,000 rows/s: a full batch of 8192 is due every 81.92 ms.
    let got = schedule(Pacer::new(100_000, None, 8192), Duration::ZERO, ms(1000));
    let want: Vec<(Duration, u64)> = (1..=12)
        .map(|k| (Duration::from_micros(81_920 * k), 8192))
        .collect();
    assert_eq!(got, want);
    // 1,000,000 rows/s: a batch is full after 8.192 ms, but the source
    // sleeps at least 10 ms; it catches up with back-to-back batches.
    let got = schedule(Pacer::new(1_000_000, None, 8192), Duration::ZERO, ms(2000));
    assert_eq!(
        got[..6],
        [
            (ms(10), 8192),
            (ms(20), 8192),
            (ms(30), 8192),
            (ms(40), 8192),
            (ms(50), 8192),
            (ms(50), 8192),
        ]
    );
    assert!(got.iter().all(|(_, n)| *n == 8192), "only full batches");
    assert_never_ahead(1_000_000, &got);
    let sent: u64 = got.iter().map(|(_, n)| n).sum();
    let last = got.last().expect("batches").0;
    let due = last.as_micros() as u64;
    assert!(
        due - sent < 8192,
        "keeps up: {sent} sent by {last:?}, {due} due"
    );
}

#[tokio::test]
async fn a_paced_bounded_run_sends_its_rows_in_the_scheduled_batch() {
    // The real clock: 20 rows at 100/s are all due at 200 ms, before
    // which nothing may leave (the schedule above), so one batch.
    let s = schema(&[("x", DataType::Int32)]);
    let msgs = run(
        &s,
        &[("rows-per-second", "100"), ("number-of-rows", "20")],
        None,
    )
    .await;
    let sizes: Vec<usize> = batches(&msgs).iter().map(|b| b.num_rows()).collect();
    assert_eq!(sizes, vec![20]);
    assert!(matches!(msgs.last(), Some(Message::EndOfStream)));
}

#[tokio::test]
async fn stops_when_output_closes() {
    let s = schema(&[("x", DataType::Int32)]);
    let options =
        DatagenOptions::parse("t", &s, &opts(&[("rows-per-second", "1000000")])).expect("options");
    let src = DatagenSource::try_new(DatagenSourceConfig {
        table: "t".into(),
        options,
        scan: ScanColumns::try_new(Arc::clone(&s), Some(vec![0]), None).expect("columns"),
    })
    .expect("source");
    assert!(src
        .describe()
        .starts_with("DatagenSource: t (rows-per-second=1000000, number-of-rows=unbounded)"));
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let ctx = SourceContext::new(tx, Arc::new(NodeMetrics::default()));
    let task = tokio::spawn(Box::new(src).run(ctx));
    assert!(matches!(rx.recv().await, Some(Message::Batch(_))));
    drop(rx);
    task.await.expect("join").expect("run");
}
