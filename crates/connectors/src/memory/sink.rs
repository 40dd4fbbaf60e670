//! Writing a memory table: [`MemorySink`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use arrow::compute::cast;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::changelog;
use sluice_common::{Error, Result};
use sluice_exec::checkpoint::{CheckpointId, State};
use sluice_exec::sink::{Resume, Sink, FINAL};

use super::feed::Writing;
use super::view_state::ViewState;
use super::MemoryTable;

/// Writes results into a memory table: appends, or applies a changelog. In
/// a checkpointing job the rows become visible when the checkpoint after
/// them completes; the table records the job's last committed checkpoint,
/// from which the job resumes (in this process; a new process starts the
/// job anew, as its memory tables are new).
#[derive(Debug)]
pub struct MemorySink {
    /// The table (followers wait for its changes while the sink lives).
    table: Writing,
    /// A checkpointing job: its name, its rows since the last barrier and
    /// the rows of checkpoints not complete yet.
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    job: String,
    open: Vec<RecordBatch>,
    precommitted: VecDeque<(CheckpointId, Vec<RecordBatch>)>,
    /// Writing a materialized view: its rows in the checkpoints.
    view: Option<ViewState>,
}

impl MemorySink {
    /// A sink into `table`.
    pub fn new(table: Arc<MemoryTable>) -> Self {
        MemorySink {
            table: Writing::new(table),
            pending: None,
        }
    }

    /// `batch` (rows, or a changelog) as the table's columns.
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let ops = changelog::ops(batch).cloned();
        let data = changelog::data(batch)?;
        let cols = data
            .columns()
            .iter()
            .zip(self.table.schema.fields())
            .map(|(c, f)| cast(c, f.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let table = &self.table;
        let err = |e: arrow::error::ArrowError| {
            Error::execution(format!("INSERT INTO {}: {e}", table.name))
        };
        Ok(match ops {
            Some(ops) => {
                let schema = changelog::with_op_field(&table.schema);
                let mut cols = cols;
                cols.push(Arc::new(ops));
                RecordBatch::try_new(schema, cols).map_err(err)?
            }
            None => RecordBatch::try_new(Arc::clone(&table.schema), cols).map_err(err)?,
        })
    }
}

#[async_trait]
impl Sink for MemorySink {
    fn name(&self) -> &'static str {
        "MemorySink"
    }

    fn describe(&self) -> String {
        match &self.table.key {
            Some(k) => {
                let names: Vec<&str> = k
                    .iter()
                    .map(|&i| self.table.schema.field(i).name().as_str())
                    .collect();
                format!(
                    "MemorySink: {} (upsert on [{}])",
                    self.table.name,
                    names.join(", ")
                )
            }
            None => format!("MemorySink: {}", self.table.name),
        }
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let batch = self.conform(&batch)?;
        match &mut self.pending {
            Some(p) => {
                p.open.push(batch);
                Ok(())
            }
            None => {
                self.table.wait_room().await?;
                self.table.write(batch)
            }
        }
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    fn checkpoints(&self) -> bool {
        true
    }

    /// The job resumes from the last checkpoint whose rows the table holds
    /// (none in a new process: the job starts anew), or, writing a
    /// materialized view, whose checkpoints hold the view's rows, from the
    /// newest checkpoint (a new process restores the view from it).
    async fn prepare_checkpoints(&mut self, job: &str, _: Option<Duration>) -> Result<Resume> {
        let committed = self.table.committed(job);
        if committed == 0 && self.table.view.get().is_some() {
            return Ok(Resume::Any);
        }
        Ok(Resume::From(committed))
    }

    async fn start_checkpoints(&mut self, job: &str, restored: Option<&State>) -> Result<()> {
        let view = match (self.table.view.get(), restored) {
            (None, _) => None,
            (Some(_), None) => Some(ViewState::default()),
            (Some(_), Some(state)) => Some(ViewState::restore(&self.table, state)?),
        };
        self.pending = Some(Pending {
            job: job.to_string(),
            open: Vec::new(),
            precommitted: VecDeque::new(),
            view,
        });
        Ok(())
    }

    async fn pre_commit(&mut self, id: CheckpointId) -> Result<State> {
        let Some(p) = &mut self.pending else {
            return Ok(State::new());
        };
        p.precommitted.push_back((id, std::mem::take(&mut p.open)));
        match &mut p.view {
            Some(view) => view.checkpoint(&self.table, &p.precommitted),
            None => Ok(State::new()),
        }
    }

    async fn commit(&mut self, id: CheckpointId) -> Result<()> {
        self.commit_up_to(id, id).await
    }

    async fn commit_final(&mut self, id: CheckpointId) -> Result<()> {
        self.commit_up_to(FINAL, id).await
    }
}

impl MemorySink {
    /// Apply the rows pre-committed up to `upto`, recording `last` for the
    /// [`FINAL`] ones.
    async fn commit_up_to(&mut self, upto: CheckpointId, last: CheckpointId) -> Result<()> {
        let Some(p) = &mut self.pending else {
            return Ok(());
        };
        while p.precommitted.front().is_some_and(|(id, _)| *id <= upto) {
            let Some((id, rows)) = p.precommitted.pop_front() else {
                break;
            };
            let id = if id == FINAL { last } else { id };
            for batch in rows {
                // Followers hold the writer back batch by batch.
                self.table.wait_room().await?;
                self.table.write(batch)?;
            }
            self.table.set_committed(&p.job, id)?;
        }
        Ok(())
    }
}
