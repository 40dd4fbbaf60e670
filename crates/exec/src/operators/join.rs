//! A regular INNER equi-join of two append-only inputs (a symmetric hash
//! join).
//!
//! Each side keeps every row it has seen, as the batches they came in, and
//! an index from join key (Arrow's row format) to the rows with that key.
//! A batch from one side probes the other side's index, then joins its own:
//! so each matching pair is emitted once, when the later of its two rows
//! arrives. Rows with a NULL in a key never match (SQL equality). The
//! output rows are built a column at a time (`take` for the probing batch,
//! `interleave` over the stored batches), then the join's other conditions
//! filter them. The output is append-only.
//!
//! Without a TTL the state grows with the input, as in Flink. With
//! `table.exec.state.ttl` a key not written for that long (processing
//! time) is forgotten on its side, and the side's batches are compacted to
//! the rows still indexed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::compute::{filter_record_batch, interleave, prep_null_mask_filter, take};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::{Error, Result};

use crate::operator::{Operator, Output};
use crate::operators::expiry::{wall_clock, Clock};

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
            bytes: 0,
        })
    }

    /// Forget keys last written before `now - ttl`, then keep only the
    /// rows still indexed, in one batch.
    fn expire(&mut self, now: u64, ttl: u64) -> Result<()> {
        let before = self.index.len();
        self.index.retain(|_, (_, last)| *last + ttl > now);
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
        let schema = self.batches[0].schema();
        let columns = (0..schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    self.batches.iter().map(|b| b.column(c).as_ref()).collect();
                interleave(&arrays, &picks)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let live = RecordBatch::try_new(schema, columns)?;
        self.bytes =
            live.get_array_memory_size() + self.index.keys().map(|k| k.len() + 16).sum::<usize>();
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
    clock: Clock,
    next_sweep: u64,
}

impl JoinOperator {
    /// A join of batches of `left` and `right`.
    pub fn try_new(cfg: JoinConfig, left: &Schema, right: &Schema) -> Result<Self> {
        let sides = [
            Side::try_new(cfg.left_keys.clone(), left)?,
            Side::try_new(cfg.right_keys.clone(), right)?,
        ];
        Ok(JoinOperator {
            cfg,
            sides,
            clock: wall_clock(),
            next_sweep: 0,
        })
    }

    /// Measure idle time by `clock` (tests).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// With a TTL, expire idle keys at most twice per TTL.
    fn expire(&mut self, now: u64) -> Result<()> {
        let Some(ttl) = self.cfg.ttl else {
            return Ok(());
        };
        let ttl = (ttl.as_millis() as u64).max(1);
        if now < self.next_sweep {
            return Ok(());
        }
        self.next_sweep = now + (ttl / 2).max(1);
        for side in &mut self.sides {
            side.expire(now, ttl)?;
        }
        Ok(())
    }

    /// The joined rows of `batch` (from side `input`) with the other side.
    fn probe(
        &self,
        input: usize,
        batch: &RecordBatch,
        keys: &[Option<Box<[u8]>>],
    ) -> Result<Option<RecordBatch>> {
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
        let idx = UInt32Array::from(mine);
        let mine: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| take(c, &idx, None))
            .collect::<std::result::Result<_, _>>()?;
        let width = other.batches.first().map_or(0, |b| b.num_columns());
        let theirs: Vec<ArrayRef> = (0..width)
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    other.batches.iter().map(|b| b.column(c).as_ref()).collect();
                interleave(&arrays, &theirs)
            })
            .collect::<std::result::Result<_, _>>()?;
        let columns = if input == 0 {
            mine.into_iter().chain(theirs).collect()
        } else {
            theirs.into_iter().chain(mine).collect()
        };
        let joined = RecordBatch::try_new(Arc::clone(&self.cfg.schema), columns)?;
        self.filtered(joined).map(Some)
    }

    fn filtered(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let Some(f) = &self.cfg.filter else {
            return Ok(batch);
        };
        let v = f.evaluate(&batch)?.into_array(batch.num_rows())?;
        let mask = v.as_boolean_opt().ok_or_else(|| {
            Error::execution(format!("join condition is {}, not BOOLEAN", v.data_type()))
        })?;
        let mask = if mask.null_count() > 0 {
            prep_null_mask_filter(mask)
        } else {
            mask.clone()
        };
        Ok(filter_record_batch(&batch, &mask)?)
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
        let mut line = format!("Join: INNER on [{}]", pairs.join(", "));
        if let Some(f) = &self.cfg.filter {
            line.push_str(&format!(" filter {f}"));
        }
        line
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.cfg.schema)
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if input > 1 {
            return Err(Error::internal("a join has two inputs"));
        }
        let now = if self.cfg.ttl.is_some() {
            (self.clock)()
        } else {
            0
        };
        self.expire(now)?;
        let keys = self.sides[input].key_rows(&batch)?;
        if let Some(joined) = self.probe(input, &batch, &keys)? {
            out.push(joined);
        }
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
        side.bytes += batch.get_array_memory_size();
        side.batches.push(batch);
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
}
