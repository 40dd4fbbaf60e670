//! The PostgreSQL sink: rows are buffered and written in batches (when
//! `sink.buffer-flush.max-rows` rows wait, when the oldest has waited
//! `sink.buffer-flush.interval`, before a checkpoint completes and at the
//! end), each flush one transaction. A flush that fails because the
//! connection broke (or the server is restarting) is retried on a new
//! connection with backoff, up to `sink.max-retries` times; the buffer is
//! kept until a flush commits, so no row is lost. Any other error fails the
//! job with PostgreSQL's message.

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::{Error, Result};
use sluice_exec::checkpoint::{CheckpointId, State};
use sluice_exec::sink::Sink;
use tokio::time::Instant;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::client::{connect, is_transient, pg_error};
use super::table::{inspect, Target};
use super::writer::{reduce, statements, Statement};
use super::JdbcOptions;

/// Rows in one multi-row statement (fewer when the columns are many).
const ROWS_PER_STATEMENT: usize = 1000;

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
                    return Err(Error::execution(format!(
                        "{e}; gave up after {} retries ('sink.max-retries')",
                        self.options.max_retries
                    )))
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
enum Failure {
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
    let fail = |what: &str, e: tokio_postgres::Error| {
        let err = pg_error(o, what, &e);
        if is_transient(&e) {
            Failure::Transient(err)
        } else {
            Failure::Fatal(err)
        }
    };
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| fail("could not begin a transaction", e))?;
    for s in stmts {
        let params = s.params.iter().map(|v| (v.as_deref(), Type::TEXT));
        if let Err(e) = client.query_typed_raw(&s.sql, params).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(fail(&format!("writing {} rows failed", s.rows), e));
        }
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| fail("could not commit", e))
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
        self.oldest.map(|t| t + self.options.flush_interval)
    }

    async fn on_deadline(&mut self) -> Result<()> {
        self.flush().await
    }

    async fn finish(&mut self) -> Result<()> {
        if self.target.is_none() {
            self.ready().await?;
        }
        self.flush().await
    }

    /// At least once: every row before a barrier is committed in
    /// PostgreSQL before the checkpoint completes; rows after it may be
    /// written again by a restored job (upserts make that harmless).
    fn checkpoints(&self) -> bool {
        true
    }

    async fn start_checkpoints(&mut self, _job: &str, _restored: Option<&State>) -> Result<()> {
        Ok(())
    }

    async fn pre_commit(&mut self, _id: CheckpointId) -> Result<State> {
        self.flush().await?;
        Ok(State::new())
    }
}
