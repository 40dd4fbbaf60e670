//! ORDER BY over a bounded input: buffers rows and emits them sorted when
//! the input ends (the planner only allows it over bounded inputs).

use std::sync::Arc;

use arrow::compute::{
    concat_batches, lexsort_to_indices, take_record_batch, SortColumn, SortOptions,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::Result;

use crate::operator::{Operator, Output};

/// One ORDER BY key.
#[derive(Debug, Clone)]
pub struct SortKey {
    /// What to sort by.
    pub expr: Arc<dyn PhysicalExpr>,
    /// Direction and NULL placement.
    pub options: SortOptions,
}

/// Sorts all rows at end of input; keeps at most `fetch` when given.
#[derive(Debug)]
pub struct SortOperator {
    schema: SchemaRef,
    keys: Vec<SortKey>,
    fetch: Option<usize>,
    buffered: Vec<RecordBatch>,
}

impl SortOperator {
    /// Sort rows of `schema` by `keys`.
    pub fn new(schema: SchemaRef, keys: Vec<SortKey>, fetch: Option<usize>) -> Self {
        SortOperator {
            schema,
            keys,
            fetch,
            buffered: vec![],
        }
    }
}

impl Operator for SortOperator {
    fn name(&self) -> &'static str {
        "Sort"
    }

    fn describe(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                format!(
                    "{} {}",
                    k.expr,
                    if k.options.descending { "DESC" } else { "ASC" }
                )
            })
            .collect();
        format!("Sort: [{}] (at end of bounded input)", keys.join(", "))
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, _out: &mut Output) -> Result<()> {
        self.buffered.push(batch);
        Ok(())
    }

    fn on_end(&mut self, out: &mut Output) -> Result<()> {
        let all = concat_batches(&self.schema, &self.buffered)?;
        self.buffered.clear();
        if all.num_rows() == 0 {
            return Ok(());
        }
        let columns = self
            .keys
            .iter()
            .map(|k| {
                Ok(SortColumn {
                    values: k.expr.evaluate(&all)?.into_array(all.num_rows())?,
                    options: Some(k.options),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let indices = lexsort_to_indices(&columns, self.fetch)?;
        out.push(take_record_batch(&all, &indices)?);
        Ok(())
    }
}
