//! Key groups: keyed state is split into [`KEY_GROUPS`] fixed hash ranges
//! (Flink's max parallelism). A row's key group is the hash of its key
//! (the hash exchange's, with fixed seeds) modulo [`KEY_GROUPS`]; instance
//! `i` of `p` owns the key groups `g` with `g * p / KEY_GROUPS == i`, a
//! contiguous range. The hash exchange routes by it, so a checkpoint taken
//! at one parallelism restores at another: each new instance keeps the
//! stored rows whose key groups it owns.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray};
use arrow::record_batch::RecordBatch;
use datafusion::common::hash_utils::{create_hashes, RandomState};
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::Result;

/// Key groups of every keyed operator (Flink's default max parallelism).
pub const KEY_GROUPS: u64 = 128;

/// Fixed seeds: the same key hashes the same in every run.
const SEED: u64 = 0x5_1ce;

/// The hash of each row's key (`keys`: one array per key column).
pub fn hash_keys(keys: &[ArrayRef], rows: usize) -> Result<Vec<u64>> {
    let mut hashes = vec![0u64; rows];
    create_hashes(keys, &RandomState::with_seed(SEED), &mut hashes)?;
    Ok(hashes)
}

/// The instance of `parallelism` that owns a key of hash `hash`.
pub fn instance_of(hash: u64, parallelism: usize) -> usize {
    ((hash % KEY_GROUPS) * parallelism as u64 / KEY_GROUPS) as usize
}

/// The keyed state one instance restores: the rows whose key groups it
/// owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    /// The instance.
    pub instance: usize,
    /// Instances of its node.
    pub parallelism: usize,
}

impl KeyRange {
    /// Every key (a single instance).
    pub fn all() -> Self {
        KeyRange {
            instance: 0,
            parallelism: 1,
        }
    }

    /// Whether it owns every key.
    pub fn is_all(&self) -> bool {
        self.parallelism <= 1
    }

    /// Which rows with these key columns it owns.
    pub fn mask(&self, keys: &[ArrayRef], rows: usize) -> Result<BooleanArray> {
        if self.is_all() || keys.is_empty() {
            return Ok(BooleanArray::from(vec![true; rows]));
        }
        let hashes = hash_keys(keys, rows)?;
        Ok(hashes
            .iter()
            .map(|&h| Some(instance_of(h, self.parallelism) == self.instance))
            .collect())
    }

    /// The rows of `batch` it owns, their keys being `exprs` over it.
    pub fn filter(
        &self,
        batch: &RecordBatch,
        exprs: &[Arc<dyn PhysicalExpr>],
    ) -> Result<RecordBatch> {
        if self.is_all() || exprs.is_empty() {
            return Ok(batch.clone());
        }
        let rows = batch.num_rows();
        let keys = exprs
            .iter()
            .map(|e| Ok(e.evaluate(batch)?.into_array(rows)?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        self.filter_by(batch, &keys)
    }

    /// The rows of `batch` it owns, their keys being `keys`.
    pub fn filter_by(&self, batch: &RecordBatch, keys: &[ArrayRef]) -> Result<RecordBatch> {
        if self.is_all() || keys.is_empty() {
            return Ok(batch.clone());
        }
        let mask = self.mask(keys, batch.num_rows())?;
        Ok(arrow::compute::filter_record_batch(batch, &mask)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    /// Every key has exactly one owner at every parallelism, and owners
    /// hold contiguous key-group ranges.
    #[test]
    fn every_key_has_one_owner() {
        let keys: ArrayRef = Arc::new(Int64Array::from((0..1000).collect::<Vec<i64>>()));
        for p in 1..=5 {
            let mut owned = vec![0; 1000];
            for i in 0..p {
                let range = KeyRange {
                    instance: i,
                    parallelism: p,
                };
                let mask = range
                    .mask(std::slice::from_ref(&keys), 1000)
                    .expect("hashes");
                for (r, m) in mask.iter().enumerate() {
                    if m == Some(true) {
                        owned[r] += 1;
                    }
                }
            }
            assert!(owned.iter().all(|&n| n == 1), "p={p}");
        }
        let groups: Vec<usize> = (0..KEY_GROUPS).map(|g| instance_of(g, 3)).collect();
        assert!(groups.windows(2).all(|w| w[0] <= w[1]), "contiguous ranges");
        assert_eq!((groups[0], groups[127]), (0, 2));
    }
}
