//! The PostgreSQL sink: rows are buffered and written in batches (when
//! `sink.buffer-flush.max-rows` rows wait, when the oldest has waited
//! `sink.buffer-flush.interval`, before a checkpoint completes and at the
//! end), each flush one transaction. A flush that fails because the
//! connection broke (or the server is restarting) is retried on a new
//! connection with backoff, up to `sink.max-retries` times; the buffer is
//! kept until a flush commits, so no row is lost. Any other error fails the
//! job with PostgreSQL's message. In a checkpointing job the sink writes
//! exactly once instead ([`super::exactly_once`]).

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::{Error, Result};
use sluice_exec::checkpoint::{CheckpointId, State};
use sluice_exec::sink::{Resume, Sink, FINAL};
use tokio::time::Instant;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::client::{connect, is_transient, pg_error};
use super::exactly_once::{committed, reset, Destination, Epochs};
use super::table::{inspect, Target};
use super::writer::{reduce, statements, Statement};
use super::JdbcOptions;

/// Rows in one multi-row statement (fewer when the columns are many).
pub(super) const ROWS_PER_STATEMENT: usize = 1000;

/// Writes rows into a PostgreSQL table.
pub struct JdbcSink {
    options: JdbcOptions,
    schema: SchemaRef,
    /// Upsert key (the table's PRIMARY KEY); empty: inserts.
    key: Vec<usize>,
    client: Option<Client>,
    target: Option<Target>,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// When the oldest buffered row arrived.
    oldest: Option<Instant>,
    /// In a checkpointing job: one transaction per checkpoint
    /// ([`super::exactly_once`]).
    epochs: Option<Epochs>,
}

impl std::fmt::Debug for JdbcSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JdbcSink({})", self.options.table_name)
    }
}

impl JdbcSink {
    /// A sink for a table of `schema` upserting by `key` (indices; empty:
    /// append-only inserts).
    pub fn new(options: JdbcOptions, schema: SchemaRef, key: Vec<usize>) -> Self {
        JdbcSink {
            options,
            schema,
            key,
            client: None,
            target: None,
            pending: Vec::new(),
            pending_rows: 0,
            oldest: None,
            epochs: None,
        }
    }

    /// The checked destination, the connection it was checked on (for the
    /// progress table) and the checkpoints' transactions.
    async fn exactly_once(&mut self) -> Result<(Destination<'_>, &Client, &mut Epochs)> {
        self.ready().await?;
        let JdbcSink {
            options,
            key,
            target,
            client,
            epochs,
            ..
        } = self;
        match (target.as_ref(), client.as_ref(), epochs.as_mut()) {
            (Some(target), Some(client), Some(epochs)) => Ok((
                Destination {
                    options,
                    target,
                    key,
                },
                client,
                epochs,
            )),
            _ => Err(Error::internal(
                "the PostgreSQL sink's checkpoints did not start",
            )),
        }
    }

    /// A connection, and the checked target table (on first use).
    async fn ready(&mut self) -> Result<(&Client, Target)> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(connect(&self.options).await?);
        }
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| Error::internal("PostgreSQL client missing"))?;
        if self.target.is_none() {
            self.target = Some(inspect(client, &self.options, &self.schema, &self.key).await?);
        }
        let target = self
            .target
            .clone()
            .ok_or_else(|| Error::internal("PostgreSQL target missing"))?;
        Ok((client, target))
    }

    /// Write every buffered row (one transaction), retrying as the module
    /// docs say.
    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut attempt = 0;
        let mut wait = Duration::from_millis(200);
        loop {
            match self.try_flush().await {
                Ok(()) => break,
                Err(Failure::Transient(_)) if attempt < self.options.max_retries => {
                    attempt += 1;
                    self.client = None;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                Err(Failure::Transient(e)) => {
                    return Err(Error::External {
                        system: "postgresql",
                        message: format!(
                            "{}; gave up after {} retries ('sink.max-retries')",
                            e.message(),
                            self.options.max_retries
                        ),
                    })
                }
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
        self.pending.clear();
        self.pending_rows = 0;
        self.oldest = None;
        Ok(())
    }

    async fn try_flush(&mut self) -> std::result::Result<(), Failure> {
        let (options, key) = (self.options.clone(), self.key.clone());
        let batches = std::mem::take(&mut self.pending);
        let result = async {
            let (client, target) = self.ready().await.map_err(Failure::Fatal)?;
            let reduced = reduce(&batches, &key).map_err(Failure::Fatal)?;
            let stmts = statements(&target, &batches, &reduced, ROWS_PER_STATEMENT)
                .map_err(Failure::Fatal)?;
            run(client, &options, &stmts).await
        }
        .await;
        self.pending = batches;
        result
    }
}

/// Why a flush failed.
pub(super) enum Failure {
    /// The connection broke: a new one may succeed.
    Transient(Error),
    Fatal(Error),
}

/// Run `stmts` in one transaction.
async fn run(
    client: &Client,
    o: &JdbcOptions,
    stmts: &[Statement],
) -> std::result::Result<(), Failure> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| failure(o, "could not begin a transaction", e))?;
    if let Err(e) = execute(client, o, stmts).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(e);
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| failure(o, "could not commit", e))
}

/// A PostgreSQL error as a [`Failure`].
pub(super) fn failure(o: &JdbcOptions, what: &str, e: tokio_postgres::Error) -> Failure {
    let err = pg_error(o, what, &e);
    if is_transient(&e) {
        Failure::Transient(err)
    } else {
        Failure::Fatal(err)
    }
}

/// Run `stmts` (in the client's open transaction, if any).
pub(super) async fn execute(
    client: &Client,
    o: &JdbcOptions,
    stmts: &[Statement],
) -> std::result::Result<(), Failure> {
    for s in stmts {
        let params = s.params.iter().map(|v| (v.as_deref(), Type::TEXT));
        if let Err(e) = client.query_typed_raw(&s.sql, params).await {
            return Err(failure(o, &format!("writing {} rows failed", s.rows), e));
        }
    }
    Ok(())
}

#[async_trait]
impl Sink for JdbcSink {
    fn name(&self) -> &'static str {
        "JdbcSink"
    }

    fn describe(&self) -> String {
        let mode = if self.key.is_empty() {
            "insert"
        } else {
            "upsert"
        };
        format!(
            "JdbcSink: {} table={} on {} ({mode})",
            self.options.table,
            self.options.table_name,
            self.options.server()
        )
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.epochs.is_some() {
            self.oldest.get_or_insert_with(Instant::now);
            let (d, _, epochs) = self.exactly_once().await?;
            return epochs.write(&d, batch).await;
        }
        if self.target.is_none() {
            // Check the table before the first rows wait in the buffer.
            self.ready().await?;
        }
        self.pending_rows += batch.num_rows();
        self.pending.push(batch);
        self.oldest.get_or_insert_with(Instant::now);
        if self.pending_rows >= self.options.flush_rows || self.options.flush_interval.is_zero() {
            self.flush().await?;
        }
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        if self.epochs.as_ref().is_some_and(|e| !e.can_flush()) {
            return None;
        }
        self.oldest.map(|t| t + self.options.flush_interval)
    }

    async fn on_deadline(&mut self) -> Result<()> {
        if self.epochs.is_some() {
            self.oldest = None;
            let (d, _, epochs) = self.exactly_once().await?;
            return epochs.flush_oldest(&d).await;
        }
        self.flush().await
    }

    async fn finish(&mut self) -> Result<()> {
        if self.target.is_none() {
            self.ready().await?;
        }
        self.flush().await
    }

    /// Exactly once: one transaction per checkpoint, committed with the
    /// checkpoint's id once it completes ([`super::exactly_once`]).
    fn checkpoints(&self) -> bool {
        true
    }

    /// The progress table says which checkpoint's rows are committed.
    async fn prepare_checkpoints(
        &mut self,
        job: &str,
        _interval: Option<Duration>,
    ) -> Result<Resume> {
        self.epochs = Some(Epochs::new(job));
        let (d, client, _) = self.exactly_once().await?;
        Ok(Resume::From(committed(client, &d, job).await?))
    }

    async fn start_checkpoints(&mut self, job: &str, restored: Option<&State>) -> Result<()> {
        if self.epochs.is_none() {
            self.epochs = Some(Epochs::new(job));
        }
        let (d, client, _) = self.exactly_once().await?;
        if restored.is_none() {
            // A fresh start: no earlier run's progress counts.
            committed(client, &d, job).await?;
            reset(client, &d, job).await?;
        }
        Ok(())
    }

    async fn pre_commit(&mut self, id: CheckpointId) -> Result<State> {
        self.oldest = None;
        let (d, _, epochs) = self.exactly_once().await?;
        epochs.pre_commit(&d, id).await?;
        Ok(State::new())
    }

    async fn commit(&mut self, id: CheckpointId) -> Result<()> {
        let (d, _, epochs) = self.exactly_once().await?;
        epochs.commit(&d, id, None).await
    }

    async fn commit_final(&mut self, id: CheckpointId) -> Result<()> {
        let (d, _, epochs) = self.exactly_once().await?;
        epochs.commit(&d, FINAL, Some(id)).await
    }
}
