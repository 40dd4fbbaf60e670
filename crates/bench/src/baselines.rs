//! Sluice against the baselines of one input (`--kafka`, `--json`): each
//! run in its own process, records per CPU-second of the whole process,
//! with the ratio to the input's ceiling (reading the records, no
//! decoding) and to its decoder alone (arrow-json over every column).

use anyhow::bail;

use crate::{measure, Args, Measured};

/// Run `runs` over `source` in order: an optional `load` first (at the
/// largest parallelism), then the ceiling and the decoder (at p=1), then
/// the rest — decoders at p=1, Sluice's queries at every parallelism.
/// `after(run)` is called once each run is measured. Every run's rows are
/// checked: `q2` against the batch reference, `load` against what it read,
/// the others against the ceiling's records.
pub fn compare(
    args: &Args,
    source: &str,
    runs: &[&str],
    after: impl Fn(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut names = runs.iter().filter(|r| **r != "load");
    let ceiling_name = names.next().copied().unwrap_or("-");
    let decoder_name = names.next().copied().unwrap_or("-");
    println!(
        "{:<9} {:>3} {:>11} {:>9} {:>8} {:>12} {:>14} {:>9} {:>9} {:>9}",
        "run",
        "p",
        "records",
        "rows",
        "seconds",
        "records/s",
        "records/cpu-s",
        "rss MiB",
        format!("vs {ceiling_name}"),
        format!("vs {decoder_name}"),
    );
    let reference = measure(args, "q2", "batch", args.max_parallelism())?;
    let per_cpu = |m: &Measured| m.events / m.cpu.max(0.01);
    let (mut ceiling, mut decoder) = (None, None);
    let mut differ = Vec::new();
    for &run in runs {
        let ps: Vec<usize> = match run {
            "load" => vec![args.max_parallelism()],
            r if r.starts_with('q') => args.parallelism.clone(),
            _ => vec![1],
        };
        for p in ps {
            let m = measure(args, run, source, p)?;
            after(run)?;
            if run == ceiling_name {
                ceiling = Some(m);
            } else if run == decoder_name {
                decoder = Some(m);
            }
            let want = match run {
                "q2" => reference.rows,
                "load" => m.events as u64,
                _ => ceiling.map_or(0, |b| b.rows),
            };
            if m.rows != want {
                differ.push(format!("{run} at p={p}: {} rows, expected {want}", m.rows));
            }
            let ratio = |base: Option<Measured>| {
                base.map_or("-".to_string(), |b| {
                    format!("{:.2}x", per_cpu(&m) / per_cpu(&b))
                })
            };
            println!(
                "{run:<9} {p:>3} {:>11.0} {:>9} {:>8.2} {:>12.0} {:>14.0} {:>9.0} {:>9} {:>9}",
                m.events,
                m.rows,
                m.wall,
                m.events / m.wall.max(0.001),
                per_cpu(&m),
                m.rss,
                ratio(ceiling),
                ratio(decoder),
            );
        }
    }
    if !differ.is_empty() {
        bail!("unexpected row counts:\n{}", differ.join("\n"));
    }
    Ok(())
}
