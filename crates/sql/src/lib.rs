//! `sluice-sql`: Sluice's SQL front end.
//!
//! * [`parser`] splits text into statements; `CREATE TABLE` with
//!   `WATERMARK FOR`, metadata columns and connector options is parsed in
//!   `create_table`; [`dialect`] adds Flink's `TABLE t` argument to
//!   sqlparser.
//! * [`window`] plans the window table functions TUMBLE and HOP (Flink and
//!   RisingWave forms) into [`window::WindowTvfNode`], a DataFusion extension
//!   node; [`legacy`] rewrites `GROUP BY TUMBLE(ts, ...)` into that form.
//! * [`table`] is the catalog entry of a `CREATE TABLE`; [`show_create`]
//!   prints it back with secrets masked.
//! * [`flink_calls`] rewrites Flink call forms DataFusion reads otherwise
//!   (`TIMESTAMPADD(SECOND, ...)`, `FLOOR(ts TO DAY)`, `IF`, `IFNULL`,
//!   `SUBSTRING(s FROM a FOR b)`).
//! * [`nesting`] bounds how deeply a statement may nest (checked on its
//!   tokens before parsing), so parsing and planning stay bounded.
//! * [`subqueries`] refuses subqueries used as expressions (joins, not yet
//!   supported on streams).
//! * [`commands`] parses session commands: `SET`, `RESET`, `SHOW JOBS`,
//!   `STOP JOB`, `SHOW CREATE TABLE`.
//!
//! Everything else — expressions, functions, aggregates, type coercion and
//! optimisation — is DataFusion's.
#![deny(missing_docs)]

mod ast;
pub mod commands;
mod create_table;
pub mod dialect;
pub mod flink_calls;
pub mod legacy;
pub mod nesting;
pub mod parser;
pub mod show_create;
pub mod subqueries;
pub mod table;
pub mod temporal;
pub mod types;
pub mod window;
