//! `--kafka BOOTSTRAP --workers 1,2,3`: one keyed job over the bids topic
//! run by 1, 2, 3 `sluice worker` processes on this machine (they share
//! its cores, and the broker's). With one worker nothing crosses a topic;
//! with more, every bid crosses the GROUP BY's repartition topic once, so
//! the CPU a worker run spends beyond the single process's, per bid, is
//! the cost of a row through a repartition topic (writer, broker, reader).
//! Prints records, wall seconds, records/s, the workers' CPU seconds
//! (with the broker's, given `--broker-pid`) and records per CPU-second.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::proc_stats::{children_cpu_seconds, cpu_seconds_of};
use crate::Args;

/// Partitions of the topic: an even share for 1, 2 and 3 workers.
pub const PARTITIONS: i32 = 6;

/// Records in the topic (its partitions' end offsets).
fn records(args: &Args) -> anyhow::Result<i64> {
    let bootstrap = args.kafka.as_deref().ok_or_else(|| anyhow!("no --kafka"))?;
    let topic = args.topic.as_deref().ok_or_else(|| anyhow!("no --topic"))?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let mut total = 0;
    for p in 0..PARTITIONS {
        let (lo, hi) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        total += hi - lo;
    }
    Ok(total)
}

/// The job: bids per auction (an updating GROUP BY), into a blackhole.
fn job(args: &Args, n: usize) -> anyhow::Result<String> {
    Ok(format!(
        "SET 'parallelism' = '1';\nSET 'pipeline.name' = '{}-{n}w';\n{}\n\
         CREATE TABLE per_auction (auction BIGINT, bids BIGINT, total BIGINT) \
           WITH ('connector' = 'blackhole');\n\
         INSERT INTO per_auction SELECT auction, COUNT(*), SUM(price) FROM bid \
           GROUP BY auction;\n",
        args.topic.as_deref().unwrap_or("bench"),
        crate::kafka::bid_ddl(args)?
    ))
}

/// Run the job with each count of workers; prints one line per count.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let sluice = std::env::current_exe()?
        .parent()
        .map(|d| d.join("sluice"))
        .ok_or_else(|| anyhow!("no folder of sluice-bench"))?;
    if !sluice.exists() {
        bail!(
            "{} is missing: build it (cargo build --release -p sluice)",
            sluice.display()
        );
    }
    let records = records(args)?;
    println!(
        "{:<8} {:>10} {:>8} {:>12} {:>12} {:>12} {:>14}",
        "workers", "records", "wall_s", "records/s", "workers_cpu", "broker_cpu", "rec/cpu_s"
    );
    for &n in &args.workers {
        let file = std::env::temp_dir().join(format!("sluice-bench-workers-{n}.sql"));
        std::fs::write(&file, job(args, n)?)?;
        let (cpu, broker) = (children_cpu_seconds(), args.broker_pid.map(cpu_seconds_of));
        let started = Instant::now();
        let children = (0..n)
            .map(|i| {
                Command::new(&sluice)
                    .args(["worker", "--job"])
                    .arg(&file)
                    .args(["--workers", &n.to_string(), "--index", &i.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .context("starting a worker")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (i, c) in children.into_iter().enumerate() {
            let out = c.wait_with_output()?;
            if !out.status.success() {
                bail!(
                    "worker {i} of {n} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu = children_cpu_seconds() - cpu;
        let broker = args
            .broker_pid
            .zip(broker)
            .map(|(pid, before)| cpu_seconds_of(pid) - before);
        let total = cpu + broker.unwrap_or(0.0);
        println!(
            "{n:<8} {records:>10} {wall:>8.2} {:>12.0} {cpu:>12.2} {:>12} {:>14.0}",
            records as f64 / wall,
            broker.map_or("-".to_string(), |b| format!("{b:.2}")),
            records as f64 / total
        );
        let _ = std::fs::remove_file(&file);
    }
    Ok(())
}
