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

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateless
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
            None,
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
                Message::Barrier(_) | Message::Idle => {}
            }
        }
        assert_eq!(rows, 3);
        // a@10 alone moves nothing; b@5 gives 5; a@20 is held back by b
        // until b ends; a's end gives +inf.
        assert_eq!(watermarks, vec![5, 20, Watermark::MAX.0]);
        assert!(ended);
    }

    /// An idle input is left out of the minimum until it sends again; with
    /// both idle, the union takes the larger watermark and says it is idle.
    #[tokio::test]
    async fn an_idle_input_does_not_hold_the_watermark_back() {
        let schema = batch_i64(&[("x", &[])]).schema();
        let (a_tx, a_rx) = channel(8);
        let (b_tx, b_rx) = channel(8);
        let (out_tx, mut out_rx) = channel(64);
        let task = tokio::spawn(run_operator(
            Box::new(UnionOperator::new(schema)),
            vec![(0, a_rx), (1, b_rx)],
            Outbox::single(out_tx),
            Arc::new(NodeMetrics::default()),
            None,
        ));
        let mut next = async || out_rx.recv().await.expect("a message");
        // Each step waits for what it produces, so the order is fixed.
        b_tx.send(Message::Idle).await.expect("send");
        a_tx.send(Message::Watermark(Watermark(10)))
            .await
            .expect("send");
        assert!(matches!(next().await, Message::Watermark(Watermark(10))));
        // b is active again (no watermark yet): a's 20 waits for b.
        b_tx.send(Message::Batch(batch_i64(&[("x", &[1])])))
            .await
            .expect("send");
        assert!(matches!(next().await, Message::Batch(_)));
        a_tx.send(Message::Watermark(Watermark(20)))
            .await
            .expect("send");
        b_tx.send(Message::Watermark(Watermark(15)))
            .await
            .expect("send");
        assert!(matches!(next().await, Message::Watermark(Watermark(15))));
        // Both idle: the union moves to the larger watermark (a's 20, as
        // Flink does), then is idle too.
        a_tx.send(Message::Idle).await.expect("send");
        b_tx.send(Message::Idle).await.expect("send");
        assert!(matches!(next().await, Message::Watermark(Watermark(20))));
        assert!(matches!(next().await, Message::Idle));
        // b alone active: its 25 passes a's 20.
        b_tx.send(Message::Watermark(Watermark(25)))
            .await
            .expect("send");
        assert!(matches!(next().await, Message::Watermark(Watermark(25))));
        drop((a_tx, b_tx));
        task.await.expect("joins").expect("runs");
    }
}
