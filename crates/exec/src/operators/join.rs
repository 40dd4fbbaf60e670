//! A regular equi-join of two append-only inputs (a symmetric hash join):
//! INNER, LEFT, RIGHT or FULL.
//!
//! Each side keeps every row it has seen, as the batches they came in, and
//! an index from join key (Arrow's row format) to the rows with that key.
//! A batch from one side probes the other side's index, then joins its own:
//! so each matching pair is emitted once, when the later of its two rows
//! arrives. Rows with a NULL in a key never match (SQL equality). The
//! output rows are built a column at a time (`take` for the probing batch,
//! `interleave` over the stored batches), then the join's other conditions
//! filter them. An INNER join's output is append-only. An outer side also
//! counts each stored row's matches: a row with none is emitted padded with
//! NULLs (`+I`) and taken back (`-D`) when its first match arrives, so the
//! output is a retracting changelog.
//!
//! Without a TTL the state grows with the input, as in Flink. With
//! `table.exec.state.ttl` a key not written for that long (processing
//! time) is forgotten on its side, and the side's batches are compacted to
//! the rows still indexed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, Int8Array, UInt32Array};
use arrow::compute::{filter_record_batch, interleave, prep_null_mask_filter, take};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result};

use crate::operator::{Operator, Output};
use crate::operators::expiry::{wall_clock, Clock, Sweep};

/// What a join computes.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// Key expressions over the left input, one per equality.
    pub left_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Key expressions over the right input, in the same order.
    pub right_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Other conditions, over the output's columns (left, then right).
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Output schema: the left input's columns, then the right's.
    pub schema: SchemaRef,
    /// Forget keys not written for this long (`table.exec.state.ttl`).
    pub ttl: Option<Duration>,
    /// Which sides keep their unmatched rows (padded with NULLs): LEFT
    /// `[true, false]`, RIGHT `[false, true]`, FULL both, INNER neither.
    pub outer: [bool; 2],
}

/// The (batch, row) of every row with one key, and when the key was last
/// written.
type KeyRows = (Vec<(usize, usize)>, u64);

/// The rows one side has seen.
struct Side {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    converter: RowConverter,
    batches: Vec<RecordBatch>,
    /// Join key -> its rows.
    index: HashMap<Box<[u8]>, KeyRows>,
    /// Per stored batch and row: how many joined rows it is in.
    matches: Vec<Vec<u32>>,
    bytes: usize,
}

impl Side {
    fn try_new(keys: Vec<Arc<dyn PhysicalExpr>>, input: &Schema) -> Result<Self> {
        let fields = keys
            .iter()
            .map(|k| Ok(SortField::new(k.data_type(input)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Side {
            keys,
            converter: RowConverter::new(fields)?,
            batches: Vec::new(),
            index: HashMap::new(),
            matches: Vec::new(),
            bytes: 0,
        })
    }

    /// Forget keys idle at `now`, then keep only the rows still indexed
    /// (and their match counts), in one batch.
    fn expire(&mut self, now: u64, sweep: &Sweep) -> Result<()> {
        let before = self.index.len();
        self.index.retain(|_, (_, last)| !sweep.is_idle(*last, now));
        if self.index.len() == before || self.batches.is_empty() {
            return Ok(());
        }
        let mut picks = Vec::new();
        for (rows, _) in self.index.values_mut() {
            for r in rows.iter_mut() {
                picks.push(*r);
                *r = (0, picks.len() - 1);
            }
        }
        let live = RecordBatch::try_new(self.batches[0].schema(), self.rows(&picks)?)?;
        self.bytes = live.get_array_memory_size()
            + 4 * live.num_rows()
            + self.index.keys().map(|k| k.len() + 16).sum::<usize>();
        self.matches = vec![picks.iter().map(|&(b, r)| self.matches[b][r]).collect()];
        self.batches = vec![live];
        Ok(())
    }

    /// Each row's key, or `None` when a key column is NULL.
    fn key_rows(&self, batch: &RecordBatch) -> Result<Vec<Option<Box<[u8]>>>> {
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
}

/// See the module docs.
pub struct JoinOperator {
    cfg: JoinConfig,
    sides: [Side; 2],
    sweep: Option<Sweep>,
}

impl JoinOperator {
    /// A join of batches of `left` and `right`.
    pub fn try_new(cfg: JoinConfig, left: &Schema, right: &Schema) -> Result<Self> {
        let sides = [
            Side::try_new(cfg.left_keys.clone(), left)?,
            Side::try_new(cfg.right_keys.clone(), right)?,
        ];
        Ok(JoinOperator {
            sweep: cfg.ttl.map(|ttl| Sweep::new(ttl, wall_clock())),
            cfg,
            sides,
        })
    }

    /// Measure idle time by `clock` (tests).
    pub fn set_clock(&mut self, clock: Clock) {
        self.sweep = self.cfg.ttl.map(|ttl| Sweep::new(ttl, clock));
    }

    /// With a TTL, expire idle keys when a sweep is due.
    fn expire(&mut self, now: u64) -> Result<()> {
        let Some(sweep) = self.sweep.as_mut() else {
            return Ok(());
        };
        if !sweep.due(now) {
            return Ok(());
        }
        for side in &mut self.sides {
            side.expire(now, sweep)?;
        }
        Ok(())
    }

    /// The joined rows of `batch` (from side `input`) with the other side
    /// that pass the join's conditions, with the pairs they came from:
    /// (row of `batch`, stored (batch, row) of the other side).
    fn probe(
        &self,
        input: usize,
        batch: &RecordBatch,
        keys: &[Option<Box<[u8]>>],
    ) -> Result<Option<Probed>> {
        let other = &self.sides[1 - input];
        let mut mine: Vec<u32> = Vec::new();
        let mut theirs: Vec<(usize, usize)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let Some((matches, _)) = key.as_ref().and_then(|k| other.index.get(k)) else {
                continue;
            };
            for &m in matches {
                mine.push(i as u32);
                theirs.push(m);
            }
        }
        if mine.is_empty() {
            return Ok(None);
        }
        let idx = UInt32Array::from(mine.clone());
        let mine_cols: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| take(c, &idx, None))
            .collect::<std::result::Result<_, _>>()?;
        let theirs_cols = other.rows(&theirs)?;
        let joined = self.combine(input, mine_cols, theirs_cols)?;
        let Some(f) = &self.cfg.filter else {
            return Ok(Some((joined, mine, theirs)));
        };
        let v = f.evaluate(&joined)?.into_array(joined.num_rows())?;
        let mask = v.as_boolean_opt().ok_or_else(|| {
            Error::execution(format!("join condition is {}, not BOOLEAN", v.data_type()))
        })?;
        let mask = if mask.null_count() > 0 {
            prep_null_mask_filter(mask)
        } else {
            mask.clone()
        };
        let keep: Vec<bool> = (0..mask.len()).map(|i| mask.value(i)).collect();
        let mine = mine
            .into_iter()
            .zip(&keep)
            .filter_map(|(m, k)| k.then_some(m))
            .collect();
        let theirs = theirs
            .into_iter()
            .zip(&keep)
            .filter_map(|(t, k)| k.then_some(t))
            .collect();
        Ok(Some((filter_record_batch(&joined, &mask)?, mine, theirs)))
    }

    /// Output rows from side `input`'s columns and the other side's.
    fn combine(
        &self,
        input: usize,
        mine: Vec<ArrayRef>,
        theirs: Vec<ArrayRef>,
    ) -> Result<RecordBatch> {
        let columns = if input == 0 {
            mine.into_iter().chain(theirs).collect()
        } else {
            theirs.into_iter().chain(mine).collect()
        };
        Ok(RecordBatch::try_new(Arc::clone(&self.cfg.schema), columns)?)
    }

    /// Rows of side `side` (its columns) padded with NULLs for the other.
    fn padded(&self, side: usize, cols: Vec<ArrayRef>) -> Result<RecordBatch> {
        let n = cols.first().map_or(0, |c| c.len());
        let fields = self.cfg.schema.fields();
        let nulls: Vec<ArrayRef> = if side == 0 {
            fields[cols.len()..]
                .iter()
                .map(|f| new_null_array(f.data_type(), n))
                .collect()
        } else {
            fields[..fields.len() - cols.len()]
                .iter()
                .map(|f| new_null_array(f.data_type(), n))
                .collect()
        };
        self.combine(side, cols, nulls)
    }

    /// Whether the output is a changelog (an outer join retracts its
    /// NULL-padded rows when a match arrives).
    fn is_changelog(&self) -> bool {
        self.cfg.outer.iter().any(|o| *o)
    }
}

impl JoinOperator {
    /// Send `parts` (as a changelog when the join is outer).
    fn emit(&self, parts: Vec<(RecordBatch, RowKind)>, out: &mut Output) -> Result<()> {
        if !self.is_changelog() {
            parts.into_iter().for_each(|(b, _)| out.push(b));
            return Ok(());
        }
        let schema = self.output_schema();
        for (b, kind) in parts {
            let ops = Int8Array::from(vec![kind.code(); b.num_rows()]);
            out.push(changelog::with_ops(&schema, b.columns().to_vec(), ops)?);
        }
        Ok(())
    }
}

/// Joined rows and the pairs they came from.
type Probed = (RecordBatch, Vec<u32>, Vec<(usize, usize)>);

impl Side {
    /// The stored rows at `picks`, as columns.
    fn rows(&self, picks: &[(usize, usize)]) -> Result<Vec<ArrayRef>> {
        let width = self.batches.first().map_or(0, |b| b.num_columns());
        (0..width)
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    self.batches.iter().map(|b| b.column(c).as_ref()).collect();
                Ok(interleave(&arrays, picks)?)
            })
            .collect()
    }
}

impl Operator for JoinOperator {
    fn name(&self) -> &'static str {
        "Join"
    }

    fn describe(&self) -> String {
        let pairs: Vec<String> = self
            .cfg
            .left_keys
            .iter()
            .zip(&self.cfg.right_keys)
            .map(|(l, r)| format!("{l} = {r}"))
            .collect();
        let kind = match self.cfg.outer {
            [false, false] => "INNER",
            [true, false] => "LEFT",
            [false, true] => "RIGHT",
            [true, true] => "FULL",
        };
        let mut line = format!("Join: {kind} on [{}]", pairs.join(", "));
        if let Some(f) = &self.cfg.filter {
            line.push_str(&format!(" filter {f}"));
        }
        line
    }

    fn output_schema(&self) -> SchemaRef {
        if self.is_changelog() {
            changelog::with_op_field(&self.cfg.schema)
        } else {
            Arc::clone(&self.cfg.schema)
        }
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if input > 1 {
            return Err(Error::internal("a join has two inputs"));
        }
        let now = self.sweep.as_ref().map_or(0, Sweep::now);
        self.expire(now)?;
        let keys = self.sides[input].key_rows(&batch)?;
        let mut parts: Vec<(RecordBatch, RowKind)> = Vec::new();
        let mut matched = vec![0u32; batch.num_rows()];
        if let Some((joined, mine, theirs)) = self.probe(input, &batch, &keys)? {
            for &i in &mine {
                matched[i as usize] += 1;
            }
            // A stored outer row joined for the first time: its padded row
            // is taken back.
            let other = 1 - input;
            let mut first = Vec::new();
            for &(b, r) in &theirs {
                let m = &mut self.sides[other].matches[b][r];
                if *m == 0 && self.cfg.outer[other] {
                    first.push((b, r));
                }
                *m += 1;
            }
            if !first.is_empty() {
                let cols = self.sides[other].rows(&first)?;
                parts.push((self.padded(other, cols)?, RowKind::Delete));
            }
            parts.push((joined, RowKind::Insert));
        }
        if self.cfg.outer[input] {
            let lonely: Vec<u32> = (0..batch.num_rows() as u32)
                .filter(|&i| matched[i as usize] == 0)
                .collect();
            if !lonely.is_empty() {
                let idx = UInt32Array::from(lonely);
                let cols = batch
                    .columns()
                    .iter()
                    .map(|c| take(c, &idx, None))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                parts.push((self.padded(input, cols)?, RowKind::Insert));
            }
        }
        self.emit(parts, out)?;
        let side = &mut self.sides[input];
        let b = side.batches.len();
        for (i, key) in keys.into_iter().enumerate() {
            if let Some(k) = key {
                side.bytes += k.len() + 16;
                let entry = side.index.entry(k).or_default();
                entry.0.push((b, i));
                entry.1 = now;
            }
        }
        side.bytes += batch.get_array_memory_size() + 4 * batch.num_rows();
        side.batches.push(batch);
        side.matches.push(matched);
        Ok(())
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let keys = self.sides.iter().map(|s| s.index.len()).sum();
        let bytes = self.sides.iter().map(|s| s.bytes).sum();
        Some((keys, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::batch_i64;
    use arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::col;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn pairs_once_and_forgets_idle_keys() {
        let left = batch_i64(&[("k", &[1, 2]), ("a", &[10, 20])]);
        let right = batch_i64(&[("k", &[1, 1]), ("b", &[7, 8])]);
        let (ls, rs) = (left.schema(), right.schema());
        let fields: Vec<Field> = ls
            .fields()
            .iter()
            .chain(rs.fields().iter())
            .map(|f| f.as_ref().clone())
            .collect();
        let cfg = JoinConfig {
            left_keys: vec![col("k", &ls).expect("k")],
            right_keys: vec![col("k", &rs).expect("k")],
            filter: None,
            schema: Arc::new(Schema::new(fields)),
            ttl: Some(Duration::from_millis(100)),
            outer: [false, false],
        };
        let mut op = JoinOperator::try_new(cfg, &ls, &rs).expect("join");
        let now = Arc::new(AtomicU64::new(0));
        let t = Arc::clone(&now);
        op.set_clock(Arc::new(move || t.load(Ordering::Relaxed)));
        let mut out = Output::default();
        op.on_batch(0, left.clone(), &mut out).expect("left");
        op.on_batch(1, right.clone(), &mut out).expect("right");
        let rows: usize = out.take_batches().iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 2, "key 1: one left row, two right rows");
        assert_eq!(op.state_size().map(|s| s.0), Some(3));
        // Past the TTL every key is forgotten: the same right rows find
        // nothing, and the state holds only what came since.
        now.store(1_000, Ordering::Relaxed);
        op.on_batch(1, right, &mut out).expect("right again");
        assert!(out.take_batches().is_empty());
        assert_eq!(op.state_size().map(|s| s.0), Some(1));
    }

    /// Compaction keeps each surviving row's match count: a LEFT row that
    /// outlives an expired key still has its padded row taken back once.
    #[test]
    fn outer_rows_keep_their_matches_through_expiry() {
        let l1 = batch_i64(&[("k", &[1]), ("a", &[10])]);
        let l2 = batch_i64(&[("k", &[2]), ("a", &[20])]);
        let r1 = batch_i64(&[("k", &[1]), ("b", &[7])]);
        let r2 = batch_i64(&[("k", &[2]), ("b", &[8])]);
        let (ls, rs) = (l1.schema(), r1.schema());
        let fields: Vec<Field> = ls
            .fields()
            .iter()
            .chain(rs.fields().iter())
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let cfg = JoinConfig {
            left_keys: vec![col("k", &ls).expect("k")],
            right_keys: vec![col("k", &rs).expect("k")],
            filter: None,
            schema: Arc::new(Schema::new(fields)),
            ttl: Some(Duration::from_millis(100)),
            outer: [true, false],
        };
        let mut op = JoinOperator::try_new(cfg, &ls, &rs).expect("join");
        let now = Arc::new(AtomicU64::new(0));
        let t = Arc::clone(&now);
        op.set_clock(Arc::new(move || t.load(Ordering::Relaxed)));
        let mut out = Output::default();
        op.on_batch(0, l1, &mut out).expect("left 1");
        op.on_batch(1, r1, &mut out).expect("right 1");
        now.store(60, Ordering::Relaxed);
        op.on_batch(0, l2, &mut out).expect("left 2");
        out.take_batches();
        // Key 1 expires on both sides; left key 2 (unmatched) survives.
        now.store(120, Ordering::Relaxed);
        op.on_batch(1, r2, &mut out).expect("right 2");
        let kinds: Vec<i8> = out
            .take_batches()
            .iter()
            .flat_map(|b| changelog::ops(b).expect("changelog").values().to_vec())
            .collect();
        assert_eq!(
            kinds,
            vec![RowKind::Delete.code(), RowKind::Insert.code()],
            "the padded row of left key 2 is retracted, then the joined row"
        );
    }
}
