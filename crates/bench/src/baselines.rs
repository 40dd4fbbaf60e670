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

/// arrow-json decoding a baseline's records (the decoder alone), counting
/// the rows it makes.
pub struct Decoding {
    decoder: arrow::json::reader::Decoder,
    rows: u64,
}

impl Decoding {
    /// Decode into `schema`'s columns, `batch` rows at a time.
    pub fn new(schema: arrow::datatypes::Schema, batch: usize) -> anyhow::Result<Self> {
        let decoder = arrow::json::ReaderBuilder::new(std::sync::Arc::new(schema))
            .with_batch_size(batch)
            .build_decoder()?;
        Ok(Decoding { decoder, rows: 0 })
    }

    /// Decode `bytes` (records, or pieces of them), making each batch as it
    /// fills.
    pub fn feed(&mut self, mut bytes: &[u8]) -> anyhow::Result<()> {
        while !bytes.is_empty() {
            let used = self.decoder.decode(bytes)?;
            bytes = &bytes[used..];
            if !bytes.is_empty() {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.rows += self.decoder.flush()?.map_or(0, |b| b.num_rows() as u64);
        Ok(())
    }

    /// Make the last batch; an error unless `records` rows were made.
    pub fn finish(mut self, records: u64) -> anyhow::Result<()> {
        self.flush()?;
        if self.rows != records {
            bail!("decoded {} rows of {records} records", self.rows);
        }
        Ok(())
    }
}
