//! `sluice-connectors`: where rows come from and go to.
//!
//! * [`file`](mod@file) — `connector = 'filesystem'`: a file or a directory
//!   of files in CSV (with a header row) or JSON lines. Each file is a split
//!   with its own watermark; splits are read side by side. Written as part
//!   files into the table's directory, one set per job.
//! * [`datagen`] — `connector = 'datagen'`: generated rows (random values or
//!   sequences per column) paced to `rows-per-second`, after Flink's datagen
//!   connector; bounded by `number-of-rows` or a sequence column.
//! * [`kafka`] — `connector = 'kafka'`: topics as tables (source and sink)
//!   with Flink's options, against any Kafka-protocol broker.
//! * [`memory`] — `connector = 'memory'` (the default): rows kept in memory,
//!   filled by `INSERT INTO t VALUES ...` or `INSERT INTO t SELECT ...` and
//!   read back as a bounded stream. Also serves `VALUES` in queries.
//! * [`nexmark`] — `connector = 'nexmark'`: the Nexmark benchmark's bids,
//!   auctions and persons, generated as Arrow batches.
//! * [`debezium`] — the `debezium-json` changelog format (Kafka and files).
//! * [`blackhole`] — a sink that discards rows (for benchmarks).
//! * [`registry`] — the [`Connector`](registry::Connector) trait and the
//!   registry the engine finds a table's connector in.
//! * [`options`] — typed access to `WITH (...)` options with clear errors.
#![deny(missing_docs)]

pub mod blackhole;
pub mod datagen;
pub mod debezium;
pub mod file;
pub mod jdbc;
pub mod kafka;
pub mod memory;
pub mod nexmark;
pub mod options;
pub mod registry;
