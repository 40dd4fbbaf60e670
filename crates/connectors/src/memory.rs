//! Rows held in memory: the `memory` connector and `VALUES`.

use std::sync::Arc;

use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::{Error, Result};
use sluice_exec::sink::Sink;
use sluice_exec::source::{ScanColumns, Source, SourceContext};
use sluice_sql::table::MemoryRows;

/// A bounded source over batches. With a watermark expression, a watermark
/// follows each batch (so each `INSERT` into a memory table is one step of
/// event time: rows of a later INSERT can be late).
#[derive(Debug)]
pub struct BatchSource {
    label: String,
    batches: Vec<RecordBatch>,
    scan: ScanColumns,
}

impl BatchSource {
    /// A source emitting `batches` (of the columns `scan` makes) as `scan`
    /// emits them.
    pub fn new(label: impl Into<String>, batches: Vec<RecordBatch>, scan: ScanColumns) -> Self {
        BatchSource {
            label: label.into(),
            batches,
            scan,
        }
    }
}

#[async_trait]
impl Source for BatchSource {
    fn name(&self) -> &'static str {
        "MemorySource"
    }

    fn describe(&self) -> String {
        let rows: usize = self.batches.iter().map(|b| b.num_rows()).sum();
        format!("MemorySource: {} ({rows} rows)", self.label)
    }

    fn output_schema(&self) -> SchemaRef {
        self.scan.emitted()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        for batch in self.batches {
            let sent = ctx.send_with_watermark(batch, &self.scan).await?;
            if !sent {
                return Ok(());
            }
        }
        ctx.finish().await;
        Ok(())
    }
}

/// Appends results to a memory table.
#[derive(Debug)]
pub struct MemorySink {
    table: String,
    rows: MemoryRows,
    schema: SchemaRef,
}

impl MemorySink {
    /// A sink into `rows` of a table with `schema`.
    pub fn new(table: impl Into<String>, rows: MemoryRows, schema: SchemaRef) -> Self {
        MemorySink {
            table: table.into(),
            rows,
            schema,
        }
    }
}

#[async_trait]
impl Sink for MemorySink {
    fn name(&self) -> &'static str {
        "MemorySink"
    }

    fn describe(&self) -> String {
        format!("MemorySink: {}", self.table)
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let cols = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(c, f)| cast(c, f.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), cols)
            .map_err(|e| Error::plan(format!("INSERT INTO {}: {e}", self.table)))?;
        self.rows
            .write()
            .map_err(|_| Error::internal("memory table lock poisoned"))?
            .push(batch);
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
