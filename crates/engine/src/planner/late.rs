//! A table's late-row side output: `'scan.late-rows.table' = 'name'`
//! sends its rows at or behind the watermark into memory table `name`
//! (see `sluice_exec::operators::late_rows`).

use std::sync::Arc;

use datafusion::common::DFSchema;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::TableScan;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::{Error, Result};
use sluice_connectors::memory::MemoryTable;
use sluice_exec::graph::StreamNode;
use sluice_exec::operators::late_rows::{LateRows, LateSink};
use sluice_exec::operators::stateless::Step;
use sluice_sql::table::StreamTable;

use super::Planned;
use crate::tables::memory_store;

/// The table option naming the late-row table.
pub(crate) const LATE_ROWS: &str = "scan.late-rows.table";

/// The memory table `table`'s late rows go to (`None` without the option),
/// checked against `table`'s columns.
pub(crate) fn late_table(
    state: &SessionState,
    table: &StreamTable,
) -> Result<Option<Arc<MemoryTable>>> {
    let Some(name) = table.options.get(LATE_ROWS) else {
        return Ok(None);
    };
    let t = &table.name;
    if table.watermark.is_none() {
        return Err(Error::plan(format!(
            "table {t}: '{LATE_ROWS}' needs a WATERMARK (late rows are those behind it)"
        )));
    }
    let late = memory_store(state)?
        .get(&name.to_lowercase())
        .map_err(|_| {
            Error::plan(format!(
                "table {t}: '{LATE_ROWS}' = '{name}' is not a memory table; create it first, \
                 with the columns of {t}"
            ))
        })?;
    let types = |s: &arrow::datatypes::Schema| -> Vec<String> {
        s.fields()
            .iter()
            .map(|f| sluice_common::sql_type_name(f.data_type()))
            .collect()
    };
    let (want, have) = (types(&table.schema), types(late.schema()));
    if want != have {
        return Err(Error::plan(format!(
            "table {t}: late-rows table '{name}' has columns of types ({}), but {t}'s are ({})",
            have.join(", "),
            want.join(", ")
        )));
    }
    Ok(Some(late))
}

/// `full` (a read of every column of `table`) with its late rows diverted
/// into `late`, then cut to the columns `wanted`.
pub(crate) fn divert(
    scan: &TableScan,
    table: &StreamTable,
    full: Planned,
    (late, upserts): (Arc<MemoryTable>, bool),
    wanted: &[usize],
) -> Result<Planned> {
    if full.changelog.is_updating() || upserts {
        return Err(Error::plan(format!(
            "table {}: '{LATE_ROWS}' is for append-only tables; this one is updating",
            table.name
        )));
    }
    let Some(column) = table.watermark.as_ref().map(|w| w.column) else {
        return Err(Error::internal("late rows of a table without a watermark"));
    };
    let schema = Arc::clone(full.schema.inner());
    let sink_schema = Arc::clone(late.schema());
    let sink: LateSink = Arc::new(move |batch| {
        let batch = arrow::record_batch::RecordBatch::try_new(
            Arc::clone(&sink_schema),
            batch.columns().to_vec(),
        )?;
        late.write(batch)
    });
    let name = table.options.get(LATE_ROWS).cloned().unwrap_or_default();
    let (bounded, changelog) = (full.bounded, full.changelog.clone());
    let op = LateRows::new(column, &name, sink, Arc::clone(&schema));
    let node = StreamNode::operator(Box::new(op), vec![full.materialize()]);
    let exprs: Vec<Arc<dyn PhysicalExpr>> = wanted
        .iter()
        .map(|&i| Arc::new(Column::new(schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>)
        .collect();
    let projected = match &scan.projection {
        Some(p) if p.as_slice() == wanted => Arc::clone(&scan.projected_schema),
        _ => Arc::new(DFSchema::try_from_qualified_schema(
            scan.table_name.clone(),
            &table.schema.project(wanted)?,
        )?),
    };
    Ok(Planned {
        node,
        steps: vec![Step::Project(exprs, Arc::clone(projected.inner()))],
        schema: projected,
        rowtime: wanted.iter().map(|&i| i == column).collect(),
        windows: vec![None; wanted.len()],
        bounded,
        changelog,
    })
}
