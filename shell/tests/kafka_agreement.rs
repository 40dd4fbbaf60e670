//! `sluice -f` over a bounded Kafka source gives the same rows as the same
//! query over the same records in a CSV file: TUMBLE and HOP, several
//! partitions, records out of order (inside the watermark bound).
//!
//! Needs a broker (`SLUICE_KAFKA_BOOTSTRAP`, which `scripts/test.sh` sets);
//! without one the test says so and passes, unless `SLUICE_REQUIRE_KAFKA=1`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use sluice_slt::kafka::{test_broker, unique_name};

/// `device,bytes,ts` rows, 100 ms apart on average, each up to 2 s behind
/// the newest (the watermark allows 3 s), crossing a minute boundary.
fn traffic_csv(rows: usize) -> String {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut out = String::from("device,bytes,ts\n");
    let mut clock: i64 = 59 * 60 * 1000; // 00:59:00 on 2024-01-01
    for _ in 0..rows {
        clock += next(200) as i64;
        let t = clock - next(2000) as i64;
        let device = if next(40) == 0 {
            String::new()
        } else {
            format!("d{}", next(12))
        };
        let (secs, ms) = (t / 1000, t % 1000);
        let _ = writeln!(
            out,
            "{device},{},2024-01-01 {:02}:{:02}:{:02}.{ms:03}",
            next(100_000),
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        );
    }
    out
}

fn sluice(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("sluice runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sluice {args:?} failed: {stderr}");
    assert!(!stderr.contains("late row"), "no row may be late: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn kafka_and_csv_give_the_same_windows() {
    let Some(bootstrap) = test_broker() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("traffic.csv"), traffic_csv(3000)).expect("write csv");
    let topic = unique_name("agreement");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(sluice_connectors::kafka::create_topic(
        &bootstrap, &topic, 4,
    ))
    .expect("create topic");

    let tables = format!(
        "CREATE TABLE file_traffic (device STRING, bytes BIGINT, ts TIMESTAMP(3),
           WATERMARK FOR ts AS ts - INTERVAL '3' SECOND)
         WITH ('connector' = 'filesystem', 'path' = 'traffic.csv', 'format' = 'csv');
         CREATE TABLE kafka_traffic (device STRING, bytes BIGINT, ts TIMESTAMP(3),
           WATERMARK FOR ts AS ts - INTERVAL '3' SECOND)
         WITH ('connector' = 'kafka', 'topic' = '{topic}',
           'properties.bootstrap.servers' = '{bootstrap}', 'properties.batch.num.messages' = '1',
           'format' = 'json', 'sink.partitioner' = 'round-robin',
           'scan.bounded.mode' = 'latest-offset');\n"
    );
    std::fs::write(
        dir.path().join("load.sql"),
        format!("{tables}INSERT INTO kafka_traffic SELECT * FROM file_traffic;\n"),
    )
    .expect("write load.sql");
    sluice(dir.path(), &["-f", "load.sql"]);

    for (name, window) in [
        (
            "tumble",
            "TUMBLE(TABLE {t}, DESCRIPTOR(ts), INTERVAL '10' SECOND)",
        ),
        (
            "hop",
            "HOP(TABLE {t}, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND)",
        ),
    ] {
        let query = |t: &str| {
            format!(
                "{tables}SELECT window_start, device, COUNT(*) AS n, SUM(bytes) AS total, MAX(bytes) AS top
                 FROM TABLE({}) GROUP BY window_start, window_end, device;\n",
                window.replace("{t}", t)
            )
        };
        std::fs::write(dir.path().join("kafka.sql"), query("kafka_traffic")).expect("write");
        std::fs::write(dir.path().join("file.sql"), query("file_traffic")).expect("write");
        let from_kafka = sorted_lines(&sluice(dir.path(), &["--format", "csv", "-f", "kafka.sql"]));
        let from_file = sorted_lines(&sluice(dir.path(), &["--format", "csv", "-f", "file.sql"]));
        assert!(
            from_file.len() > 100,
            "{name}: many windows ({})",
            from_file.len()
        );
        assert_eq!(from_kafka, from_file, "{name}: Kafka and CSV differ");
    }
}
