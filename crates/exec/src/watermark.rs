//! Watermark generation for sources with several splits.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::{Result, Watermark};

use crate::time::max_millis;

/// Evaluates a table's `WATERMARK FOR ts AS <expr>` on batches.
#[derive(Debug, Clone)]
pub struct WatermarkExpr {
    expr: Arc<dyn PhysicalExpr>,
}

impl WatermarkExpr {
    /// Wrap a compiled watermark expression.
    pub fn new(expr: Arc<dyn PhysicalExpr>) -> Self {
        WatermarkExpr { expr }
    }

    /// The largest watermark the batch supports (`None` if all NULL).
    pub fn eval(&self, batch: &RecordBatch) -> Result<Option<i64>> {
        let v = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        max_millis(&v)
    }
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
}
