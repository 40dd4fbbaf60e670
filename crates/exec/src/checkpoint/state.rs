//! [`State`]: what a task hands over at a checkpoint, as named Arrow
//! batches, with helpers for the scalars (watermarks, counters, positions)
//! that go with them.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

/// A task's state at a checkpoint: named tables of rows. Empty for a task
/// with nothing to keep.
///
/// A table added with a *share key* ([`State::add_shared`]) is immutable
/// under that key: the store writes it once, into the job's shared files,
/// and later checkpoints that hand over the same key refer to that file
/// (incremental checkpoints). Read back, it is a table like the others.
#[derive(Debug, Clone, Default)]
pub struct State {
    tables: Vec<(String, RecordBatch)>,
    shared: Vec<Shared>,
}

/// A shared table: its name, share key and rows (in parts, as stored).
#[derive(Debug, Clone)]
pub struct Shared {
    /// The table's name.
    pub name: String,
    /// What its rows never change under.
    pub key: String,
    /// Its rows.
    pub batches: Vec<RecordBatch>,
}

impl State {
    /// No tables.
    pub fn new() -> Self {
        State::default()
    }

    /// This state with table `name`.
    pub fn with(mut self, name: &str, batch: RecordBatch) -> Self {
        self.add(name, batch);
        self
    }

    /// Add table `name` (replacing one of that name).
    pub fn add(&mut self, name: &str, batch: RecordBatch) {
        self.tables.retain(|(n, _)| n != name);
        self.shared.retain(|t| t.name != name);
        self.tables.push((name.to_string(), batch));
    }

    /// Add table `name` (the rows of `batches`, of one schema), whose rows
    /// never change under `key` (unique within the task): written once,
    /// referred to by later checkpoints. Read back, it is one table.
    pub fn add_shared(&mut self, name: &str, key: String, batches: Vec<RecordBatch>) {
        self.tables.retain(|(n, _)| n != name);
        self.shared.retain(|t| t.name != name);
        self.shared.push(Shared {
            name: name.to_string(),
            key,
            batches,
        });
    }

    /// The shared tables, in the order added.
    pub fn shared(&self) -> &[Shared] {
        &self.shared
    }

    /// Table `name`, shared or not (a shared one's parts put together).
    pub fn rows(&self, name: &str) -> Result<Option<RecordBatch>> {
        if let Some(b) = self.get(name) {
            return Ok(Some(b.clone()));
        }
        match self.shared.iter().find(|t| t.name == name) {
            Some(t) => match t.batches.first() {
                Some(first) => Ok(Some(arrow::compute::concat_batches(
                    &first.schema(),
                    &t.batches,
                )?)),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Table `name`, if present.
    pub fn get(&self, name: &str) -> Option<&RecordBatch> {
        self.tables.iter().find(|(n, _)| n == name).map(|(_, b)| b)
    }

    /// Table `name`, or an error naming what is missing.
    pub fn require(&self, name: &str) -> Result<&RecordBatch> {
        self.get(name).ok_or_else(|| {
            Error::Checkpoint(format!("the checkpointed state has no table '{name}'"))
        })
    }

    /// Every table, in the order added.
    pub fn tables(&self) -> &[(String, RecordBatch)] {
        &self.tables
    }

    /// Whether it has no table.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.shared.is_empty()
    }

    /// Bytes of its arrays.
    pub fn bytes(&self) -> usize {
        let shared = self.shared.iter().flat_map(|t| &t.batches);
        self.tables
            .iter()
            .map(|(_, b)| b)
            .chain(shared)
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }
}

/// `batch` with the columns `extra` added after its own.
pub fn with_columns(batch: &RecordBatch, extra: Vec<(Field, ArrayRef)>) -> Result<RecordBatch> {
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut cols = batch.columns().to_vec();
    for (f, c) in extra {
        fields.push(f);
        cols.push(c);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// Columns `arrays` named by `names` (nullable), as a table.
pub fn named_table(names: &[String], arrays: Vec<ArrayRef>) -> Result<RecordBatch> {
    let fields: Vec<Field> = names
        .iter()
        .zip(&arrays)
        .map(|(n, a)| Field::new(n, a.data_type().clone(), true))
        .collect();
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// A one-row table of named BIGINT values.
pub fn scalars(values: &[(&str, i64)]) -> RecordBatch {
    let fields: Vec<Field> = values
        .iter()
        .map(|(n, _)| Field::new(*n, DataType::Int64, false))
        .collect();
    let cols: Vec<ArrayRef> = values
        .iter()
        .map(|(_, v)| Arc::new(Int64Array::from(vec![*v])) as ArrayRef)
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .unwrap_or_else(|_| RecordBatch::new_empty(Arc::new(Schema::empty())))
}

/// Value `name` of a table made by [`scalars`].
pub fn scalar(batch: &RecordBatch, name: &str) -> Result<i64> {
    let col = batch.column_by_name(name).ok_or_else(|| {
        Error::Checkpoint(format!("the checkpointed state has no value '{name}'"))
    })?;
    let v = col
        .as_primitive_opt::<Int64Type>()
        .filter(|a| !a.is_empty() && a.is_valid(0))
        .ok_or_else(|| Error::Checkpoint(format!("checkpointed value '{name}' is not a number")))?;
    Ok(v.value(0))
}

/// The largest value `name` of the `meta` tables (made by [`scalars`]) of
/// `states`, `i64::MIN` without states: what a restore takes of a value
/// that only grows (a watermark, a clock) when instances merge.
pub fn largest(states: &[State], name: &str) -> Result<i64> {
    states.iter().try_fold(i64::MIN, |most, s| {
        Ok(most.max(scalar(s.require("meta")?, name)?))
    })
}

/// A table of one string column `name`.
pub fn strings(name: &str, values: &[String]) -> RecordBatch {
    let schema = Schema::new(vec![Field::new(name, DataType::Utf8, false)]);
    let col: ArrayRef = Arc::new(StringArray::from_iter_values(values));
    RecordBatch::try_new(Arc::new(schema), vec![col])
        .unwrap_or_else(|_| RecordBatch::new_empty(Arc::new(Schema::empty())))
}

/// The strings of column `name` of `batch`.
pub fn string_values(batch: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let col = batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| Error::Checkpoint(format!("checkpointed column '{name}' is missing")))?;
    Ok(col
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}

/// The intermediate state of `acc` (`Accumulator::state`), leaving it as
/// it was: DataFusion's `state` may hand its values over (MEDIAN,
/// STRING_AGG), so `acc` is replaced by `fresh` with the state merged back.
pub fn accumulator_state(
    acc: &mut Box<dyn datafusion::logical_expr::Accumulator>,
    mut fresh: Box<dyn datafusion::logical_expr::Accumulator>,
) -> Result<Vec<datafusion::scalar::ScalarValue>> {
    let state = acc.state()?;
    let arrays = state
        .iter()
        .map(|v| v.to_array())
        .collect::<datafusion::common::Result<Vec<ArrayRef>>>()?;
    fresh.merge_batch(&arrays)?;
    *acc = fresh;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_round_trip() {
        let s = State::new().with("meta", scalars(&[("watermark", -5), ("seq", 9)]));
        let meta = s.require("meta").expect("present");
        assert_eq!(scalar(meta, "watermark").expect("value"), -5);
        assert_eq!(scalar(meta, "seq").expect("value"), 9);
        assert!(scalar(meta, "nope").is_err());
        assert!(s.require("other").is_err());
        let files = strings("file", &["a".into(), "b".into()]);
        assert_eq!(string_values(&files, "file").expect("strings"), ["a", "b"]);
    }
}
