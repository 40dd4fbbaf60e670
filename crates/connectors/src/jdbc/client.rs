//! Connections to PostgreSQL: connect with retries and backoff, and errors
//! that say which table, which server and what PostgreSQL said (never the
//! password).

use std::time::{Duration, Instant};

use sluice_common::{Error, Result};
use tokio_postgres::{Client, NoTls};

use super::JdbcOptions;

/// `table t: <what> (PostgreSQL at host:port/db: <message>)`.
pub fn pg_error(o: &JdbcOptions, what: &str, e: &tokio_postgres::Error) -> Error {
    let detail = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                msg = format!("{msg}: {s}");
                source = s.source();
            }
            msg
        }
    };
    Error::External {
        system: "postgresql",
        message: format!(
            "table {}: {what} (PostgreSQL at {}: {detail})",
            o.table,
            o.server()
        ),
    }
}

/// Whether a failed statement may succeed on a new connection: the
/// connection broke or the server is restarting, as opposed to an error
/// in the data or the table.
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        Some(db) => {
            let c = db.code().code();
            // 08: connection exception; 57P: operator intervention
            // (admin shutdown, cannot connect now); 40001/40P01:
            // serialization failure, deadlock.
            c.starts_with("08") || c.starts_with("57P") || c == "40001" || c == "40P01"
        }
    }
}

/// Connect once; the connection's driver runs on its own task.
async fn connect_once(o: &JdbcOptions) -> std::result::Result<Client, tokio_postgres::Error> {
    let (client, connection) = o.config().connect(NoTls).await?;
    tokio::spawn(async move {
        // Its error surfaces on the client's next request.
        let _ = connection.await;
    });
    Ok(client)
}

/// Connect, retrying with backoff (100 ms doubling to 5 s) for up to the
/// options' connection timeout; authentication and unknown-database errors
/// fail at once.
pub async fn connect(o: &JdbcOptions) -> Result<Client> {
    let start = Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        match connect_once(o).await {
            Ok(c) => return Ok(c),
            Err(e) if is_transient(&e) && start.elapsed() + wait < o.connect_timeout => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(pg_error(o, "could not connect", &e)),
        }
    }
}
