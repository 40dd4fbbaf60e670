//! Session commands: `SET`, `RESET`, `SHOW JOBS`, `STOP JOB`,
//! `SHOW CREATE TABLE`.

use datafusion::datasource::ViewTable;
use sluice_common::{Error, Result};
use sluice_sql::commands::SessionCommand;
use sluice_sql::table::StreamTable;

use crate::session::{Session, StatementResult};
use crate::show::{lines_result, string_rows};

impl Session {
    pub(crate) async fn run_command(&self, cmd: &SessionCommand) -> Result<StatementResult> {
        match cmd {
            SessionCommand::Set(None) => {
                let rows = self
                    .settings()
                    .all()
                    .into_iter()
                    .map(|(k, v, help)| vec![k, v, help])
                    .collect();
                string_rows(&["key", "value", "meaning"], rows)
            }
            SessionCommand::Set(Some((key, value))) => {
                let key = self.settings().set(key, value)?;
                let value = self.settings().get(key)?;
                Ok(StatementResult::Done(format!("Set {key} = {value}")))
            }
            SessionCommand::Reset(key) => {
                self.settings().reset(key.as_deref())?;
                Ok(StatementResult::Done(match key {
                    Some(k) => format!("Reset {k}"),
                    None => "Reset all settings".to_string(),
                }))
            }
            SessionCommand::ShowJobs => self.show_jobs(),
            SessionCommand::ShowMaterializedViews => self.show_materialized_views(),
            SessionCommand::StopJob(id, false) => {
                self.jobs().stop(*id)?;
                Ok(StatementResult::Done(format!("Job {id} stopped")))
            }
            SessionCommand::StopJob(id, true) => {
                let (checkpoint, path) = self.jobs().stop_with_savepoint(*id).await?;
                Ok(StatementResult::Done(format!(
                    "Job {id} stopped with savepoint {checkpoint} ({}): running its INSERT again \
                     resumes from it",
                    path.display()
                )))
            }
            SessionCommand::ShowCreateTable(name) => {
                let provider = self.provider(name).await?;
                let text = if let Some(t) = provider.downcast_ref::<StreamTable>() {
                    t.show_create()
                } else if let Some(v) = provider.downcast_ref::<ViewTable>() {
                    // The stored text is the whole CREATE VIEW statement.
                    v.definition().cloned().unwrap_or_default()
                } else {
                    return Err(Error::plan(format!("{name} is not a table or view")));
                };
                lines_result("statement", vec![text])
            }
        }
    }

    fn show_jobs(&self) -> Result<StatementResult> {
        let rows = self
            .jobs()
            .list()
            .into_iter()
            .flat_map(|j| {
                let s = &j.summary;
                let state = match &j.state {
                    crate::jobs::JobState::Failed(e) => format!("FAILED: {e}"),
                    other => other.to_string(),
                };
                let workers: Vec<Vec<String>> =
                    s.workers.iter().map(|w| worker_row(j.id, w)).collect();
                std::iter::once(vec![
                    j.id.to_string(),
                    state,
                    format!("{:.1}s", s.elapsed.as_secs_f64()),
                    s.rows_in.to_string(),
                    s.rows_out.to_string(),
                    s.late_rows.to_string(),
                    format!("{} keys, {} B", s.state_keys, s.state_bytes),
                    s.watermark.display(),
                    checkpoint_cell(s.checkpoints.as_ref()),
                    j.statement,
                ])
                .chain(workers)
            })
            .collect();
        string_rows(
            &[
                "job",
                "state",
                "elapsed",
                "rows in",
                "rows out",
                "late rows",
                "state",
                "watermark",
                "last checkpoint",
                "statement",
            ],
            rows,
        )
    }
}

/// SHOW JOBS' row of worker `w` of job `job` (a job spread over workers):
/// what it last reported, and how long ago.
fn worker_row(job: u64, w: &sluice_exec::workers::WorkerStatus) -> Vec<String> {
    let parts: Vec<String> = w.lag.iter().map(|(p, _)| p.to_string()).collect();
    let lag: i64 = w.lag.iter().map(|(_, l)| l.max(&0)).sum();
    vec![
        format!("{job} worker {}", w.worker),
        format!(
            "{} ({:.1}s ago)",
            w.state.to_uppercase(),
            w.age_ms as f64 / 1000.0
        ),
        format!("{:.1}s", w.elapsed_ms as f64 / 1000.0),
        w.rows_in.to_string(),
        w.rows_out.to_string(),
        "-".into(),
        "-".into(),
        sluice_common::Watermark(w.watermark).display(),
        match w.checkpoint {
            Some((id, age)) => format!("#{id} {:.1}s ago", (age + w.age_ms) as f64 / 1000.0),
            None => "-".into(),
        },
        format!("Kafka partitions [{}], lag {lag}", parts.join(", ")),
    ]
}

/// SHOW JOBS' account of a job's checkpoints: the last one's id, age,
/// duration and size; how many failed.
pub(crate) fn checkpoint_cell(c: Option<&sluice_exec::checkpoint::CheckpointStats>) -> String {
    let Some(c) = c else {
        return "-".into();
    };
    let mut cell = match &c.last {
        Some(l) => format!(
            "#{} {:.1}s ago, took {} ms, {} B",
            l.id,
            l.at.elapsed().as_secs_f64(),
            l.duration.as_millis(),
            l.bytes
        ),
        None => match &c.restored_from {
            Some((id, _)) => format!("none yet (resumed from #{id})"),
            None => "none yet".into(),
        },
    };
    if c.failed > 0 {
        cell.push_str(&format!(", {} failed", c.failed));
    }
    cell
}
