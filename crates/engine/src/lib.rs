//! `sluice-engine`: the API the shell and the SQL test runner use.
//!
//! A [`Session`] owns a catalog (tables, views) and runs statements:
//! DDL changes the catalog; `SELECT` and `INSERT INTO` are planned by
//! DataFusion (with Sluice's window TVF extension), turned into a dataflow by
//! [`planner`] and started as a [`QueryHandle`]. Dropping a handle cancels
//! its query. A session also holds [`settings`] (`SET`/`RESET`) and
//! background [`jobs`] (`SHOW JOBS`, `STOP JOB`).
#![deny(missing_docs)]

mod checkpoints;
mod commands;
mod ddl;
pub mod format;
mod functions;
pub mod jobs;
mod locate;
mod materialized;
mod names;
pub mod planner;
mod planner_thread;
mod query;
mod session;
pub mod settings;
mod show;
mod tables;
mod workers;

pub use query::{QueryHandle, QueryProgress, QuerySummary, ResultShape};
pub use session::{Session, StatementResult};
pub use sluice_exec::checkpoint::coordinator::Completed as CompletedCheckpoint;
pub use sluice_exec::checkpoint::CheckpointStats;
pub use sluice_sql::parser::ParsedStatement;
