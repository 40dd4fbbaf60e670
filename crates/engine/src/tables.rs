//! A table's connector, found in the registry: what it needs at CREATE
//! TABLE and at INSERT (checked options, paths resolved against the script's
//! folder, the sink to write with, extra DESCRIBE rows).

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::Schema;
use datafusion::execution::context::SessionState;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::changelog;
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_connectors::memory::MemoryStore;
use sluice_connectors::registry::{Connector, ConnectorContext, Registry, TableDesc};
use sluice_exec::graph::StreamNode;
use sluice_exec::operators::stateless::{StatelessOperator, Step};
use sluice_exec::sink::Sink;
use sluice_sql::parser::CreateTableDef;
use sluice_sql::table::StreamTable;

/// A catalog table with its connector.
pub(crate) struct ConnectorTable<'a> {
    pub table: &'a StreamTable,
    pub connector: &'static dyn Connector,
    primary_key: Vec<usize>,
    metadata: Vec<(usize, String, bool)>,
    /// The options the connector reads (without the engine's own).
    options: std::collections::BTreeMap<String, String>,
}

impl<'a> ConnectorTable<'a> {
    /// `table` and the connector its options name.
    pub fn of(table: &'a StreamTable) -> Result<Self> {
        let connector = Registry::builtin()
            .get(table.connector())
            .map_err(|e| Error::plan(format!("table {}: {}", table.name, e.message())))?;
        let primary_key = table
            .primary_key
            .iter()
            .map(|k| {
                table.physical.index_of(k).map_err(|_| {
                    Error::plan(format!("PRIMARY KEY column '{k}' is not a column")).near(k)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut options = table.options.clone();
        options.remove(crate::planner::late::LATE_ROWS);
        Ok(ConnectorTable {
            table,
            connector,
            primary_key,
            metadata: table.metadata_columns(),
            options,
        })
    }

    /// Give a Kafka table without its own `scan.watermark.idle-timeout`
    /// the session's `table.exec.source.idle-timeout`.
    pub fn with_idle_default(mut self, idle: Option<std::time::Duration>) -> Self {
        if let (Some(idle), "kafka" | "upsert-kafka") = (idle, self.connector.name()) {
            self.options
                .entry("scan.watermark.idle-timeout".to_string())
                .or_insert_with(|| format!("{} ms", idle.as_millis()));
        }
        self
    }

    /// The table as the connector sees it: its physical columns (computed
    /// ones are added after the source and dropped before the sink).
    pub fn desc(&self) -> TableDesc<'_> {
        TableDesc {
            name: &self.table.name,
            schema: &self.table.physical,
            options: &self.options,
            primary_key: &self.primary_key,
            metadata: &self.metadata,
            has_watermark: self.table.watermark.is_some(),
        }
    }

    /// Check the table at CREATE TABLE: metadata columns, then options.
    pub fn validate(&self) -> Result<()> {
        if let Some((i, key, _)) = self.metadata.first() {
            if !self.connector.has_metadata() {
                return Err(Error::plan(format!(
                    "table {}: column {} reads metadata '{key}', but connector '{}' has no \
                     metadata columns",
                    self.table.name,
                    self.table.physical.field(*i).name(),
                    self.connector.name()
                )));
            }
        }
        self.connector.validate(&self.desc())
    }

    /// Refuse a result the sink cannot store.
    pub fn check_accepts(&self, mode: &ChangelogMode, key_names: Option<&[String]>) -> Result<()> {
        self.connector.check_accepts(&self.desc(), mode, key_names)
    }

    /// The sink an INSERT writes with.
    pub fn sink(&self, state: &SessionState, overwrite: bool) -> Result<Box<dyn Sink>> {
        self.connector
            .sink(&self.desc(), &connector_context(state, false)?, overwrite)
    }
}

/// The rows an INSERT writes into `table`: its physical columns (a
/// computed column is computed when read, never stored).
pub(crate) fn physical_columns(node: StreamNode, table: &StreamTable) -> StreamNode {
    if !table.has_computed() {
        return node;
    }
    let input = node.schema();
    let data = changelog::data_schema(&input);
    let keep: Vec<usize> = (0..table.schema.fields().len())
        .filter(|&i| table.physical_index(i).is_some())
        .collect();
    let exprs: Vec<Arc<dyn PhysicalExpr>> = keep
        .iter()
        .map(|&i| Arc::new(Column::new(data.field(i).name(), i)) as Arc<dyn PhysicalExpr>)
        .collect();
    let fields: Vec<_> = keep.iter().map(|&i| data.field(i).clone()).collect();
    let step = Step::Project(exprs, Arc::new(Schema::new(fields)));
    node.then(Arc::new(StatelessOperator::new(vec![step], input)))
}

/// A table's relative paths resolved against `base` (the script's folder),
/// as its connector reads them.
pub(crate) fn resolve_paths(def: &CreateTableDef, base: Option<&Path>) -> CreateTableDef {
    let mut def = def.clone();
    let Some(base) = base else {
        return def;
    };
    let name = def
        .options
        .iter()
        .find(|(k, _)| k == "connector")
        .map_or("memory", |(_, v)| v.as_str());
    if let Ok(connector) = Registry::builtin().get(name) {
        connector.resolve_paths(&mut def.options, base);
    }
    def
}

/// DESCRIBE rows the connector adds (a Kafka topic's partitions).
pub(crate) async fn describe_rows(table: &StreamTable) -> Result<Vec<Vec<String>>> {
    let ct = ConnectorTable::of(table)?;
    let (connector, name, schema, options) = (
        ct.connector,
        table.name.clone(),
        Arc::clone(&table.physical),
        table.options.clone(),
    );
    let (pk, meta) = (ct.primary_key.clone(), ct.metadata.clone());
    let has_watermark = table.watermark.is_some();
    tokio::task::spawn_blocking(move || {
        connector.describe_rows(&TableDesc {
            name: &name,
            schema: &schema,
            options: &options,
            primary_key: &pk,
            metadata: &meta,
            has_watermark,
        })
    })
    .await
    .map_err(|e| Error::internal(format!("DESCRIBE task failed: {e}")))?
}

/// The session's memory tables (kept in its configuration, beside the
/// catalog).
pub(crate) fn memory_store(state: &SessionState) -> Result<Arc<MemoryStore>> {
    state
        .config()
        .get_extension::<MemoryStore>()
        .ok_or_else(|| Error::internal("session without a memory store"))
}

/// What connectors may use of the session; `follow_views` for a streaming
/// job's scans (see [`ConnectorContext::follow_views`]).
pub(crate) fn connector_context(
    state: &SessionState,
    follow_views: bool,
) -> Result<ConnectorContext> {
    Ok(ConnectorContext {
        memory: memory_store(state)?,
        follow_views,
    })
}

/// Forget the rows of memory table `name` (it was dropped).
pub(crate) fn forget_memory_table(state: &SessionState, name: &str) {
    if let Ok(store) = memory_store(state) {
        store.remove(name);
    }
}
