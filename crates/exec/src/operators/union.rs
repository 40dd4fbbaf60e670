//! UNION ALL: rows of every input, watermark the minimum of the inputs'.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::Result;

use crate::operator::{Operator, Output};

/// Merges its inputs (which share one schema) into one stream.
#[derive(Debug)]
pub struct UnionOperator {
    schema: SchemaRef,
}

impl UnionOperator {
    /// A union emitting `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        UnionOperator { schema }
    }
}

impl Operator for UnionOperator {
    fn name(&self) -> &'static str {
        "Union"
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        out.push(RecordBatch::try_new(
            Arc::clone(&self.schema),
            batch.columns().to_vec(),
        )?);
        Ok(())
    }
}
