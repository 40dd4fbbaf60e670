//! Watermark generation for sources with several splits.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::{Result, Watermark};

use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};

use crate::time::{max_millis, to_millis};

/// Evaluates a table's `WATERMARK FOR ts AS <expr>` on batches.
#[derive(Debug, Clone)]
pub struct WatermarkExpr {
    expr: Arc<dyn PhysicalExpr>,
    /// For the usual `ts - INTERVAL ...` (a column minus a constant, which
    /// grows with the column) only the row with the largest `ts` matters:
    /// the expression is evaluated on that row alone.
    monotonic_in: Option<usize>,
}

impl WatermarkExpr {
    /// Wrap a compiled watermark expression.
    pub fn new(expr: Arc<dyn PhysicalExpr>) -> Self {
        let monotonic_in = column_minus_constant(&expr);
        WatermarkExpr { expr, monotonic_in }
    }

    /// The largest watermark the batch supports (`None` if all NULL).
    pub fn eval(&self, batch: &RecordBatch) -> Result<Option<i64>> {
        let batch = match self.monotonic_in {
            Some(col) if batch.num_rows() > 1 => {
                let ts = to_millis(batch.column(col))?;
                let newest = ts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (v, i)))
                    .max();
                match newest {
                    Some((_, row)) => batch.slice(row, 1),
                    None => return Ok(None),
                }
            }
            _ => batch.clone(),
        };
        let v = self.expr.evaluate(&batch)?.into_array(batch.num_rows())?;
        max_millis(&v)
    }
}

/// `column - literal`: the column's index.
fn column_minus_constant(expr: &Arc<dyn PhysicalExpr>) -> Option<usize> {
    let b = expr.downcast_ref::<BinaryExpr>()?;
    if *b.op() != Operator::Minus {
        return None;
    }
    b.right().downcast_ref::<Literal>()?;
    Some(b.left().downcast_ref::<Column>()?.index())
}

/// Per-split watermarks; the source's watermark is the minimum over splits
/// that have not finished. A split not yet started holds it at `-inf`, so
/// reading splits one after another never makes rows late.
#[derive(Debug, Clone)]
pub struct SplitWatermarks {
    splits: Vec<Option<Watermark>>,
    emitted: Watermark,
}

impl SplitWatermarks {
    /// `n` splits, none started.
    pub fn new(n: usize) -> Self {
        SplitWatermarks {
            splits: vec![Some(Watermark::MIN); n],
            emitted: Watermark::MIN,
        }
    }

    /// Split `i` saw rows supporting watermark `wm`.
    pub fn observe(&mut self, i: usize, wm: i64) {
        if let Some(Some(cur)) = self.splits.get_mut(i) {
            if wm > cur.0 {
                *cur = Watermark(wm);
            }
        }
    }

    /// Split `i` is exhausted: it no longer holds the watermark back.
    pub fn finish(&mut self, i: usize) {
        if let Some(s) = self.splits.get_mut(i) {
            *s = None;
        }
    }

    /// Its state for a checkpoint: each split's watermark (NULL once
    /// finished) and the last combined one, in column `emitted`.
    pub fn snapshot(&self) -> RecordBatch {
        use arrow::array::{ArrayRef, Int64Array};
        use arrow::datatypes::{DataType, Field, Schema};
        let splits: Int64Array = self.splits.iter().map(|w| w.map(|w| w.0)).collect();
        let emitted = Int64Array::from(vec![self.emitted.0; self.splits.len()]);
        let schema = Schema::new(vec![
            Field::new("split", DataType::Int64, true),
            Field::new("emitted", DataType::Int64, false),
        ]);
        let cols: Vec<ArrayRef> = vec![Arc::new(splits), Arc::new(emitted)];
        RecordBatch::try_new(Arc::new(schema), cols)
            .unwrap_or_else(|_| RecordBatch::new_empty(Arc::new(Schema::empty())))
    }

    /// Splits as [`SplitWatermarks::snapshot`] recorded them.
    pub fn restore(batch: &RecordBatch) -> Result<Self> {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::Int64Type;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| {
                    sluice_common::Error::Checkpoint(format!(
                        "checkpointed split watermarks have no '{name}'"
                    ))
                })
        };
        let (splits, emitted) = (col("split")?, col("emitted")?);
        Ok(SplitWatermarks {
            splits: (0..splits.len())
                .map(|i| splits.is_valid(i).then(|| Watermark(splits.value(i))))
                .collect(),
            emitted: Watermark(if emitted.is_empty() {
                i64::MIN
            } else {
                emitted.value(0)
            }),
        })
    }

    /// Give split `i` the watermark split `j` of `other` had.
    pub fn copy_split(&mut self, i: usize, other: &SplitWatermarks, j: usize) {
        if let (Some(s), Some(o)) = (self.splits.get_mut(i), other.splits.get(j)) {
            *s = *o;
        }
    }

    /// The last combined watermark was `wm` (a resumed source: it sends
    /// only later ones).
    pub fn set_emitted(&mut self, wm: Watermark) {
        self.emitted = wm;
    }

    /// The last combined watermark.
    pub fn emitted(&self) -> Watermark {
        self.emitted
    }

    /// The combined watermark if it advanced since the last call.
    pub fn advance(&mut self) -> Option<Watermark> {
        let min = self.splits.iter().flatten().min().copied()?;
        if min > self.emitted {
            self.emitted = min;
            Some(min)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips() {
        let mut w = SplitWatermarks::new(3);
        w.observe(0, 100);
        w.observe(1, 50);
        w.finish(2);
        assert_eq!(w.advance(), Some(Watermark(50)));
        let mut r = SplitWatermarks::restore(&w.snapshot()).expect("restores");
        assert_eq!(r.emitted(), Watermark(50));
        assert_eq!(r.advance(), None);
        r.finish(1);
        assert_eq!(r.advance(), Some(Watermark(100)));
    }

    #[test]
    fn min_over_unfinished_splits() {
        let mut w = SplitWatermarks::new(2);
        w.observe(0, 100);
        assert_eq!(w.advance(), None, "split 1 not started holds it back");
        w.observe(1, 50);
        assert_eq!(w.advance(), Some(Watermark(50)));
        w.finish(1);
        assert_eq!(w.advance(), Some(Watermark(100)));
        w.finish(0);
        assert_eq!(
            w.advance(),
            None,
            "all finished: the source sends +inf itself"
        );
    }

    /// `ts - 5 s` is evaluated on the newest row only; other expressions on
    /// every row. Both give the largest value.
    #[test]
    fn column_minus_constant_uses_the_newest_row() {
        use crate::operators::test_util::batch_ts;
        use datafusion::common::ScalarValue;
        use datafusion::physical_expr::expressions::{col, lit};
        let batch = batch_ts(&[3_000, 9_000, 7_000], &[1, 2, 3], &[0, 0, 0]);
        let ts = col("ts", &batch.schema()).expect("ts");
        let five = lit(ScalarValue::new_interval_mdn(0, 0, 5_000_000_000));
        let minus: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(ts.clone(), Operator::Minus, five));
        let w = WatermarkExpr::new(minus);
        assert_eq!(w.monotonic_in, Some(0));
        assert_eq!(w.eval(&batch).expect("evaluates"), Some(4_000));
        let plain = WatermarkExpr::new(ts);
        assert_eq!(plain.monotonic_in, None);
        assert_eq!(plain.eval(&batch).expect("evaluates"), Some(9_000));
    }
}
