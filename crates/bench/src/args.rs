//! `sluice-bench`'s command line.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};

use crate::QUERIES;

pub const USAGE: &str = "\
sluice-bench: the Nexmark queries over the generator and a CSV file of the same bids,
each in its own process, with events/s, events per CPU-second, peak memory and the
ratio to DataFusion computing the same result in batch.

Usage: sluice-bench [OPTIONS]

Options:
  --events N            events to generate (default 1000000)
  --queries q0,q5,...   queries to run (default: all of benches/nexmark/)
  --csv PATH            the CSV file of bids (default target/nexmark-bids.csv)
  --parallelism 1,2     parallelisms to measure at (default: 1 and the cores)
  --latency SECONDS     measure window-emit latency at 100K events/s instead
  --view-latency SECONDS
                        measure latency into a materialized view at 100K events/s instead
  --duckdb              also run DuckDB over the same CSV file (q0, q1, q2, tumble, hop)
                        and print Sluice's ratio to it; installs PyPI duckdb into
                        target/duckdb-venv unless SLUICE_DUCKDB_PYTHON names a Python
  --kafka BOOTSTRAP     instead: load the bids into a new topic of the broker at
                        BOOTSTRAP and compare Sluice reading it (q0, q2 into a blackhole,
                        q1 into another topic) with a bare rdkafka consumer, and with that
                        consumer decoding every record with arrow-json
  --workers 1,2,3       with --kafka: instead, load the bids into a 6-partition topic and
                        run bids per auction (GROUP BY) with that many `sluice worker`
                        processes each (target/release/sluice); --broker-pid PID adds
                        the broker's CPU
  --json                instead: write the bids as a JSON-lines file and compare Sluice
                        reading it (q0, q2) with reading its bytes, arrow-json decoding all
                        columns, and arrow-json decoding only q2's two
  --one QUERY gen|csv|kafka|json
                        run one query in this process
  --checkpoint MS       with --one: checkpoint every MS milliseconds
  -h, --help            print this help
";

/// What `sluice-bench` was asked to do.
pub enum Parsed {
    Run(Box<Args>),
    Help,
}

pub struct Args {
    pub events: u64,
    pub queries: Vec<String>,
    pub csv: PathBuf,
    /// Parallelisms to measure at; the child process gets one.
    pub parallelism: Vec<usize>,
    pub one: Option<(String, String)>,
    pub latency: Option<u64>,
    pub view_latency: Option<u64>,
    /// Also measure DuckDB over the CSV file.
    pub duckdb: bool,
    /// Checkpoint every this many milliseconds (`--one` runs).
    pub checkpoint: Option<u64>,
    /// Kafka bootstrap servers: measure reading a topic instead.
    pub kafka: Option<String>,
    /// The topic of the bids (the parent names it).
    pub topic: Option<String>,
    /// Measure reading a JSON-lines file of the bids instead.
    pub json: bool,
    /// With `kafka`: run a keyed job with these many workers instead.
    pub workers: Vec<usize>,
    /// The broker's process, whose CPU the workers comparison adds.
    pub broker_pid: Option<u32>,
}

pub fn parse_args() -> anyhow::Result<Parsed> {
    let mut args = Args {
        events: 1_000_000,
        queries: QUERIES.iter().map(|q| q.to_string()).collect(),
        csv: PathBuf::from("target/nexmark-bids.csv"),
        parallelism: {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            if cores > 1 {
                vec![1, cores]
            } else {
                vec![1]
            }
        },
        one: None,
        latency: None,
        view_latency: None,
        duckdb: false,
        checkpoint: None,
        kafka: None,
        topic: None,
        json: false,
        workers: vec![],
        broker_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--events" => args.events = value()?.parse().context("--events")?,
            "--queries" => args.queries = value()?.split(',').map(str::to_string).collect(),
            "--csv" => args.csv = PathBuf::from(value()?),
            "--parallelism" => {
                args.parallelism = value()?
                    .split(',')
                    .map(|p| p.trim().parse::<usize>().context("--parallelism"))
                    .collect::<anyhow::Result<_>>()?;
                if args.parallelism.is_empty() || args.parallelism.contains(&0) {
                    bail!("--parallelism takes numbers from 1 up, e.g. 1,2");
                }
            }
            "--one" => {
                let q = value()?;
                let source = value()?;
                args.one = Some((q, source));
            }
            "--latency" => args.latency = Some(value()?.parse().context("--latency")?),
            "--view-latency" => {
                args.view_latency = Some(value()?.parse().context("--view-latency")?)
            }
            "--checkpoint" => args.checkpoint = Some(value()?.parse().context("--checkpoint")?),
            "--duckdb" => args.duckdb = true,
            "--kafka" => args.kafka = Some(value()?),
            "--topic" => args.topic = Some(value()?),
            "--json" => args.json = true,
            "--workers" => {
                args.workers = value()?
                    .split(',')
                    .map(|p| p.trim().parse::<usize>().context("--workers"))
                    .collect::<anyhow::Result<_>>()?;
                if args.workers.contains(&0) {
                    bail!("--workers takes numbers from 1 up, e.g. 1,2,3");
                }
            }
            "--broker-pid" => args.broker_pid = Some(value()?.parse().context("--broker-pid")?),
            "-h" | "--help" => return Ok(Parsed::Help),
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    if !args.workers.is_empty() && args.kafka.is_none() {
        bail!("--workers runs over a Kafka topic: give --kafka BOOTSTRAP too");
    }
    if args.kafka.is_some() && args.topic.is_none() {
        args.topic = Some(format!("sluice-bench-{}", std::process::id()));
    }
    Ok(Parsed::Run(Box::new(args)))
}

impl Args {
    pub fn max_parallelism(&self) -> usize {
        self.parallelism.iter().copied().max().unwrap_or(1)
    }
}
