//! What a table's connector needs at CREATE TABLE and at INSERT: checked
//! options, paths resolved against the script's folder, the sink to write
//! with, and DESCRIBE's partition rows for Kafka.

use std::path::Path;
use std::sync::Arc;

use datafusion::execution::context::SessionState;
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_connectors::blackhole::BlackholeSink;
use sluice_connectors::datagen::DatagenOptions;
use sluice_connectors::file::{FileOptions, FileSink};
use sluice_connectors::kafka::{describe_topic, KafkaOptions, KafkaSink};
use sluice_connectors::memory::{MemorySink, MemoryStore, MemoryTable};
use sluice_connectors::nexmark::NexmarkOptions;
use sluice_connectors::options::Options;
use sluice_exec::sink::Sink;
use sluice_sql::parser::CreateTableDef;
use sluice_sql::table::StreamTable;

/// A filesystem table's relative `path` resolved against `base` (the
/// script's folder); other tables as they are.
pub(crate) fn resolve_paths(def: &CreateTableDef, base: Option<&Path>) -> CreateTableDef {
    let mut def = def.clone();
    let Some(base) = base else {
        return def;
    };
    let is_file = def
        .options
        .iter()
        .any(|(k, v)| k == "connector" && v.eq_ignore_ascii_case("filesystem"));
    if !is_file {
        return def;
    }
    for (k, v) in &mut def.options {
        if k != "path" {
            continue;
        }
        let (scheme, rest) = match v.strip_prefix("file://") {
            Some(rest) => ("file://", rest.to_string()),
            None => ("", v.clone()),
        };
        if Path::new(&rest).is_relative() {
            *v = format!("{scheme}{}", base.join(rest).display());
        }
    }
    def
}

pub(crate) fn validate_connector(table: &StreamTable) -> Result<()> {
    let metadata = table.metadata_columns();
    if let Some((i, key, _)) = metadata.first() {
        if table.connector() != "kafka" {
            return Err(Error::plan(format!(
                "table {}: column {} reads metadata '{key}', but connector '{}' has no metadata columns",
                table.name,
                table.schema.field(*i).name(),
                table.connector()
            )));
        }
    }
    match table.connector() {
        "filesystem" => FileOptions::parse(&table.name, &table.options).map(|_| ()),
        "datagen" => DatagenOptions::parse(&table.name, &table.schema, &table.options).map(|_| ()),
        "nexmark" => {
            NexmarkOptions::parse(&table.name, &table.schema, &table.options).map(|_| ())
        }
        "kafka" => {
            let options = KafkaOptions::parse(&table.name, &table.options)?;
            KafkaSink::try_new(options, &table.schema, &metadata).map(|_| ())
        }
        "memory" | "blackhole" => Options::new(&table.name, &table.options).finish(),
        other => Err(Error::plan(format!(
            "table {}: unknown connector '{other}' (available: datagen, filesystem, kafka, nexmark, memory, blackhole)",
            table.name
        ))),
    }
}

/// DESCRIBE rows for a Kafka table: one per partition with its offsets.
pub(crate) async fn kafka_partitions(table: &StreamTable) -> Result<Vec<Vec<String>>> {
    let options = KafkaOptions::parse(&table.name, &table.options)?;
    let parts = tokio::task::spawn_blocking(move || describe_topic(&options))
        .await
        .map_err(|e| Error::internal(format!("Kafka metadata task failed: {e}")))??;
    Ok(parts
        .into_iter()
        .map(|p| {
            vec![
                format!("partition {}", p.id),
                format!("offsets {}..{}", p.low, p.high),
                String::new(),
                String::new(),
                String::new(),
            ]
        })
        .collect())
}

/// The session's memory tables (kept in its configuration, beside the
/// catalog).
pub(crate) fn memory_store(state: &SessionState) -> Result<Arc<MemoryStore>> {
    state
        .config()
        .get_extension::<MemoryStore>()
        .ok_or_else(|| Error::internal("session without a memory store"))
}

/// Storage for a new memory table (upserted by its primary key, if any).
pub(crate) fn create_memory(state: &SessionState, table: &StreamTable) -> Result<()> {
    let key = if table.primary_key.is_empty() {
        None
    } else {
        Some(
            table
                .primary_key
                .iter()
                .map(|k| {
                    table.schema.index_of(k).map_err(|_| {
                        Error::plan(format!("PRIMARY KEY column '{k}' is not a column")).near(k)
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        )
    };
    let t = MemoryTable::try_new(&table.name, Arc::clone(&table.schema), key)?;
    memory_store(state)?.insert(t)
}

/// Refuse an updating result into a sink that only takes inserts.
pub(crate) fn check_sink_accepts(
    table: &StreamTable,
    mode: &ChangelogMode,
    key_names: Option<&[String]>,
) -> Result<()> {
    if !mode.is_updating() || matches!(table.connector(), "memory" | "blackhole") {
        return Ok(());
    }
    let key = match key_names {
        Some(k) => format!("updates on key [{}]", k.join(", ")),
        None => "updates (retractions)".to_string(),
    };
    Err(Error::plan(format!(
        "sink `{}` only accepts inserts, but the query produces {key}; use an upsert sink \
         (a memory table, or one with a PRIMARY KEY once upsert connectors exist) or a \
         changelog format",
        table.name
    ))
    .near("INSERT"))
}

pub(crate) fn make_sink(
    state: &SessionState,
    table: &StreamTable,
    overwrite: bool,
) -> Result<Box<dyn Sink>> {
    let schema = Arc::clone(&table.schema);
    Ok(match table.connector() {
        "filesystem" => Box::new(FileSink::try_new(
            &table.name,
            &FileOptions::parse(&table.name, &table.options)?,
            overwrite,
        )?),
        "blackhole" => Box::new(BlackholeSink),
        "kafka" => Box::new(KafkaSink::try_new(
            KafkaOptions::parse(&table.name, &table.options)?,
            &schema,
            &table.metadata_columns(),
        )?),
        "memory" => Box::new(MemorySink::new(memory_store(state)?.get(&table.name)?)),
        other => {
            return Err(Error::plan(format!(
                "connector '{other}' cannot be written to"
            )))
        }
    })
}
