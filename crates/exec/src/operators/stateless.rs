//! A fused chain of filters and projections, evaluated per batch with
//! DataFusion physical expressions.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::compute::{filter_record_batch, prep_null_mask_filter};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::changelog;
use sluice_common::{Error, Result};

use crate::row::RowFunction;

/// One step of the chain.
#[derive(Debug, Clone)]
pub enum Step {
    /// Keep rows where the predicate is true (NULL drops the row).
    Filter(Arc<dyn PhysicalExpr>),
    /// Compute new columns.
    Project(Vec<Arc<dyn PhysicalExpr>>, SchemaRef),
}

/// Filters and projections fused into one task: no channel hop, no copy
/// between steps.
///
/// Over a changelog (the input schema ends with the row-kind column) the
/// row kind passes through every step: projections carry it along, and a
/// filter that keeps one half of an update fixes the other half's kind
/// ([`changelog::filter_changelog`]).
#[derive(Debug)]
pub struct StatelessOperator {
    steps: Vec<Step>,
    schema: SchemaRef,
    changelog: bool,
}

impl StatelessOperator {
    /// A chain over input batches of `input_schema`.
    pub fn new(mut steps: Vec<Step>, input_schema: SchemaRef) -> Self {
        let changelog = changelog::is_changelog(&input_schema);
        if changelog {
            for s in &mut steps {
                if let Step::Project(_, schema) = s {
                    *schema = changelog::with_op_field(schema);
                }
            }
        }
        let schema = steps
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::Project(_, schema) => Some(Arc::clone(schema)),
                Step::Filter(_) => None,
            })
            .unwrap_or(input_schema);
        StatelessOperator {
            steps,
            schema,
            changelog,
        }
    }
}

impl RowFunction for StatelessOperator {
    fn name(&self) -> &'static str {
        "Stateless"
    }

    fn describe(&self) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Filter(p) => format!("filter({p})"),
                Step::Project(exprs, _) => format!(
                    "project({})",
                    exprs
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect();
        format!("Stateless: {}", steps.join(" -> "))
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn apply(&self, mut batch: RecordBatch) -> Result<RecordBatch> {
        for step in &self.steps {
            if batch.num_rows() == 0 {
                // Still produce the right schema.
                if let Step::Project(_, schema) = step {
                    batch = RecordBatch::new_empty(Arc::clone(schema));
                }
                continue;
            }
            batch = match step {
                Step::Filter(pred) => {
                    let v = pred.evaluate(&batch)?.into_array(batch.num_rows())?;
                    if v.data_type() != &DataType::Boolean {
                        return Err(Error::execution(format!(
                            "filter is {}, not BOOLEAN",
                            v.data_type()
                        )));
                    }
                    let mask = v.as_boolean();
                    let mask = if mask.null_count() > 0 {
                        prep_null_mask_filter(mask)
                    } else {
                        mask.clone()
                    };
                    if mask.true_count() == batch.num_rows() {
                        batch
                    } else if self.changelog {
                        changelog::filter_changelog(&batch, &mask)?
                    } else {
                        filter_record_batch(&batch, &mask)?
                    }
                }
                Step::Project(exprs, schema) => {
                    let n = batch.num_rows();
                    let mut cols = exprs
                        .iter()
                        .map(|e| e.evaluate(&batch).and_then(|v| v.into_array(n)))
                        .collect::<datafusion::error::Result<Vec<_>>>()?;
                    if self.changelog {
                        cols.extend(batch.columns().last().cloned());
                    }
                    let opts = RecordBatchOptions::new().with_row_count(Some(n));
                    RecordBatch::try_new_with_options(Arc::clone(schema), cols, &opts)?
                }
            };
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::{batch_i64, pretty};
    use arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::Operator as Op;
    use datafusion::physical_expr::expressions::{binary, col, lit};

    #[test]
    fn filter_then_project() {
        let input = batch_i64(&[("a", &[1, 2, 3, 4])]);
        let schema = input.schema();
        let a = col("a", &schema).expect("column");
        let pred = binary(Arc::clone(&a), Op::Gt, lit(2i64), &schema).expect("pred");
        let times10 = binary(a, Op::Multiply, lit(10i64), &schema).expect("expr");
        let out_schema = Arc::new(Schema::new(vec![Field::new("b", DataType::Int64, true)]));
        let op = StatelessOperator::new(
            vec![Step::Filter(pred), Step::Project(vec![times10], out_schema)],
            schema,
        );
        let out = op.apply(input).expect("runs");
        assert_eq!(
            pretty(&[out]),
            "+----+\n| b  |\n+----+\n| 30 |\n| 40 |\n+----+"
        );
    }
}
