//! Snapshot and restore of a session aggregate: the rows of every session
//! (each with its session's number), each session's bounds and, with an
//! emit strategy, its flags and the rows it is shown with downstream. A
//! restore keeps the sessions whose partition keys its instance owns.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, UInt64Type};
use arrow::record_batch::RecordBatch;
use sluice_common::{Error, Result};

use super::emit::Shown;
use super::{Meta, Session, SessionAggregate};
use crate::checkpoint::state::{scalar, scalars, with_columns};
use crate::checkpoint::{KeyRange, State};

fn table(cols: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        cols.into_iter().map(|(_, a)| a).collect(),
    )?)
}

/// Restored sessions by number: their partition key and row picks.
type Restored = BTreeMap<u64, (Box<[u8]>, Vec<(usize, usize)>)>;

fn bad() -> Error {
    Error::Checkpoint("a session aggregate's checkpointed state is malformed".into())
}

impl SessionAggregate {
    pub(super) fn snapshot_sessions(&mut self) -> Result<State> {
        let sessions: Vec<&Session> = self.keys.values().flatten().collect();
        let mut picks = Vec::with_capacity(self.live);
        let mut numbers = Vec::with_capacity(self.live);
        for (n, s) in sessions.iter().enumerate() {
            picks.extend_from_slice(&s.rows);
            numbers.extend(std::iter::repeat_n(n as u64, s.rows.len()));
        }
        let meta = |f: &dyn Fn(&Meta) -> bool| -> ArrayRef {
            Arc::new(BooleanArray::from_iter(
                sessions
                    .iter()
                    .map(|s| Some(s.meta.as_ref().is_some_and(|m| f(m)))),
            ))
        };
        let bounds = table(vec![
            (
                "session",
                Arc::new(UInt64Array::from_iter_values(0..sessions.len() as u64)),
            ),
            (
                "start",
                Arc::new(Int64Array::from_iter_values(
                    sessions.iter().map(|s| s.start),
                )),
            ),
            (
                "end",
                Arc::new(Int64Array::from_iter_values(sessions.iter().map(|s| s.end))),
            ),
            ("dirty", meta(&|m| m.dirty)),
            ("done", meta(&|m| m.done)),
        ])?;
        let mut state = State::new()
            .with("meta", scalars(&[("watermark", self.watermark)]))
            .with("sessions", bounds);
        if !picks.is_empty() {
            let rows = self.stored.gather(&picks)?;
            let session = Field::new("__session", DataType::UInt64, false);
            let numbers: ArrayRef = Arc::new(UInt64Array::from(numbers));
            state.add("rows", with_columns(&rows, vec![(session, numbers)])?);
        }
        if let Some(e) = &self.emit {
            let mut shown = Vec::new();
            let mut of = Vec::new();
            for (n, s) in sessions.iter().enumerate() {
                for sh in s.meta.iter().flat_map(|m| &m.shown) {
                    shown.push(sh);
                    of.push(n as u64);
                }
            }
            if !shown.is_empty() {
                let mut cols: Vec<(&str, ArrayRef)> = vec![
                    ("session", Arc::new(UInt64Array::from(of))),
                    (
                        "start",
                        Arc::new(Int64Array::from_iter_values(shown.iter().map(|s| s.start))),
                    ),
                    (
                        "end",
                        Arc::new(Int64Array::from_iter_values(shown.iter().map(|s| s.end))),
                    ),
                ];
                let values = e.rows.convert_rows(shown.iter().map(|s| s.row.row()))?;
                let names: Vec<String> = (0..values.len()).map(|i| format!("c{i}")).collect();
                cols.extend(names.iter().map(String::as_str).zip(values));
                state.add("shown", table(cols)?);
            }
        }
        Ok(state)
    }

    pub(super) fn restore_sessions(&mut self, states: &[State], keys: KeyRange) -> Result<()> {
        for state in states {
            self.watermark = self
                .watermark
                .max(scalar(state.require("meta")?, "watermark")?);
            let Some(rows) = state.get("rows") else {
                continue;
            };
            let n = rows.num_columns();
            let owned = keys.filter(rows, &self.partition)?;
            let numbers = owned
                .column(n - 1)
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(bad)?
                .clone();
            let mut data = owned;
            data.remove_column(n - 1);
            let key_rows = self.key_rows(&data)?;
            let b = self.stored.next_index();
            let mut sessions: Restored = BTreeMap::new();
            for (i, &num) in numbers.values().iter().enumerate() {
                let key: Box<[u8]> = key_rows
                    .as_ref()
                    .map_or(Box::default(), |k| k.row(i).as_ref().into());
                let e = sessions.entry(num).or_insert_with(|| (key, Vec::new()));
                e.1.push((b, i));
            }
            self.live += data.num_rows();
            self.stored.push(data);
            let shown = self.restored_shown(state)?;
            self.rebuild(state.require("sessions")?, sessions, shown)?;
        }
        Ok(())
    }

    /// The shown rows of a snapshot by session number.
    fn restored_shown(&self, state: &State) -> Result<HashMap<u64, Vec<Shown>>> {
        let mut out: HashMap<u64, Vec<Shown>> = HashMap::new();
        let (Some(e), Some(t)) = (&self.emit, state.get("shown")) else {
            return Ok(out);
        };
        let num = t
            .column(0)
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(bad)?;
        let start = t
            .column(1)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(bad)?;
        let end = t
            .column(2)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(bad)?;
        let rows = e.rows.convert_columns(&t.columns()[3..])?;
        for i in 0..t.num_rows() {
            out.entry(num.value(i)).or_default().push(Shown {
                start: start.value(i),
                end: end.value(i),
                row: rows.row(i).owned(),
            });
        }
        Ok(out)
    }

    /// Put restored sessions (their key and row picks, by number) back.
    fn rebuild(
        &mut self,
        bounds: &RecordBatch,
        sessions: Restored,
        mut shown: HashMap<u64, Vec<Shown>>,
    ) -> Result<()> {
        let col = |i: usize| {
            bounds
                .column(i)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(bad)
        };
        let (start, end) = (col(1)?, col(2)?);
        let flag = |i: usize| bounds.column(i).as_boolean_opt().ok_or_else(bad);
        let (dirty, done) = (flag(3)?, flag(4)?);
        for (num, (key, picks)) in sessions {
            let i = num as usize;
            if i >= bounds.num_rows() {
                return Err(bad());
            }
            let meta = self.emit.as_ref().map(|_| {
                Box::new(Meta {
                    shown: shown.remove(&num).unwrap_or_default(),
                    dirty: dirty.value(i),
                    done: done.value(i),
                })
            });
            let session = Session {
                start: start.value(i),
                end: end.value(i),
                rows: picks,
                meta,
            };
            let next = if session.meta.as_ref().is_some_and(|m| m.done) {
                session.end.saturating_add(self.lateness)
            } else {
                session.end
            };
            self.min_end = self.min_end.min(next);
            let list = self.keys.entry(key).or_default();
            let at = list.partition_point(|s| s.start < session.start);
            list.insert(at, session);
        }
        if let Some(e) = &mut self.emit {
            e.arm_all();
        }
        Ok(())
    }
}
