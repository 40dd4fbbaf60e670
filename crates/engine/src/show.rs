//! SHOW TABLES, DESCRIBE, EXPLAIN output.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::execution::context::SessionContext;
use sluice_common::Result;
use sluice_sql::table::StreamTable;
use sluice_sql::types::sql_type_name;

use crate::session::StatementResult;

/// A result of string columns.
pub(crate) fn string_rows(names: &[&str], rows: Vec<Vec<String>>) -> Result<StatementResult> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = (0..names.len())
        .map(|c| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r[c].as_str()),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok(StatementResult::Rows(schema, vec![batch]))
}

pub(crate) fn lines_result(name: &str, lines: Vec<String>) -> Result<StatementResult> {
    string_rows(&[name], lines.into_iter().map(|l| vec![l]).collect())
}

pub(crate) fn show_tables(ctx: &SessionContext) -> Result<StatementResult> {
    let mut names = ctx
        .catalog("datafusion")
        .and_then(|c| c.schema("public"))
        .map(|s| s.table_names())
        .unwrap_or_default();
    names.sort();
    string_rows(
        &["table name"],
        names.into_iter().map(|n| vec![n]).collect(),
    )
}

/// `DESCRIBE t`: name, type, null, and the watermark on the event-time column.
/// Rows after the columns (a Kafka table's partitions) may be added.
pub(crate) fn describe(
    provider: &dyn TableProvider,
    extra_rows: Vec<Vec<String>>,
) -> Result<StatementResult> {
    let schema = provider.schema();
    let table = (provider as &dyn std::any::Any).downcast_ref::<StreamTable>();
    let mut rows: Vec<Vec<String>> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let wm = table
                .and_then(|t| t.watermark.as_ref())
                .filter(|w| w.column == i)
                .map(|w| w.text.clone())
                .unwrap_or_default();
            let key = table
                .filter(|t| t.primary_key.iter().any(|k| k == f.name()))
                .map(|_| "PRI".to_string())
                .unwrap_or_default();
            vec![
                f.name().clone(),
                sql_type_name(f.data_type()),
                if f.is_nullable() { "TRUE" } else { "FALSE" }.to_string(),
                key,
                wm,
            ]
        })
        .collect();
    rows.extend(extra_rows);
    string_rows(&["name", "type", "null", "key", "watermark"], rows)
}
