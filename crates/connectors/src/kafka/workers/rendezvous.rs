//! How the workers of one run find each other: through the job's control
//! topic (`<pipeline.name>-workers`, one partition).
//!
//! Each worker notes the topic's end, appends a hello (its index, the
//! number of workers, a fresh random nonce and the fingerprint of its
//! plan), repeated every second while it waits, and reads from that end
//! on. A worker that has read a hello from
//! every index (its own among them) appends a *go* listing the nonces by
//! index; one that reads a go holding its own nonce takes that list. The
//! run id is a hash of the list, so every worker of the run has the same
//! one, and records an earlier run left in the repartition topics (whose
//! nonces differ) are skipped. A hello whose worker count or plan differs
//! is an error naming that worker, which the worker that saw it appends
//! as a refusal so the other one stops too. Writers write only once their worker
//! has the run id, which needs every hello, so a reader that noted the
//! topics' ends before its own hello misses no record of the run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use sluice_common::{Error, Result};

use super::WorkerConfig;

/// How long one metadata or offsets request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a waiting worker says hello again.
const REANNOUNCE: Duration = Duration::from_secs(1);

/// A fresh random number (the run's nonces).
pub(super) fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// The run id of the nonces of workers 0, 1, ... (FNV-1a: the same in
/// every process).
fn run_id(nonces: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for n in nonces {
        for b in n.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Meet the other workers of `cfg`'s job (whose plan has fingerprint
/// `plan`); returns the run id and every worker's nonce, by index.
/// Blocking: call from a blocking thread.
pub(super) fn rendezvous(cfg: &WorkerConfig, plan: &str, mine: u64) -> Result<(u64, Vec<u64>)> {
    let topic = cfg.control_topic();
    let consumer: BaseConsumer = cfg.client()?;
    let (_, end) = consumer
        .fetch_watermarks(&topic, 0, REQUEST_TIMEOUT)
        .map_err(|e| cfg.error(&format!("cannot read the end of {topic}"), &e))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(end))
        .map_err(|e| cfg.error("control topic", &e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| cfg.error("control topic", &e))?;
    let hello = json!({"hello": {
        "worker": cfg.index,
        "workers": cfg.count,
        "nonce": mine.to_string(),
        "plan": plan,
    }});
    append(cfg, &hello)?;
    let mut announced = Instant::now();
    let deadline = announced + cfg.start_timeout;
    let mut hellos: BTreeMap<usize, u64> = BTreeMap::new();
    loop {
        // Say hello again while waiting: a worker that started later reads
        // from its own start on.
        if announced.elapsed() >= REANNOUNCE {
            append(cfg, &hello)?;
            announced = Instant::now();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let missing: Vec<String> = (0..cfg.count)
                .filter(|i| !hellos.contains_key(i))
                .map(|i| i.to_string())
                .collect();
            return Err(Error::external(
                "kafka",
                format!(
                    "job '{}': worker(s) {} of {} did not start within {:?} (each worker runs \
                     `sluice worker --job <file> --workers {} --index <i>`)",
                    cfg.pipeline,
                    missing.join(", "),
                    cfg.count,
                    cfg.start_timeout,
                    cfg.count
                ),
            ));
        }
        let Some(msg) = consumer.poll(left.min(Duration::from_millis(200))) else {
            continue;
        };
        let msg = msg.map_err(|e| cfg.error("reading the control topic", &e))?;
        let Some(value) = msg
            .payload()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        else {
            continue;
        };
        if let Some(h) = value.get("hello") {
            let (worker, nonce) = match check_hello(cfg, plan, h) {
                Ok(found) => found,
                Err(e) => {
                    // Tell the other worker too, then give up.
                    let refusal =
                        json!({"refuse": {"nonce": mine.to_string(), "reason": e.to_string()}});
                    let _ = append(cfg, &refusal);
                    return Err(e);
                }
            };
            hellos.insert(worker, nonce);
            let nonces: Vec<u64> = hellos.values().copied().collect();
            if hellos.len() == cfg.count && hellos.get(&cfg.index) == Some(&mine) {
                let list: Vec<String> = nonces.iter().map(u64::to_string).collect();
                append(cfg, &json!({"go": list}))?;
                return Ok((run_id(&nonces), nonces));
            }
        } else if let Some(r) = value.get("refuse") {
            let theirs = r.get("nonce").and_then(Value::as_str).unwrap_or("");
            if theirs != mine.to_string() {
                let reason = r.get("reason").and_then(Value::as_str).unwrap_or("");
                return Err(Error::plan(format!(
                    "another worker refused to run with this one: {reason}"
                )));
            }
        } else if let Some(list) = value.get("go").and_then(Value::as_array) {
            let nonces: Vec<u64> = list
                .iter()
                .filter_map(|n| n.as_str().and_then(|s| s.parse().ok()))
                .collect();
            if nonces.len() == cfg.count && nonces.get(cfg.index) == Some(&mine) {
                return Ok((run_id(&nonces), nonces));
            }
        }
    }
}

/// A hello's worker index and nonce, checked against this worker's job.
fn check_hello(cfg: &WorkerConfig, plan: &str, h: &Value) -> Result<(usize, u64)> {
    let field = |k: &str| h.get(k);
    let worker = field("worker").and_then(Value::as_u64).unwrap_or(u64::MAX) as usize;
    let workers = field("workers").and_then(Value::as_u64).unwrap_or(0) as usize;
    let nonce = field("nonce")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let theirs = field("plan").and_then(Value::as_str).unwrap_or("");
    if workers != cfg.count || worker >= cfg.count {
        return Err(Error::plan(format!(
            "job '{}': worker {worker} was started as one of {workers} workers, this one as \
             worker {} of {}: start every worker with the same --workers",
            cfg.pipeline, cfg.index, cfg.count
        )));
    }
    if theirs != plan {
        return Err(Error::plan(format!(
            "job '{}': worker {worker} planned a different query (plan fingerprint {theirs}, \
             this worker's {plan}): every worker must run the same statements with the same \
             settings",
            cfg.pipeline
        )));
    }
    Ok((worker, nonce))
}

/// Append `value` to the control topic and wait for its delivery.
fn append(cfg: &WorkerConfig, value: &Value) -> Result<()> {
    let topic = cfg.control_topic();
    let producer: BaseProducer = cfg
        .producer_config()
        .create()
        .map_err(|e| cfg.error("producer", &e))?;
    let bytes = value.to_string();
    producer
        .send(BaseRecord::<(), _>::to(&topic).partition(0).payload(&bytes))
        .map_err(|(e, _)| cfg.error(&format!("writing to {topic}"), &e))?;
    producer
        .flush(REQUEST_TIMEOUT)
        .map_err(|e| cfg.error(&format!("writing to {topic}"), &e))
}

/// Read the control topic from `start` on, until aborted: a hello from a
/// worker whose nonce is not among the run's `nonces` means that worker
/// started again; say which through `restarted`.
pub(super) async fn watch_restarts(
    cfg: WorkerConfig,
    start: i64,
    nonces: Vec<u64>,
    restarted: tokio::sync::watch::Sender<Option<usize>>,
) -> Result<()> {
    use futures::StreamExt;
    let consumer = cfg.reading(&cfg.control_topic(), 0, start)?;
    let mut stream = consumer.stream();
    while let Some(msg) = stream.next().await {
        let Ok(msg) = msg else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Some(h) = msg
            .payload()
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
            .and_then(|v| v.get("hello").cloned())
        else {
            continue;
        };
        let nonce = h
            .get("nonce")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok());
        let worker = h.get("worker").and_then(Value::as_u64);
        if let (Some(n), Some(w)) = (nonce, worker) {
            if !nonces.contains(&n) {
                let _ = restarted.send(Some(w as usize));
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_depend_on_every_nonce_and_their_order() {
        let a = run_id(&[1, 2, 3]);
        assert_eq!(a, run_id(&[1, 2, 3]));
        assert_ne!(a, run_id(&[1, 2, 4]));
        assert_ne!(a, run_id(&[2, 1, 3]));
        assert_ne!(nonce(), nonce());
    }
}
