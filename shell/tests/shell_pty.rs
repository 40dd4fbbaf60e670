//! The interactive shell driven as a person would: the real `sluice` binary
//! in a pseudo-terminal, typing statements, pressing Tab, Ctrl-C and Ctrl-D.

mod pty;

use std::time::{Duration, Instant};

use pty::{exit, press, prompt, repo_root, rows_summary, shell, shell_with, type_line, TIMEOUT_MS};
use rexpect::session::PtySession;

const BIDS: &str =
    "CREATE TABLE bids (auction BIGINT, bidder BIGINT, price DOUBLE, ts TIMESTAMP(3),";
const BIDS_2: &str = "  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
    WITH ('connector' = 'filesystem', 'path' = 'sql-tests/data/bids.csv', 'format' = 'csv');";

const GEN: &str = "CREATE TABLE clicks (region INT, ts TIMESTAMP(3), \
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', \
    'rows-per-second' = '500', 'fields.region.min' = '1', 'fields.region.max' = '3');";

/// Declare the unbounded `clicks` datagen table.
fn create_clicks(p: &mut PtySession) {
    type_line(p, GEN);
    p.exp_string("Table 'clicks' created").expect("created");
    prompt(p);
}

#[test]
fn a_tumble_query_over_a_bounded_source_shows_its_rows() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    // A statement over two lines: Enter without ';' continues it.
    type_line(&mut p, BIDS);
    type_line(&mut p, BIDS_2);
    p.exp_string("Table 'bids' created").expect("created");
    prompt(&mut p);
    type_line(
        &mut p,
        "SELECT auction, window_start, COUNT(*) AS n FROM TUMBLE(bids, ts, INTERVAL '10' SECOND) \
         GROUP BY auction, window_start, window_end;",
    );
    // The rows, in the order the instances deliver them.
    let (table, _) = p
        .exp_regex(r"\b4 row\(s\) in ")
        .expect("a summary of 4 rows");
    for row in [
        "| 1       | 2024-01-01 00:00:00 | 2 |",
        "| 2       | 2024-01-01 00:00:00 | 2 |",
        "| 1       | 2024-01-01 00:00:10 | 2 |",
        "| 3       | 2024-01-01 00:00:20 | 1 |",
    ] {
        assert!(table.contains(row), "{row} in {table}");
    }
    prompt(&mut p);
    exit(p);
}

/// Issue 10: a bounded result taller than the terminal ends with the whole
/// result (through the pager), not only the rows that fit.
#[test]
fn a_bounded_result_taller_than_the_screen_is_printed_whole() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    type_line(
        &mut p,
        "CREATE TABLE seq (k INT) WITH ('connector' = 'datagen', 'number-of-rows' = '90', \
         'fields.k.kind' = 'sequence', 'fields.k.start' = '1', 'fields.k.end' = '90');",
    );
    prompt(&mut p);
    for pager in ["auto", "off"] {
        type_line(&mut p, &format!("SET pager = {pager};"));
        prompt(&mut p);
        type_line(&mut p, "SELECT k FROM seq;");
        // Every row, in order, from the first.
        for k in 1..=90 {
            p.exp_regex(&format!(r"\| {k} +\|"))
                .unwrap_or_else(|e| panic!("row {k} with pager {pager}: {e}"));
        }
        rows_summary(&mut p, 90);
        prompt(&mut p);
    }
    // max-rows caps it, and says so.
    type_line(&mut p, "SET max-rows = 5;");
    prompt(&mut p);
    type_line(&mut p, "SELECT k FROM seq;");
    p.exp_regex(r"\| 86 +\|").expect("the newest five");
    p.exp_string("showing the newest 5 of 90 rows")
        .expect("the cap is reported");
    prompt(&mut p);
    exit(p);
}

#[test]
fn ctrl_c_cancels_a_running_query_and_the_shell_lives_on() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    create_clicks(&mut p);
    type_line(
        &mut p,
        "SELECT window_start, region, COUNT(*) AS n \
         FROM TUMBLE(clicks, ts, INTERVAL '1' SECOND) GROUP BY window_start, window_end, region;",
    );
    // The status line shows the query running; a window closes within ~2 s.
    p.exp_string("running").expect("status line");
    p.exp_regex(r"\| [123] +\| \d+ +\|")
        .expect("a window's row");
    p.send_control('c').expect("Ctrl-C");
    p.exp_string("Cancelled:").expect("cancelled");
    prompt(&mut p);
    type_line(&mut p, "SELECT 'still here' AS alive;");
    p.exp_string("| still here |")
        .expect("the shell still runs queries");
    rows_summary(&mut p, 1);
    prompt(&mut p);
    exit(p);
}

#[test]
fn history_survives_a_restart() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    type_line(&mut p, "SELECT 6 * 7 AS answer;");
    p.exp_string("| 42     |").expect("result");
    prompt(&mut p);
    exit(p);

    let mut p = shell(home.path());
    // Up arrow recalls the last statement; Enter runs it again.
    press(&mut p, "\x1b[A");
    p.exp_string("SELECT 6 * 7 AS answer;").expect("recalled");
    press(&mut p, "\r");
    p.exp_string("| 42     |").expect("result again");
    prompt(&mut p);
    exit(p);
}

#[test]
fn tab_completes_a_table_name() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    type_line(
        &mut p,
        "CREATE TABLE clicks_by_region (region INT, n BIGINT);",
    );
    p.exp_string("created").expect("created");
    prompt(&mut p);
    press(&mut p, "SELECT region FROM clicks_b");
    press(&mut p, "\t");
    p.exp_string("clicks_by_region").expect("completed");
    press(&mut p, ";\r");
    // The completed name is a real table: the query runs (and is empty).
    rows_summary(&mut p, 0);
    prompt(&mut p);
    exit(p);
}

#[test]
fn a_syntax_error_shows_a_caret_and_the_shell_goes_on() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    type_line(&mut p, "SELECT price FROM t WHERE;");
    p.exp_string("line 1, column 26: syntax error")
        .expect("message");
    p.exp_string("1 | SELECT price FROM t WHERE;")
        .expect("the line");
    p.exp_regex(r"\n {29}\^").expect("a caret under the ';'");
    prompt(&mut p);
    type_line(&mut p, "SELECT 1 AS one;");
    rows_summary(&mut p, 1);
    prompt(&mut p);
    exit(p);
}

#[test]
fn background_jobs_are_listed_stopped_and_reported() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    create_clicks(&mut p);
    type_line(
        &mut p,
        "CREATE TABLE nowhere (region INT) WITH ('connector' = 'blackhole');",
    );
    p.exp_string("Table 'nowhere' created").expect("created");
    prompt(&mut p);
    type_line(&mut p, "INSERT INTO nowhere SELECT region FROM clicks;");
    p.exp_string("Job 1 started (unbounded")
        .expect("job started");
    prompt(&mut p);
    type_line(&mut p, "SHOW JOBS;");
    p.exp_regex(r"\| 1 +\| RUNNING").expect("listed as running");
    prompt(&mut p);
    type_line(&mut p, "STOP JOB 1;");
    p.exp_string("Job 1 stopped").expect("stopped");
    prompt(&mut p);

    // A bounded job ends by itself; the next prompt says so.
    type_line(&mut p, "CREATE TABLE kept (region INT);");
    p.exp_string("Table 'kept' created").expect("created");
    prompt(&mut p);
    type_line(&mut p, "INSERT INTO kept VALUES (1), (2), (3);");
    p.exp_string("Job 2 started.").expect("job started");
    // Everything the shell prints from here until job 2 is seen finished.
    let mut printed = prompt(&mut p);
    // Ask until job 2 has finished (it writes three rows, so at once).
    // Each question waits for its answer; only the generous deadline can
    // fail the test, never a fixed pause.
    let deadline = Instant::now() + Duration::from_millis(TIMEOUT_MS);
    loop {
        type_line(&mut p, "SHOW JOBS;");
        let (before, _) = p
            .exp_regex(r"\| 1 +\| STOPPED")
            .expect("job 1 stays stopped");
        printed.push_str(&before);
        let (before, state) = p
            .exp_regex(r"\| 2 +\| (FINISHED|RUNNING)")
            .expect("job 2 listed");
        printed.push_str(&before);
        printed.push_str(&prompt(&mut p));
        if state.contains("FINISHED") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "job 2 did not end by itself within {TIMEOUT_MS} ms"
        );
    }
    // The shell said so before a prompt once the job had ended (at the
    // latest before the prompt after the listing that shows it FINISHED),
    // and only once.
    assert_eq!(
        printed.matches("Job 2 finished in ").count(),
        1,
        "{printed}"
    );
    assert!(printed.contains("s: 3 row(s) written"), "{printed}");
    type_line(&mut p, "SELECT region FROM kept;");
    rows_summary(&mut p, 3);
    prompt(&mut p);
    exit(p);
}

#[test]
fn shell_commands_help_describe_and_timing() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    type_line(&mut p, "help");
    p.exp_string("\\i file.sql").expect("help text");
    prompt(&mut p);
    type_line(&mut p, BIDS);
    type_line(&mut p, BIDS_2);
    prompt(&mut p);
    type_line(&mut p, "\\d");
    p.exp_string("| bids").expect("tables listed");
    prompt(&mut p);
    type_line(&mut p, "\\d bids");
    p.exp_regex(r"\| ts +\| TIMESTAMP\(3\)")
        .expect("columns described");
    prompt(&mut p);
    type_line(&mut p, "\\timing");
    p.exp_string("Timing is on.").expect("timing on");
    prompt(&mut p);
    type_line(&mut p, "SET format = changelog;");
    p.exp_string("Set format = changelog").expect("set");
    prompt(&mut p);
    type_line(&mut p, "SELECT auction, price FROM bids WHERE price > 15;");
    p.exp_string("+I[2, 20.0]").expect("changelog rows");
    rows_summary(&mut p, 1);
    prompt(&mut p);
    type_line(&mut p, "RESET format;");
    prompt(&mut p);
    type_line(&mut p, "SET max-rows = 2;");
    p.exp_string("Set max-rows = 2").expect("set");
    prompt(&mut p);
    type_line(&mut p, "SELECT auction FROM bids;");
    p.exp_string("showing the newest 2 of 7 rows")
        .expect("max-rows applies");
    p.exp_string("Time: ").expect("timing printed");
    prompt(&mut p);
    exit(p);
}

#[test]
fn the_readme_session_works_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let section = readme
        .split("## A first session")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the README has a first session");
    // Indented lines are what a newcomer pastes; blank lines separate blocks.
    let mut blocks: Vec<Vec<&str>> = vec![];
    let mut current: Vec<&str> = vec![];
    for line in section.lines() {
        if let Some(code) = line.strip_prefix("    ") {
            current.push(code);
        } else if !current.is_empty() {
            blocks.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    assert_eq!(blocks.len(), 3, "create, query, job blocks: {blocks:?}");

    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    for line in &blocks[0] {
        type_line(&mut p, line);
    }
    p.exp_string("Table 'clicks' created").expect("the table");
    prompt(&mut p);
    for line in &blocks[1] {
        type_line(&mut p, line);
    }
    // A 5 s window closes within ~6 s of wall time.
    p.exp_string("running").expect("status line");
    p.exp_regex(r"\| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\| [1-5] +\| \d+ +\|")
        .expect("a window's row");
    p.send_control('c').expect("Ctrl-C");
    p.exp_string("Cancelled:").expect("cancelled");
    prompt(&mut p);
    for line in &blocks[2] {
        type_line(&mut p, line);
    }
    p.exp_string("Table 'per_user' created")
        .expect("sink table");
    p.exp_string("Job 1 started").expect("job");
    p.exp_regex(r"\| 1 +\| RUNNING").expect("SHOW JOBS");
    p.exp_string("Job 1 stopped").expect("STOP JOB");
    prompt(&mut p);
    exit(p);
}

#[test]
fn editing_multi_statement_lines_open_strings_and_reverse_search() {
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    // Two statements on one line run in order.
    type_line(&mut p, "SELECT 'first' AS a; SELECT 'second' AS b;");
    p.exp_string("| first |").expect("first result");
    p.exp_string("| second |").expect("second result");
    prompt(&mut p);
    // Enter inside an open string continues the statement (the newline is
    // part of the string: a, b, newline, c, d).
    type_line(&mut p, "SELECT length('ab");
    type_line(&mut p, "cd') AS n;");
    p.exp_regex(r"\| 5 +\|")
        .expect("one statement across lines");
    prompt(&mut p);
    // Ctrl-R finds an earlier statement.
    p.send_control('r').expect("Ctrl-R");
    press(&mut p, "'first'");
    p.exp_string("reverse-i-search").expect("search prompt");
    press(&mut p, "\r");
    p.exp_string("| first |").expect("found and ran");
    prompt(&mut p);
    exit(p);
}

#[test]
fn init_file_and_include_and_exit_stops_jobs() {
    let home = tempfile::tempdir().expect("home");
    let init = home.path().join("setup.sql");
    std::fs::write(&init, GEN).expect("write init");
    let more = home.path().join("more.sql");
    std::fs::write(
        &more,
        "CREATE TABLE drain (region INT) WITH ('connector' = 'blackhole');\n\
         SELECT 'included' AS src;\n",
    )
    .expect("write include");
    let init = init.to_string_lossy().into_owned();
    let mut p = shell_with(home.path(), &["--init", &init]);
    // The init file ran before the prompt: its table exists.
    type_line(&mut p, "\\d clicks");
    p.exp_regex(r"\| region +\| INT")
        .expect("table from --init");
    prompt(&mut p);
    type_line(&mut p, &format!("\\i {}", more.display()));
    p.exp_string("| included |").expect("\\i ran the file");
    prompt(&mut p);
    type_line(&mut p, "INSERT INTO drain SELECT region FROM clicks;");
    p.exp_string("Job 1 started").expect("job");
    prompt(&mut p);
    p.send_control('d').expect("Ctrl-D");
    p.exp_string("Stopped job 1 (unbounded).")
        .expect("the job is stopped on exit");
    p.exp_string("Bye.").expect("goodbye");
    p.exp_eof().expect("exit");
}

#[test]
fn a_live_query_over_a_topic_shows_partition_lag() {
    let Some(bootstrap) = sluice_slt::kafka::test_broker() else {
        return;
    };
    let topic = sluice_slt::kafka::unique_name("pty-lag");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(sluice_connectors::kafka::create_topic(
            &bootstrap, &topic, 2,
        ))
        .expect("topic");
    let home = tempfile::tempdir().expect("home");
    let mut p = shell(home.path());
    type_line(
        &mut p,
        &format!(
            "CREATE TABLE events (id INT) WITH ('connector' = 'kafka', 'topic' = '{topic}', \
             'properties.bootstrap.servers' = '{bootstrap}', 'format' = 'json');"
        ),
    );
    p.exp_string("Table 'events' created").expect("created");
    prompt(&mut p);
    type_line(&mut p, "INSERT INTO events VALUES (1), (2), (3);");
    p.exp_string("Job 1 started").expect("job");
    prompt(&mut p);
    type_line(&mut p, "SELECT id FROM events;");
    p.exp_regex(r"lag \d+ \(p0 \d+, p1 \d+\)")
        .expect("per-partition lag");
    p.send_control('c').expect("Ctrl-C");
    p.exp_string("Cancelled:").expect("cancelled");
    prompt(&mut p);
    exit(p);
}
