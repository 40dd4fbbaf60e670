//! An event-time temporal join (Flink's `JOIN r FOR SYSTEM_TIME AS OF
//! l.ts`): each row of an append-only stream joins the version of the
//! versioned table (a changelog with a primary key and a time attribute)
//! valid at the row's time: the latest version at or before it, unless
//! that version was deleted. A row waits until the versioned side's
//! watermark reaches its time, so every version up to it is known; a row
//! at or behind its own input's watermark is late (dropped, counted).
//! INNER or LEFT; the result is append-only and the stream's time
//! attributes stay time attributes.
//!
//! Versions are kept per join key, ordered by time; once both watermarks
//! pass a version's successor it can no longer be looked up and is freed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result, Watermark};

use super::shape::{emit, take_rows, JoinKind, JoinSpec, Shape};
use super::side::{Pick, Side};
use crate::operator::{Operator, Output};
use crate::time::to_millis;

/// What a temporal join computes.
#[derive(Debug, Clone)]
pub struct TemporalConfig {
    /// Keys (the stream's, then the versioned table's), other conditions,
    /// joined columns and kind (INNER or LEFT).
    pub spec: JoinSpec,
    /// The stream's time column (the `AS OF` column).
    pub left_time: usize,
    /// The versioned table's time column.
    pub right_time: usize,
    /// The versioned table's input is a changelog (row kinds).
    pub right_updating: bool,
}

/// A key's versions: time -> the row (`None`: deleted from then on).
type Versions = BTreeMap<i64, Option<Pick>>;

/// See the module docs.
pub struct TemporalJoin {
    cfg: TemporalConfig,
    shape: Shape,
    /// The stream's keys; the versioned rows (stored, not indexed).
    sides: [Side; 2],
    versions: HashMap<Box<[u8]>, Versions>,
    /// Stream rows waiting for the versioned side's watermark.
    pending: Vec<(RecordBatch, Vec<i64>)>,
    watermarks: [i64; 2],
    /// Versions stored since the last pruning, and live after it.
    since_prune: usize,
    live: usize,
}

impl TemporalJoin {
    /// A temporal join of batches of `left` (the stream) and `right` (the
    /// versioned table's data columns).
    pub fn try_new(cfg: TemporalConfig, left: &Schema, right: &Schema) -> Result<Self> {
        if !matches!(cfg.spec.kind, JoinKind::Inner | JoinKind::Left) {
            return Err(Error::internal("a temporal join is INNER or LEFT"));
        }
        let sides = [
            Side::try_new(cfg.spec.left_keys.clone(), left, false)?,
            Side::try_new(cfg.spec.right_keys.clone(), right, false)?,
        ];
        let shape = cfg.spec.shape(left);
        Ok(TemporalJoin {
            cfg,
            shape,
            sides,
            versions: HashMap::new(),
            pending: Vec::new(),
            watermarks: [i64::MIN; 2],
            since_prune: 0,
            live: 0,
        })
    }

    /// Join stream rows (with their times) with the versions valid then.
    fn join(&self, batch: &RecordBatch, times: &[i64], out: &mut Output) -> Result<()> {
        let keys = self.sides[0].key_rows(batch)?;
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        for (i, key) in keys.iter().enumerate() {
            let version = key
                .as_ref()
                .and_then(|k| self.versions.get(k))
                .and_then(|v| v.range(..=times[i]).next_back())
                .and_then(|(_, row)| *row);
            if let Some(pick) = version {
                mine.push(i as u32);
                theirs.push(pick);
            }
        }
        let mut matched = vec![false; batch.num_rows()];
        let mut parts = Vec::new();
        if !mine.is_empty() {
            let cols = self.sides[1].rows(&theirs)?;
            let (joined, mine, _) = self.shape.pairs(0, batch, mine, theirs, cols)?;
            out.add_matched(mine.len());
            mine.iter().for_each(|&i| matched[i as usize] = true);
            parts.push((joined, RowKind::Insert));
        }
        if self.cfg.spec.kind == JoinKind::Left {
            let lonely: Vec<u32> = (0..matched.len() as u32)
                .filter(|&i| !matched[i as usize])
                .collect();
            if !lonely.is_empty() {
                parts.push((
                    self.shape.lonely(0, take_rows(batch, &lonely)?)?,
                    RowKind::Insert,
                ));
            }
        }
        emit(&self.cfg.spec.joined, false, parts, out)
    }

    /// A stream batch: late rows dropped, rows the versioned side's
    /// watermark has reached joined now, the others kept until it does.
    fn on_stream(&mut self, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let t = to_millis(batch.column(self.cfg.left_time))?;
        let [wl, wr] = self.watermarks;
        let (mut now, mut later, mut late) = (Vec::new(), Vec::new(), 0);
        for i in 0..t.len() {
            if t.is_null(i) || t.value(i) <= wl {
                late += 1;
            } else if t.value(i) <= wr {
                now.push(i as u32);
            } else {
                later.push(i as u32);
            }
        }
        out.add_late(late);
        let pick = |idx: &[u32]| -> Result<(RecordBatch, Vec<i64>)> {
            let rows = RecordBatch::try_new(batch.schema(), take_rows(&batch, idx)?)?;
            Ok((rows, idx.iter().map(|&i| t.value(i as usize)).collect()))
        };
        if !now.is_empty() {
            let (rows, times) = pick(&now)?;
            self.join(&rows, &times, out)?;
        }
        if !later.is_empty() {
            let (rows, times) = pick(&later)?;
            self.sides[0].bytes += rows.get_array_memory_size();
            self.pending.push((rows, times));
        }
        Ok(())
    }

    /// A batch of the versioned table: each `+I`/`+U` is a new version of
    /// its key at its time, each `-D` a deletion from its time.
    fn on_versions(&mut self, batch: RecordBatch) -> Result<()> {
        let (data, kinds) = if self.cfg.right_updating {
            let ops = changelog::ops(&batch)
                .ok_or_else(|| Error::internal("a versioned table without row kinds"))?;
            let kinds: Vec<Option<RowKind>> = ops
                .values()
                .iter()
                .map(|&c| RowKind::from_code(c))
                .collect();
            (changelog::data(&batch)?, kinds)
        } else {
            let n = batch.num_rows();
            (batch, vec![Some(RowKind::Insert); n])
        };
        let t = to_millis(data.column(self.cfg.right_time))?;
        let keys = self.sides[1].key_rows(&data)?;
        let b = self.sides[1].batches.len();
        for (r, key) in keys.into_iter().enumerate() {
            let (Some(key), false) = (key, t.is_null(r)) else {
                continue;
            };
            let version = match kinds[r] {
                Some(RowKind::Insert | RowKind::UpdateAfter) => Some((b, r)),
                Some(RowKind::Delete) => None,
                _ => continue,
            };
            let versions = self.versions.entry(key).or_default();
            if versions.insert(t.value(r), version).is_none() {
                self.sides[1].live += 1;
            }
            self.since_prune += 1;
        }
        self.sides[1].bytes += data.get_array_memory_size();
        self.sides[1].batches.push(data);
        Ok(())
    }

    /// Join the waiting rows the versioned side's watermark has reached.
    fn release(&mut self, out: &mut Output) -> Result<()> {
        let wr = self.watermarks[1];
        let pending = std::mem::take(&mut self.pending);
        for (rows, times) in pending {
            let (now, later): (Vec<u32>, Vec<u32>) =
                (0..times.len() as u32).partition(|&i| times[i as usize] <= wr);
            if later.is_empty() {
                self.sides[0].bytes = self.sides[0]
                    .bytes
                    .saturating_sub(rows.get_array_memory_size());
                self.join(&rows, &times, out)?;
                continue;
            }
            if !now.is_empty() {
                let part = RecordBatch::try_new(rows.schema(), take_rows(&rows, &now)?)?;
                let t: Vec<i64> = now.iter().map(|&i| times[i as usize]).collect();
                self.join(&part, &t, out)?;
                let keep = RecordBatch::try_new(rows.schema(), take_rows(&rows, &later)?)?;
                let t: Vec<i64> = later.iter().map(|&i| times[i as usize]).collect();
                self.pending.push((keep, t));
            } else {
                self.pending.push((rows, times));
            }
        }
        Ok(())
    }

    /// Free versions no row can look up any more: per key, those older
    /// than its latest version at or before both watermarks (a key whose
    /// latest such version is a deletion goes), then compact the rows.
    /// Run once as many versions arrived as were live after the last run.
    fn prune(&mut self) -> Result<()> {
        if self.since_prune <= self.live.max(1024) {
            return Ok(());
        }
        let horizon = self.watermarks[0].min(self.watermarks[1]);
        self.versions.retain(|_, v| {
            if let Some((&t, _)) = v.range(..=horizon).next_back() {
                *v = v.split_off(&t);
            }
            !(v.len() == 1 && v.values().next().is_some_and(Option::is_none))
        });
        let mut picks = Vec::new();
        for v in self.versions.values_mut() {
            for row in v.values_mut().flatten() {
                picks.push(*row);
                *row = (0, picks.len() - 1);
            }
        }
        let side = &mut self.sides[1];
        if let Some(schema) = side.batches.first().map(RecordBatch::schema) {
            let live = RecordBatch::try_new(schema, side.rows(&picks)?)?;
            side.bytes = live.get_array_memory_size();
            side.batches = vec![live];
        }
        self.live = self.versions.values().map(BTreeMap::len).sum();
        self.sides[1].live = self.live;
        self.since_prune = 0;
        Ok(())
    }
}

impl Operator for TemporalJoin {
    fn name(&self) -> &'static str {
        "TemporalJoin"
    }

    fn describe(&self) -> String {
        let pairs = self.cfg.spec.keys();
        let f = self.cfg.spec.joined.fields();
        format!(
            "TemporalJoin: {} on [{}] FOR SYSTEM_TIME AS OF {} (versions by {})",
            self.cfg.spec.kind.sql(),
            pairs,
            f[self.cfg.left_time].name(),
            f[self.shape.left_width + self.cfg.right_time].name()
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.cfg.spec.joined)
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        match input {
            0 => self.on_stream(batch, out),
            1 => self.on_versions(batch),
            _ => Err(Error::internal("a join has two inputs")),
        }
    }

    fn on_input_watermark(
        &mut self,
        input: usize,
        wm: Watermark,
        out: &mut Output,
    ) -> Result<Option<Watermark>> {
        let Some(w) = self.watermarks.get_mut(input) else {
            return Err(Error::internal("a join has two inputs"));
        };
        *w = (*w).max(wm.millis());
        if input == 1 {
            self.release(out)?;
        }
        self.prune()?;
        Ok(None)
    }

    fn state_rows(&self) -> Option<[usize; 2]> {
        let waiting = self.pending.iter().map(|(b, _)| b.num_rows()).sum();
        Some([waiting, self.sides[1].live])
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let bytes = self.sides.iter().map(|s| s.bytes).sum();
        Some((self.versions.len(), bytes))
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        self.snapshot_versions()
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        self.restore_versions(states, keys)
    }
}

/// `batch` with an `__time` column of `times`.
fn with_times(batch: &RecordBatch, times: Vec<i64>) -> Result<RecordBatch> {
    use arrow::datatypes::{DataType, Field};
    let times: arrow::array::ArrayRef = Arc::new(arrow::array::Int64Array::from(times));
    let field = Field::new("__time", DataType::Int64, false);
    crate::checkpoint::state::with_columns(batch, vec![(field, times)])
}

/// A [`with_times`] batch split back.
fn split_times(batch: &RecordBatch) -> Result<(RecordBatch, Vec<i64>)> {
    use arrow::array::AsArray;
    let n = batch.num_columns();
    let times = batch
        .column(n.saturating_sub(1))
        .as_primitive_opt::<arrow::datatypes::Int64Type>()
        .ok_or_else(|| Error::Checkpoint("a temporal join's checkpointed rows".into()))?
        .values()
        .to_vec();
    let mut data = batch.clone();
    data.remove_column(n - 1);
    Ok((data, times))
}

impl TemporalJoin {
    /// Stream rows waiting, every version (rows with their times;
    /// deletions as encoded keys) and the watermarks.
    fn snapshot_versions(&mut self) -> Result<crate::checkpoint::State> {
        use crate::checkpoint::state::scalars;
        let meta = scalars(&[
            ("left_watermark", self.watermarks[0]),
            ("right_watermark", self.watermarks[1]),
        ]);
        let mut state = crate::checkpoint::State::new().with("meta", meta);
        if let Some(schema) = self.pending.first().map(|(b, _)| b.schema()) {
            let rows: Vec<&RecordBatch> = self.pending.iter().map(|(b, _)| b).collect();
            let times = self
                .pending
                .iter()
                .flat_map(|(_, t)| t.iter().copied())
                .collect();
            let rows = arrow::compute::concat_batches(&schema, rows)?;
            state.add("pending", with_times(&rows, times)?);
        }
        let (mut picks, mut times) = (Vec::new(), Vec::new());
        let (mut deleted, mut deleted_at): (Vec<&[u8]>, Vec<i64>) = (Vec::new(), Vec::new());
        for (key, versions) in &self.versions {
            for (t, row) in versions {
                match row {
                    Some(p) => {
                        picks.push(*p);
                        times.push(*t);
                    }
                    None => {
                        deleted.push(key);
                        deleted_at.push(*t);
                    }
                }
            }
        }
        if let Some(schema) = self.sides[1].batches.first().map(RecordBatch::schema) {
            let rows = RecordBatch::try_new(schema, self.sides[1].rows(&picks)?)?;
            state.add("versions", with_times(&rows, times)?);
        }
        if !deleted.is_empty() {
            let keys = arrow::array::BinaryArray::from_vec(deleted);
            let at = arrow::array::Int64Array::from(deleted_at);
            let batch = RecordBatch::try_from_iter(vec![
                ("key", Arc::new(keys) as arrow::array::ArrayRef),
                ("__time", Arc::new(at) as arrow::array::ArrayRef),
            ])?;
            state.add("deleted", batch);
        }
        Ok(state)
    }

    fn restore_versions(
        &mut self,
        states: &[crate::checkpoint::State],
        range: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        use crate::checkpoint::state::scalar;
        use arrow::array::AsArray;
        for state in states {
            let meta = state.require("meta")?;
            self.watermarks[0] = self.watermarks[0].max(scalar(meta, "left_watermark")?);
            self.watermarks[1] = self.watermarks[1].max(scalar(meta, "right_watermark")?);
            if let Some(p) = state.get("pending") {
                let (rows, times) = split_times(p)?;
                let keys =
                    crate::operators::window_aggregate::eval_all(&self.cfg.spec.left_keys, &rows)?;
                let mask = range.mask(&keys, rows.num_rows())?;
                let times = times
                    .into_iter()
                    .zip(mask.iter())
                    .filter(|(_, m)| *m == Some(true))
                    .map(|(t, _)| t)
                    .collect();
                let rows = arrow::compute::filter_record_batch(&rows, &mask)?;
                self.sides[0].bytes += rows.get_array_memory_size();
                self.pending.push((rows, times));
            }
            if let Some(v) = state.get("versions") {
                let (rows, times) = split_times(v)?;
                let keys =
                    crate::operators::window_aggregate::eval_all(&self.cfg.spec.right_keys, &rows)?;
                let mask = range.mask(&keys, rows.num_rows())?;
                let times: Vec<i64> = times
                    .into_iter()
                    .zip(mask.iter())
                    .filter(|(_, m)| *m == Some(true))
                    .map(|(t, _)| t)
                    .collect();
                let rows = arrow::compute::filter_record_batch(&rows, &mask)?;
                let encoded = self.sides[1].key_rows(&rows)?;
                let b = self.sides[1].batches.len();
                for (r, key) in encoded.into_iter().enumerate() {
                    if let Some(key) = key {
                        self.versions
                            .entry(key)
                            .or_default()
                            .insert(times[r], Some((b, r)));
                        self.live += 1;
                    }
                }
                self.sides[1].live = self.live;
                self.sides[1].bytes += rows.get_array_memory_size();
                self.sides[1].batches.push(rows);
            }
            if let Some(d) = state.get("deleted") {
                let bad = || Error::Checkpoint("a temporal join's checkpointed deletions".into());
                let keys = d.column(0).as_binary_opt::<i32>().ok_or_else(bad)?;
                let at = d
                    .column(1)
                    .as_primitive_opt::<arrow::datatypes::Int64Type>()
                    .ok_or_else(bad)?;
                let bytes: Vec<&[u8]> = keys.iter().map(|k| k.unwrap_or_default()).collect();
                let cols = self.sides[1].decode_keys(&bytes)?;
                let mask = range.mask(&cols, bytes.len())?;
                for (i, k) in bytes.iter().enumerate() {
                    if mask.value(i) {
                        self.versions
                            .entry((*k).into())
                            .or_default()
                            .insert(at.value(i), None);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::{assert_restores, batch_ts, spec_on_k, Feed};

    /// Waiting stream rows and every version survive a restore at any
    /// parallelism: rows join the version valid at their time, once.
    #[test]
    fn restores_versions_and_waiting_rows() {
        let s = batch_ts(&[], &[], &[]).schema();
        for kind in [JoinKind::Inner, JoinKind::Left] {
            let make = || -> Box<dyn Operator> {
                let cfg = TemporalConfig {
                    spec: spec_on_k(&s, &s, kind),
                    left_time: 0,
                    right_time: 0,
                    right_updating: false,
                };
                Box::new(TemporalJoin::try_new(cfg, &s, &s).expect("join"))
            };
            let before = [
                Feed::Rows(
                    1,
                    batch_ts(&[1_000, 1_000, 5_000], &[1, 2, 1], &[10, 20, 11]),
                ),
                Feed::Rows(0, batch_ts(&[2_000, 6_000, 3_000], &[1, 1, 3], &[1, 2, 3])),
                Feed::Watermark(1_500),
            ];
            let after = [
                Feed::Rows(1, batch_ts(&[7_000, 2_500], &[1, 2], &[12, 21])),
                Feed::Rows(0, batch_ts(&[8_000, 4_000], &[1, 2], &[4, 5])),
                Feed::Watermark(i64::MAX),
            ];
            let route = |_: usize, b: &RecordBatch, range: crate::checkpoint::KeyRange| {
                range
                    .filter_by(b, &[Arc::clone(b.column(1))])
                    .expect("routes")
            };
            assert_restores(&make, &before, &after, &route);
        }
    }

    /// Deleted versions (a changelog's `-D`) survive a restore too.
    #[test]
    fn restores_deletions() {
        let s = batch_ts(&[], &[], &[]).schema();
        let with_op = changelog::with_op_field(&s);
        let changes = |ts: &[i64], k: &[i64], v: &[i64], kinds: &[RowKind]| {
            let b = batch_ts(ts, k, v);
            let ops = arrow::array::Int8Array::from_iter_values(kinds.iter().map(|k| k.code()));
            changelog::with_ops(&with_op, b.columns().to_vec(), ops).expect("changelog")
        };
        let make = || -> Box<dyn Operator> {
            let cfg = TemporalConfig {
                spec: spec_on_k(&s, &s, JoinKind::Left),
                left_time: 0,
                right_time: 0,
                right_updating: true,
            };
            Box::new(TemporalJoin::try_new(cfg, &s, &s).expect("join"))
        };
        let ins = RowKind::Insert;
        let before = [
            Feed::Rows(1, changes(&[1_000, 1_000], &[1, 2], &[10, 20], &[ins, ins])),
            Feed::Rows(1, changes(&[3_000], &[1], &[10], &[RowKind::Delete])),
            Feed::Rows(0, batch_ts(&[2_000, 4_000], &[1, 1], &[1, 2])),
        ];
        let after = [
            Feed::Rows(1, changes(&[5_000], &[1], &[12], &[ins])),
            Feed::Rows(0, batch_ts(&[6_000, 3_500], &[1, 2], &[3, 4])),
            Feed::Watermark(i64::MAX),
        ];
        let route = |input: usize, b: &RecordBatch, range: crate::checkpoint::KeyRange| {
            let _ = input;
            range
                .filter_by(b, &[Arc::clone(b.column(1))])
                .expect("routes")
        };
        assert_restores(&make, &before, &after, &route);
    }
}
