//! An interval join: rows of two append-only streams joined on keys and on
//! their times being within a bound of each other,
//! `r.ts + lower <= l.ts <= r.ts + upper` (Flink's interval join). INNER,
//! LEFT, RIGHT or FULL; the output is append-only and both time columns
//! stay time attributes.
//!
//! A pair is emitted when the later of its rows arrives, as in a regular
//! join. Watermarks bound the state: once the right input's watermark
//! proves no right row can still match a left row (`l.ts - lower` is at or
//! behind it), the left row is freed, and on an outer side emitted padded
//! with NULLs if it never matched; the same for right rows with the left
//! watermark and `r.ts + upper`. A row at or behind its own input's
//! watermark is late: dropped and counted, never joined. The watermark
//! forwarded is held back by the bounds, so every row emitted later is on
//! time downstream: `min(wm_l - max(upper, 0), wm_r + min(lower, 0))`.
//!
//! Each side's rows are stored as they came, with their times; a side
//! whose freed rows outnumber its live ones is compacted.

mod checkpoint;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use sluice_common::changelog::RowKind;
use sluice_common::window::fmt_ms;
use sluice_common::{Error, Result, Watermark};

use super::shape::{emit, take_rows, JoinSpec, Shape};
use super::side::{Pick, Side};
use crate::operator::{Operator, Output};
use crate::time::to_millis;

/// What an interval join computes.
#[derive(Debug, Clone)]
pub struct IntervalConfig {
    /// Keys, other conditions, joined columns and kind.
    pub spec: JoinSpec,
    /// The time column of each input (its index in that input).
    pub times: [usize; 2],
    /// `r.ts + lower <= l.ts <= r.ts + upper`, in milliseconds (bounds
    /// inclusive).
    pub lower: i64,
    /// See `lower`.
    pub upper: i64,
}

/// One side's rows and their times.
struct Timed {
    side: Side,
    /// Per stored batch, each row's time.
    times: Vec<Vec<i64>>,
    /// Per stored batch, its rows in time order, and how many of those
    /// have been freed.
    order: Vec<(Vec<u32>, usize)>,
    /// Rows before this time are freed.
    freed_before: i64,
    freed: usize,
    watermark: i64,
}

/// A batch's on-time rows, their times, its rows with a NULL time, and how
/// many were late.
type OnTime = (Vec<u32>, Vec<i64>, Vec<u32>, u64);

/// See the module docs.
pub struct IntervalJoin {
    cfg: IntervalConfig,
    shape: Shape,
    sides: [Timed; 2],
    forwarded: i64,
}

impl IntervalJoin {
    /// An interval join of batches of `left` and `right`.
    pub fn try_new(cfg: IntervalConfig, left: &Schema, right: &Schema) -> Result<Self> {
        if !cfg.spec.kind.emits_pairs() {
            return Err(Error::internal("an interval join is INNER or outer"));
        }
        let timed = |keys, schema| -> Result<Timed> {
            Ok(Timed {
                side: Side::try_new(keys, schema, false)?,
                times: Vec::new(),
                order: Vec::new(),
                freed_before: i64::MIN,
                freed: 0,
                watermark: i64::MIN,
            })
        };
        let sides = [
            timed(cfg.spec.left_keys.clone(), left)?,
            timed(cfg.spec.right_keys.clone(), right)?,
        ];
        let shape = cfg.spec.shape(left);
        Ok(IntervalJoin {
            cfg,
            shape,
            sides,
            forwarded: i64::MIN,
        })
    }

    /// Rows of `batch` (from side `input`) split into on-time rows (time
    /// not NULL, after the input's watermark) with their times, and the
    /// count of late ones; rows with a NULL time never match.
    fn on_time(&self, input: usize, batch: &RecordBatch) -> Result<OnTime> {
        let times = to_millis(batch.column(self.cfg.times[input]))?;
        let wm = self.sides[input].watermark;
        let (mut keep, mut at, mut never, mut late) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for i in 0..times.len() {
            if times.is_null(i) {
                never.push(i as u32);
            } else if times.value(i) <= wm {
                late += 1;
            } else {
                keep.push(i as u32);
                at.push(times.value(i));
            }
        }
        Ok((keep, at, never, late))
    }

    /// Free side `s`'s rows with a time before `before`; an outer side's
    /// unmatched ones are emitted padded.
    fn free(&mut self, s: usize, before: i64, out: &mut Output) -> Result<()> {
        let t = &mut self.sides[s];
        if before <= t.freed_before {
            return Ok(());
        }
        t.freed_before = before;
        let mut lonely: Vec<Pick> = Vec::new();
        for (b, (order, done)) in t.order.iter_mut().enumerate() {
            while *done < order.len() && t.times[b][order[*done] as usize] < before {
                let r = order[*done] as usize;
                if t.side.matches[b][r] == 0 {
                    lonely.push((b, r));
                }
                *done += 1;
                t.freed += 1;
            }
        }
        if self.cfg.spec.kind.outer()[s] && !lonely.is_empty() {
            let cols = self.sides[s].side.rows(&lonely)?;
            out.push(self.shape.lonely(s, cols)?);
        }
        let t = &mut self.sides[s];
        if t.freed > 0 && t.freed * 2 >= t.side.stored_rows() {
            compact(t)?;
        }
        Ok(())
    }
}

/// Keep only side `t`'s rows not freed, re-indexed, in one batch.
fn compact(t: &mut Timed) -> Result<()> {
    let mut picks = Vec::new();
    for (b, (order, done)) in t.order.iter().enumerate() {
        picks.extend(order[*done..].iter().map(|&r| (b, r as usize)));
    }
    let Some(schema) = t.side.batches.first().map(RecordBatch::schema) else {
        return Ok(());
    };
    let live = RecordBatch::try_new(schema, t.side.rows(&picks)?)?;
    let times: Vec<i64> = picks.iter().map(|&(b, r)| t.times[b][r]).collect();
    let matched: Vec<u32> = picks.iter().map(|&(b, r)| t.side.matches[b][r]).collect();
    let keys = t.side.key_rows(&live)?;
    t.side.batches.clear();
    t.side.matches.clear();
    t.side.index.clear();
    t.side.bytes = 0;
    t.side.live = 0;
    t.times.clear();
    t.order.clear();
    t.freed = 0;
    store(t, live, keys, matched, times)
}

/// Store a batch of on-time rows with their keys, match counts and times.
fn store(
    t: &mut Timed,
    batch: RecordBatch,
    keys: Vec<Option<Box<[u8]>>>,
    matched: Vec<u32>,
    times: Vec<i64>,
) -> Result<()> {
    let mut order: Vec<u32> = (0..times.len() as u32).collect();
    order.sort_unstable_by_key(|&i| times[i as usize]);
    t.side.bytes += 12 * times.len();
    t.side.insert(batch, keys, matched, None, 0);
    t.times.push(times);
    t.order.push((order, 0));
    Ok(())
}

impl Operator for IntervalJoin {
    fn name(&self) -> &'static str {
        "IntervalJoin"
    }

    fn describe(&self) -> String {
        let pairs = self.cfg.spec.keys();
        let f = self.cfg.spec.joined.fields();
        let (lt, rt) = (
            f[self.cfg.times[0]].name(),
            f[self.shape.left_width + self.cfg.times[1]].name(),
        );
        let off = |ms: i64| match ms {
            0 => String::new(),
            m if m > 0 => format!(" + {}", fmt_ms(m)),
            m => format!(" - {}", fmt_ms(m.unsigned_abs() as i64)),
        };
        format!(
            "IntervalJoin: {} on [{}] {lt} BETWEEN {rt}{} AND {rt}{}",
            self.cfg.spec.kind.sql(),
            pairs,
            off(self.cfg.lower),
            off(self.cfg.upper)
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.cfg.spec.joined)
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        self.snapshot_sides()
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        self.restore_sides(states, keys)
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if input > 1 {
            return Err(Error::internal("a join has two inputs"));
        }
        let (keep, times, never, late) = self.on_time(input, &batch)?;
        out.add_late(late);
        let mut parts = Vec::new();
        if self.cfg.spec.kind.outer()[input] && !never.is_empty() {
            let cols = take_rows(&batch, &never)?;
            parts.push((self.shape.lonely(input, cols)?, RowKind::Insert));
        }
        if keep.is_empty() {
            return emit(&self.cfg.spec.joined, false, parts, out);
        }
        let batch = if keep.len() == batch.num_rows() {
            batch
        } else {
            RecordBatch::try_new(batch.schema(), take_rows(&batch, &keep)?)?
        };
        let keys = self.sides[input].side.key_rows(&batch)?;
        let mut matched = vec![0u32; batch.num_rows()];
        let other = &self.sides[1 - input].side;
        let (mine, theirs) = other.lookup(&keys);
        if !mine.is_empty() {
            let cols: Vec<ArrayRef> = other.rows(&theirs)?;
            let (joined, mine, theirs) = self.shape.pairs(input, &batch, mine, theirs, cols)?;
            out.add_matched(mine.len());
            mine.iter().for_each(|&i| matched[i as usize] += 1);
            let other = &mut self.sides[1 - input].side;
            theirs.iter().for_each(|&(b, r)| other.matches[b][r] += 1);
            parts.push((joined, RowKind::Insert));
        }
        // Rows the other side's watermark has already passed can match
        // nothing more: done now (padded if unmatched on an outer side).
        let before = self.sides[input].freed_before;
        let (done, kept): (Vec<u32>, Vec<u32>) =
            (0..times.len() as u32).partition(|&i| times[i as usize] < before);
        if self.cfg.spec.kind.outer()[input] {
            let lonely: Vec<u32> = done
                .iter()
                .copied()
                .filter(|&i| matched[i as usize] == 0)
                .collect();
            if !lonely.is_empty() {
                parts.push((
                    self.shape.lonely(input, take_rows(&batch, &lonely)?)?,
                    RowKind::Insert,
                ));
            }
        }
        emit(&self.cfg.spec.joined, false, parts, out)?;
        if done.is_empty() {
            return store(&mut self.sides[input], batch, keys, matched, times);
        }
        if kept.is_empty() {
            return Ok(());
        }
        let pick = |v: &[u32]| -> Vec<u32> { kept.iter().map(|&i| v[i as usize]).collect() };
        let batch = RecordBatch::try_new(batch.schema(), take_rows(&batch, &kept)?)?;
        let keys = kept.iter().map(|&i| keys[i as usize].clone()).collect();
        let times = kept.iter().map(|&i| times[i as usize]).collect();
        store(&mut self.sides[input], batch, keys, pick(&matched), times)
    }

    fn on_input_watermark(
        &mut self,
        input: usize,
        wm: Watermark,
        out: &mut Output,
    ) -> Result<Option<Watermark>> {
        let Some(t) = self.sides.get_mut(input) else {
            return Err(Error::internal("a join has two inputs"));
        };
        t.watermark = t.watermark.max(wm.millis());
        let (wl, wr) = (self.sides[0].watermark, self.sides[1].watermark);
        let (lower, upper) = (self.cfg.lower, self.cfg.upper);
        // No row after the watermark can match a row freed here.
        if input == 1 {
            self.free(0, wr.saturating_add(1).saturating_add(lower), out)?;
        } else {
            self.free(1, wl.saturating_add(1).saturating_sub(upper), out)?;
        }
        let held = wl
            .saturating_sub(upper.max(0))
            .min(wr.saturating_add(lower.min(0)));
        let held = if wl == i64::MAX && wr == i64::MAX {
            i64::MAX
        } else {
            held
        };
        if held > self.forwarded {
            self.forwarded = held;
            return Ok(Some(Watermark(held)));
        }
        Ok(None)
    }

    fn on_watermark(&mut self, _wm: Watermark, _out: &mut Output) -> Result<Option<Watermark>> {
        // Forwarded (held back) from `on_input_watermark`.
        Ok(None)
    }

    fn on_end(&mut self, out: &mut Output) -> Result<()> {
        // No more rows: every unmatched outer row is final.
        self.free(0, i64::MAX, out)?;
        self.free(1, i64::MAX, out)
    }

    fn state_rows(&self) -> Option<[usize; 2]> {
        let rows = |t: &Timed| t.side.stored_rows().saturating_sub(t.freed);
        Some([rows(&self.sides[0]), rows(&self.sides[1])])
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let keys = self.sides.iter().map(|s| s.side.index.len()).sum();
        let bytes = self.sides.iter().map(|s| s.side.bytes).sum();
        Some((keys, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::join::JoinKind;
    use crate::operators::test_util::batch_ts;
    use arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::col;

    /// `r.ts - 1s <= l.ts <= r.ts + 2s`, LEFT, keyed by `k`.
    fn join() -> IntervalJoin {
        let s = batch_ts(&[0], &[0], &[0]).schema();
        let fields: Vec<Field> = s
            .fields()
            .iter()
            .chain(s.fields().iter())
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let cfg = IntervalConfig {
            spec: JoinSpec {
                left_keys: vec![col("k", &s).expect("k")],
                right_keys: vec![col("k", &s).expect("k")],
                filter: None,
                joined: Arc::new(Schema::new(fields)),
                kind: JoinKind::Left,
            },
            times: [0, 0],
            lower: -1000,
            upper: 2000,
        };
        IntervalJoin::try_new(cfg, &s, &s).expect("join")
    }

    fn rows(out: &mut Output) -> usize {
        out.take_batches().iter().map(RecordBatch::num_rows).sum()
    }

    #[test]
    fn frees_rows_as_watermarks_pass_and_holds_the_watermark_back() {
        let mut op = join();
        let mut out = Output::default();
        op.on_batch(0, batch_ts(&[10_000, 10_000], &[1, 2], &[0, 0]), &mut out)
            .expect("left");
        op.on_batch(1, batch_ts(&[9_000], &[1], &[0]), &mut out)
            .expect("right");
        assert_eq!(rows(&mut out), 1, "key 1 pairs");
        // The right watermark at 10.5 s: a right row after it can still
        // match l.ts = 10 s (r.ts up to 11 s), so nothing is freed.
        let wm = op
            .on_input_watermark(1, Watermark(10_500), &mut out)
            .expect("wm");
        assert_eq!(wm, None, "the left watermark is still unknown");
        assert_eq!(rows(&mut out), 0);
        // At 11 s no right row can match: key 2's row is emitted padded and
        // freed with key 1's.
        op.on_input_watermark(1, Watermark(11_000), &mut out)
            .expect("wm");
        assert_eq!(rows(&mut out), 1, "the unmatched left row, padded");
        let wm = op
            .on_input_watermark(0, Watermark(20_000), &mut out)
            .expect("wm");
        // min(20 s - 2 s, 11 s - 1 s)
        assert_eq!(wm, Some(Watermark(10_000)));
        assert_eq!(op.state_size().map(|s| s.0), Some(0), "all freed");
        // A left row at or behind the left watermark is late.
        op.on_batch(0, batch_ts(&[20_000], &[1], &[0]), &mut out)
            .expect("late");
        assert_eq!(out.late_rows, 1);
    }

    /// Restored mid-stream at any parallelism, the join keeps its unfreed
    /// rows, their matches and its watermarks: padded rows come once.
    #[test]
    fn restores_unfreed_rows_and_watermarks() {
        use crate::operators::test_util::{assert_restores, Feed};
        let before = [
            Feed::Rows(
                0,
                batch_ts(&[10_000, 10_000, 12_000], &[1, 2, 3], &[1, 2, 3]),
            ),
            Feed::Rows(1, batch_ts(&[9_000, 11_500], &[1, 3], &[4, 5])),
            Feed::Watermark(10_500),
        ];
        let after = [
            Feed::Rows(1, batch_ts(&[11_000, 13_000], &[2, 3], &[6, 7])),
            Feed::Rows(0, batch_ts(&[14_000, 11_000], &[3, 4], &[8, 9])),
            Feed::Watermark(20_000),
            Feed::Rows(0, batch_ts(&[15_000], &[1], &[10])),
            Feed::Watermark(i64::MAX),
        ];
        let route = |_: usize, b: &RecordBatch, range: crate::checkpoint::KeyRange| {
            range
                .filter_by(b, &[Arc::clone(b.column(1))])
                .expect("routes")
        };
        assert_restores(&|| Box::new(join()), &before, &after, &route);
    }
}
