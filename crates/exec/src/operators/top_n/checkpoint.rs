//! Snapshot and restore of a Top-N: every kept row with its arrival number
//! (and, with a TTL, its partition's last update), and the arrival
//! counter. A restore keeps the partitions its instance owns.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;

use sluice_common::changelog;
use sluice_common::Result;

use super::TopNOperator;
use crate::checkpoint::state::{scalar, scalars};
use crate::checkpoint::{KeyRange, State};
use crate::operators::ranked::{self, snapshot_rows, split_rows};
use crate::operators::window_aggregate::eval_all;

impl TopNOperator {
    pub(super) fn snapshot_tops(&mut self) -> Result<State> {
        let data = changelog::data_schema(&self.output);
        let data = Arc::new(arrow::datatypes::Schema::new(
            data.fields()[..data.fields().len() - 1].to_vec(),
        ));
        let rows = snapshot_rows(&data, &self.rows, self.tops.iter())?;
        let mut state = State::new()
            .with("rows", rows)
            .with("meta", scalars(&[("seq", self.seq as i64)]));
        if let Some(e) = &self.expiry {
            let all: Vec<usize> = (0..self.tops.len()).collect();
            let at = e.last_updated(&all);
            let col: ArrayRef =
                Arc::new(Int64Array::from_iter_values(at.iter().map(|&t| t as i64)));
            let schema = arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
                "updated",
                arrow::datatypes::DataType::Int64,
                false,
            )]);
            state.add(
                "updated",
                RecordBatch::try_new(Arc::new(schema), vec![col])?,
            );
        }
        Ok(state)
    }

    pub(super) fn restore_tops(&mut self, states: &[State], keys: KeyRange) -> Result<()> {
        for state in states {
            self.seq = self.seq.max(scalar(state.require("meta")?, "seq")? as u64);
            let (data, seqs, parts) = split_rows(state.require("rows")?)?;
            let updated = state.get("updated").and_then(|b| {
                b.column(0)
                    .as_primitive_opt::<Int64Type>()
                    .map(|a| a.values().to_vec())
            });
            let partition = eval_all(&self.cfg.partition, &data)?;
            let mask = keys.mask(&partition, data.num_rows())?;
            let data = arrow::compute::filter_record_batch(&data, &mask)?;
            let owned: Vec<usize> = (0..mask.len()).filter(|&i| mask.value(i)).collect();
            if data.num_rows() == 0 {
                continue;
            }
            self.intern(&data)?;
            let order = self
                .cfg
                .order
                .iter()
                .map(|k| Ok(k.expr.evaluate(&data)?.into_array(data.num_rows())?))
                .collect::<Result<Vec<_>>>()?;
            let order = self.order.convert_columns(&order)?;
            let rows = self.rows.convert_columns(data.columns())?;
            for (i, &r) in owned.iter().enumerate() {
                let g = self.ids[i];
                let key = order.row(i);
                let delta = ranked::insert(
                    &mut self.tops[g],
                    usize::MAX,
                    key.as_ref(),
                    seqs[r],
                    rows.row(i),
                );
                self.bytes = self.bytes.saturating_add_signed(delta);
                if let (Some(e), Some(at)) = (&mut self.expiry, &updated) {
                    if let Some(&t) = at.get(parts[r] as usize) {
                        e.set_last_updated(g, t as u64, self.tops.len());
                    }
                }
            }
        }
        Ok(())
    }
}
