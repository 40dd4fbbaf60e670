//! Each worker's status, shared through the job's status topic
//! (`<pipeline.name>-status`, one partition): every worker appends its
//! own about once a second and reads everyone's, so `SHOW JOBS` on any
//! worker shows them all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use sluice_common::Result;
use sluice_exec::workers::WorkerStatus;

use super::WorkerConfig;

/// The latest status of each worker of the run, and when it came.
pub(super) type Latest = Arc<Mutex<BTreeMap<usize, (WorkerStatus, Instant)>>>;

/// Append `status` of run `run` (the delivery is not awaited: a lost
/// status is followed by the next).
pub(super) fn publish(producer: &FutureProducer, topic: &str, run: u64, status: &WorkerStatus) {
    let lag: Vec<Value> = status.lag.iter().map(|(p, l)| json!([p, l])).collect();
    let value = json!({
        "run": run.to_string(),
        "worker": status.worker,
        "state": status.state,
        "elapsed_ms": status.elapsed_ms,
        "rows_in": status.rows_in,
        "rows_out": status.rows_out,
        "watermark": status.watermark,
        "lag": lag,
        "checkpoint": status.checkpoint.map(|(id, age)| json!([id, age])),
    })
    .to_string();
    let record = FutureRecord::<(), str>::to(topic)
        .partition(0)
        .payload(&value);
    let _ = producer.send_result(record);
}

/// A status record of run `run`, if `bytes` is one.
fn parse(bytes: &[u8], run: u64) -> Option<WorkerStatus> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    if v.get("run")?.as_str()? != run.to_string() {
        return None;
    }
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let lag = v
        .get("lag")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let p = e.get(0)?.as_i64()? as i32;
                    Some((p, e.get(1)?.as_i64()?))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(WorkerStatus {
        worker: n("worker") as usize,
        state: v.get("state")?.as_str()?.to_string(),
        elapsed_ms: n("elapsed_ms"),
        rows_in: n("rows_in"),
        rows_out: n("rows_out"),
        watermark: v
            .get("watermark")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MIN),
        lag,
        checkpoint: v
            .get("checkpoint")
            .and_then(|c| Some((c.get(0)?.as_u64()?, c.get(1)?.as_u64()?))),
        age_ms: 0,
    })
}

/// Read the status topic from `start` on, keeping the latest status of
/// each worker of run `run` in `latest`, until aborted.
pub(super) async fn follow(cfg: WorkerConfig, start: i64, run: u64, latest: Latest) -> Result<()> {
    let consumer = cfg.reading(&cfg.status_topic(), 0, start)?;
    let mut stream = consumer.stream();
    while let Some(msg) = stream.next().await {
        let Ok(msg) = msg else {
            // The broker is away: librdkafka reconnects; try again soon.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if let Some(s) = msg.payload().and_then(|p| parse(p, run)) {
            let mut l = latest.lock().unwrap_or_else(|p| p.into_inner());
            l.insert(s.worker, (s, Instant::now()));
        }
    }
    Ok(())
}

/// The statuses in `latest`, with their ages.
pub(super) fn read(latest: &Latest) -> Vec<WorkerStatus> {
    let l = latest.lock().unwrap_or_else(|p| p.into_inner());
    l.values()
        .map(|(s, at)| WorkerStatus {
            age_ms: at.elapsed().as_millis() as u64,
            ..s.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_other_runs_are_ignored() {
        let v = json!({"run": "7", "worker": 2, "state": "running", "elapsed_ms": 1500,
            "rows_in": 10, "rows_out": 4, "watermark": 99, "lag": [[1, 5], [3, 0]],
        "checkpoint": [12, 300]});
        let bytes = v.to_string();
        let s = parse(bytes.as_bytes(), 7).expect("a status");
        assert_eq!((s.worker, s.rows_in, s.watermark), (2, 10, 99));
        assert_eq!(s.lag, vec![(1, 5), (3, 0)]);
        assert_eq!(s.checkpoint, Some((12, 300)));
        assert!(parse(bytes.as_bytes(), 8).is_none());
        assert!(parse(b"not json", 7).is_none());
    }
}
