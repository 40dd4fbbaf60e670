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

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    /// The rows it holds until the end.
    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        let all = concat_batches(&self.schema, &self.buffered)?;
        Ok(crate::checkpoint::State::new().with("rows", all))
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        _keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        for s in states {
            let rows = s.require("rows")?;
            self.buffered.push(RecordBatch::try_new(
                Arc::clone(&self.schema),
                rows.columns().to_vec(),
            )?);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::batch_i64;
    use arrow::array::{Array, Int64Array};
    use datafusion::physical_expr::expressions::col;

    fn sorted(keys: &[(&str, bool)], fetch: Option<usize>, batches: Vec<RecordBatch>) -> Vec<i64> {
        let schema = batches[0].schema();
        let keys = keys
            .iter()
            .map(|(name, descending)| SortKey {
                expr: col(name, &schema).expect("column"),
                options: SortOptions {
                    descending: *descending,
                    nulls_first: false,
                },
            })
            .collect();
        let mut op = SortOperator::new(Arc::clone(&schema), keys, fetch);
        let mut out = Output::default();
        for b in batches {
            op.on_batch(0, b, &mut out).expect("buffers");
            assert!(out.take_batches().is_empty(), "nothing before the end");
        }
        op.on_end(&mut out).expect("sorts");
        let result = out.take_batches();
        result
            .iter()
            .flat_map(|b| {
                let ids = b
                    .column(1)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("id column")
                    .clone();
                (0..ids.len()).map(move |i| ids.value(i))
            })
            .collect()
    }

    #[test]
    fn sorts_across_batches_by_several_keys() {
        let a = batch_i64(&[("k", &[2, 1, 2]), ("id", &[0, 1, 2])]);
        let b = batch_i64(&[("k", &[1, 3]), ("id", &[3, 4])]);
        // k ascending, then id descending.
        assert_eq!(
            sorted(&[("k", false), ("id", true)], None, vec![a, b]),
            vec![3, 1, 2, 0, 4]
        );
    }

    #[test]
    fn fetch_keeps_the_first_rows_and_empty_input_gives_nothing() {
        let a = batch_i64(&[("k", &[5, 9, 7]), ("id", &[0, 1, 2])]);
        assert_eq!(sorted(&[("k", true)], Some(2), vec![a]), vec![1, 2]);
        let empty = batch_i64(&[("k", &[]), ("id", &[])]);
        assert!(sorted(&[("k", false)], None, vec![empty]).is_empty());
    }
}
