//! Filters and projections that read CURRENT_WATERMARK: a stateless chain
//! over each batch plus one column holding the watermark the operator has
//! received so far (NULL before the first). It runs as an operator of its
//! own, never fused onto a source, so the watermark it sees is the one in
//! the ordered stream ahead of the rows, whatever the parallelism.

use std::sync::Arc;

use arrow::array::{ArrayRef, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use sluice_common::{Result, Watermark};

use crate::operator::{Operator, Output};
use crate::operators::stateless::{StatelessOperator, Step};
use crate::row::RowFunction;

/// Name of the column the operator adds for the steps to read.
pub const WATERMARK_COLUMN: &str = "__sluice_current_watermark";

/// The column the operator adds: the watermark in milliseconds, NULL
/// before the first.
pub fn watermark_field() -> Field {
    Field::new(
        WATERMARK_COLUMN,
        DataType::Timestamp(TimeUnit::Millisecond, None),
        true,
    )
}

/// `input_schema` plus the watermark column the steps read.
pub fn with_watermark_column(input_schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = input_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(watermark_field());
    Arc::new(Schema::new(fields))
}

/// See the module docs.
#[derive(Debug)]
pub struct CurrentWatermarkOperator {
    steps: StatelessOperator,
    extended: SchemaRef,
    watermark: Option<i64>,
}

impl CurrentWatermarkOperator {
    /// Steps over batches of [`with_watermark_column`]`(input_schema)`. A
    /// chain ending in a filter drops the watermark column again.
    pub fn new(mut steps: Vec<Step>, input_schema: &Schema) -> Self {
        let extended = with_watermark_column(input_schema);
        if matches!(steps.last(), Some(Step::Filter(_)) | None) {
            let keep = (0..input_schema.fields().len())
                .map(|i| {
                    Arc::new(datafusion::physical_expr::expressions::Column::new(
                        input_schema.field(i).name(),
                        i,
                    )) as Arc<dyn datafusion::physical_expr::PhysicalExpr>
                })
                .collect();
            steps.push(Step::Project(keep, Arc::new(input_schema.clone())));
        }
        CurrentWatermarkOperator {
            steps: StatelessOperator::new(steps, Arc::clone(&extended)),
            extended,
            watermark: None,
        }
    }
}

impl Operator for CurrentWatermarkOperator {
    fn name(&self) -> &'static str {
        "Stateless"
    }

    fn describe(&self) -> String {
        format!("{} (with CURRENT_WATERMARK)", self.steps.describe())
    }

    fn output_schema(&self) -> SchemaRef {
        self.steps.output_schema()
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    /// The watermark seen so far (NULL before the first).
    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        let wm = self.watermark.unwrap_or(i64::MIN);
        let meta = crate::checkpoint::state::scalars(&[("watermark", wm)]);
        Ok(crate::checkpoint::State::new().with("meta", meta))
    }

    /// The largest watermark any instance had seen.
    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        _keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        let wm = crate::checkpoint::state::largest(states, "watermark")?;
        if wm != i64::MIN {
            self.watermark = Some(self.watermark.map_or(wm, |w| w.max(wm)));
        }
        Ok(())
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let n = batch.num_rows();
        let wm: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![self.watermark; n]));
        let mut cols = batch.columns().to_vec();
        cols.push(wm);
        let opts = RecordBatchOptions::new().with_row_count(Some(n));
        let extended = RecordBatch::try_new_with_options(Arc::clone(&self.extended), cols, &opts)?;
        let result = self.steps.apply(extended)?;
        if result.num_rows() > 0 {
            out.push(result);
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: Watermark, _out: &mut Output) -> Result<Option<Watermark>> {
        // The final watermark of a bounded input follows its last row.
        if wm != Watermark::MAX && wm.0 != i64::MIN {
            self.watermark = Some(wm.0);
        }
        Ok(Some(wm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::batch_ts;
    use datafusion::logical_expr::Operator as Op;
    use datafusion::physical_expr::expressions::{binary, col};

    /// `WHERE ts > CURRENT_WATERMARK(ts)` keeps rows ahead of the watermark;
    /// before the first watermark the comparison is NULL (Flink).
    #[test]
    fn filter_on_the_watermark_seen_so_far() {
        let input = batch_ts(&[5, 15, 25], &[1, 2, 3], &[0, 0, 0]);
        let extended = with_watermark_column(&input.schema());
        let ts = col("ts", &extended).expect("ts");
        let wm = col(WATERMARK_COLUMN, &extended).expect("wm");
        let pred = binary(ts, Op::Gt, wm, &extended).expect("pred");
        let mut op = CurrentWatermarkOperator::new(vec![Step::Filter(pred)], &input.schema());
        let mut out = Output::default();
        op.on_batch(0, input.clone(), &mut out).expect("runs");
        assert!(out.take_batches().is_empty(), "no watermark yet: NULL");
        op.on_watermark(Watermark(10), &mut out).expect("wm");
        op.on_batch(0, input, &mut out).expect("runs");
        let kept: Vec<i64> = out
            .take_batches()
            .iter()
            .flat_map(|b| {
                b.column(1)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .expect("k")
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(kept, [2, 3]);
        assert_eq!(
            op.output_schema().fields().len(),
            3,
            "the column is dropped"
        );
    }
}
