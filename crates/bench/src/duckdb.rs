//! DuckDB, the batch peer: the same queries over the same CSV file, in
//! Python's `duckdb` package (PyPI), measured in its own process.
//!
//! The Python is `SLUICE_DUCKDB_PYTHON` when set, else the virtualenv
//! `target/duckdb-venv` (the one `scripts/test.sh` makes), created and
//! given `duckdb` from PyPI when it has none. Each query materializes its
//! whole result (`CREATE TABLE result AS ...`, as Sluice's blackhole sink
//! takes every row) and is timed inside the interpreter, so the start-up
//! of Python and the import are not counted; CPU is the process's user and
//! system time over the query, all DuckDB threads included.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context};

/// The bid columns as DuckDB reads them from the file.
const COLUMNS: &str = "{'auction': 'BIGINT', 'bidder': 'BIGINT', 'price': 'BIGINT', \
    'channel': 'VARCHAR', 'url': 'VARCHAR', 'dateTime': 'TIMESTAMP', 'extra': 'VARCHAR'}";

/// DuckDB's form of `query` over the view `bid`, for the queries it has
/// one for (HOP expands each bid into its five windows, as a batch engine
/// without HOP does).
pub fn sql(query: &str) -> Option<&'static str> {
    Some(match query {
        "q0" => "SELECT auction, bidder, price, dateTime, extra FROM bid",
        "q1" => "SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid",
        "q2" => "SELECT auction, price FROM bid WHERE auction % 123 = 0",
        "tumble" => {
            "SELECT auction, time_bucket(INTERVAL 10 SECOND, dateTime) AS window_start, \
             COUNT(*), SUM(price), MAX(price) FROM bid GROUP BY ALL"
        }
        "hop" => {
            "SELECT auction, window_start, COUNT(*), SUM(price), MAX(price) FROM ( \
               SELECT auction, price, \
                 time_bucket(INTERVAL 2 SECOND, dateTime) - to_seconds(2 * i) AS window_start \
               FROM bid, range(0, 5) AS t(i)) GROUP BY ALL"
        }
        _ => return None,
    })
}

/// A Python that imports duckdb, made under `target/` when needed.
pub fn python(root: &Path) -> anyhow::Result<PathBuf> {
    let works = |py: &Path| {
        Command::new(py)
            .args(["-c", "import duckdb"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Some(py) = std::env::var_os("SLUICE_DUCKDB_PYTHON").map(PathBuf::from) {
        if works(&py) {
            return Ok(py);
        }
        bail!("SLUICE_DUCKDB_PYTHON={} cannot import duckdb", py.display());
    }
    let venv = root.join("target/duckdb-venv");
    let py = venv.join("bin/python");
    if works(&py) {
        return Ok(py);
    }
    eprintln!(
        "installing DuckDB (PyPI duckdb) into {} ...",
        venv.display()
    );
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("python3 -m venv")?
        .success()
        && Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "duckdb",
            ])
            .status()
            .context("pip install duckdb")?
            .success();
    if !ok || !works(&py) {
        bail!("could not install duckdb into {}", venv.display());
    }
    Ok(py)
}

const SCRIPT: &str = r#"
import duckdb, resource, sys, time
files, threads, query = sys.argv[1], int(sys.argv[2]), sys.argv[3]
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute(f"CREATE VIEW bid AS SELECT * FROM read_csv('{files}', header = true, columns = {sys.argv[4]})")
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c, t = cpu(), time.perf_counter()
con.execute("CREATE TABLE result AS " + query)
cpu_s, wall_s = cpu() - c, time.perf_counter() - t
events = con.execute("SELECT COUNT(*) FROM bid").fetchone()[0]
rows = con.execute("SELECT COUNT(*) FROM result").fetchone()[0]
print(events, rows, cpu_s, wall_s)
"#;

/// DuckDB over `csv` (a file or a folder of part files) on `threads`
/// threads: bids read, result rows, CPU seconds and wall seconds.
pub fn run(
    py: &Path,
    csv: &Path,
    query: &str,
    threads: usize,
) -> anyhow::Result<(f64, u64, f64, f64)> {
    let sql = sql(query).ok_or_else(|| anyhow!("no DuckDB form of {query}"))?;
    let files = if csv.is_dir() {
        csv.join("*")
    } else {
        csv.to_path_buf()
    };
    let out = Command::new(py)
        .args(["-c", SCRIPT])
        .arg(&files)
        .args([&threads.to_string(), sql, COLUMNS])
        .output()
        .context("runs DuckDB's Python")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "DuckDB on {query} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Vec<&str> = text.split_whitespace().collect();
    let parse = |i: usize| -> anyhow::Result<f64> {
        v.get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("unexpected output from DuckDB: {text}"))
    };
    Ok((parse(0)?, parse(1)? as u64, parse(2)?, parse(3)?))
}
