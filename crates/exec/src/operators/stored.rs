//! Input rows kept as the batches they came in, addressed by `(batch, row)`
//! picks: gathered with `interleave` when their time comes, compacted to
//! the rows still held once most are gone.

use arrow::array::{Array, ArrayRef};
use arrow::compute::interleave;
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

/// A stored row: (batch, row).
pub(crate) type Pick = (usize, usize);

/// The columns of the rows at `picks` of `batches`, interleaved from only
/// the batches the picks name: `interleave` checks the type and nulls of
/// every array it is handed, so handing it a whole store of thousands of
/// batches would cost per batch stored, not per row picked.
pub(crate) fn gather_columns(batches: &[RecordBatch], picks: &[Pick]) -> Result<Vec<ArrayRef>> {
    let width = batches.first().map_or(0, RecordBatch::num_columns);
    let mut used: Vec<usize> = picks.iter().map(|p| p.0).collect();
    used.sort_unstable();
    used.dedup();
    if used.is_empty() && !batches.is_empty() {
        used.push(0); // no rows: empty columns of the stored types
    }
    let renamed: Vec<Pick>;
    let (from, picks): (Vec<&RecordBatch>, &[Pick]) = if used.len() == batches.len() {
        (batches.iter().collect(), picks)
    } else {
        renamed = picks
            .iter()
            .map(|&(b, r)| (used.binary_search(&b).unwrap_or(usize::MAX), r))
            .collect();
        (used.iter().map(|&b| &batches[b]).collect(), &renamed)
    };
    (0..width)
        .map(|c| {
            let arrays: Vec<&dyn Array> = from.iter().map(|b| b.column(c).as_ref()).collect();
            Ok(interleave(&arrays, picks)?)
        })
        .collect()
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct Stored {
    batches: Vec<RecordBatch>,
}

impl Stored {
    /// Keep `batch`; its rows are `(index, row)`.
    pub fn push(&mut self, batch: RecordBatch) -> usize {
        self.batches.push(batch);
        self.batches.len() - 1
    }

    /// The index the next batch pushed will have.
    pub fn next_index(&self) -> usize {
        self.batches.len()
    }

    /// Rows stored, held or not.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Bytes of the stored batches.
    pub fn bytes(&self) -> usize {
        self.batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }

    /// The rows at `picks`, as one batch.
    pub fn gather(&self, picks: &[Pick]) -> Result<RecordBatch> {
        let schema = self
            .batches
            .first()
            .map(RecordBatch::schema)
            .ok_or_else(|| Error::internal("gathering rows from an empty store"))?;
        Ok(RecordBatch::try_new(
            schema,
            gather_columns(&self.batches, picks)?,
        )?)
    }

    /// Keep only the rows of `held` (every pick still in use), in one
    /// batch, and point the picks at it; when more than `2 * held + slack`
    /// rows are stored.
    pub fn compact<'a>(
        &mut self,
        held: usize,
        slack: usize,
        picks: impl Iterator<Item = &'a mut Pick>,
    ) -> Result<()> {
        if self.rows() <= 2 * held + slack {
            return Ok(());
        }
        let mut old = Vec::with_capacity(held);
        for p in picks {
            old.push(*p);
            *p = (0, old.len() - 1);
        }
        self.batches = if old.is_empty() {
            Vec::new()
        } else {
            vec![self.gather(&old)?]
        };
        Ok(())
    }
}
