//! `--json`: Sluice reading the bids from a JSON-lines file (written once
//! by a Sluice job, as the CSV file is), against reading the file's bytes
//! (`read`: the ceiling), arrow-json decoding every column (`decode`: the
//! decoder alone) and arrow-json decoding only q2's two columns
//! (`decode-q2`: a projection-only decode). Each runs in its own process.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use sluice_engine::Session;

use crate::baselines::Decoding;
use crate::proc_stats::{cpu_seconds, print_measured};
use crate::{execute_all, tables_ddl, Args};

/// What the JSON comparison runs, in order.
pub const RUNS: [&str; 5] = ["read", "decode", "decode-q2", "q0", "q2"];

/// The directory of the JSON part files, beside the CSV file.
pub fn path(csv: &Path) -> PathBuf {
    csv.with_extension("jsonl")
}

/// Whether `run` is a baseline (not a Sluice query).
pub fn is_baseline(run: &str) -> bool {
    matches!(run, "read" | "decode" | "decode-q2")
}

/// Write the generator's bids as JSON lines (once per event count).
pub async fn make(args: &Args) -> anyhow::Result<()> {
    let dir = path(&args.csv);
    let marker = args.csv.with_extension("jsonl-done");
    let events = args.events.to_string();
    if std::fs::read_to_string(&marker).is_ok_and(|e| e == events) {
        return Ok(());
    }
    eprintln!("writing {} ...", dir.display());
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let sql = format!(
        "{} CREATE TABLE bid_json (auction BIGINT, bidder BIGINT, price BIGINT, \
         channel STRING, url STRING, dateTime TIMESTAMP(3), extra STRING) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json'); \
         INSERT INTO bid_json SELECT * FROM bid;",
        tables_ddl("gen", args.events, &args.csv),
        dir.display()
    );
    execute_all(&Session::new(), &sql).await?;
    std::fs::write(marker, events)?;
    Ok(())
}

/// Child: one baseline over the file; prints the measured line.
pub fn baseline(args: &Args, run: &str) -> anyhow::Result<()> {
    let cpu = cpu_seconds();
    let started = Instant::now();
    let schema = crate::kafka::bid_schema();
    let schema = match run {
        "decode-q2" => schema.project(&[0, 2])?,
        _ => schema,
    };
    let mut decoder = match run {
        "read" => None,
        _ => Some(Decoding::new(schema, 8192)?),
    };
    let dir = path(&args.csv);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "{} (run sluice-bench --json once to write it)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    let mut records = 0u64;
    let mut block = vec![0u8; 1 << 20];
    for f in files {
        let mut file = std::fs::File::open(&f)?;
        loop {
            let n = file.read(&mut block)?;
            if n == 0 {
                break;
            }
            records += block[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            if let Some(d) = decoder.as_mut() {
                d.feed(&block[..n])?;
            }
        }
    }
    if let Some(d) = decoder {
        d.finish(records)?;
    }
    print_measured(records, records, cpu, started);
    Ok(())
}
