//! The harness runs every query over the generator, the CSV file and the
//! batch reference (a small run: correctness of the plumbing, no timing).

use std::process::Command;

/// Run the harness with `args`; its standard output, after checking it
/// succeeded.
fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-bench"))
        .args(args)
        .output()
        .expect("harness runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The harness's columns, in order (`crates/bench/src/main.rs`).
const HEADER: [&str; 11] = [
    "query",
    "source",
    "p",
    "events",
    "rows",
    "seconds",
    "events/s",
    "events/cpu-s",
    "rss MiB",
    "vs batch",
    "vs p=1",
];

/// One line of the table.
#[derive(Debug)]
struct Run {
    query: String,
    source: String,
    p: u32,
    events: u64,
    rows: u64,
    /// vs batch, vs p=1: ratios printed as `1.23x`.
    ratios: [f64; 2],
}

fn number(field: &str, line: &str) -> f64 {
    let v: f64 = field
        .parse()
        .unwrap_or_else(|_| panic!("{field:?} is not a number in {line:?}"));
    assert!(v.is_finite() && v >= 0.0, "{field:?} in {line:?}");
    v
}

/// The table, checked column by column: the header names the columns,
/// every other line has a value of the right kind in each (the timing
/// columns, seconds to rss MiB, are plain numbers).
fn parse_table(text: &str) -> Vec<Run> {
    let mut lines = text.lines();
    let header = lines.next().expect("a header");
    // Names are right-aligned in fixed widths; two hold a space.
    let names: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(names, HEADER, "{header}");
    lines
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), HEADER.len(), "{line}");
            for timing in &f[5..=8] {
                number(timing, line);
            }
            let int = |i: usize| -> u64 {
                f[i].parse()
                    .unwrap_or_else(|_| panic!("{} is not a count in {line:?}", HEADER[i]))
            };
            let ratio = |i: usize| {
                let v = f[i]
                    .strip_suffix('x')
                    .unwrap_or_else(|| panic!("{} is not a ratio in {line:?}", HEADER[i]));
                number(v, line)
            };
            Run {
                query: f[0].to_string(),
                source: f[1].to_string(),
                p: int(2) as u32,
                events: int(3),
                rows: int(4),
                ratios: [ratio(9), ratio(10)],
            }
        })
        .collect()
}

#[test]
fn harness_runs_every_query() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("bids.csv");
    let csv = csv.display().to_string();
    let text = bench(&["--events", "20000", "--csv", &csv, "--parallelism", "1,2"]);
    let table = parse_table(&text);
    // Result rows of each query over these bids, as DataFusion computes
    // them in batch: the streaming runs must give as many.
    let queries = [
        ("q0", 18400),
        ("q1", 18400),
        ("q2", 1),
        ("q3", 74),
        ("q4", 5),
        ("q5", 5),
        ("q7", 1),
        ("q8", 13),
        ("q9", 144),
        ("q11", 114),
        ("q15", 1),
        ("q16", 5932),
        ("q17", 161),
        ("q18", 319),
        ("q19", 284),
        ("q20", 3034),
        ("tumble", 161),
        ("hop", 805),
        ("cumulate", 805),
        ("over", 18400),
    ];
    // Queries over persons or auctions read the generator only.
    let generator_only = ["q3", "q4", "q8", "q9", "q20"];
    let runs = [("gen", 1), ("gen", 2), ("csv", 1), ("csv", 2), ("batch", 2)];
    let got: Vec<(&str, &str, u32)> = table
        .iter()
        .map(|r| (r.query.as_str(), r.source.as_str(), r.p))
        .collect();
    let want: Vec<(&str, &str, u32)> = queries
        .iter()
        .flat_map(|(q, _)| runs.iter().map(move |(s, p)| (*q, *s, *p)))
        .filter(|(q, s, _)| *s != "csv" || !generator_only.contains(q))
        .collect();
    assert_eq!(
        got, want,
        "one line per query, source and parallelism:\n{text}"
    );
    for run in &table {
        let (_, rows) = queries
            .iter()
            .find(|(q, _)| *q == run.query)
            .expect("a known query");
        // 20,000 events hold 400 persons, 1,200 auctions and 18,400 bids;
        // every source sees all of those it reads, each read once.
        let events = match run.query.as_str() {
            "q3" | "q8" => 1600,
            "q4" | "q9" | "q20" => 19600,
            _ => 18400,
        };
        assert_eq!(run.events, events, "{run:?}");
        assert_eq!(run.rows, *rows, "{run:?}");
        // Timings are free, but the batch line compares with itself and
        // p=1 with itself.
        if run.source == "batch" {
            assert_eq!(run.ratios, [1.0, 1.0], "{run:?}");
        }
        if run.p == 1 {
            assert_eq!(run.ratios[1], 1.0, "{run:?}");
        }
    }
}

#[test]
fn latency_mode_reports_percentiles() {
    let text = bench(&["--latency", "3"]);
    let line = text.trim();
    let rest = line
        .strip_prefix("window-emit latency at 100000 events/s, parallelism ")
        .unwrap_or_else(|| panic!("{text}"));
    // `..., over 3 s (N windows): p50 A ms, p99 B ms, max C ms`
    let (_, rest) = rest.split_once(", over 3 s (").expect(&text);
    let (windows, rest) = rest.split_once(" windows): ").expect(&text);
    let windows: u32 = windows.parse().expect("a window count");
    // 3 s of events close the windows ending inside them: two or three,
    // as the start falls on a second or not.
    assert!((2..=3).contains(&windows), "{text}");
    let figures: Vec<(&str, f64)> = rest
        .split(", ")
        .map(|part| {
            let (name, value) = part.split_once(' ').expect(&text);
            let value = value.strip_suffix(" ms").expect(&text);
            (name, value.parse::<f64>().expect("a latency"))
        })
        .collect();
    let names: Vec<&str> = figures.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["p50", "p99", "max"], "{text}");
    let [p50, p99, max] = [figures[0].1, figures[1].1, figures[2].1];
    assert!(
        p50.is_finite() && p50 <= p99 && p99 <= max,
        "percentiles in order: {text}"
    );
}
