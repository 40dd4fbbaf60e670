//! A materialized view's rows in its job's checkpoints, so a job restored
//! in a new process (whose view table starts empty) restores its view.
//!
//! The sink's state for checkpoint `n` is the view's rows as of `n`: a
//! *base* (the rows at some earlier checkpoint) and the *deltas* (each
//! later checkpoint's written rows, in order). Each is a shared table
//! written once and referred to by later checkpoints, so a checkpoint
//! writes only its own rows. When the deltas outgrow the base (and a
//! floor), the base is rebuilt as the rows at `n`, so the state stays about
//! the view's size however long the job runs (updates fold away; a view's
//! retention applies).

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use sluice_common::{changelog, Fold, Result};
use sluice_exec::checkpoint::state::{string_values, strings};
use sluice_exec::checkpoint::{CheckpointId, State};

use super::MemoryTable;

/// Deltas never trigger a new base below this many rows.
const MIN_REBASE_ROWS: usize = 10_000;

/// What the view's checkpoints hold so far in this run.
#[derive(Debug, Default)]
pub(super) struct ViewState {
    base: Vec<RecordBatch>,
    base_rows: usize,
    base_key: u64,
    /// Share key and rows of each checkpoint after the base.
    deltas: Vec<(u64, Vec<RecordBatch>)>,
    delta_rows: usize,
    next_key: u64,
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

impl ViewState {
    /// Put the rows a checkpoint's state holds into `table` (empty: a new
    /// process), and start from them.
    pub(super) fn restore(table: &MemoryTable, state: &State) -> Result<Self> {
        let names = match state.get("order") {
            Some(order) => string_values(order, "name")?,
            None => vec![],
        };
        for name in names {
            if let Some(rows) = state.rows(&name)? {
                table.write(rows)?;
            }
        }
        let mut view = ViewState::default();
        view.rebase(table.snapshot()?);
        Ok(view)
    }

    fn rebase(&mut self, base: Vec<RecordBatch>) {
        self.base_rows = rows(&base);
        self.base = base.into_iter().filter(|b| b.num_rows() > 0).collect();
        self.base_key = self.key();
        self.deltas.clear();
        self.delta_rows = 0;
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// A checkpoint was pre-committed: `pending` are the rows pre-committed
    /// and not yet in `table`, this checkpoint's last. The state to keep.
    pub(super) fn checkpoint(
        &mut self,
        table: &MemoryTable,
        pending: &VecDeque<(CheckpointId, Vec<RecordBatch>)>,
    ) -> Result<State> {
        let written: Vec<RecordBatch> = pending
            .back()
            .into_iter()
            .flat_map(|(_, rows)| rows)
            .filter(|b| b.num_rows() > 0)
            .cloned()
            .collect();
        if !written.is_empty() {
            self.delta_rows += rows(&written);
            let key = self.key();
            self.deltas.push((key, written));
        }
        if self.delta_rows > self.base_rows.max(MIN_REBASE_ROWS) {
            let now = rows_at(table, pending)?;
            self.rebase(now);
        }
        Ok(self.state())
    }

    fn state(&self) -> State {
        let mut state = State::new();
        let mut order = Vec::new();
        if !self.base.is_empty() {
            state.add_shared("base", format!("b{}", self.base_key), self.base.clone());
            order.push("base".to_string());
        }
        for (key, batches) in &self.deltas {
            let name = format!("d{key}");
            state.add_shared(&name, name.clone(), batches.clone());
            order.push(name);
        }
        state.add("order", strings("name", &order));
        state
    }
}

/// The table's rows once `pending` is applied (without applying it).
fn rows_at(
    table: &MemoryTable,
    pending: &VecDeque<(CheckpointId, Vec<RecordBatch>)>,
) -> Result<Vec<RecordBatch>> {
    let now = table.snapshot()?;
    let later = pending.iter().flat_map(|(_, b)| b.iter());
    // Rows appended to a table without a key (a multiset) need no folding.
    let changes = later.clone().any(|b| changelog::ops(b).is_some());
    if !changes && table.key.is_none() {
        return Ok(now.into_iter().chain(later.cloned()).collect());
    }
    let mut fold = Fold::try_new(Arc::clone(&table.schema), table.key.clone())?;
    for b in now.iter().chain(later) {
        fold.apply(b)?;
    }
    Ok(vec![fold.table()?])
}
