//! The connector registry: one [`Connector`] per `connector = '...'` name.
//!
//! A connector checks a table's options, builds its source and sink, and
//! says what kinds of rows it reads and accepts. The engine looks a table's
//! connector up here and never matches on connector names itself (after
//! DataFusion's `TableProviderFactory` and Arroyo's `Connector` trait).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::SchemaRef;
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_exec::sink::Sink;
use sluice_exec::source::{ScanColumns, Source};

use crate::memory::MemoryStore;

/// A table as its connector sees it (the SQL front end's table, reduced to
/// what a connector needs).
#[derive(Debug, Clone, Copy)]
pub struct TableDesc<'a> {
    /// Table name, for messages.
    pub name: &'a str,
    /// All columns.
    pub schema: &'a SchemaRef,
    /// `WITH (...)` options, keys lower-cased (includes `connector`).
    pub options: &'a BTreeMap<String, String>,
    /// Indices of the PRIMARY KEY columns (empty when none).
    pub primary_key: &'a [usize],
    /// Metadata columns: (column index, metadata key, virtual).
    pub metadata: &'a [(usize, String, bool)],
    /// Whether the table declares a watermark.
    pub has_watermark: bool,
}

/// The columns a scan reads, prepared by the planner in the two shapes
/// sources use.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// The source makes every table column (and the row-kind column last,
    /// when it reads a changelog); the scan emits the projection.
    pub full: ScanColumns,
    /// Table columns the scan needs: the projection, then the columns the
    /// watermark reads.
    pub needed: Vec<usize>,
    /// The source makes only `needed` (in that order, plus the row-kind
    /// column) and the scan emits the projection, its first columns.
    pub narrow: ScanColumns,
}

/// A built source and whether it ends.
pub struct BuiltSource {
    /// The source.
    pub source: Box<dyn Source>,
    /// Whether it ends on its own.
    pub bounded: bool,
}

/// Resources of the session a connector may use.
#[derive(Debug, Clone)]
pub struct ConnectorContext {
    /// The session's memory tables.
    pub memory: Arc<MemoryStore>,
    /// The scan is for a streaming job (an INSERT, a materialized view):
    /// a materialized view whose job runs is followed, not read as it is.
    pub follow_views: bool,
}

/// One kind of table: `connector = '<name>'`.
pub trait Connector: Send + Sync + Debug {
    /// The `connector` option's value.
    fn name(&self) -> &'static str;

    /// Check the options (and columns) at CREATE TABLE.
    fn validate(&self, table: &TableDesc) -> Result<()>;

    /// Make whatever the table needs when it is created; returns a note for
    /// the user (e.g. "no files yet").
    fn create(&self, _table: &TableDesc, _cx: &ConnectorContext) -> Result<Option<String>> {
        Ok(None)
    }

    /// Resolve relative paths in `options` against `base` (the folder of
    /// the script that creates the table).
    fn resolve_paths(&self, _options: &mut [(String, String)], _base: &Path) {}

    /// Whether the table may declare metadata columns.
    fn has_metadata(&self) -> bool {
        false
    }

    /// What kinds of rows a scan of the table reads.
    fn changelog(&self, _table: &TableDesc) -> Result<ChangelogMode> {
        Ok(ChangelogMode::AppendOnly)
    }

    /// What kinds of rows a scan for a query in `cx` reads (what
    /// [`Connector::changelog`] says, unless the session's data changes it).
    fn changelog_in(&self, table: &TableDesc, _cx: &ConnectorContext) -> Result<ChangelogMode> {
        self.changelog(table)
    }

    /// Whether a scan reads upserts (a new value per key, a delete that may
    /// carry only the key), which the engine turns into a changelog keyed
    /// by the changelog's upsert key before anything else reads them.
    fn normalizes_upserts(&self) -> bool {
        false
    }

    /// A source reading the table.
    fn source(
        &self,
        table: &TableDesc,
        _scan: ScanRequest,
        _cx: &ConnectorContext,
    ) -> Result<BuiltSource> {
        Err(Error::plan(format!(
            "table {} uses connector '{}', which can only be written to",
            table.name,
            self.name()
        ))
        .near(table.name))
    }

    /// Refuse a result the sink cannot store: by default any update.
    /// `key_names` is the result's upsert key, when it has one.
    fn check_accepts(
        &self,
        table: &TableDesc,
        mode: &ChangelogMode,
        key_names: Option<&[String]>,
    ) -> Result<()> {
        if !mode.is_updating() {
            return Ok(());
        }
        Err(refuse_updates(
            table,
            key_names,
            "use an upsert sink (a memory or upsert-kafka table with a PRIMARY KEY) or a \
             changelog format ('format' = 'debezium-json')",
        ))
    }

    /// A sink writing the table. `overwrite` for INSERT OVERWRITE (only
    /// asked of connectors whose [`Connector::overwrites`] is true).
    fn sink(
        &self,
        table: &TableDesc,
        _cx: &ConnectorContext,
        _overwrite: bool,
    ) -> Result<Box<dyn Sink>> {
        Err(Error::plan(format!(
            "table {} uses connector '{}', which cannot be written to",
            table.name,
            self.name()
        )))
    }

    /// Whether INSERT OVERWRITE (of a bounded query) is supported.
    fn overwrites(&self) -> bool {
        false
    }

    /// Extra DESCRIBE rows (e.g. a topic's partitions). May block.
    fn describe_rows(&self, _table: &TableDesc) -> Result<Vec<Vec<String>>> {
        Ok(vec![])
    }
}

/// The error for an updating query into a sink that only takes inserts,
/// ending with `advice`.
pub fn refuse_updates(table: &TableDesc, key_names: Option<&[String]>, advice: &str) -> Error {
    Error::plan(format!(
        "sink `{}` only accepts inserts, but the query produces {}; {advice}",
        table.name,
        describe_updates(key_names)
    ))
    .near("INSERT")
}

/// The names of `table`'s PRIMARY KEY columns.
pub fn key_names(table: &TableDesc) -> Vec<String> {
    table
        .primary_key
        .iter()
        .map(|&i| table.schema.field(i).name().clone())
        .collect()
}

/// An upsert sink takes inserts, or updates keyed by exactly its PRIMARY
/// KEY (so a `-D` deletes its key and a `-U` can be skipped).
pub fn check_upsert_key(table: &TableDesc, query_key: Option<&[String]>) -> Result<()> {
    let pk = key_names(table);
    let same = !pk.is_empty()
        && query_key.is_some_and(|k| {
            k.len() == pk.len()
                && k.iter()
                    .all(|c| pk.iter().any(|p| p.eq_ignore_ascii_case(c)))
        });
    if same {
        return Ok(());
    }
    if pk.is_empty() {
        return Err(refuse_updates(
            table,
            query_key,
            "declare the table's PRIMARY KEY (.. NOT ENFORCED) to upsert by it",
        ));
    }
    Err(Error::plan(format!(
        "sink `{}` upserts by its PRIMARY KEY [{}], but the query produces {}; make the \
         PRIMARY KEY the query's key (its GROUP BY or PARTITION BY columns)",
        table.name,
        pk.join(", "),
        describe_updates(query_key)
    ))
    .near("INSERT"))
}

/// `updates on key [a, b]` or `updates (retractions)`.
pub fn describe_updates(key_names: Option<&[String]>) -> String {
    match key_names {
        Some(k) => format!("updates on key [{}]", k.join(", ")),
        None => "updates (retractions)".to_string(),
    }
}

/// The connectors, by name.
#[derive(Debug)]
pub struct Registry {
    connectors: Vec<Arc<dyn Connector>>,
}

static BUILTIN: LazyLock<Registry> = LazyLock::new(|| Registry {
    connectors: vec![
        Arc::new(crate::datagen::DatagenConnector),
        Arc::new(crate::file::FileConnector),
        Arc::new(crate::kafka::KafkaConnector { upsert: false }),
        Arc::new(crate::kafka::KafkaConnector { upsert: true }),
        Arc::new(crate::jdbc::JdbcConnector),
        Arc::new(crate::nexmark::NexmarkConnector),
        Arc::new(crate::memory::MemoryConnector),
        Arc::new(crate::blackhole::BlackholeConnector),
    ],
});

impl Registry {
    /// The connectors that come with Sluice.
    pub fn builtin() -> &'static Registry {
        &BUILTIN
    }

    /// The connector called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Result<&dyn Connector> {
        self.connectors
            .iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
            .map(AsRef::as_ref)
            .ok_or_else(|| {
                let names: Vec<&str> = self.connectors.iter().map(|c| c.name()).collect();
                Error::plan(format!(
                    "unknown connector '{name}' (available: {})",
                    names.join(", ")
                ))
            })
    }
}
