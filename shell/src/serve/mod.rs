//! `sluice --listen ADDR`: the PostgreSQL wire protocol (the `pgwire`
//! crate), so `psql`, a BI tool or a driver can run SQL against Sluice.
//!
//! Every connection shares the one session of the process (its tables,
//! views, settings and jobs), as the shell's session: what a script run
//! before serving created is there. The simple query protocol (psql,
//! psycopg2) and the extended one (`extended.rs`: prepared statements with
//! parameters, what psycopg 3 and JDBC use) are spoken; each statement's
//! result goes back as PostgreSQL's: rows with their types in text format,
//! a command tag, Sluice's messages as notices. A bounded `SELECT` (a
//! materialized view, a memory table, a bounded file) returns its rows; a
//! continuous one is refused (it never ends; make it a materialized view
//! and query that). An `INSERT` over bounded input runs to its end; over
//! unbounded input it becomes a background job (`SHOW JOBS`). No
//! authentication: it binds where it is told, loopback by default.

mod encode;
mod extended;

use std::fmt::Debug;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use futures::{stream, Sink, SinkExt};
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{QueryResponse, Response, Tag};
use pgwire::api::{ClientInfo, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::response::NoticeResponse;
use pgwire::messages::PgWireBackendMessage;
use sluice_engine::{Session, StatementResult};
use tokio::net::TcpListener;

use crate::output;

/// The handlers of every connection: the shared session.
struct Server {
    session: Arc<Session>,
}

impl NoopStartupHandler for Server {}

impl PgWireServerHandlers for Server {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(Handler {
            session: Arc::clone(&self.session),
        })
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        Arc::new(extended::Extended::new(Arc::clone(&self.session)))
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(Server {
            session: Arc::clone(&self.session),
        })
    }
}

struct Handler {
    session: Arc<Session>,
}

/// A Sluice error as PostgreSQL's: severity, SQLSTATE, message.
fn pg_error(e: &sluice_common::Error) -> Box<ErrorInfo> {
    Box::new(ErrorInfo::new(
        "ERROR".into(),
        e.sqlstate().into(),
        e.message(),
    ))
}

async fn notice<C>(client: &mut C, text: &str) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let info = ErrorInfo::new("NOTICE".into(), "00000".into(), text.to_string());
    client
        .send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
            info,
        )))
        .await?;
    Ok(())
}

/// PostgreSQL's command tag for a statement: its leading keywords.
fn tag_of(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .take(3)
        .map(str::to_ascii_uppercase)
        .collect();
    let n = match words.first().map(String::as_str) {
        Some("CREATE" | "DROP") if words.get(1).is_some_and(|w| w == "MATERIALIZED") => 3,
        Some("CREATE" | "DROP" | "ALTER" | "STOP") => 2,
        _ => 1,
    };
    words[..n.min(words.len())].join(" ")
}

impl Handler {
    /// One statement's response (`text`: the statement); messages for the
    /// user go as notices.
    async fn respond<C>(
        &self,
        client: &mut C,
        result: StatementResult,
        text: &str,
    ) -> PgWireResult<Response>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match result {
            StatementResult::Done(msg) => {
                notice(client, &msg).await?;
                Ok(Response::Execution(Tag::new(&tag_of(text))))
            }
            StatementResult::Rows(schema, batches) => rows(&schema, &batches),
            StatementResult::Query(handle) => {
                if !handle.is_bounded() {
                    return Ok(Response::Error(Box::new(ErrorInfo::new(
                        "ERROR".into(),
                        "0A000".into(),
                        "this query reads unbounded input and never ends; a PostgreSQL client \
                         gets complete results: CREATE MATERIALIZED VIEW v AS <the query>, then \
                         SELECT from v"
                            .into(),
                    ))));
                }
                let schema = handle.schema();
                match handle.collect_table().await {
                    Ok((batches, _)) => rows(&schema, &batches),
                    Err(e) => Ok(Response::Error(pg_error(&e))),
                }
            }
            StatementResult::Insert(handle) => {
                if let Some(n) = handle.notice() {
                    notice(client, n).await?;
                }
                if !handle.is_bounded() {
                    let id = self.session.jobs().submit(text.to_string(), handle);
                    let msg = format!(
                        "Job {id} started (unbounded: runs until stopped). SHOW JOBS follows \
                         it; STOP JOB {id} ends it."
                    );
                    notice(client, &msg).await?;
                    return Ok(Response::Execution(
                        Tag::new("INSERT").with_oid(0).with_rows(0),
                    ));
                }
                match handle.wait().await {
                    Ok(summary) => {
                        notice(client, &output::insert_note(&summary)).await?;
                        let rows = usize::try_from(summary.result_rows.max(0)).unwrap_or(0);
                        Ok(Response::Execution(
                            Tag::new("INSERT").with_oid(0).with_rows(rows),
                        ))
                    }
                    Err(e) => Ok(Response::Error(pg_error(&e))),
                }
            }
        }
    }
}

/// Rows as a query response.
fn rows(schema: &SchemaRef, batches: &[RecordBatch]) -> PgWireResult<Response> {
    let (fields, data) = encode::encode(schema, batches)?;
    Ok(Response::Query(QueryResponse::new(
        fields,
        stream::iter(data.into_iter().map(Ok)),
    )))
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo
            + pgwire::api::ClientPortalStore
            + Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: pgwire::api::store::PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match self.session.parse(query, None) {
            Ok(s) => s,
            Err(e) => return Ok(vec![Response::Error(pg_error(&e))]),
        };
        let mut out = Vec::with_capacity(statements.len());
        for stmt in &statements {
            let r = match self.session.execute(stmt).await {
                Ok(result) => self.respond(client, result, &stmt.text).await?,
                Err(e) => Response::Error(pg_error(&e)),
            };
            let failed = matches!(r, Response::Error(_));
            out.push(r);
            if failed {
                // As PostgreSQL: the statements after an error do not run.
                break;
            }
        }
        Ok(out)
    }
}

/// Serve the session on `addr` until the process is stopped.
pub async fn serve(session: Session, addr: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    eprintln!(
        "Serving the PostgreSQL protocol on {local} (psql -h {} -p {})",
        local.ip(),
        local.port()
    );
    let server = Arc::new(Server {
        session: Arc::new(session),
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, _) = accepted?;
                let handlers = Arc::clone(&server);
                tokio::spawn(async move {
                    let _ = pgwire::tokio::process_socket(socket, None, handlers).await;
                });
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("Stopped serving.");
                return Ok(());
            }
        }
    }
}
