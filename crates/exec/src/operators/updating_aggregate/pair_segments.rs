//! Incremental checkpoints of `COUNT(DISTINCT x)`'s (group, value) pairs.
//!
//! A pair keeps its index until the groups are compacted, so each
//! checkpoint hands the pairs interned since the last one over as a new
//! *segment*, a shared table written once (`name.s<id>`: the operator's
//! group id `gid` and the value). Over a retracting input each segment's
//! row counts are another shared table (`name.r<id>`), written again only
//! when a count in it changed; over an append-only input no pair ever
//! leaves, so none is written. Past 16 segments the two neighbours smallest
//! together merge, so a long job has few files and a pair is rewritten
//! about a logarithmic number of times (the first minutes write each pair
//! once).
//! `name.order` lists the segments' ids.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array, UInt64Array};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt64Type};
use arrow::record_batch::RecordBatch;
use datafusion::physical_plan::aggregates::group_values::GroupValues;
use sluice_common::{Error, Result};

use crate::checkpoint::State;
use crate::operators::group_keys::KeyLog;

/// Segments kept before the smallest neighbours merge.
const MAX_SEGMENTS: usize = 16;

/// What incremental checkpoints know of the pairs (module docs).
pub(super) struct PairSegments {
    list: Vec<Segment>,
    /// Pairs `0..covered` are in segments.
    covered: usize,
    /// The next segment id: a share key names one content for the
    /// operator's life.
    next: u64,
    /// The pairs interned since the last checkpoint.
    log: KeyLog,
    /// The input retracts: row counts are kept.
    counts: bool,
}

struct Segment {
    id: u64,
    pairs: Range<usize>,
    /// `gid`, `value`.
    table: RecordBatch,
    /// Bumped when its counts handed over changed.
    version: u64,
    dirty: bool,
    rows: Option<RecordBatch>,
}

/// A checkpointed segment read back: its pairs and, over a retracting
/// input, their row counts.
pub(super) struct ReadSegment {
    pub gids: UInt64Array,
    pub values: ArrayRef,
    pub rows: Option<Int64Array>,
}

impl PairSegments {
    pub fn new(counts: bool) -> Self {
        PairSegments {
            list: Vec::new(),
            covered: 0,
            next: 0,
            log: KeyLog::default(),
            counts,
        }
    }

    /// `pairs` were interned into `ids` when `before` pairs existed.
    pub fn record(&mut self, pairs: &[ArrayRef], ids: &[usize], before: usize) -> Result<()> {
        self.log.record(pairs, ids, before)
    }

    /// The row counts of pairs `ids` changed.
    pub fn touched(&mut self, ids: &[usize]) {
        if !self.counts || self.list.is_empty() {
            return;
        }
        let mut last = 0;
        for &p in ids {
            if p >= self.covered {
                continue;
            }
            if !self.list[last].pairs.contains(&p) {
                last = self.list.partition_point(|s| s.pairs.end <= p);
            }
            self.list[last].dirty = true;
        }
    }

    /// The pairs were rebuilt from `kept` (compaction): every pair is new.
    pub fn restart(&mut self, kept: &[ArrayRef]) {
        self.list.clear();
        self.covered = 0;
        self.log.reset(kept);
    }

    /// Hand the pairs (of `interned`, of `schema`) with their counts
    /// `pair_rows` over as `name.*` tables.
    pub fn snapshot(
        &mut self,
        name: &str,
        interned: &mut Box<dyn GroupValues>,
        schema: &SchemaRef,
        pair_rows: &[i64],
        state: &mut State,
    ) -> Result<()> {
        let n = pair_rows.len();
        if self.covered < n {
            let keys = self.log.take_new(interned, schema, self.covered, n)?;
            let table = RecordBatch::try_new(segment_schema(schema), keys)?;
            self.push(table, self.covered..n);
            self.covered = n;
            self.merge()?;
        }
        let mut order = Vec::with_capacity(self.list.len());
        for seg in &mut self.list {
            let id = seg.id;
            order.push(id);
            state.add_shared(
                &format!("{name}.s{id}"),
                format!("{name}-s{id}"),
                vec![seg.table.clone()],
            );
            if !self.counts {
                continue;
            }
            if seg.dirty || seg.rows.is_none() {
                let rows = Int64Array::from(pair_rows[seg.pairs.clone()].to_vec());
                seg.rows = Some(rows_table(rows)?);
                seg.version += 1;
                seg.dirty = false;
            }
            if let Some(rows) = &seg.rows {
                let key = format!("{name}-r{id}-v{}", seg.version);
                state.add_shared(&format!("{name}.r{id}"), key, vec![rows.clone()]);
            }
        }
        let schema = Schema::new(vec![Field::new("id", DataType::UInt64, false)]);
        let ids: ArrayRef = Arc::new(UInt64Array::from(order));
        state.add(
            &format!("{name}.order"),
            RecordBatch::try_new(Arc::new(schema), vec![ids])?,
        );
        Ok(())
    }

    fn push(&mut self, table: RecordBatch, pairs: Range<usize>) {
        let seg = self.segment(table, pairs);
        self.list.push(seg);
    }

    fn segment(&mut self, table: RecordBatch, pairs: Range<usize>) -> Segment {
        self.next += 1;
        Segment {
            id: self.next - 1,
            pairs,
            table,
            version: 0,
            dirty: true,
            rows: None,
        }
    }

    /// Past [`MAX_SEGMENTS`], merge the two neighbours smallest together.
    fn merge(&mut self) -> Result<()> {
        while self.list.len() > MAX_SEGMENTS {
            let size = |i: usize| self.list[i].pairs.len() + self.list[i + 1].pairs.len();
            let i = (0..self.list.len() - 1)
                .rev()
                .min_by_key(|&i| size(i))
                .unwrap_or(0);
            let b = self.list.remove(i + 1);
            let a = &self.list[i];
            let table = concat_batches(&a.table.schema(), [&a.table, &b.table])?;
            let pairs = a.pairs.start..b.pairs.end;
            self.list[i] = self.segment(table, pairs);
        }
        Ok(())
    }
}

fn segment_schema(schema: &SchemaRef) -> SchemaRef {
    let value = schema.field(1).clone().with_name("value");
    Arc::new(Schema::new(vec![
        Field::new("gid", DataType::UInt64, false),
        value,
    ]))
}

fn rows_table(rows: Int64Array) -> Result<RecordBatch> {
    let schema = Schema::new(vec![Field::new("rows", DataType::Int64, false)]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(rows)],
    )?)
}

fn malformed() -> Error {
    Error::Checkpoint("COUNT(DISTINCT)'s checkpointed pairs are malformed".into())
}

/// The segments of `name` in `state`, in order; `None` when `state` holds
/// none (a checkpoint written before segments).
pub(super) fn read(name: &str, state: &State) -> Result<Option<Vec<ReadSegment>>> {
    let Some(order) = state.rows(&format!("{name}.order"))? else {
        return Ok(None);
    };
    let ids = order
        .column(0)
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(malformed)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids.values() {
        let table = state
            .rows(&format!("{name}.s{id}"))?
            .ok_or_else(malformed)?;
        let (Some(gids), Some(values)) = (
            table.column(0).as_primitive_opt::<UInt64Type>(),
            table.columns().get(1),
        ) else {
            return Err(malformed());
        };
        let rows = match state.rows(&format!("{name}.r{id}"))? {
            Some(r) => {
                let rows = r
                    .column(0)
                    .as_primitive_opt::<Int64Type>()
                    .filter(|c| c.len() == gids.len())
                    .ok_or_else(malformed)?;
                Some(rows.clone())
            }
            None => None,
        };
        out.push(ReadSegment {
            gids: gids.clone(),
            values: Arc::clone(values),
            rows,
        });
    }
    Ok(Some(out))
}
