//! Moving between append-only streams and changelogs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int8Array};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{OwnedRow, RowConverter, SortField};
use sluice_common::changelog::{self, sign_of_code, RowKind};
use sluice_common::{Error, Fold, Result};

use super::expiry::{Clock, Sweep};

use crate::checkpoint::{KeyRange, Snapshots, State};
use crate::operator::{Operator, Output};
use crate::row::RowFunction;

/// Append-only rows as `+I` rows of a changelog (an input of a UNION ALL
/// whose other inputs update).
#[derive(Debug)]
pub struct AsInserts {
    schema: SchemaRef,
}

impl AsInserts {
    /// Over rows of `input` (data columns).
    pub fn new(input: &SchemaRef) -> Self {
        AsInserts {
            schema: changelog::with_op_field(input),
        }
    }
}

impl RowFunction for AsInserts {
    fn name(&self) -> &'static str {
        "AsInserts"
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        changelog::as_inserts(&batch, &self.schema)
    }
}

/// The final table of a bounded changelog: folds it (by `key`, or as a
/// multiset) and emits the rows, append-only, at the end of the input (what
/// ORDER BY and LIMIT over an updating result read).
pub struct FoldOperator {
    fold: Fold,
    schema: SchemaRef,
    key: Option<Vec<usize>>,
}

impl FoldOperator {
    /// Over changelog batches of `input`.
    pub fn try_new(input: &SchemaRef, key: Option<Vec<usize>>) -> Result<Self> {
        let schema = changelog::data_schema(input);
        Ok(FoldOperator {
            fold: Fold::try_new(Arc::clone(&schema), key.clone())?,
            schema,
            key,
        })
    }
}

impl Operator for FoldOperator {
    fn name(&self) -> &'static str {
        "Fold"
    }

    fn describe(&self) -> String {
        match &self.key {
            Some(k) => {
                let names: Vec<&str> = k
                    .iter()
                    .map(|&i| self.schema.field(i).name().as_str())
                    .collect();
                format!("Fold: by [{}]", names.join(", "))
            }
            None => "Fold: as a multiset".to_string(),
        }
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, _out: &mut Output) -> Result<()> {
        self.fold.apply(&batch)
    }

    fn on_end(&mut self, out: &mut Output) -> Result<()> {
        out.push(self.fold.table()?);
        Ok(())
    }

    fn snapshots(&self) -> Snapshots {
        Snapshots::Stateful
    }

    /// The table folded so far.
    fn snapshot(&mut self) -> Result<State> {
        Ok(State::new().with("rows", self.fold.table()?))
    }

    fn restore(&mut self, states: &[State], _keys: KeyRange) -> Result<()> {
        for s in states {
            self.fold.apply(s.require("rows")?)?;
        }
        Ok(())
    }
}

/// Upserts into a changelog (Flink's `ChangelogNormalize`): the rows of an
/// upsert source (a new value for a key, or a delete that may carry only
/// the key) become `+I` for a new key, `-U`/`+U` for a changed one (nothing
/// when the value did not change) and `-D` with the old row for a delete;
/// a delete of a key that is not there is dropped. Keeps the last row of
/// every live key; with a TTL, keys idle that long are forgotten.
pub struct UpsertNormalize {
    schema: SchemaRef,
    key: Vec<usize>,
    rows: RowConverter,
    keys: RowConverter,
    state: HashMap<Box<[u8]>, (OwnedRow, u64)>,
    bytes: usize,
    ttl: Option<Sweep>,
}

impl UpsertNormalize {
    /// Over changelog batches of `input`, keyed by the columns `key`.
    pub fn try_new(input: &SchemaRef, key: Vec<usize>) -> Result<Self> {
        let data = changelog::data_schema(input);
        let sort = |i: usize| SortField::new(data.field(i).data_type().clone());
        Ok(UpsertNormalize {
            schema: changelog::with_op_field(&data),
            rows: RowConverter::new((0..data.fields().len()).map(sort).collect())?,
            keys: RowConverter::new(key.iter().map(|&i| sort(i)).collect())?,
            key,
            state: HashMap::new(),
            bytes: 0,
            ttl: None,
        })
    }

    /// Forget keys not updated for `ttl` (by `clock`).
    pub fn with_ttl(mut self, ttl: Option<Duration>, clock: Clock) -> Self {
        self.ttl = ttl.map(|t| Sweep::new(t, clock));
        self
    }

    fn now(&self) -> u64 {
        self.ttl.as_ref().map_or(0, Sweep::now)
    }

    fn sweep(&mut self, now: u64) {
        let Some(sweep) = self.ttl.as_mut() else {
            return;
        };
        if !sweep.due(now) {
            return;
        }
        let sweep = &*sweep;
        let mut freed = 0;
        self.state.retain(|k, (row, last)| {
            let keep = !sweep.is_idle(*last, now);
            if !keep {
                freed += k.len() + row.as_ref().len();
            }
            keep
        });
        self.bytes -= freed;
    }
}

impl Operator for UpsertNormalize {
    fn name(&self) -> &'static str {
        "UpsertNormalize"
    }

    fn describe(&self) -> String {
        let names: Vec<&str> = self
            .key
            .iter()
            .map(|&i| self.schema.field(i).name().as_str())
            .collect();
        format!("UpsertNormalize: by [{}]", names.join(", "))
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let now = self.now();
        self.sweep(now);
        let ops = changelog::ops(&batch)
            .cloned()
            .ok_or_else(|| Error::internal("upserts without row kinds"))?;
        let data = changelog::data(&batch)?;
        let rows = self.rows.convert_columns(data.columns())?;
        let key_cols: Vec<ArrayRef> = self
            .key
            .iter()
            .map(|&i| Arc::clone(data.column(i)))
            .collect();
        let keys = self.keys.convert_columns(&key_cols)?;
        let mut emitted: Vec<(OwnedRow, RowKind)> = Vec::new();
        for i in 0..data.num_rows() {
            let key = keys.row(i);
            let accumulate = sign_of_code(ops.value(i)) > 0;
            if !accumulate {
                if let Some((old, _)) = self.state.remove(key.as_ref()) {
                    self.bytes -= key.as_ref().len() + old.as_ref().len();
                    emitted.push((old, RowKind::Delete));
                }
                continue;
            }
            let new = rows.row(i);
            match self.state.get_mut(key.as_ref()) {
                Some((old, last)) => {
                    *last = now;
                    if old.row() == new {
                        continue;
                    }
                    let old = std::mem::replace(old, new.owned());
                    self.bytes = self.bytes + new.as_ref().len() - old.as_ref().len();
                    emitted.push((old, RowKind::UpdateBefore));
                    emitted.push((new.owned(), RowKind::UpdateAfter));
                }
                None => {
                    self.bytes += key.as_ref().len() + new.as_ref().len();
                    self.state.insert(key.as_ref().into(), (new.owned(), now));
                    emitted.push((new.owned(), RowKind::Insert));
                }
            }
        }
        if emitted.is_empty() {
            return Ok(());
        }
        let mut columns = self
            .rows
            .convert_rows(emitted.iter().map(|(r, _)| r.row()))?;
        let kinds = Int8Array::from_iter_values(emitted.iter().map(|(_, k)| k.code()));
        columns.push(Arc::new(kinds));
        out.push(RecordBatch::try_new(Arc::clone(&self.schema), columns)?);
        Ok(())
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        Some((self.state.len(), self.bytes))
    }

    fn snapshots(&self) -> Snapshots {
        Snapshots::Stateful
    }

    /// The last row of every key, and when it was written.
    fn snapshot(&mut self) -> Result<State> {
        let data = changelog::data_schema(&self.schema);
        let mut cols = if self.state.is_empty() {
            data.fields()
                .iter()
                .map(|f| arrow::array::new_empty_array(f.data_type()))
                .collect()
        } else {
            self.rows
                .convert_rows(self.state.values().map(|(r, _)| r.row()))?
        };
        cols.push(Arc::new(arrow::array::UInt64Array::from_iter_values(
            self.state.values().map(|(_, t)| *t),
        )));
        let mut fields: Vec<_> = data.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(arrow::datatypes::Field::new(
            "__written",
            arrow::datatypes::DataType::UInt64,
            false,
        ));
        let rows = RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), cols)?;
        Ok(State::new().with("rows", rows))
    }

    fn restore(&mut self, states: &[State], _keys: KeyRange) -> Result<()> {
        use arrow::array::AsArray;
        for s in states {
            let t = s.require("rows")?;
            let n = t.num_columns();
            let written = t
                .column(n - 1)
                .as_primitive_opt::<arrow::datatypes::UInt64Type>()
                .ok_or_else(|| Error::Checkpoint("upsert state is malformed".into()))?;
            let rows = self.rows.convert_columns(&t.columns()[..n - 1])?;
            let key_cols: Vec<ArrayRef> =
                self.key.iter().map(|&i| Arc::clone(t.column(i))).collect();
            let keys = self.keys.convert_columns(&key_cols)?;
            for i in 0..t.num_rows() {
                let (k, r) = (keys.row(i), rows.row(i));
                self.bytes += k.as_ref().len() + r.as_ref().len();
                self.state
                    .insert(k.as_ref().into(), (r.owned(), written.value(i)));
            }
        }
        Ok(())
    }
}
