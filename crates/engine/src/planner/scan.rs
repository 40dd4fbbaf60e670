//! Leaves: table scans (by connector), VALUES and the empty relation.

use std::sync::Arc;

use arrow::array::{new_empty_array, ArrayRef};
use arrow::compute::cast;
use arrow::datatypes::Schema;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::{DFSchema, DFSchemaRef, ScalarValue};
use datafusion::logical_expr::logical_plan::{TableScan, Values};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::changelog;
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_connectors::memory::BatchSource;
use sluice_connectors::registry::ScanRequest;
use sluice_exec::graph::StreamNode;
use sluice_exec::operators::changelog::UpsertNormalize;
use sluice_exec::operators::expiry::wall_clock;
use sluice_exec::operators::stateless::Step;
use sluice_exec::source::ScanColumns;
use sluice_exec::watermark::WatermarkExpr;
use sluice_sql::table::StreamTable;

use super::{Planned, StreamPlanner};
use crate::tables::{connector_context, ConnectorTable};

pub(crate) fn plan_scan(p: &StreamPlanner, scan: &TableScan) -> Result<Planned> {
    let provider = source_as_provider(&scan.source)?;
    let Some(table) = provider.downcast_ref::<StreamTable>() else {
        return Err(
            Error::plan(format!("{} cannot be read as a stream", scan.table_name))
                .near(scan.table_name.table()),
        );
    };
    let ct = ConnectorTable::of(table)?.with_idle_default(p.source_idle);
    let all: Vec<usize> = (0..table.schema.fields().len()).collect();
    let wanted = scan.projection.clone().unwrap_or(all.clone());
    // Upserts are normalized by key, so the key columns are read even when
    // the query does not select them (and projected away after).
    let upserts = ct.connector.normalizes_upserts();
    if !upserts {
        let name = scan.table_name.to_string();
        if let Some(shared) = p.shared.borrow_mut().get_mut(&name) {
            return shared.scan(scan, &wanted, |columns| {
                read_on_time(p, scan, table, &ct, (columns.to_vec(), false))
            });
        }
    }
    read_on_time(p, scan, table, &ct, (wanted, upserts))
}

/// [`read`], with late rows diverted when the table names a late-rows
/// table: every column is read for them, then `wanted` kept.
fn read_on_time(
    p: &StreamPlanner,
    scan: &TableScan,
    table: &StreamTable,
    ct: &ConnectorTable,
    (wanted, upserts): (Vec<usize>, bool),
) -> Result<Planned> {
    let Some(late) = super::late::late_table(p.state, table)? else {
        return read(p, scan, table, ct, wanted, upserts);
    };
    let all: Vec<usize> = (0..table.schema.fields().len()).collect();
    let full = read(p, scan, table, ct, all, upserts)?;
    super::late::divert(scan, table, full, (late, upserts), &wanted)
}

/// Read columns `wanted` of `table` (for `scan`).
fn read(
    p: &StreamPlanner,
    scan: &TableScan,
    table: &StreamTable,
    ct: &ConnectorTable,
    wanted: Vec<usize>,
    upserts: bool,
) -> Result<Planned> {
    let desc = ct.desc();
    let cx = connector_context(p.state, p.follow_views)?;
    let mode = match ct.connector.changelog_in(&desc, &cx)? {
        // The connector's key is over the physical columns.
        ChangelogMode::Updating {
            upsert_key: Some(k),
        } => ChangelogMode::Updating {
            upsert_key: Some(
                k.iter()
                    .map(|&i| table.column_of_physical(i).unwrap_or(i))
                    .collect(),
            ),
        },
        m => m,
    };
    let all: Vec<usize> = (0..table.schema.fields().len()).collect();
    let scanned = scan.projection.clone().unwrap_or(all);
    let mut projection = wanted.clone();
    if upserts {
        for &k in mode.upsert_key().unwrap_or_default() {
            if !projection.contains(&k) {
                projection.push(k);
            }
        }
    }
    let request = scan_request(p, table, &projection, mode.is_updating())?;
    let built = ct.connector.source(&desc, request, &cx)?;
    let wm_col = table.watermark.as_ref().map(|w| w.column);
    let n = wanted.len();
    let changelog = match mode.upsert_key() {
        Some(k) => ChangelogMode::Updating {
            upsert_key: k
                .iter()
                .map(|c| projection.iter().position(|i| i == c))
                .collect(),
        },
        None => mode,
    };
    let mut planned = Planned {
        node: StreamNode::source(built.source),
        steps: vec![],
        schema: if projection != scanned {
            Arc::new(DFSchema::try_from_qualified_schema(
                scan.table_name.clone(),
                &table.schema.project(&projection)?,
            )?)
        } else {
            Arc::clone(&scan.projected_schema)
        },
        rowtime: projection.iter().map(|&i| Some(i) == wm_col).collect(),
        windows: vec![None; projection.len()],
        bounded: built.bounded,
        changelog,
    };
    if upserts {
        planned = normalized(p, planned, &scan.projected_schema, n)?;
    }
    Ok(planned)
}

/// The scan's columns in the shapes sources use (see [`ScanRequest`]).
fn scan_request(
    p: &StreamPlanner,
    table: &StreamTable,
    projection: &[usize],
    changelog: bool,
) -> Result<ScanRequest> {
    let needed = with_watermark_columns(table, projection)?;
    if table.has_computed() {
        return expanding_request(p, table, projection, &needed, changelog);
    }
    let columns = |made: &[usize], mut output: Vec<usize>| -> Result<ScanColumns> {
        let data = Arc::new(table.schema.project(made)?);
        let watermark = watermark_over(p, table, &data)?;
        let made_schema = if changelog {
            output.push(made.len());
            changelog::with_op_field(&data)
        } else {
            data
        };
        ScanColumns::try_new(made_schema, Some(output), watermark)
    };
    let all: Vec<usize> = (0..table.schema.fields().len()).collect();
    Ok(ScanRequest {
        full: columns(&all, projection.to_vec())?,
        narrow: columns(&needed, (0..projection.len()).collect())?,
        needed,
    })
}

/// The table's watermark over columns `data` (when it has one).
fn watermark_over(
    p: &StreamPlanner,
    table: &StreamTable,
    data: &Schema,
) -> Result<Option<WatermarkExpr>> {
    match &table.watermark {
        Some(w) => {
            let schema = DFSchema::try_from(data.clone())?;
            Ok(Some(WatermarkExpr::new(p.physical(&w.expr, &schema)?)))
        }
        None => Ok(None),
    }
}

/// [`scan_request`] for a table with computed columns: the source makes
/// physical columns (all of them, or those the needed columns read), and
/// the scan computes the rest before the watermark.
fn expanding_request(
    p: &StreamPlanner,
    table: &StreamTable,
    projection: &[usize],
    needed: &[usize],
    changelog: bool,
) -> Result<ScanRequest> {
    let mut needed_physical = Vec::new();
    for &c in needed {
        let reads = match (&table.computed[c], table.physical_index(c)) {
            (_, Some(i)) => vec![i],
            (Some(e), None) => e
                .column_refs()
                .iter()
                .map(|r| Ok(table.physical.index_of(&r.name)?))
                .collect::<Result<Vec<_>>>()?,
            (None, None) => return Err(Error::internal("a column neither physical nor computed")),
        };
        for i in reads {
            if !needed_physical.contains(&i) {
                needed_physical.push(i);
            }
        }
    }
    let columns = |made: &[usize], cols: &[usize], mut output: Vec<usize>| {
        let data = Arc::new(table.physical.project(made)?);
        let df = DFSchema::try_from(data.as_ref().clone())?;
        let mut exprs = cols
            .iter()
            .map(|&c| match &table.computed[c] {
                Some(e) => p.physical(e, &df),
                None => {
                    let name = table.schema.field(c).name();
                    Ok(Arc::new(Column::new(name, data.index_of(name)?)) as Arc<dyn PhysicalExpr>)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let expanded = Arc::new(table.schema.project(cols)?);
        let watermark = watermark_over(p, table, &expanded)?;
        let (made_schema, expanded) = if changelog {
            exprs.push(Arc::new(Column::new(changelog::OP_COLUMN, made.len())));
            output.push(cols.len());
            (
                changelog::with_op_field(&data),
                changelog::with_op_field(&expanded),
            )
        } else {
            (data, expanded)
        };
        ScanColumns::expanding(made_schema, exprs, expanded, output, watermark)
    };
    let all: Vec<usize> = (0..table.schema.fields().len()).collect();
    let physical: Vec<usize> = (0..table.physical.fields().len()).collect();
    Ok(ScanRequest {
        full: columns(&physical, &all, projection.to_vec())?,
        narrow: columns(&needed_physical, needed, (0..projection.len()).collect())?,
        needed: needed_physical,
    })
}

/// Upserts (a new value per key, a delete with only the key) turned into
/// a changelog by a normalize operator keyed by the table's key, then cut
/// to the `n` columns the query reads.
fn normalized(
    p: &StreamPlanner,
    input: Planned,
    projected: &DFSchemaRef,
    n: usize,
) -> Result<Planned> {
    let key = input.changelog.upsert_key().map(<[usize]>::to_vec);
    let key = key.ok_or_else(|| Error::internal("upsert scan without a key"))?;
    let op = UpsertNormalize::try_new(&input.materialize_schema(), key)?
        .with_ttl(p.state_ttl, wall_clock());
    let mut planned = p.wrap(input, Box::new(op));
    if planned.schema.fields().len() > n {
        let exprs: Vec<Arc<dyn PhysicalExpr>> = (0..n)
            .map(|i| {
                let name = planned.schema.field(i).name();
                Arc::new(Column::new(name, i)) as Arc<dyn PhysicalExpr>
            })
            .collect();
        let sources: Vec<Option<usize>> = (0..n).map(Some).collect();
        planned.changelog = super::project_changelog(&planned.changelog, &sources);
        planned
            .steps
            .push(Step::Project(exprs, Arc::clone(projected.inner())));
        planned.schema = Arc::clone(projected);
        planned.rowtime.truncate(n);
        planned.windows.truncate(n);
    }
    Ok(planned.with_named_key())
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
