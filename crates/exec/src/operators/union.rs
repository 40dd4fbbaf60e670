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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Outbox;
    use crate::metrics::NodeMetrics;
    use crate::operators::test_util::batch_i64;
    use crate::runtime::run_operator;
    use sluice_common::{Message, Watermark};
    use tokio::sync::mpsc::channel;

    /// Rows of both inputs pass; the watermark is the minimum of the
    /// inputs', and an ended input no longer holds it back. The inputs are
    /// filled before the operator runs, so it reads them alternately.
    #[tokio::test]
    async fn forwards_rows_and_the_minimum_watermark() {
        let schema = batch_i64(&[("x", &[])]).schema();
        let (a_tx, a_rx) = channel(8);
        let (b_tx, b_rx) = channel(8);
        let (out_tx, mut out_rx) = channel(64);
        for m in [
            Message::Batch(batch_i64(&[("x", &[1, 2])])),
            Message::Watermark(Watermark(10)),
            Message::Watermark(Watermark(20)),
            Message::EndOfStream,
        ] {
            a_tx.send(m).await.expect("send");
        }
        for m in [
            Message::Batch(batch_i64(&[("x", &[3])])),
            Message::Watermark(Watermark(5)),
            Message::EndOfStream,
        ] {
            b_tx.send(m).await.expect("send");
        }
        run_operator(
            Box::new(UnionOperator::new(schema)),
            vec![(0, a_rx), (1, b_rx)],
            Outbox::single(out_tx),
            Arc::new(NodeMetrics::default()),
        )
        .await
        .expect("runs");

        let mut rows = 0;
        let mut watermarks = vec![];
        let mut ended = false;
        while let Some(m) = out_rx.recv().await {
            match m {
                Message::Batch(b) => rows += b.num_rows(),
                Message::Watermark(w) => watermarks.push(w.0),
                Message::EndOfStream => ended = true,
                Message::Barrier(_) => {}
            }
        }
        assert_eq!(rows, 3);
        // a@10 alone moves nothing; b@5 gives 5; a@20 is held back by b
        // until b ends; a's end gives +inf.
        assert_eq!(watermarks, vec![5, 20, Watermark::MAX.0]);
        assert!(ended);
    }
}
