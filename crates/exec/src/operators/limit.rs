//! LIMIT / OFFSET over a stream: ends the stream once `fetch` rows passed.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sluice_common::Result;

use crate::operator::{Operator, Output};

/// Passes rows `skip .. skip + fetch` and then finishes.
#[derive(Debug)]
pub struct LimitOperator {
    schema: SchemaRef,
    skip: usize,
    fetch: Option<usize>,
    seen: usize,
    passed: usize,
}

impl LimitOperator {
    /// Skip `skip` rows, then pass at most `fetch`.
    pub fn new(schema: SchemaRef, skip: usize, fetch: Option<usize>) -> Self {
        LimitOperator {
            schema,
            skip,
            fetch,
            seen: 0,
            passed: 0,
        }
    }
}

impl Operator for LimitOperator {
    fn name(&self) -> &'static str {
        "Limit"
    }

    fn describe(&self) -> String {
        match self.fetch {
            Some(f) => format!("Limit: skip={}, fetch={f}", self.skip),
            None => format!("Limit: skip={}", self.skip),
        }
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let n = batch.num_rows();
        let start = self.skip.saturating_sub(self.seen).min(n);
        self.seen += n;
        let mut len = n - start;
        if let Some(f) = self.fetch {
            len = len.min(f - self.passed);
        }
        self.passed += len;
        if len > 0 {
            out.push(batch.slice(start, len));
        }
        Ok(())
    }

    fn is_finished(&self) -> bool {
        self.fetch.is_some_and(|f| self.passed >= f)
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    /// Rows seen and passed so far.
    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        let counts = crate::checkpoint::state::scalars(&[
            ("seen", self.seen as i64),
            ("passed", self.passed as i64),
        ]);
        Ok(crate::checkpoint::State::new().with("meta", counts))
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        _keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        use crate::checkpoint::state::scalar;
        for s in states {
            let meta = s.require("meta")?;
            self.seen += scalar(meta, "seen")? as usize;
            self.passed += scalar(meta, "passed")? as usize;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::batch_i64;

    #[test]
    fn skip_and_fetch_across_batches() {
        let b = batch_i64(&[("a", &[1, 2, 3])]);
        let mut op = LimitOperator::new(b.schema(), 2, Some(3));
        let mut out = Output::default();
        op.on_batch(0, b.clone(), &mut out).expect("ok");
        assert!(!op.is_finished());
        op.on_batch(0, b, &mut out).expect("ok");
        assert!(op.is_finished());
        let rows: usize = out.take_batches().iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 3);
    }
}
