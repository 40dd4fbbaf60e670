//! Leaves: table scans (by connector), VALUES and the empty relation.

use std::sync::Arc;

use arrow::array::{new_empty_array, ArrayRef};
use arrow::compute::cast;
use arrow::datatypes::Schema;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::{DFSchema, DFSchemaRef, ScalarValue};
use datafusion::logical_expr::logical_plan::{TableScan, Values};
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_connectors::datagen::{DatagenOptions, DatagenSource, DatagenSourceConfig};
use sluice_connectors::file::{list_splits, FileOptions, FileSource, FileSourceConfig};
use sluice_connectors::kafka::{KafkaOptions, KafkaSource, KafkaSourceConfig};
use sluice_connectors::memory::BatchSource;
use sluice_connectors::nexmark::{NexmarkOptions, NexmarkSource, NexmarkSourceConfig};
use sluice_exec::graph::StreamNode;
use sluice_exec::source::ScanColumns;
use sluice_exec::watermark::WatermarkExpr;
use sluice_sql::table::StreamTable;

use super::{Planned, StreamPlanner};

pub(crate) fn plan_scan(p: &StreamPlanner, scan: &TableScan) -> Result<Planned> {
    let provider = source_as_provider(&scan.source)?;
    let Some(table) = provider.downcast_ref::<StreamTable>() else {
        return Err(
            Error::plan(format!("{} cannot be read as a stream", scan.table_name))
                .near(scan.table_name.table()),
        );
    };
    let all: Vec<usize> = (0..table.schema.fields().len()).collect();
    let projection = scan.projection.clone().unwrap_or(all);
    let wm_col = table.watermark.as_ref().map(|w| w.column);
    let rowtime = projection.iter().map(|&i| Some(i) == wm_col).collect();
    let n = projection.len();
    let mut bounded = true;
    // Every column of the table made, the projection emitted.
    let full_scan = || -> Result<ScanColumns> {
        let watermark = match &table.watermark {
            Some(w) => {
                let schema = DFSchema::try_from(table.schema.as_ref().clone())?;
                Some(WatermarkExpr::new(p.physical(&w.expr, &schema)?))
            }
            None => None,
        };
        ScanColumns::try_new(
            Arc::clone(&table.schema),
            Some(projection.clone()),
            watermark,
        )
    };
    let node = match table.connector() {
        "memory" => {
            let rows = crate::tables::memory_store(p.state)?
                .get(&table.name)?
                .snapshot()?;
            let src = BatchSource::new(table.name.clone(), rows, full_scan()?);
            StreamNode::source(Box::new(src))
        }
        "kafka" => {
            let options = KafkaOptions::parse(&table.name, &table.options)?;
            bounded = options.is_bounded();
            let src = KafkaSource::try_new(KafkaSourceConfig {
                options,
                scan: full_scan()?,
                metadata: table.metadata_columns(),
            })?;
            StreamNode::source(Box::new(src))
        }
        "nexmark" => {
            let options = NexmarkOptions::parse(&table.name, &table.schema, &table.options)?;
            bounded = options.is_bounded();
            let generate = with_watermark_columns(table, &projection)?;
            let src = NexmarkSource::new(NexmarkSourceConfig {
                table: table.name.clone(),
                options,
                scan: full_scan()?,
                generate,
            });
            StreamNode::source(Box::new(src))
        }
        "datagen" => {
            let options = DatagenOptions::parse(&table.name, &table.schema, &table.options)?;
            bounded = options.is_bounded();
            let src = DatagenSource::try_new(DatagenSourceConfig {
                table: table.name.clone(),
                options,
                scan: full_scan()?,
            })?;
            StreamNode::source(Box::new(src))
        }
        "filesystem" => {
            let options = FileOptions::parse(&table.name, &table.options)?;
            // A missing path fails here, before anything runs.
            list_splits(&options.path).map_err(|e| {
                Error::plan(format!("table {}: {}", table.name, e.message())).near(&table.name)
            })?;
            let read = with_watermark_columns(table, &projection)?;
            let read_schema = Arc::new(table.schema.project(&read)?);
            let watermark = match &table.watermark {
                Some(w) => {
                    let schema = DFSchema::try_from(read_schema.as_ref().clone())?;
                    Some(WatermarkExpr::new(p.physical(&w.expr, &schema)?))
                }
                None => None,
            };
            let src = FileSource::new(FileSourceConfig {
                table: table.name.clone(),
                options,
                scan: ScanColumns::try_new(read_schema, Some((0..n).collect()), watermark)?,
            });
            StreamNode::source(Box::new(src))
        }
        other => {
            return Err(Error::plan(format!(
                "table {} uses connector '{other}', which can only be written to",
                table.name
            ))
            .near(&table.name))
        }
    };
    Ok(Planned {
        node,
        steps: vec![],
        schema: Arc::clone(&scan.projected_schema),
        rowtime,
        windows: vec![None; n],
        bounded,
        changelog: ChangelogMode::AppendOnly,
    })
}

/// The projected columns plus those the watermark expression reads, so a
/// source that builds only some columns can still compute the watermark.
fn with_watermark_columns(table: &StreamTable, projection: &[usize]) -> Result<Vec<usize>> {
    let mut columns = projection.to_vec();
    if let Some(w) = &table.watermark {
        for c in w.expr.column_refs() {
            let i = table.schema.index_of(&c.name)?;
            if !columns.contains(&i) {
                columns.push(i);
            }
        }
    }
    Ok(columns)
}

pub(crate) fn plan_values(p: &StreamPlanner, values: &Values) -> Result<Planned> {
    let schema = Arc::clone(values.schema.inner());
    let one_row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let empty = DFSchema::empty();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (c, field) in schema.fields().iter().enumerate() {
        let mut scalars = Vec::with_capacity(values.values.len());
        for row in &values.values {
            let e = p.physical(&row[c], &empty)?;
            let v = e.evaluate(&one_row)?.into_array(1)?;
            scalars.push(ScalarValue::try_from_array(&v, 0)?);
        }
        let array = if scalars.is_empty() {
            new_empty_array(field.data_type())
        } else {
            ScalarValue::iter_to_array(scalars)?
        };
        columns.push(cast(&array, field.data_type())?);
    }
    let batch = RecordBatch::try_new_with_options(
        Arc::clone(&schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(values.values.len())),
    )
    .map_err(|e| Error::plan(format!("VALUES: {e}")))?;
    leaf(batch, &values.schema)
}

pub(crate) fn plan_empty(produce_one_row: bool, schema: &DFSchemaRef) -> Result<Planned> {
    let rows = usize::from(produce_one_row);
    let batch = RecordBatch::try_new_with_options(
        Arc::clone(schema.inner()),
        schema
            .fields()
            .iter()
            .map(|f| arrow::array::new_null_array(f.data_type(), rows))
            .collect(),
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?;
    leaf(batch, schema)
}

fn leaf(batch: RecordBatch, schema: &DFSchemaRef) -> Result<Planned> {
    let n = schema.fields().len();
    let scan = ScanColumns::try_new(Arc::clone(schema.inner()), None, None)?;
    let src = BatchSource::new("VALUES", vec![batch], scan);
    Ok(Planned {
        node: StreamNode::source(Box::new(src)),
        steps: vec![],
        schema: Arc::clone(schema),
        rowtime: vec![false; n],
        windows: vec![None; n],
        bounded: true,
        changelog: ChangelogMode::AppendOnly,
    })
}
