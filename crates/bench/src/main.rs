//! `sluice-bench`: runs the Nexmark queries of `benches/nexmark/` over the
//! Nexmark generator and over a CSV file of the same bids, each in its own
//! process, and prints events, result rows, seconds, events/s, events per
//! CPU-second, peak RSS and the ratio to DataFusion computing the same
//! result in batch over the same bids in memory. A streaming run whose
//! result has another number of rows than the batch reference fails the
//! harness.
//!
//! Each streaming query runs at every parallelism given (default: 1 and the
//! number of cores), so the table shows scaling; the batch reference uses
//! the largest.
//!
//! `cargo run --release -p sluice-bench -- [--events N] [--queries q0,q5]
//! [--csv PATH] [--parallelism 1,2]`; `--latency SECONDS` measures
//! window-emit latency at 100K events/s instead. `--one QUERY gen|csv`
//! runs one query in this process (`--checkpoint MS`: checkpointing every
//! MS milliseconds, with the checkpoints' count, duration and size on
//! stderr). `--duckdb` also runs DuckDB over the same CSV file and prints
//! Sluice's ratio to it (`duckdb.rs`). `--kafka BOOTSTRAP` measures reading
//! the bids from a Kafka topic instead, against a bare rdkafka consumer
//! (`kafka.rs`); `--json` reading a JSON-lines file against reading its
//! bytes and arrow-json decoding it (`json.rs`); both print ratios to those
//! baselines (`baselines.rs`).

mod args;
mod baselines;
mod batch;
mod duckdb;
mod json;
mod kafka;
mod latency;
mod proc_stats;
mod workers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use sluice_engine::{Session, StatementResult};

use args::{parse_args, Args, Parsed, USAGE};
use proc_stats::{cpu_seconds, peak_rss_mib, print_measured};

const QUERIES: [&str; 20] = [
    "q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q9", "q11", "q15", "q16", "q17", "q18", "q19",
    "q20", "tumble", "hop", "cumulate", "over",
];

/// Queries that read persons or auctions: those tables come from the
/// generator only, so these run over the generator (no CSV run).
const GENERATOR_ONLY: [&str; 5] = ["q3", "q4", "q8", "q9", "q20"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `bid` over the generator or the CSV file.
/// The Nexmark tables: `bid` from the generator or the CSV file; `person`
/// and `auction` from the generator, of the same events.
fn tables_ddl(source: &str, events: u64, csv: &Path) -> String {
    let bid = "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, \
               dateTime TIMESTAMP(3), extra STRING, \
               WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND";
    let gen = |table: &str, cols: &str| {
        format!(
            "CREATE TABLE {table} ({cols}) WITH ('connector' = 'nexmark', \
             'nexmark.table.type' = '{table}', 'nexmark.event.num' = '{events}');"
        )
    };
    let person = gen(
        "person",
        "id BIGINT, name STRING, emailAddress STRING, creditCard STRING, city STRING, \
         state STRING, dateTime TIMESTAMP(3), extra STRING, \
         WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND",
    );
    let auction = gen(
        "auction",
        "id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT, \
         dateTime TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, \
         extra STRING, WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND",
    );
    let bid = match source {
        "json" => format!(
            "CREATE TABLE bid ({bid}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');",
            json::path(csv).display()
        ),
        "csv" => format!(
            "CREATE TABLE bid ({bid}) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');",
            csv.display()
        ),
        _ => gen("bid", bid),
    };
    format!("{person} {auction} {bid}")
}

/// Run every statement of `sql`; rows read by the sources and rows
/// produced (written by INSERTs, returned by queries).
async fn execute_all(session: &Session, sql: &str) -> anyhow::Result<(u64, u64)> {
    let (mut rows_in, mut rows_out) = (0, 0);
    for stmt in session.parse(sql, None)? {
        // An updating INSERT counts the rows its changes leave, to compare
        // with the batch result.
        let (summary, rows) = match session.execute(&stmt).await? {
            StatementResult::Insert(h) => {
                let s = h.wait().await?;
                let rows = s.result_rows.max(0) as u64;
                (s, rows)
            }
            StatementResult::Query(h) => {
                let s = h.collect().await?.1;
                let rows = s.rows_out;
                (s, rows)
            }
            _ => continue,
        };
        if let Some(c) = &summary.checkpoints {
            let last = c.last.as_ref();
            eprintln!(
                "checkpoints: {} completed, {} failed; the last took {} ms and wrote {} B; \
                 the longest took {} ms, the largest wrote {} B",
                c.completed,
                c.failed,
                last.map_or(0, |l| l.duration.as_millis()),
                last.map_or(0, |l| l.bytes),
                c.longest.as_millis(),
                c.largest
            );
        }
        rows_in += summary.rows_in;
        rows_out += rows;
    }
    Ok((rows_in, rows_out))
}

/// Child process: one streaming query, or the batch reference
/// (`source` = `batch`). Prints one line: `events rows cpu_s wall_s
/// rss_mib` (`rows`: rows of the query's result).
async fn run_one(args: &Args, query: &str, source: &str) -> anyhow::Result<()> {
    let session = Session::new();
    let parallelism = args.max_parallelism();
    session
        .settings()
        .set("parallelism", &parallelism.to_string())?;
    if source == "batch" {
        let sql = batch::batch_sql(query).ok_or_else(|| anyhow!("no batch form of {query}"))?;
        execute_all(&session, &tables_ddl("gen", args.events, &args.csv)).await?;
        let mut tables = Vec::new();
        let mut events = 0;
        for table in batch::tables(query) {
            let stmts = session.parse(&format!("SELECT * FROM {table}"), None)?;
            let StatementResult::Query(h) = session.execute(&stmts[0]).await? else {
                bail!("loading {table} did not give rows");
            };
            let (rows, _) = h.collect().await?;
            events += rows.iter().map(|b| b.num_rows()).sum::<usize>();
            tables.push((*table, rows));
        }
        let (rows, cpu, wall) = batch::run(tables, sql, parallelism).await?;
        println!("{events} {rows} {cpu} {wall} {}", peak_rss_mib());
        return Ok(());
    }
    let text = if source == "kafka" && kafka::is_baseline(query) {
        return kafka::consume(args, query == "decode");
    } else if source == "kafka" {
        kafka::sql(args, query)?
    } else if source == "json" && json::is_baseline(query) {
        return json::baseline(args, query);
    } else {
        let text =
            std::fs::read_to_string(repo_root().join(format!("benches/nexmark/{query}.sql")))
                .with_context(|| format!("query {query}"))?;
        execute_all(&session, &tables_ddl(source, args.events, &args.csv)).await?;
        text
    };
    let checkpoints = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
    if let Some(ms) = args.checkpoint {
        let mut s = session.settings();
        s.set("execution.checkpointing.interval", &format!("{ms} ms"))?;
        s.set("state.checkpoints.dir", &checkpoints.display().to_string())?;
    }
    let cpu = cpu_seconds();
    let started = Instant::now();
    let (events, rows) = execute_all(&session, &text).await?;
    print_measured(events, rows, cpu, started);
    let _ = std::fs::remove_dir_all(&checkpoints);
    Ok(())
}

/// Write the generator's bids to a CSV file (once per event count).
async fn make_csv(args: &Args) -> anyhow::Result<()> {
    // The marker holds the event count the file was written for.
    let marker = args.csv.with_extension("done");
    let events = args.events.to_string();
    if std::fs::read_to_string(&marker).is_ok_and(|e| e == events) {
        return Ok(());
    }
    eprintln!(
        "writing {} bids of {} events ...",
        args.csv.display(),
        args.events
    );
    // The filesystem sink adds part files to a directory: start empty, so
    // bids of another event count are not read too.
    if args.csv.is_dir() {
        std::fs::remove_dir_all(&args.csv)?;
    } else if args.csv.exists() {
        std::fs::remove_file(&args.csv)?;
    }
    let session = Session::new();
    let sql = format!(
        "{} CREATE TABLE bid_csv (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, \
         url STRING, dateTime TIMESTAMP(3), extra STRING) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'); \
         INSERT INTO bid_csv SELECT * FROM bid;",
        tables_ddl("gen", args.events, &args.csv),
        args.csv.display()
    );
    execute_all(&session, &sql).await?;
    std::fs::write(marker, events)?;
    Ok(())
}

#[derive(Clone, Copy)]
pub(crate) struct Measured {
    events: f64,
    /// Rows of the query's result.
    rows: u64,
    cpu: f64,
    wall: f64,
    rss: f64,
}

pub(crate) fn measure(
    args: &Args,
    query: &str,
    source: &str,
    parallelism: usize,
) -> anyhow::Result<Measured> {
    let out = Command::new(std::env::current_exe()?)
        .args(["--one", query, source, "--events", &args.events.to_string()])
        .args(["--csv", &args.csv.display().to_string()])
        .args(["--parallelism", &parallelism.to_string()])
        .args(
            [("--kafka", &args.kafka), ("--topic", &args.topic)]
                .into_iter()
                .filter_map(|(flag, v)| Some([flag, v.as_deref()?]))
                .flatten(),
        )
        .output()?;
    if !out.status.success() {
        bail!(
            "{query} over {source} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let parse = || -> Option<Measured> {
        let mut it = text.split_whitespace();
        let measured = Measured {
            events: it.next()?.parse().ok()?,
            rows: it.next()?.parse().ok()?,
            cpu: it.next()?.parse().ok()?,
            wall: it.next()?.parse().ok()?,
            rss: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(measured)
    };
    parse().ok_or_else(|| anyhow!("unexpected output from {query} over {source}: {text}"))
}

/// mimalloc reuses freed batch memory instead of returning it to the OS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transparent huge pages off for this process, as `sluice` has them:
/// zeroing and compacting 2 MiB pages on first touch cost up to half of a
/// growing-state query's CPU, more than the TLB saves (docs/performance.md,
/// "Huge pages").
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}

/// Errors are one line on stderr (with their causes), never a backtrace.
fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sluice-bench: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.one.is_some() || args.latency.is_some() || args.view_latency.is_some() {
        // As `sluice` runs; not for the peers this process starts.
        no_huge_pages();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some((q, source)) = &args.one {
        return runtime.block_on(run_one(args, q, source));
    }
    if let Some(seconds) = args.latency {
        return runtime.block_on(latency::run(seconds, args.max_parallelism()));
    }
    if let Some(seconds) = args.view_latency {
        return runtime.block_on(latency::run_view(seconds, args.max_parallelism()));
    }
    if args.kafka.is_some() && !args.workers.is_empty() {
        let partitions = workers::PARTITIONS;
        runtime.block_on(kafka::prepare(args, partitions))?;
        baselines::compare(args, "kafka", &["load"], |_| {
            runtime.block_on(kafka::trail(args, partitions))
        })?;
        return workers::run(args);
    }
    if args.kafka.is_some() {
        let partitions = args.max_parallelism() as i32;
        runtime.block_on(kafka::prepare(args, partitions))?;
        return baselines::compare(args, "kafka", &kafka::RUNS, |run| match run {
            "load" => runtime.block_on(kafka::trail(args, partitions)),
            _ => Ok(()),
        });
    }
    if args.json {
        runtime.block_on(json::make(args))?;
        return baselines::compare(args, "json", &json::RUNS, |_| Ok(()));
    }
    if let Some(dir) = args.csv.parent() {
        std::fs::create_dir_all(dir)?;
    }
    runtime.block_on(make_csv(args))?;
    println!(
        "{:<7} {:<9} {:>3} {:>11} {:>9} {:>8} {:>12} {:>14} {:>9} {:>9} {:>9}",
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
        "vs p=1"
    );
    let per_cpu = |m: &Measured| m.events / m.cpu.max(0.01);
    let per_s = |m: &Measured| m.events / m.wall.max(0.001);
    let mut differ = Vec::new();
    let duck_py = match args.duckdb {
        true => Some(duckdb::python(&repo_root())?),
        false => None,
    };
    let mut versus_duckdb = Vec::new();
    for q in &args.queries {
        let reference = measure(args, q, "batch", args.max_parallelism())?;
        for source in ["gen", "csv", "batch"] {
            if source == "csv" && GENERATOR_ONLY.contains(&q.as_str()) {
                continue;
            }
            let runs: Vec<(usize, Measured)> = if source == "batch" {
                vec![(args.max_parallelism(), reference)]
            } else {
                args.parallelism
                    .iter()
                    .map(|&p| Ok((p, measure(args, q, source, p)?)))
                    .collect::<anyhow::Result<_>>()?
            };
            let first = runs[0].1;
            for (p, m) in &runs {
                if m.rows != reference.rows {
                    differ.push(format!(
                        "{q} over {source} at p={p}: {} rows, batch {}",
                        m.rows, reference.rows
                    ));
                }
                println!(
                    "{q:<7} {source:<9} {p:>3} {:>11.0} {:>9} {:>8.2} {:>12.0} {:>14.0} {:>9.0} {:>8.2}x {:>8.2}x",
                    m.events,
                    m.rows,
                    m.wall,
                    per_s(m),
                    per_cpu(m),
                    m.rss,
                    per_cpu(m) / per_cpu(&reference),
                    per_s(m) / per_s(&first),
                );
            }
            if let (Some(py), "csv", Some(_)) = (&duck_py, source, duckdb::sql(q)) {
                let threads = args.max_parallelism();
                let (events, rows, cpu, wall) = duckdb::run(py, &args.csv, q, threads)?;
                let d = Measured {
                    events,
                    rows,
                    cpu,
                    wall,
                    rss: 0.0,
                };
                if d.rows != reference.rows {
                    differ.push(format!(
                        "{q} in DuckDB: {} rows, batch {}",
                        d.rows, reference.rows
                    ));
                }
                println!(
                    "{q:<7} {:<9} {threads:>3} {:>11.0} {:>9} {:>8.2} {:>12.0} {:>14.0} {:>9} {:>8.2}x {:>9}",
                    "duckdb",
                    d.events,
                    d.rows,
                    d.wall,
                    per_s(&d),
                    per_cpu(&d),
                    "-",
                    per_cpu(&d) / per_cpu(&reference),
                    "-",
                );
                let ratios: Vec<String> = runs
                    .iter()
                    .map(|(p, m)| format!("p={p} {:.2}x", per_cpu(m) / per_cpu(&d)))
                    .collect();
                versus_duckdb.push(format!("{q}: {}", ratios.join(", ")));
            }
        }
    }
    if !versus_duckdb.is_empty() {
        println!(
            "\nSluice over the CSV file vs DuckDB over the same file, events per CPU-second:\n  {}",
            versus_duckdb.join("\n  ")
        );
    }
    if !differ.is_empty() {
        bail!(
            "results differ from the batch reference:\n{}",
            differ.join("\n")
        );
    }
    Ok(())
}
