//! `connector = 'jdbc'`: PostgreSQL tables as sinks, with Flink's JDBC
//! connector options so Flink DDL works unchanged.
//!
//! Append-only results are inserted; with a PRIMARY KEY the sink upserts
//! by it (`INSERT .. ON CONFLICT DO UPDATE`, `-D` deletes), as Flink's
//! upsert mode. Rows are buffered and written in multi-row statements, one
//! transaction per flush ([`sink`]); the target table is checked at
//! start-up ([`table`]). With checkpoints, each checkpoint's rows are one
//! transaction committed with the checkpoint ([`exactly_once`]). Talks to
//! the server with `tokio-postgres`.

mod client;
mod connector;
mod exactly_once;
mod options;
mod sink;
mod table;
mod writer;

pub use connector::JdbcConnector;
pub use options::JdbcOptions;
pub use sink::JdbcSink;
