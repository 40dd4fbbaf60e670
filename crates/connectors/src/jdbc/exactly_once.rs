//! Exactly-once writes in a checkpointing job: the rows of each checkpoint
//! (those between two barriers) are written in one transaction, which also
//! records the checkpoint's id in a progress table
//! (`<schema>.sluice_checkpoints`, one row per job and target table) and
//! commits only once the checkpoint is complete. A crash before that
//! commit rolls the transaction back (PostgreSQL does, when the connection
//! drops); at restart the job resumes from the checkpoint the progress
//! table names ([`Resume::From`]), so no checkpoint's rows are applied
//! twice or lost.
//!
//! While a checkpoint's transaction waits for completion, it holds the row
//! locks of what it wrote, so the next checkpoint's rows wait in memory
//! (not in a second transaction that would block on those locks) and are
//! written once the first commits — for the time a checkpoint takes to
//! complete, usually milliseconds. A broken connection fails the job: the
//! transaction's rows are gone, and the restarted job writes them again
//! from its last checkpoint.
//!
//! [`Resume::From`]: sluice_exec::sink::Resume::From

use std::collections::VecDeque;

use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};
use sluice_exec::checkpoint::CheckpointId;
use sluice_exec::sink::FINAL;
use tokio_postgres::Client;

use super::client::{connect, pg_error};
use super::sink::{execute, Failure};
use super::table::Target;
use super::writer::{reduce, statements};
use super::JdbcOptions;

/// The progress table's name within the target's schema.
const PROGRESS: &str = "sluice_checkpoints";

/// Where and how a sink writes.
pub(super) struct Destination<'a> {
    pub options: &'a JdbcOptions,
    pub target: &'a Target,
    pub key: &'a [usize],
}

impl Destination<'_> {
    fn progress(&self) -> String {
        format!("{}.{PROGRESS}", self.target.schema)
    }
}

/// The rows of one checkpoint.
#[derive(Default)]
struct Epoch {
    /// Its checkpoint, once its barrier passed.
    id: Option<CheckpointId>,
    /// Rows not yet written.
    batches: Vec<RecordBatch>,
    rows: usize,
    /// Its transaction (on its own connection), once rows were written.
    txn: Option<Client>,
}

/// The checkpoints not yet committed, oldest first; only the oldest has a
/// transaction. The last is the one rows are added to.
pub(super) struct Epochs {
    job: String,
    queue: VecDeque<Epoch>,
    /// A connection between transactions, for the next one.
    idle: Option<Client>,
}

fn fatal(e: Failure) -> Error {
    match e {
        Failure::Transient(e) => Error::External {
            system: "postgresql",
            message: format!(
                "{}; the checkpoint's transaction is lost: restart the job to resume from its \
                 last checkpoint",
                e.message()
            ),
        },
        Failure::Fatal(e) => e,
    }
}

/// The checkpoint the progress table says was committed last (0: none),
/// creating the table if needed.
pub(super) async fn committed(client: &Client, d: &Destination<'_>, job: &str) -> Result<u64> {
    let o = d.options;
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {} (job TEXT NOT NULL, sink TEXT NOT NULL, \
         checkpoint BIGINT NOT NULL, PRIMARY KEY (job, sink))",
        d.progress()
    );
    client
        .batch_execute(&create)
        .await
        .map_err(|e| pg_error(o, "could not create the progress table", &e))?;
    let row = client
        .query_opt(
            &format!(
                "SELECT checkpoint FROM {} WHERE job = $1 AND sink = $2",
                d.progress()
            ),
            &[&job, &o.table_name],
        )
        .await
        .map_err(|e| pg_error(o, "could not read the progress table", &e))?;
    Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
}

/// Forget the job's progress (a fresh start).
pub(super) async fn reset(client: &Client, d: &Destination<'_>, job: &str) -> Result<()> {
    client
        .execute(
            &format!("DELETE FROM {} WHERE job = $1 AND sink = $2", d.progress()),
            &[&job, &d.options.table_name],
        )
        .await
        .map_err(|e| pg_error(d.options, "could not reset the progress table", &e))?;
    Ok(())
}

impl Epochs {
    pub fn new(job: &str) -> Self {
        Epochs {
            job: job.to_string(),
            queue: VecDeque::from([Epoch::default()]),
            idle: None,
        }
    }

    /// Add rows to the current checkpoint; written now if it is the oldest
    /// and `flush_rows` wait.
    pub async fn write(&mut self, d: &Destination<'_>, batch: RecordBatch) -> Result<()> {
        let n = self.queue.len();
        let Some(current) = self.queue.back_mut() else {
            return Err(Error::internal("no current checkpoint"));
        };
        current.rows += batch.num_rows();
        current.batches.push(batch);
        if n == 1 && current.rows >= d.options.flush_rows {
            self.flush_oldest(d).await?;
        }
        Ok(())
    }

    /// Whether rows wait that may be written now (the interval flush).
    pub fn can_flush(&self) -> bool {
        self.queue.len() == 1 && self.queue.front().is_some_and(|e| e.rows > 0)
    }

    /// Write the oldest checkpoint's waiting rows into its transaction.
    pub async fn flush_oldest(&mut self, d: &Destination<'_>) -> Result<()> {
        let Some(epoch) = self.queue.front_mut() else {
            return Ok(());
        };
        if epoch.batches.is_empty() {
            return Ok(());
        }
        if epoch.txn.is_none() {
            epoch.txn = Some(begin(d, self.idle.take()).await?);
        }
        let Some(client) = epoch.txn.as_ref() else {
            return Err(Error::internal("transaction missing"));
        };
        let batches = std::mem::take(&mut epoch.batches);
        epoch.rows = 0;
        let reduced = reduce(&batches, d.key)?;
        let stmts = statements(
            d.target,
            &batches,
            &reduced,
            super::sink::ROWS_PER_STATEMENT,
        )?;
        execute(client, d.options, &stmts).await.map_err(fatal)
    }

    /// The barrier of checkpoint `id` passed: its rows are complete.
    pub async fn pre_commit(&mut self, d: &Destination<'_>, id: CheckpointId) -> Result<()> {
        if let Some(current) = self.queue.back_mut() {
            current.id = Some(id);
        }
        if self.queue.len() == 1 {
            self.flush_oldest(d).await?;
        }
        self.queue.push_back(Epoch::default());
        Ok(())
    }

    /// Checkpoint `upto` completed: commit every checkpoint up to it
    /// (`final_id`: the job's last, for the [`FINAL`] pre-commit).
    pub async fn commit(
        &mut self,
        d: &Destination<'_>,
        upto: CheckpointId,
        final_id: Option<CheckpointId>,
    ) -> Result<()> {
        while let Some(id) = self.queue.front().and_then(|e| e.id) {
            if id > upto {
                break;
            }
            self.flush_oldest(d).await?;
            let recorded = if id == FINAL {
                final_id.unwrap_or(id)
            } else {
                id
            };
            self.commit_oldest(d, recorded).await?;
            self.queue.pop_front();
        }
        if self.queue.len() == 1 {
            // Rows that waited for the commit may be written now.
            if self
                .queue
                .front()
                .is_some_and(|e| e.rows >= d.options.flush_rows)
            {
                self.flush_oldest(d).await?;
            }
        }
        Ok(())
    }

    /// Record checkpoint `id` in the oldest transaction and commit it.
    async fn commit_oldest(&mut self, d: &Destination<'_>, id: CheckpointId) -> Result<()> {
        let Some(epoch) = self.queue.front_mut() else {
            return Ok(());
        };
        let client = match epoch.txn.take() {
            Some(c) => c,
            None => begin(d, self.idle.take()).await?,
        };
        let record = format!(
            "INSERT INTO {} (job, sink, checkpoint) VALUES ($1, $2, $3) \
             ON CONFLICT (job, sink) DO UPDATE SET checkpoint = EXCLUDED.checkpoint",
            d.progress()
        );
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        let o = d.options;
        client
            .execute(&record, &[&self.job, &o.table_name, &id])
            .await
            .map_err(|e| {
                fatal(super::sink::failure(
                    o,
                    "could not record the checkpoint",
                    e,
                ))
            })?;
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| fatal(super::sink::failure(o, "could not commit", e)))?;
        self.idle = Some(client);
        Ok(())
    }
}

/// A transaction on `idle` if it is still open, else on a new connection.
async fn begin(d: &Destination<'_>, idle: Option<Client>) -> Result<Client> {
    let client = match idle.filter(|c| !c.is_closed()) {
        Some(c) => c,
        None => connect(d.options).await?,
    };
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| pg_error(d.options, "could not begin a transaction", &e))?;
    Ok(client)
}
