//! Snapshot and restore of an OVER aggregate. Tables: `meta` (the
//! watermark); `waiting`, the rows the watermark has not passed, in each
//! partition's arrival order; `pending`, rows waiting for their LEADs, with
//! their values so far (`v<i>` per function); `parts`, per partition its
//! keys (`k<j>`) and what is not rows: an unbounded frame's DataFusion
//! accumulator state (`a<i>_<j>`), a running aggregate's totals
//! (`r<i>_int`, `r<i>_float`, `r<i>_count`), a LAG's last values
//! (`lag<i>_len`, `lag<i>_<p>`); `frame`, a bounded frame's rows, oldest
//! first, with their time and each aggregate's arguments (`f<i>_<j>`) or
//! running value (`r<i>_v`): a restore adds them to fresh sliding
//! accumulators, which then hold what they held. A restore keeps the
//! partitions its instance owns.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::{concat, filter_record_batch};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use sluice_common::{Error, Result};

use super::{OverAggregate, OverFunction, Partition};
use crate::checkpoint::state::{accumulator_state, largest, named_table, scalars, with_columns};
use crate::checkpoint::{KeyRange, State};
use crate::operators::window_aggregate::eval_all;

/// Named columns of values, built into a table.
#[derive(Default)]
struct Columns {
    names: Vec<String>,
    values: Vec<Vec<ScalarValue>>,
    arrays: Vec<ArrayRef>,
}

impl Columns {
    /// Column `name`'s value `v` for the current row (columns are made on
    /// the first row, in order).
    fn push(&mut self, at: &mut usize, name: impl FnOnce() -> String, v: ScalarValue) {
        if *at == self.values.len() {
            self.names.push(name());
            self.values.push(Vec::new());
        }
        self.values[*at].push(v);
        *at += 1;
    }

    fn table(self, keys: Vec<ArrayRef>) -> Result<RecordBatch> {
        let mut names: Vec<String> = (0..keys.len()).map(|j| format!("k{j}")).collect();
        let mut arrays = keys;
        names.extend(self.names);
        for v in self.values {
            arrays.push(ScalarValue::iter_to_array(v)?);
        }
        names.extend((0..self.arrays.len()).map(|i| format!("f{i}")));
        arrays.extend(self.arrays);
        named_table(&names, arrays)
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::Checkpoint(format!("checkpointed column '{name}' is missing")))
}

fn int(batch: &RecordBatch, name: &str, r: usize) -> Result<i64> {
    column(batch, name)?
        .as_primitive_opt::<Int64Type>()
        .map(|a| a.value(r))
        .ok_or_else(|| Error::Checkpoint(format!("checkpointed column '{name}' is not BIGINT")))
}

impl OverAggregate {
    pub(super) fn snapshot_state(&mut self) -> Result<State> {
        let mut state = State::new().with("meta", scalars(&[("watermark", self.watermark)]));
        let types = self.lag_types()?;
        let mut keys = Vec::new();
        let (mut waiting, mut pending, mut pending_values) = (Vec::new(), Vec::new(), Vec::new());
        let mut parts = Columns::default();
        let (mut frame_keys, mut frame) = (Vec::new(), Columns::default());
        let mut frame_args: Vec<Vec<ArrayRef>> = Vec::new();
        let unbounded = !self.bounded();
        for (key, part) in &mut self.partitions {
            keys.push(key.clone());
            waiting.extend(part.waiting.iter().map(|(_, p)| *p));
            for (p, values) in &part.pending {
                pending.push(*p);
                pending_values.push(values.clone());
            }
            let funcs = &self.cfg.functions;
            snapshot_partition(funcs, part, unbounded, &types, &mut parts)?;
            let rows = snapshot_frame(part, &mut frame, &mut frame_args);
            frame_keys.extend(std::iter::repeat_n(key.clone(), rows));
        }
        if !keys.is_empty() {
            let decoded = self.decode_keys(&keys)?;
            state.add("parts", parts.table(decoded)?);
        }
        if !frame_keys.is_empty() {
            let decoded = self.decode_keys(&frame_keys)?;
            frame.arrays = frame_args
                .iter()
                .map(|cols| {
                    Ok(concat(
                        &cols.iter().map(|c| c.as_ref()).collect::<Vec<_>>(),
                    )?)
                })
                .collect::<Result<_>>()?;
            state.add("frame", frame.table(decoded)?);
        }
        if !waiting.is_empty() {
            state.add("waiting", self.stored.gather(&waiting)?);
        }
        if !pending.is_empty() {
            state.add("pending", self.pending_table(&pending, pending_values)?);
        }
        Ok(state)
    }

    /// Per function, a LAG's argument type.
    fn lag_types(&self) -> Result<Vec<Option<DataType>>> {
        let fields = self.cfg.schema.fields();
        let input = Schema::new(fields[..fields.len() - self.cfg.functions.len()].to_vec());
        self.cfg
            .functions
            .iter()
            .map(|f| match f {
                OverFunction::Lag { arg, .. } => Ok(Some(arg.data_type(&input)?)),
                _ => Ok(None),
            })
            .collect()
    }

    fn decode_keys(&self, keys: &[Box<[u8]>]) -> Result<Vec<ArrayRef>> {
        if self.cfg.partition.is_empty() {
            return Ok(Vec::new());
        }
        let parser = self.converter.parser();
        Ok(self
            .converter
            .convert_rows(keys.iter().map(|k| parser.parse(k)))?)
    }

    fn pending_table(
        &self,
        picks: &[(usize, usize)],
        values: Vec<Vec<ScalarValue>>,
    ) -> Result<RecordBatch> {
        let rows = self.stored.gather(picks)?;
        let mut extra = Vec::new();
        for i in 0..self.cfg.functions.len() {
            let v = ScalarValue::iter_to_array(values.iter().map(|row| row[i].clone()))?;
            extra.push((Field::new(format!("v{i}"), v.data_type().clone(), true), v));
        }
        with_columns(&rows, extra)
    }

    pub(super) fn restore_state(&mut self, states: &[State], keys: KeyRange) -> Result<()> {
        self.watermark = self.watermark.max(largest(states, "watermark")?);
        for state in states {
            if let Some(parts) = state.get("parts") {
                self.restore_parts(&owned(parts, keys)?)?;
            }
            if let Some(frame) = state.get("frame") {
                self.restore_frame(&owned(frame, keys)?)?;
            }
            if let Some(pending) = state.get("pending") {
                self.restore_pending(pending, keys)?;
            }
            if let Some(waiting) = state.get("waiting") {
                let rows = keys.filter(waiting, &self.cfg.partition)?;
                if rows.num_rows() > 0 {
                    self.accept(rows)?;
                }
            }
        }
        Ok(())
    }

    /// The encoded key of each row of a table whose first columns are the
    /// partition keys.
    fn table_keys(&self, batch: &RecordBatch) -> Result<Vec<Box<[u8]>>> {
        let n = self.cfg.partition.len();
        if n == 0 {
            return Ok(vec![Box::default(); batch.num_rows()]);
        }
        let rows = self.converter.convert_columns(&batch.columns()[..n])?;
        Ok(rows.iter().map(|r| r.as_ref().into()).collect())
    }

    fn restore_parts(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = self.table_keys(batch)?;
        let functions = self.cfg.functions.clone();
        let bounded = self.bounded();
        for (r, key) in keys.iter().enumerate() {
            let part = self.partition(key)?;
            let mut lag = 0;
            for (i, f) in functions.iter().enumerate() {
                if let Some(running) = &mut part.running[i] {
                    let float = column(batch, &format!("r{i}_float"))?
                        .as_primitive_opt::<Float64Type>()
                        .map(|a| a.value(r))
                        .ok_or_else(|| Error::Checkpoint("a running sum is not DOUBLE".into()))?;
                    let (sum, count) = (
                        int(batch, &format!("r{i}_int"), r)?,
                        int(batch, &format!("r{i}_count"), r)?,
                    );
                    running.set_totals(sum, float, count);
                    continue;
                }
                match f {
                    // A bounded frame's accumulators are rebuilt from the
                    // frame.
                    OverFunction::Aggregate(_) if bounded => {}
                    OverFunction::Aggregate(a) => {
                        let Some(acc) = &mut part.accs[i] else {
                            continue;
                        };
                        let width = a.state_fields()?.len();
                        let states = (0..width)
                            .map(|j| Ok(column(batch, &format!("a{i}_{j}"))?.slice(r, 1)))
                            .collect::<Result<Vec<_>>>()?;
                        acc.merge_batch(&states)?;
                    }
                    OverFunction::Lag { .. } => {
                        let q = &mut part.lags[lag];
                        lag += 1;
                        let len = int(batch, &format!("lag{i}_len"), r)?;
                        q.clear();
                        for p in 0..len {
                            let values = column(batch, &format!("lag{i}_{p}"))?;
                            q.push_back(ScalarValue::try_from_array(values, r)?);
                        }
                    }
                    OverFunction::Lead { .. } => {}
                }
            }
        }
        Ok(())
    }

    fn restore_frame(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = self.table_keys(batch)?;
        let times = column(batch, "t")?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| Error::Checkpoint("a frame's times are not BIGINT".into()))?
            .clone();
        let functions = self.cfg.functions.clone();
        // Arguments of the aggregates kept with each row, by function.
        let mut args: Vec<(usize, Vec<ArrayRef>)> = Vec::new();
        let mut next = 0;
        for (i, func) in functions.iter().enumerate() {
            let OverFunction::Aggregate(a) = func else {
                continue;
            };
            if self.fast[i].is_some() {
                continue;
            }
            let mut cols = Vec::new();
            for _ in a.expressions() {
                cols.push(Arc::clone(column(batch, &format!("f{next}"))?));
                next += 1;
            }
            args.push((i, cols));
        }
        let mut start = 0;
        while start < keys.len() {
            let mut end = start + 1;
            while end < keys.len() && keys[end] == keys[start] {
                end += 1;
            }
            // Copies of this partition's run: an idle partition does not
            // pin the whole restored table.
            let run: Vec<(usize, Vec<ArrayRef>)> = args
                .iter()
                .map(|(i, cols)| {
                    let cols = cols
                        .iter()
                        .map(|c| Ok(concat(&[c.slice(start, end - start).as_ref()])?))
                        .collect::<Result<Vec<_>>>()?;
                    Ok((*i, cols))
                })
                .collect::<Result<_>>()?;
            let fast: Vec<(usize, ArrayRef)> = (0..functions.len())
                .filter(|&i| self.fast[i].is_some())
                .map(|i| Ok((i, Arc::clone(column(batch, &format!("r{i}_v"))?))))
                .collect::<Result<_>>()?;
            let part = self.partition(&keys[start])?;
            for r in start..end {
                let mut kept = Vec::new();
                for (i, cols) in &run {
                    let one: Vec<ArrayRef> = cols.iter().map(|c| c.slice(r - start, 1)).collect();
                    if let Some(acc) = &mut part.accs[*i] {
                        acc.update_batch(&one)?;
                    }
                    kept.push(one);
                }
                for (i, values) in &fast {
                    if let Some(running) = &mut part.running[*i] {
                        running.push_frame_value(values, r);
                    }
                }
                part.frame.push_back((times.value(r), kept));
            }
            start = end;
        }
        Ok(())
    }

    fn restore_pending(&mut self, batch: &RecordBatch, keys: KeyRange) -> Result<()> {
        let n = batch.num_columns() - self.cfg.functions.len();
        let rows = RecordBatch::try_new(
            Arc::new(Schema::new(batch.schema().fields()[..n].to_vec())),
            batch.columns()[..n].to_vec(),
        )?;
        let cols = eval_all(&self.cfg.partition, &rows)?;
        let mask = keys.mask(&cols, rows.num_rows())?;
        let batch = filter_record_batch(batch, &mask)?;
        let rows = filter_record_batch(&rows, &mask)?;
        let part_keys = self.table_keys_of(&rows)?;
        let b = self.stored.push(rows);
        for (i, key) in part_keys.iter().enumerate() {
            let values = (n..batch.num_columns())
                .map(|c| ScalarValue::try_from_array(batch.column(c), i))
                .collect::<datafusion::common::Result<Vec<_>>>()?;
            let part = self.partition(key)?;
            part.pending.push_back(((b, i), values));
            self.pending += 1;
        }
        Ok(())
    }

    /// The encoded partition key of each input row.
    fn table_keys_of(&self, rows: &RecordBatch) -> Result<Vec<Box<[u8]>>> {
        let cols = eval_all(&self.cfg.partition, rows)?;
        if cols.is_empty() {
            return Ok(vec![Box::default(); rows.num_rows()]);
        }
        let encoded = self.converter.convert_columns(&cols)?;
        Ok(encoded.iter().map(|r| r.as_ref().into()).collect())
    }
}

/// The rows of a table keyed by its first columns (`k<j>`) that `keys`
/// owns.
fn owned(batch: &RecordBatch, keys: KeyRange) -> Result<RecordBatch> {
    let n = batch
        .schema()
        .fields()
        .iter()
        .take_while(|f| f.name().starts_with('k') && f.name()[1..].parse::<usize>().is_ok())
        .count();
    keys.filter_by(batch, &batch.columns()[..n])
}

/// One partition's row of the `parts` table.
fn snapshot_partition(
    functions: &[OverFunction],
    part: &mut Partition,
    unbounded: bool,
    lag_types: &[Option<DataType>],
    cols: &mut Columns,
) -> Result<()> {
    let mut at = 0;
    let mut lag = 0;
    for (i, f) in functions.iter().enumerate() {
        if let Some(running) = &part.running[i] {
            let [sum, float, count] = running.totals();
            cols.push(&mut at, || format!("r{i}_int"), sum);
            cols.push(&mut at, || format!("r{i}_float"), float);
            cols.push(&mut at, || format!("r{i}_count"), count);
            continue;
        }
        match f {
            OverFunction::Aggregate(a) if unbounded => {
                let Some(acc) = &mut part.accs[i] else {
                    continue;
                };
                let state = accumulator_state(acc, a.create_accumulator()?)?;
                for (j, v) in state.into_iter().enumerate() {
                    cols.push(&mut at, || format!("a{i}_{j}"), v);
                }
            }
            OverFunction::Lag { offset, .. } => {
                let q: &VecDeque<ScalarValue> = &part.lags[lag];
                lag += 1;
                let len = ScalarValue::Int64(Some(q.len() as i64));
                cols.push(&mut at, || format!("lag{i}_len"), len);
                let null = match &lag_types[i] {
                    Some(t) => ScalarValue::try_from(t)?,
                    None => return Err(Error::internal("a LAG without its type")),
                };
                for p in 0..*offset {
                    let v = q.get(p).cloned().unwrap_or_else(|| null.clone());
                    cols.push(&mut at, || format!("lag{i}_{p}"), v);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Partition `part`'s frame rows into the `frame` table: their times,
/// running values and aggregates' arguments (one column of one-row slices
/// per argument, `args`). Returns how many rows.
fn snapshot_frame(part: &Partition, frame: &mut Columns, args: &mut Vec<Vec<ArrayRef>>) -> usize {
    let mut running: Vec<(usize, Vec<ScalarValue>)> = part
        .running
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().map(|r| (i, r.frame_values().collect())))
        .collect();
    for (r, (t, kept)) in part.frame.iter().enumerate() {
        let mut at = 0;
        frame.push(&mut at, || "t".to_string(), ScalarValue::Int64(Some(*t)));
        for (i, values) in &mut running {
            let v = std::mem::replace(&mut values[r], ScalarValue::Null);
            frame.push(&mut at, || format!("r{i}_v"), v);
        }
        for (c, slice) in kept.iter().flatten().enumerate() {
            if c == args.len() {
                args.push(Vec::new());
            }
            args[c].push(Arc::clone(slice));
        }
    }
    part.frame.len()
}
