//! One side of a join: the rows it has seen, as the batches they came in,
//! and an index from join key (Arrow's row format) to the rows with that
//! key, with how many joined rows each stored row is in.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{Schema, UInt32Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::{Error, Result};

use crate::checkpoint::KeyRange;
use crate::operators::expiry::Sweep;
use crate::operators::stored::gather_columns;

/// Columns a side's checkpoint adds to its rows: each row's match count
/// and when its key was last written.
pub(super) const MATCHES: &str = "__matches";
pub(super) const WRITTEN: &str = "__written";

/// A stored row: (batch, row).
pub(crate) type Pick = (usize, usize);

/// The rows with one key, and when the key was last written.
pub(crate) type KeyRows = (Vec<Pick>, u64);

/// See the module docs.
pub(crate) struct Side {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    converter: RowConverter,
    /// Encodes whole rows, for a side whose rows can be retracted: a
    /// retraction removes a stored row equal to it.
    whole: Option<RowConverter>,
    pub batches: Vec<RecordBatch>,
    /// Per stored batch, its rows encoded whole (sides with `whole`).
    wholes: Vec<Rows>,
    /// Join key -> its rows.
    pub index: HashMap<Box<[u8]>, KeyRows>,
    /// Per stored batch and row: how many joined rows it is in.
    pub matches: Vec<Vec<u32>>,
    pub bytes: usize,
    /// Rows indexed.
    pub live: usize,
    /// What incremental checkpoints know of the stored batches.
    pub segments: super::segments::Segments,
}

impl Side {
    /// A side keyed by `keys` over rows of `input`; `retractable` when its
    /// input is updating.
    pub fn try_new(
        keys: Vec<Arc<dyn PhysicalExpr>>,
        input: &Schema,
        retractable: bool,
    ) -> Result<Self> {
        let fields = keys
            .iter()
            .map(|k| Ok(SortField::new(k.data_type(input)?)))
            .collect::<Result<Vec<_>>>()?;
        let whole = if retractable {
            let fields = input
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect();
            Some(RowConverter::new(fields)?)
        } else {
            None
        };
        Ok(Side {
            keys,
            converter: RowConverter::new(fields)?,
            whole,
            batches: Vec::new(),
            wholes: Vec::new(),
            index: HashMap::new(),
            matches: Vec::new(),
            bytes: 0,
            live: 0,
            segments: Default::default(),
        })
    }

    /// Keys encoded by [`Side::key_rows`], decoded to columns.
    pub fn decode_keys(&self, keys: &[&[u8]]) -> Result<Vec<ArrayRef>> {
        let parser = self.converter.parser();
        Ok(self
            .converter
            .convert_rows(keys.iter().map(|k| parser.parse(k)))?)
    }

    /// The key expressions (over the side's input).
    pub fn key_exprs(&self) -> Vec<Arc<dyn PhysicalExpr>> {
        self.keys.clone()
    }

    /// Each row's key, or `None` when a key column is NULL.
    pub fn key_rows(&self, batch: &RecordBatch) -> Result<Vec<Option<Box<[u8]>>>> {
        let n = batch.num_rows();
        let cols = self
            .keys
            .iter()
            .map(|k| k.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<datafusion::error::Result<Vec<ArrayRef>>>()?;
        let rows = self.converter.convert_columns(&cols)?;
        Ok((0..n)
            .map(|i| {
                let null = cols.iter().any(|c| c.is_null(i));
                (!null).then(|| rows.row(i).as_ref().into())
            })
            .collect())
    }

    /// `batch`'s rows encoded whole (sides that can be retracted).
    pub fn whole_rows(&self, batch: &RecordBatch) -> Result<Option<Rows>> {
        match &self.whole {
            Some(c) => Ok(Some(c.convert_columns(batch.columns())?)),
            None => Ok(None),
        }
    }

    /// For each row (by its key), the stored rows of this side with the
    /// same key: (row, stored row) pairs.
    pub fn lookup(&self, keys: &[Option<Box<[u8]>>]) -> (Vec<u32>, Vec<Pick>) {
        let mut mine = Vec::new();
        let mut theirs = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let Some((rows, _)) = key.as_ref().and_then(|k| self.index.get(k)) else {
                continue;
            };
            for &m in rows {
                mine.push(i as u32);
                theirs.push(m);
            }
        }
        (mine, theirs)
    }

    /// Store `batch` (its rows keyed by `keys`, with their match counts)
    /// at time `now`.
    pub fn insert(
        &mut self,
        batch: RecordBatch,
        keys: Vec<Option<Box<[u8]>>>,
        matched: Vec<u32>,
        wholes: Option<Rows>,
        now: u64,
    ) {
        let b = self.batches.len();
        for (i, key) in keys.into_iter().enumerate() {
            if let Some(k) = key {
                self.live += 1;
                self.bytes += k.len() + 16;
                let entry = self.index.entry(k).or_default();
                entry.0.push((b, i));
                entry.1 = now;
            }
        }
        self.bytes += batch.get_array_memory_size() + 4 * batch.num_rows();
        if let Some(w) = wholes {
            self.bytes += w.size();
            self.wholes.push(w);
        }
        self.batches.push(batch);
        self.matches.push(matched);
        self.segments.stored();
    }

    /// Add one to (`up`) or take one from the match count of stored row
    /// `pick`; its new count.
    pub fn add_match(&mut self, (b, r): Pick, up: bool) -> u32 {
        self.segments.changed(b);
        let m = &mut self.matches[b][r];
        *m = if up { *m + 1 } else { m.saturating_sub(1) };
        *m
    }

    /// Take out of the index one stored row with key `key` equal to row `i`
    /// of `wholes`; `None` when there is none (never stored, or expired).
    pub fn remove(&mut self, key: &[u8], wholes: &Rows, i: usize) -> Option<Pick> {
        let (rows, _) = self.index.get_mut(key)?;
        let want = wholes.row(i);
        let at = rows
            .iter()
            .position(|&(b, r)| self.wholes[b].row(r) == want)?;
        let pick = rows.swap_remove(at);
        self.segments.removed(pick);
        self.live = self.live.saturating_sub(1);
        if rows.is_empty() {
            self.index.remove(key);
        }
        Some(pick)
    }

    /// The stored rows at `picks`, as columns.
    pub fn rows(&self, picks: &[Pick]) -> Result<Vec<ArrayRef>> {
        gather_columns(&self.batches, picks)
    }

    /// Take up checkpointed rows (the side's columns, then each row's match
    /// count and its key's last write) whose keys `range` owns.
    pub fn restore(&mut self, stored: &RecordBatch, range: KeyRange) -> Result<()> {
        let stored = range.filter(stored, &self.keys)?;
        let n = stored.num_columns();
        if n < 2 {
            return Err(Error::Checkpoint(
                "a join's checkpointed rows are malformed".into(),
            ));
        }
        let bad = || Error::Checkpoint("a join's checkpointed rows are malformed".into());
        let matches = stored
            .column(n - 2)
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(bad)?;
        let written = stored
            .column(n - 1)
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(bad)?;
        let mut data = stored.clone();
        data.remove_column(n - 1);
        data.remove_column(n - 2);
        let keys = self.key_rows(&data)?;
        // Each key's last write as it was.
        let times: Vec<(Box<[u8]>, u64)> = keys
            .iter()
            .zip(written.values())
            .filter_map(|(k, &at)| k.clone().map(|k| (k, at)))
            .collect();
        let wholes = self.whole_rows(&data)?;
        self.insert(data, keys, matches.values().to_vec(), wholes, 0);
        for (k, at) in times {
            if let Some(e) = self.index.get_mut(&k) {
                e.1 = e.1.max(at);
            }
        }
        Ok(())
    }

    /// Forget keys idle at `now`, then compact.
    pub fn expire(&mut self, now: u64, sweep: &Sweep) -> Result<()> {
        let before = self.index.len();
        self.index.retain(|_, (_, last)| !sweep.is_idle(*last, now));
        if self.index.len() < before {
            self.compact()?;
        }
        Ok(())
    }

    /// Rows stored, including ones no longer indexed.
    pub fn stored_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Rows still indexed.
    pub fn live_rows(&self) -> usize {
        self.live
    }

    /// Keep only the rows still indexed (and their match counts and whole
    /// encodings), in one batch.
    pub fn compact(&mut self) -> Result<()> {
        let Some(schema) = self.batches.first().map(RecordBatch::schema) else {
            return Ok(());
        };
        let mut picks = Vec::new();
        for (rows, _) in self.index.values_mut() {
            for r in rows.iter_mut() {
                picks.push(*r);
                *r = (0, picks.len() - 1);
            }
        }
        let live = RecordBatch::try_new(schema, self.rows(&picks)?)?;
        self.live = picks.len();
        self.matches = vec![picks.iter().map(|&(b, r)| self.matches[b][r]).collect()];
        if let Some(c) = &self.whole {
            let w = c.convert_columns(live.columns())?;
            self.wholes = vec![w];
        }
        self.bytes = live.get_array_memory_size()
            + 4 * live.num_rows()
            + self.wholes.iter().map(Rows::size).sum::<usize>()
            + self.index.keys().map(|k| k.len() + 16).sum::<usize>();
        self.batches = vec![live];
        self.segments.restart();
        self.segments.stored();
        Ok(())
    }
}
