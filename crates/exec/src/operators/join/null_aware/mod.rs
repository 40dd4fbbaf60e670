//! A null-aware anti join: `x NOT IN (SELECT y FROM t [WHERE t.k = s.k])`
//! when `x` or `y` may be NULL.
//!
//! SQL's three-valued logic makes `NOT IN` differ from `NOT EXISTS`: a
//! left row passes when the subquery's rows for its correlation keys are
//! none at all, or when its `x` is not NULL and no row has `y` NULL or
//! equal to `x`. So a NULL `y` empties its group's result and a NULL `x`
//! passes only while its group is empty. A row with a NULL correlation key
//! always passes (its subquery has no rows).
//!
//! State is per group (the correlation keys; one group when there are
//! none): the left rows, by their `x`, and the right side only as counts
//! (rows, rows with a NULL `y`, rows per `y`). A right row changes what
//! its group emits only when it changes the group's mode (empty, holding a
//! NULL, plain) or the count of its `y` to or from zero; the left rows
//! that change are then retracted (`-D`) or emitted again (`+I`).
//! Retractions of either updating input are applied in their order.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int8Array};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result};

use super::side::Pick;
use super::JoinConfig;
use crate::operator::{Operator, Output};
use crate::operators::expiry::{wall_clock, Clock, Sweep};
use crate::operators::stored::gather_columns;

mod checkpoint;

/// Encodes a side's correlation keys and its `NOT IN` column.
struct Keys {
    group: Vec<Arc<dyn PhysicalExpr>>,
    column: Arc<dyn PhysicalExpr>,
    group_rows: RowConverter,
    column_rows: RowConverter,
}

/// Per row: its group (`None`: a correlation key is NULL) and its `NOT IN`
/// value (`None`: NULL).
type Encoded = (Vec<Option<Box<[u8]>>>, Vec<Option<Box<[u8]>>>);

impl Keys {
    /// `keys[0]` is the `NOT IN` column, the rest are correlation keys.
    fn try_new(keys: &[Arc<dyn PhysicalExpr>], input: &Schema) -> Result<Self> {
        let (column, group) = keys
            .split_first()
            .ok_or_else(|| Error::internal("a NOT IN join without its column"))?;
        let field = |k: &Arc<dyn PhysicalExpr>| Ok(SortField::new(k.data_type(input)?));
        Ok(Keys {
            group_rows: RowConverter::new(group.iter().map(field).collect::<Result<_>>()?)?,
            column_rows: RowConverter::new(vec![field(column)?])?,
            group: group.to_vec(),
            column: Arc::clone(column),
        })
    }

    fn encode(&self, batch: &RecordBatch) -> Result<Encoded> {
        let n = batch.num_rows();
        let eval = |k: &Arc<dyn PhysicalExpr>| Ok(k.evaluate(batch)?.into_array(n)?);
        let group: Vec<ArrayRef> = self.group.iter().map(eval).collect::<Result<_>>()?;
        let column = eval(&self.column)?;
        let groups = if group.is_empty() {
            vec![Some(Box::default()); n]
        } else {
            let rows = self.group_rows.convert_columns(&group)?;
            (0..n)
                .map(|i| {
                    let null = group.iter().any(|c| c.is_null(i));
                    (!null).then(|| rows.row(i).as_ref().into())
                })
                .collect()
        };
        let rows = self
            .column_rows
            .convert_columns(std::slice::from_ref(&column))?;
        let values = (0..n)
            .map(|i| column.is_valid(i).then(|| rows.row(i).as_ref().into()))
            .collect();
        Ok((groups, values))
    }
}

/// Left rows with one `NOT IN` value, and right rows with it.
#[derive(Default)]
struct Value {
    left: Vec<Pick>,
    right: u64,
}

/// One group's state.
#[derive(Default)]
struct Group {
    /// Right rows, and those with a NULL `y`.
    total: u64,
    nulls: u64,
    by_value: HashMap<Box<[u8]>, Value>,
    /// Left rows with a NULL `x`.
    null_left: Vec<Pick>,
    last: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No right rows: every left row passes.
    Empty,
    /// A right row has a NULL `y`: none passes.
    HasNull,
    /// Left rows whose `x` no right row has pass.
    Plain,
}

impl Group {
    fn mode(&self) -> Mode {
        if self.total == 0 {
            Mode::Empty
        } else if self.nulls > 0 {
            Mode::HasNull
        } else {
            Mode::Plain
        }
    }

    fn is_empty(&self) -> bool {
        self.total == 0 && self.by_value.is_empty() && self.null_left.is_empty()
    }
}

/// Whether a left row passes in `mode`, given how many right rows have its
/// `x` (`None`: its `x` is NULL).
fn passes(mode: Mode, same: Option<u64>) -> bool {
    match mode {
        Mode::Empty => true,
        Mode::HasNull => false,
        Mode::Plain => same == Some(0),
    }
}

/// See the module docs.
pub struct NullAwareAntiJoin {
    cfg: JoinConfig,
    keys: [Keys; 2],
    schema: SchemaRef,
    data: SchemaRef,
    /// Whole-row encoding of left rows, when the left input is updating.
    whole: Option<RowConverter>,
    batches: Vec<RecordBatch>,
    wholes: Vec<Rows>,
    groups: HashMap<Box<[u8]>, Group>,
    live: usize,
    right_rows: usize,
    sweep: Option<Sweep>,
}

impl NullAwareAntiJoin {
    /// `cfg.spec`'s first key pair is the `NOT IN`'s; it has no other
    /// conditions.
    pub fn try_new(cfg: JoinConfig, left: &Schema, right: &Schema) -> Result<Self> {
        if cfg.spec.filter.is_some() {
            return Err(Error::internal("a NOT IN join with other conditions"));
        }
        let data = Arc::new(left.clone());
        let whole = cfg.updating[0].then(|| {
            let fields = left
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()));
            RowConverter::new(fields.collect())
        });
        Ok(NullAwareAntiJoin {
            keys: [
                Keys::try_new(&cfg.spec.left_keys, left)?,
                Keys::try_new(&cfg.spec.right_keys, right)?,
            ],
            schema: changelog::with_op_field(&data),
            data,
            whole: whole.transpose()?,
            batches: Vec::new(),
            wholes: Vec::new(),
            groups: HashMap::new(),
            live: 0,
            right_rows: 0,
            sweep: cfg.ttl.map(|ttl| Sweep::new(ttl, wall_clock())),
            cfg,
        })
    }

    /// Measure idle time by `clock` (tests).
    pub fn set_clock(&mut self, clock: Clock) {
        self.sweep = self.cfg.ttl.map(|ttl| Sweep::new(ttl, clock));
    }

    /// A batch of input `input`: its data columns, whether each row is
    /// added (not retracted), and its groups and values.
    fn decode(
        &self,
        input: usize,
        batch: &RecordBatch,
    ) -> Result<(RecordBatch, Vec<bool>, Encoded)> {
        let data = changelog::data(batch)?;
        let adds = match changelog::ops(batch) {
            Some(ops) => ops
                .iter()
                .map(|o| {
                    o.and_then(RowKind::from_code)
                        .is_some_and(RowKind::is_accumulate)
                })
                .collect(),
            None => vec![true; data.num_rows()],
        };
        let encoded = self.keys[input].encode(&data)?;
        Ok((data, adds, encoded))
    }

    /// Left rows: store and emit those that pass; take back retracted ones.
    fn on_left(
        &mut self,
        batch: &RecordBatch,
        now: u64,
        out: &mut Vec<(Pick, RowKind)>,
    ) -> Result<()> {
        let (data, adds, (groups, values)) = self.decode(0, batch)?;
        let b = self.batches.len();
        let wholes = match &self.whole {
            Some(c) => Some(c.convert_columns(data.columns())?),
            None => None,
        };
        for (i, (group, value)) in groups.into_iter().zip(values).enumerate() {
            let add = adds[i];
            let kind = if add {
                RowKind::Insert
            } else {
                RowKind::Delete
            };
            let Some(group) = group else {
                // No subquery rows can match a NULL correlation key.
                out.push(((b, i), kind));
                continue;
            };
            let Some(g) = self.groups.get_mut(&group) else {
                if add {
                    let mut g = Group::default();
                    push_left(&mut g, value, (b, i), now);
                    self.groups.insert(group, g);
                    self.live += 1;
                    out.push(((b, i), kind));
                }
                continue;
            };
            g.last = now;
            let pass = passes(
                g.mode(),
                value
                    .as_ref()
                    .map(|v| g.by_value.get(v).map_or(0, |e| e.right)),
            );
            if add {
                push_left(g, value, (b, i), now);
                self.live += 1;
            } else {
                let Some(w) = &wholes else {
                    return Err(Error::internal(
                        "a retraction on an append-only NOT IN input",
                    ));
                };
                let stored = &self.wholes;
                let want = w.row(i);
                let equal = |&(sb, sr): &Pick| {
                    if sb == b {
                        w.row(sr) == want
                    } else {
                        stored[sb].row(sr) == want
                    }
                };
                if !take_left(g, value.as_deref(), equal) {
                    continue;
                }
                self.live -= 1;
                if g.is_empty() {
                    self.groups.remove(&group);
                }
            }
            if pass {
                out.push(((b, i), kind));
            }
        }
        self.batches.push(data);
        if let Some(w) = wholes {
            self.wholes.push(w);
        }
        Ok(())
    }

    /// Right rows: count them; emit or take back the left rows whose
    /// result they change.
    fn on_right(
        &mut self,
        batch: &RecordBatch,
        now: u64,
        out: &mut Vec<(Pick, RowKind)>,
    ) -> Result<()> {
        let (_, adds, (groups, values)) = self.decode(1, batch)?;
        for (i, (group, value)) in groups.into_iter().zip(values).enumerate() {
            let add = adds[i];
            let Some(group) = group else { continue };
            let g = match self.groups.get_mut(&group) {
                Some(g) => g,
                // A retraction of a row whose group expired changes nothing.
                None if !add => continue,
                None => self.groups.entry(group.clone()).or_default(),
            };
            g.last = now;
            // A retraction of a row this group never counted (it expired
            // and the group started afresh) changes nothing.
            let counted = match &value {
                Some(v) => g.by_value.get(v).is_some_and(|e| e.right > 0),
                None => g.nulls > 0,
            };
            if !add && !counted {
                continue;
            }
            let before = g.mode();
            let step = |n: &mut u64| {
                if add {
                    *n += 1
                } else {
                    *n = n.saturating_sub(1)
                }
            };
            let old_same = value
                .as_ref()
                .map(|v| g.by_value.get(v).map_or(0, |e| e.right));
            step(&mut g.total);
            match &value {
                Some(v) => step(&mut g.by_value.entry(v.clone()).or_default().right),
                None => step(&mut g.nulls),
            }
            if add {
                self.right_rows += 1;
            } else {
                self.right_rows = self.right_rows.saturating_sub(1);
            }
            changed(g, before, value.as_deref().zip(old_same), out);
            if let Some(v) = &value {
                if g.by_value
                    .get(v)
                    .is_some_and(|e| e.right == 0 && e.left.is_empty())
                {
                    g.by_value.remove(v);
                }
            }
            if g.is_empty() {
                self.groups.remove(&group);
            }
        }
        Ok(())
    }

    /// Forget groups idle for the TTL, then compact.
    fn expire(&mut self, now: u64) -> Result<()> {
        let Some(sweep) = self.sweep.as_mut() else {
            return Ok(());
        };
        if !sweep.due(now) {
            return Ok(());
        }
        let before = self.groups.len();
        self.groups.retain(|_, g| !sweep.is_idle(g.last, now));
        if self.groups.len() < before {
            self.live = self.groups.values().map(left_rows).sum();
            self.right_rows = self.groups.values().map(|g| g.total as usize).sum();
            self.compact()?;
        }
        Ok(())
    }

    /// Keep only the left rows still stored, in one batch.
    fn compact(&mut self) -> Result<()> {
        if self.batches.is_empty() {
            // Only right rows so far: no left row to keep.
            self.wholes.clear();
            return Ok(());
        }
        let mut picks = Vec::new();
        for g in self.groups.values_mut() {
            let lists = g.by_value.values_mut().map(|v| &mut v.left);
            for rows in lists.chain(std::iter::once(&mut g.null_left)) {
                for r in rows.iter_mut() {
                    picks.push(*r);
                    *r = (0, picks.len() - 1);
                }
            }
        }
        let live = RecordBatch::try_new(Arc::clone(&self.data), self.rows(&picks)?)?;
        if let Some(c) = &self.whole {
            self.wholes = vec![c.convert_columns(live.columns())?];
        }
        self.batches = vec![live];
        Ok(())
    }

    fn rows(&self, picks: &[Pick]) -> Result<Vec<ArrayRef>> {
        gather_columns(&self.batches, picks)
    }
}

/// Store left row `pick` (its `NOT IN` value `value`) in `g`.
fn push_left(g: &mut Group, value: Option<Box<[u8]>>, pick: Pick, now: u64) {
    g.last = now;
    match value {
        Some(v) => g.by_value.entry(v).or_default().left.push(pick),
        None => g.null_left.push(pick),
    }
}

/// Take out of `g` one left row with value `value` for which `equal`
/// holds; `false` when there is none.
fn take_left(g: &mut Group, value: Option<&[u8]>, equal: impl Fn(&Pick) -> bool) -> bool {
    let rows = match value {
        Some(v) => match g.by_value.get_mut(v) {
            Some(e) => &mut e.left,
            None => return false,
        },
        None => &mut g.null_left,
    };
    let Some(at) = rows.iter().position(equal) else {
        return false;
    };
    rows.swap_remove(at);
    if let Some(v) = value {
        if g.by_value
            .get(v)
            .is_some_and(|e| e.right == 0 && e.left.is_empty())
        {
            g.by_value.remove(v);
        }
    }
    true
}

fn left_rows(g: &Group) -> usize {
    g.null_left.len() + g.by_value.values().map(|v| v.left.len()).sum::<usize>()
}

/// The left rows of `g` whose result changed since it was in mode
/// `before` (and `value`, the right row's, had `old` right rows).
fn changed(g: &Group, before: Mode, value: Option<(&[u8], u64)>, out: &mut Vec<(Pick, RowKind)>) {
    let after = g.mode();
    let mut flip = |rows: &[Pick], was: bool, is: bool| {
        if was != is {
            let kind = if is { RowKind::Insert } else { RowKind::Delete };
            out.extend(rows.iter().map(|&p| (p, kind)));
        }
    };
    if before == after {
        // Only the rows with the right row's value can change.
        if let Some((v, old)) = value {
            if let Some(e) = g.by_value.get(v) {
                flip(
                    &e.left,
                    passes(before, Some(old)),
                    passes(after, Some(e.right)),
                );
            }
        }
        return;
    }
    for (v, e) in &g.by_value {
        let old = match value {
            Some((c, old)) if c == v.as_ref() => old,
            _ => e.right,
        };
        flip(
            &e.left,
            passes(before, Some(old)),
            passes(after, Some(e.right)),
        );
    }
    flip(&g.null_left, passes(before, None), passes(after, None));
}

impl Operator for NullAwareAntiJoin {
    fn name(&self) -> &'static str {
        "NullAwareAntiJoin"
    }

    fn describe(&self) -> String {
        self.cfg.spec.describe("NullAwareAntiJoin", "")
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let now = self.sweep.as_ref().map_or(0, Sweep::now);
        self.expire(now)?;
        let mut emitted = Vec::new();
        match input {
            0 => self.on_left(&batch, now, &mut emitted)?,
            1 => self.on_right(&batch, now, &mut emitted)?,
            _ => return Err(Error::internal("a join has two inputs")),
        }
        if !emitted.is_empty() {
            let picks: Vec<Pick> = emitted.iter().map(|(p, _)| *p).collect();
            let ops = Int8Array::from_iter_values(emitted.iter().map(|(_, k)| k.code()));
            out.push(changelog::with_ops(&self.schema, self.rows(&picks)?, ops)?);
        }
        let stored: usize = self.batches.iter().map(RecordBatch::num_rows).sum();
        if stored > 2 * self.live + 1024 {
            self.compact()?;
        }
        Ok(())
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let bytes = self
            .batches
            .iter()
            .map(|b| b.get_array_memory_size())
            .sum::<usize>()
            + self.wholes.iter().map(Rows::size).sum::<usize>()
            + 48 * (self.live + self.groups.len());
        Some((self.groups.len(), bytes))
    }

    fn state_rows(&self) -> Option<[usize; 2]> {
        Some([self.live, self.right_rows])
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        self.snapshot_state()
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        self.restore_state(states, keys)
    }
}

#[cfg(test)]
mod tests;
