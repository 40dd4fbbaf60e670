//! `sluice --listen`: the real `psql` against the PostgreSQL protocol.
//! A script creates a materialized view over a paced generator first; psql
//! then reads consistent snapshots of it while its job runs, creates
//! tables, inserts and queries, and gets PostgreSQL errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The server process, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `sluice -f setup --listen 127.0.0.1:0`; its port.
fn start(setup: &str, dir: &std::path::Path) -> (Server, u16) {
    let path = dir.join("setup.sql");
    std::fs::write(&path, setup).expect("writes");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--listen", "127.0.0.1:0", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts sluice");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let server = Server(child);
    loop {
        let line = lines
            .next()
            .expect("the server says where it listens")
            .expect("reads");
        if let Some(rest) = line.split(" on 127.0.0.1:").nth(1) {
            let port = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse().ok())
                .expect("a port");
            // Keep draining its messages.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return (server, port);
        }
    }
}

/// psql's unaligned output (and error text) for `sql`.
fn psql(port: u16, sql: &str) -> (bool, String, String) {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "sluice",
        ])
        .args(["-d", "sluice", "-c", sql])
        .output()
        .expect("runs psql (the postgresql-client package)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn psql_reads_consistent_snapshots_of_a_running_view() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Ids 1, 2, ... in order at parallelism 1: in every consistent
    // snapshot the counts over all keys add up to the largest id seen.
    let (_server, port) = start(
        "SET 'parallelism' = '1';\n\
         CREATE TABLE gen (id BIGINT) WITH ('connector' = 'datagen', \
           'rows-per-second' = '20000', 'fields.id.kind' = 'sequence', \
           'fields.id.start' = '1', 'fields.id.end' = '100000000');\n\
         CREATE MATERIALIZED VIEW per_key AS \
           SELECT id % 7 AS k, COUNT(*) AS c, MAX(id) AS m FROM gen GROUP BY id % 7;\n",
        dir.path(),
    );
    let (mut last, mut seen) = (0i64, 0);
    for _ in 0..200 {
        if seen == 12 {
            break;
        }
        let (ok, out, err) = psql(port, "SELECT SUM(c), MAX(m) FROM per_key");
        assert!(ok, "{err}");
        if out.trim().is_empty() {
            // The view is still empty (a global aggregate of no rows is
            // no row, as in Flink).
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        seen += 1;
        let cells: Vec<i64> = out
            .trim()
            .split('|')
            .map(|c| c.parse().unwrap_or(0))
            .collect();
        assert_eq!(cells.len(), 2, "{out}");
        assert_eq!(cells[0], cells[1], "a snapshot mixes two moments: {out}");
        assert!(cells[0] >= last, "the view went back: {last} then {out}");
        last = cells[0];
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen == 12 && last > 0, "the view filled");
    let (ok, out, _) = psql(port, "SHOW MATERIALIZED VIEWS");
    assert!(ok && out.contains("per_key"), "{out}");
}

#[test]
fn psql_creates_inserts_queries_and_gets_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, port) = start("CREATE TABLE t (a BIGINT, b STRING);\n", dir.path());
    let (ok, _, err) = psql(port, "INSERT INTO t VALUES (1, 'x'), (2, NULL), (3, 'z')");
    assert!(ok, "{err}");
    let (ok, out, err) = psql(port, "SELECT a, b, a > 1 FROM t ORDER BY a");
    assert!(ok, "{err}");
    assert_eq!(out, "1|x|f\n2||t\n3|z|t\n");
    // Several statements in one query; a view over the table.
    let (ok, out, err) = psql(
        port,
        "CREATE TABLE u (n INT); INSERT INTO u VALUES (5); SELECT n * 2 FROM u",
    );
    assert!(ok, "{err}");
    assert_eq!(out, "10\n");
    let (ok, out, err) = psql(port, "SELECT b, COUNT(*) FROM t GROUP BY b ORDER BY b");
    assert!(ok, "{err}");
    assert_eq!(out, "x|1\nz|1\n|1\n");
    // Errors are PostgreSQL errors, with Sluice's message.
    let (ok, _, err) = psql(port, "SELECT nope FROM t");
    assert!(!ok);
    assert!(err.contains("ERROR:") && err.contains("nope"), "{err}");
    let (ok, _, err) = psql(
        port,
        "CREATE TABLE g (x BIGINT) WITH ('connector' = 'datagen'); SELECT * FROM g",
    );
    assert!(!ok);
    assert!(err.contains("CREATE MATERIALIZED VIEW"), "{err}");
    // The session is shared: what one connection made, the next sees.
    let (ok, out, _) = psql(port, "SHOW TABLES");
    assert!(ok && out.contains("g\n") && out.contains("u\n"), "{out}");
}

/// The Python with psycopg 3, if any (`scripts/test.sh` installs it);
/// without one the test says so and passes, unless CI requires it.
fn python_with_psycopg() -> Option<String> {
    let py = std::env::var("SLUICE_TEST_PYTHON").ok();
    let ok = py.as_ref().is_some_and(|py| {
        Command::new(py)
            .args(["-c", "import psycopg"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_DUCKDB").is_none(),
            "SLUICE_TEST_PYTHON must name a Python with psycopg (scripts/test.sh installs it)"
        );
        eprintln!("skipped: no SLUICE_TEST_PYTHON with psycopg");
    }
    py.filter(|_| ok)
}

/// psycopg 3 speaks the extended protocol (Parse, Bind, Describe, Execute):
/// parameters of every kind (a negative one after a minus stays a number),
/// prepared statements run twice, column types described, INSERTs with
/// parameters, SHOW, SQLSTATEs, and binary results refused with a clear
/// error.
#[test]
fn psycopg_runs_prepared_statements_with_parameters() {
    let Some(py) = python_with_psycopg() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, port) = start(
        "CREATE TABLE t (a BIGINT, b STRING, ts TIMESTAMP(3));\n\
         INSERT INTO t VALUES (1, 'x', TIMESTAMP '2024-01-01 00:00:01'), \
           (2, NULL, TIMESTAMP '2024-01-01 00:00:02'), (3, 'it''s', NULL);\n",
        dir.path(),
    );
    let script = r#"
import sys, psycopg
conn = psycopg.connect(f"host=127.0.0.1 port={sys.argv[1]} user=sluice dbname=sluice", autocommit=True)
cur = conn.execute("SELECT a, b, ts FROM t WHERE a >= %s ORDER BY a", (2,))
print([c.type_code for c in cur.description], cur.fetchall())
print(conn.execute("SELECT a FROM t WHERE b = %s -- $9", ("it's",)).fetchall())
print(conn.execute("SELECT %s AS s, %s AS f, %s AS ok, %s AS n", ("$1 'q'", 2.5, True, None)).fetchall())
with conn.cursor() as c:
    for a in (1, 3):
        c.execute("SELECT b FROM t WHERE a = %s", (a,), prepare=True)
        print(c.fetchall())
conn.execute("INSERT INTO t VALUES (%s, %s, NULL)", (4, "new"))
print(conn.execute("SELECT COUNT(*), MAX(a) FROM t").fetchall())
print(conn.execute("SELECT a FROM t WHERE a < 1-%s AND b IS NOT NULL ORDER BY a", (-3,)).fetchall())
print([r for r in conn.execute("SHOW TABLES").fetchall() if r[0] == "t"])
for sql, binary in (("SELECT nope FROM t", False), ("SELECT a FROM t", True)):
    try:
        conn.execute(sql, binary=binary)
    except psycopg.Error as e:
        print(e.sqlstate, str(e).splitlines()[0])
"#;
    let out = Command::new(&py)
        .args(["-c", script, &port.to_string()])
        .output()
        .expect("runs python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "[20, 1043, 1114] [(2, None, datetime.datetime(2024, 1, 1, 0, 0, 2)), (3, \"it's\", None)]",
            "[(3,)]",
            "[(\"$1 'q'\", 2.5, True, None)]",
            "[('x',)]",
            "[(\"it's\",)]",
            "[(4, 4)]",
            "[(1,), (3,)]",
            "[('t',)]",
            "42000 No field named nope.",
            "0A000 Sluice sends results in text format: ask for text results (binary results \
             are not supported)",
        ]
    );
}
