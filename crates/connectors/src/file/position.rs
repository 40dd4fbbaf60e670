//! A file source's position in a checkpoint: per split (file), the byte
//! offset and line of the next record and whether it was read to the end.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};
use sluice_exec::checkpoint::State;

/// The state table of split positions.
const SPLITS: &str = "splits";

/// Where a split continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// Bytes before the next record.
    pub offset: u64,
    /// Its line number.
    pub line: u64,
    /// Read to the end.
    pub done: bool,
}

/// The positions of `splits` (name, position), in split order.
pub(crate) fn write(splits: &[(String, Position)]) -> State {
    let schema = Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("line", DataType::Int64, false),
        Field::new("done", DataType::Boolean, false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(splits.iter().map(|s| &s.0))),
        Arc::new(Int64Array::from_iter_values(
            splits.iter().map(|s| s.1.offset as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            splits.iter().map(|s| s.1.line as i64),
        )),
        Arc::new(BooleanArray::from_iter(
            splits.iter().map(|s| Some(s.1.done)),
        )),
    ];
    match RecordBatch::try_new(Arc::new(schema), cols) {
        Ok(b) => State::new().with(SPLITS, b),
        Err(_) => State::new(),
    }
}

fn columns(state: &State) -> Result<(Vec<String>, Vec<Position>)> {
    let b = state.require(SPLITS)?;
    let bad = || Error::Checkpoint("the file source's checkpointed positions are malformed".into());
    let paths = b
        .column_by_name("path")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(bad)?;
    let num = |n: &str| {
        b.column_by_name(n)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(bad)
    };
    let (offsets, lines) = (num("offset")?, num("line")?);
    let done = b
        .column_by_name("done")
        .and_then(|c| c.as_boolean_opt())
        .ok_or_else(bad)?;
    let names = paths
        .iter()
        .map(|p| p.unwrap_or_default().to_string())
        .collect();
    let positions = (0..b.num_rows())
        .map(|i| Position {
            offset: offsets.value(i) as u64,
            line: lines.value(i) as u64,
            done: done.value(i),
        })
        .collect();
    Ok((names, positions))
}

/// The recorded positions by split name.
pub(crate) fn read(state: &State) -> Result<HashMap<String, Position>> {
    let (names, positions) = columns(state)?;
    Ok(names.into_iter().zip(positions).collect())
}

/// The recorded splits' names, in their order then.
pub(crate) fn order(state: &State) -> Result<Vec<String>> {
    Ok(columns(state)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let p = Position {
            offset: 123,
            line: 7,
            done: false,
        };
        let q = Position {
            offset: 9,
            line: 2,
            done: true,
        };
        let state = write(&[("a.csv".into(), p), ("b.csv".into(), q)]);
        let read = read(&state).expect("reads");
        assert_eq!((read["a.csv"], read["b.csv"]), (p, q));
        assert_eq!(order(&state).expect("order"), ["a.csv", "b.csv"]);
    }
}
