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

#[test]
fn harness_runs_every_query() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("bids.csv");
    let csv = csv.display().to_string();
    let text = bench(&["--events", "20000", "--csv", &csv, "--parallelism", "1,2"]);
    for q in ["q0", "q1", "q2", "q5", "q7", "tumble", "hop"] {
        let runs = [("gen", 1), ("gen", 2), ("csv", 1), ("csv", 2), ("batch", 2)];
        for (source, p) in runs {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{q:<7} {source:<9} {p:>3} ")))
                .unwrap_or_else(|| panic!("no {q} {source} p={p} line in:\n{text}"));
            // 20,000 events hold 18,400 bids; every source sees all of them.
            assert!(line.contains(" 18400 "), "{line}");
        }
    }
}

#[test]
fn latency_mode_reports_percentiles() {
    let text = bench(&["--latency", "3"]);
    assert!(
        text.contains("window-emit latency at 100000 events/s") && text.contains("p99"),
        "{text}"
    );
}
