//! `sluice-fuzz`: a seeded SQL fuzzer for Sluice that runs in the test
//! suite (`tests/fuzz.rs`) and as a long-run binary (`src/main.rs`).
//!
//! It makes statements two ways, both a pure function of a `u64` seed:
//!
//! - **generated** ([`query`], [`expr`], [`deep`], [`failing`]): random
//!   SELECTs over a fixed [`catalog`] (memory tables with NULLs, negative
//!   numbers, empty strings and out-of-order timestamps; a CSV file; bounded
//!   Nexmark and datagen tables; an unbounded datagen table that is only
//!   planned), window TVFs in the Flink, RisingWave and legacy dialects,
//!   stacked windows, views, EXPLAIN, literals of every type, deep nesting,
//!   and statements that must fail cleanly;
//! - **mutated** ([`corpus`], [`mutate`]): the statements of
//!   `sql-tests/**/*.slt` with tokens deleted, duplicated, swapped and
//!   inserted.
//!
//! # Layout
//!
//! A [`supervisor`] starts a [`worker`] process (the same binary with
//! `--worker`), which runs the statements against a `Session` per group of
//! [`cases::GROUP`] statements and reports each on stdout. A run fails on
//! the symptoms of [`check`]: panics, internal errors, raw-internals or
//! overlong messages, statements past the timeout (a watchdog thread exits
//! the worker, since a CPU-bound planning loop cannot be interrupted), and
//! dead workers (a stack overflow aborts the process; the supervisor knows
//! the statement from the last `START` line and starts a new worker after
//! it). The [`report`] counts outcomes and groups failures by message.
#![deny(missing_docs)]

pub mod cases;
pub mod catalog;
pub mod check;
pub mod corpus;
pub mod deep;
pub mod expr;
pub mod failing;
pub mod functions;
pub mod literal;
pub mod mutate;
pub mod query;
pub mod report;
pub mod rng;
pub mod supervisor;
pub mod window;
pub mod worker;

pub use report::{Failure, Report};
pub use supervisor::{supervise, target_dir, RunConfig};
