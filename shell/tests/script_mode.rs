//! Script mode of the real `sluice` binary: output snapshots per format,
//! error positions, exit codes, and that nothing runs after an error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("shell/ is inside the repository")
        .to_path_buf()
}

fn sluice(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice starts");
    {
        let mut input = child.stdin.take().expect("stdin is piped");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("sluice runs")
}

/// Write `sql` as `job.sql` in a new temporary folder; the folder (kept
/// alive by the caller) and the file's path.
fn script(sql: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("job.sql");
    std::fs::write(&file, sql).expect("write script");
    let path = file.to_string_lossy().into_owned();
    (dir, path)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const BIDS: &str = "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price DOUBLE, \
    ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
    WITH (connector = 'filesystem', path = 'sql-tests/data/bids.csv', format = 'csv');";

const COUNTS: &str = "SELECT auction, window_start, COUNT(*) AS bids, MAX(price) AS top \
    FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
    GROUP BY auction, window_start ORDER BY window_start, auction;";

fn run_counts(format: &str) -> Output {
    let sql = format!("{BIDS}\n{COUNTS}");
    sluice(&["--format", format, "-c", &sql], None)
}

#[test]
fn table_format_snapshot() {
    let out = run_counts("table");
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "\
+---------+---------------------+------+------+
| auction | window_start        | bids | top  |
+---------+---------------------+------+------+
| 1       | 2024-01-01 00:00:00 | 2    | 10.5 |
| 2       | 2024-01-01 00:00:00 | 2    | 20.0 |
| 1       | 2024-01-01 00:00:10 | 2    | 7.0  |
| 3       | 2024-01-01 00:00:20 | 1    | 2.0  |
+---------+---------------------+------+------+
"
    );
    let notes = text(&out.stderr);
    assert!(notes.contains("Table 'bids' created"), "{notes}");
    assert!(
        notes.lines().any(|l| l.starts_with("4 row(s) in ")),
        "{notes}"
    );
}

#[test]
fn csv_format_snapshot() {
    let out = run_counts("csv");
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "\
auction,window_start,bids,top
1,2024-01-01 00:00:00,2,10.5
2,2024-01-01 00:00:00,2,20.0
1,2024-01-01 00:00:10,2,7.0
3,2024-01-01 00:00:20,1,2.0
"
    );
}

#[test]
fn json_format_snapshot() {
    let out = run_counts("json");
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "\
{\"auction\":1,\"window_start\":\"2024-01-01T00:00:00\",\"bids\":2,\"top\":10.5}
{\"auction\":2,\"window_start\":\"2024-01-01T00:00:00\",\"bids\":2,\"top\":20.0}
{\"auction\":1,\"window_start\":\"2024-01-01T00:00:10\",\"bids\":2,\"top\":7.0}
{\"auction\":3,\"window_start\":\"2024-01-01T00:00:20\",\"bids\":1,\"top\":2.0}
"
    );
}

#[test]
fn json_writes_nulls_explicitly() {
    let out = sluice(
        &[
            "--format",
            "json",
            "-c",
            "CREATE TABLE t (a INT, b STRING); INSERT INTO t VALUES (1, NULL); SELECT a, b FROM t;",
        ],
        None,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"a\":1,\"b\":null}\n");
}

#[test]
fn error_in_file_gives_position_exit_code_and_stops() {
    let (_dir, path) = script(
        "CREATE TABLE t (a INT);\n\
         INSERT INTO t VALUES (1);\n\
         SELECT a,\n       nope FROM t;\n\
         SELECT 'after the error';\n",
    );
    let out = sluice(&["-f", &path], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{path}:4:8: plan error: No field named nope")),
        "{err}"
    );
    assert!(
        !text(&out.stdout).contains("after the error"),
        "statements after an error must not run"
    );
}

#[test]
fn syntax_error_runs_nothing() {
    let out = sluice(
        &[
            "-c",
            "CREATE TABLE t (a INT);\nSELECT a FROM t WHERE;\nSELECT 1;",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("line 2, column 22: syntax error"), "{err}");
    assert!(
        !err.contains("created"),
        "a script with a syntax error runs nothing: {err}"
    );
}

#[test]
fn stdin_that_is_not_a_terminal_runs_as_a_script() {
    let out = sluice(
        &["--format", "csv"],
        Some(
            "CREATE TABLE t (a INT);\nINSERT INTO t VALUES (3), (4);\nSELECT a * 2 AS d FROM t;\n",
        ),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "d\n6\n8\n");
}

#[test]
fn init_file_runs_before_the_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let init = dir.path().join("init.sql");
    std::fs::write(
        &init,
        "CREATE TABLE t (a INT);\nINSERT INTO t VALUES (7);\n",
    )
    .expect("write init");
    let init = init.to_string_lossy().into_owned();
    let out = sluice(
        &["--init", &init, "--format", "csv", "-c", "SELECT a FROM t;"],
        None,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a\n7\n");
}

/// Issue 10: a command that starts with `-` (a comment) is SQL, not a flag.
#[test]
fn command_starting_with_a_comment_runs() {
    let out = sluice(
        &["--format", "csv", "-c", "-- a comment\nSELECT 1 AS one;"],
        None,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "one\n1\n");
    let out = sluice(&["-c", "-- only a comment"], None);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
}

/// Issue 10: the changelog format is a command-line choice too.
#[test]
fn changelog_format_from_the_command_line() {
    let out = sluice(
        &["--format", "changelog", "-c", "SELECT 1 AS a, 'x' AS b;"],
        None,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "+I[1, x]\n");
}

/// Issue 10: unnamed result columns are named as Flink names them, EXPR$i
/// by position (after `*`), not `Int64(1)` or `count(*)`; two equal
/// expressions are two columns.
#[test]
fn unnamed_columns_are_named_as_in_flink() {
    let sql = format!(
        "{BIDS}\n\
         SELECT 1, auction, COUNT(*), COUNT(*), MAX(price) AS top \
         FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
         GROUP BY auction, window_start, window_end ORDER BY auction LIMIT 1;\n\
         SELECT *, price * 2 FROM bids LIMIT 1;"
    );
    let out = sluice(&["--format", "csv", "-c", &sql], None);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "EXPR$0,auction,EXPR$2,EXPR$3,top\n1,1,2,2,10.5\n\
         auction,bidder,price,ts,EXPR$4\n1,100,10.5,2024-01-01 00:00:01,21.0\n"
    );
}

/// Issue 10: the examples run from any folder: their paths are relative to
/// the script's own folder.
#[test]
fn examples_run_from_another_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    for example in [
        "traffic_per_minute",
        "sliding_average",
        "error_logs",
        "clicks_per_segment",
    ] {
        let path = repo_root().join("examples").join(format!("{example}.sql"));
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["--format", "csv", "-f"])
            .arg(&path)
            .current_dir(dir.path())
            .output()
            .expect("sluice runs");
        assert!(out.status.success(), "{example}: {}", text(&out.stderr));
        let rows = text(&out.stdout).lines().count();
        assert!(rows > 1, "{example} printed rows: {}", text(&out.stdout));
    }
}

/// Issue 12's walk-through: clicks filtered, counted per user and minute,
/// joined with the users table and summed per segment. The expected rows
/// were computed from the two CSV files apart from Sluice.
#[test]
fn clicks_per_segment_example() {
    let want = "window_start,segment,users,clicks\n\
        2024-03-01 09:00:00,free,2,4\n2024-03-01 09:00:00,premium,2,2\n\
        2024-03-01 09:00:00,trial,1,1\n2024-03-01 09:01:00,free,2,4\n\
        2024-03-01 09:01:00,premium,2,2\n2024-03-01 09:01:00,trial,1,2\n\
        2024-03-01 09:02:00,free,3,3\n2024-03-01 09:02:00,premium,2,4\n\
        2024-03-01 09:02:00,trial,1,1\n2024-03-01 09:03:00,free,2,3\n\
        2024-03-01 09:03:00,premium,2,5\n2024-03-01 09:03:00,trial,2,2\n\
        2024-03-01 09:04:00,free,2,4\n2024-03-01 09:04:00,premium,3,3\n\
        2024-03-01 09:04:00,trial,2,2\n";
    assert_eq!(run_example("clicks_per_segment.sql"), want);
}

/// What `examples/<name>` prints as CSV (it must succeed).
fn run_example(name: &str) -> String {
    let path = repo_root().join("examples").join(name);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--format", "csv", "-f"])
        .arg(&path)
        .output()
        .expect("sluice runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// Issue 13's anomaly detection: readings more than 3 standard deviations
/// from their sensor's last minute (an OVER aggregate), here one spike.
#[test]
fn anomalies_example() {
    let want = "sensor,ts,reading,mean,sd,z,anomaly
\
        boiler,2024-03-01 09:02:00,96.5,72.09,7.36,3.32,true\n";
    assert_eq!(run_example("anomalies.sql"), want);
}

/// Issue 10: an error while a statement runs (here a division by zero)
/// names the file, line and column of the statement.
#[test]
fn runtime_errors_carry_the_statement_position() {
    let (_dir, path) = script(
        "CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1), (0);\n  SELECT 10 / a FROM t;\n",
    );
    let out = sluice(&["-f", &path], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{path}:3:3: Divide by zero error")),
        "{err}"
    );
}
