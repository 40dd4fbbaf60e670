//! Settings of a job spread over several processes (`sluice worker`).

use std::time::Duration;

use sluice_common::{Error, Result};

use super::{check_duration, check_positive, Settings, Spec};

pub(super) const SPECS: &[Spec] = &[
    Spec {
        key: "sluice.workers",
        aliases: &[],
        default: "1",
        help: "processes running each INSERT job together, each on its share of the Kafka \
               partitions, with Kafka topics between them (see docs/scale-out.md)",
        check: check_positive,
    },
    Spec {
        key: "sluice.worker.index",
        aliases: &[],
        default: "0",
        help: "which of the sluice.workers processes this one is (0, 1, ...)",
        check: check_index,
    },
    Spec {
        key: "sluice.worker.bootstrap-servers",
        aliases: &[],
        default: "unset",
        help: "the Kafka the workers meet on and exchange rows through (unset: that of the \
               first Kafka table the job reads)",
        check: check_servers,
    },
    Spec {
        key: "sluice.worker.start-timeout",
        aliases: &[],
        default: "300000 ms",
        help: "how long a worker waits for the others to start, e.g. '2 min'",
        check: check_duration,
    },
];

fn check_index(v: &str) -> std::result::Result<String, String> {
    match v.trim().parse::<usize>() {
        Ok(n) => Ok(n.to_string()),
        _ => Err("a number from 0".into()),
    }
}

fn check_servers(v: &str) -> std::result::Result<String, String> {
    match v.trim() {
        "" => Err("host:port[,host:port...]".into()),
        s => Ok(s.to_string()),
    }
}

/// How the next INSERT job is spread over workers.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// This worker's index.
    pub index: usize,
    /// Workers of the job (more than 1).
    pub count: usize,
    /// Kafka to meet on, when set.
    pub bootstrap: Option<String>,
    /// How long to wait for the others.
    pub start_timeout: Duration,
}

impl Settings {
    /// The worker settings, `None` when jobs run in this process alone.
    pub fn workers(&self) -> Result<Option<WorkerSettings>> {
        let count = self
            .value("sluice.workers")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1);
        let index = self
            .value("sluice.worker.index")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        if index >= count {
            return Err(Error::plan(format!(
                "'sluice.worker.index' is {index} but 'sluice.workers' is {count}: the index \
                 goes from 0 to {}",
                count.saturating_sub(1)
            )));
        }
        if count <= 1 {
            return Ok(None);
        }
        Ok(Some(WorkerSettings {
            index,
            count,
            bootstrap: self
                .value("sluice.worker.bootstrap-servers")
                .map(str::to_string),
            start_timeout: self
                .duration("sluice.worker.start-timeout")
                .unwrap_or(Duration::from_secs(300)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_settings_are_checked() {
        let mut s = Settings::default();
        assert!(s.workers().expect("valid").is_none());
        s.set("sluice.workers", "3").expect("count");
        s.set("sluice.worker.index", "2").expect("index");
        let w = s.workers().expect("valid").expect("workers");
        assert_eq!((w.index, w.count, w.bootstrap), (2, 3, None));
        s.set("sluice.worker.index", "3").expect("index");
        assert!(s.workers().is_err());
        assert!(s.set("sluice.workers", "0").is_err());
        assert!(s.set("sluice.worker.index", "-1").is_err());
    }
}
