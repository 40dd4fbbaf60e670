//! Top-N per key: `ROW_NUMBER() OVER (PARTITION BY k ORDER BY x) AS rn ...
//! WHERE rn <= N` (Flink's append-only and retractable ranks).
//!
//! Each partition keeps its rows ordered by the ORDER BY keys in Arrow's
//! row format and, among equal keys, by arrival (the earlier row ranks
//! first). Over an append-only input a row that cannot enter the top N is
//! never needed again, so the state is N rows per partition. Over an
//! updating input a retracted top row lets the next one in, so every live
//! row is kept (a retraction removes one equal row). After each batch every touched
//! partition's ranks are compared before and after: a rank whose row
//! changed emits `-U` (old) / `+U` (new), a rank that appeared `+I`, one
//! that went away `-D`. The output is the input's columns plus `rn`; its
//! upsert key is the partition key and `rn` (the partition key alone when
//! N = 1: deduplication keeping the last or best row).

mod checkpoint;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array, UInt64Array};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{OwnedRow, RowConverter};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use sluice_common::changelog::{self, RowKind};
use sluice_common::{Error, Result};

use crate::operator::{Operator, Output};
use crate::operators::expiry::{wall_clock, Expiry};
use crate::operators::ranked::{self, Ranked};
use crate::operators::sort::SortKey;

/// What a Top-N computes.
#[derive(Debug, Clone)]
pub struct TopNConfig {
    /// PARTITION BY keys (none: one partition).
    pub partition: Vec<Arc<dyn PhysicalExpr>>,
    /// ORDER BY keys.
    pub order: Vec<SortKey>,
    /// N: rows kept per partition.
    pub limit: usize,
    /// Output data schema: the input's columns, then `rn` (BIGINT
    /// UNSIGNED).
    pub schema: SchemaRef,
    /// Forget partitions not updated for this long
    /// (`table.exec.state.ttl`).
    pub ttl: Option<std::time::Duration>,
    /// The input is a changelog (rows may be retracted).
    pub retracts: bool,
}

/// See the module docs.
pub struct TopNOperator {
    cfg: TopNConfig,
    output: SchemaRef,
    groups: Option<Box<dyn GroupValues>>,
    tops: Vec<Ranked>,
    rows: RowConverter,
    order: RowConverter,
    seq: u64,
    ids: Vec<usize>,
    /// Bytes of the rows held (approximate).
    bytes: usize,
    expiry: Option<Expiry>,
}

impl TopNOperator {
    /// Over append-only batches of `input`.
    pub fn try_new(cfg: TopNConfig, input: &Schema) -> Result<Self> {
        let groups = if cfg.partition.is_empty() {
            None
        } else {
            let fields = cfg
                .partition
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    Ok(arrow::datatypes::Field::new(
                        format!("p{i}"),
                        e.data_type(input)?,
                        true,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            Some(new_group_values(
                Arc::new(Schema::new(fields)),
                &GroupOrdering::None,
            )?)
        };
        let data = changelog::data_schema(&Arc::new(input.clone()));
        let (rows, order) = ranked::converters(&data, &cfg.order)?;
        Ok(TopNOperator {
            expiry: cfg.ttl.map(|ttl| Expiry::new(ttl, wall_clock())),
            output: changelog::with_op_field(&cfg.schema),
            cfg,
            groups,
            tops: Vec::new(),
            rows,
            order,
            seq: 0,
            ids: Vec::new(),
            bytes: 0,
        })
    }

    /// Partitions and rows held.
    pub fn state_size(&self) -> (usize, usize) {
        (self.tops.len(), self.bytes)
    }

    /// Forget partitions idle for the TTL (no retraction, as in Flink).
    fn expire(&mut self) {
        let Some(expiry) = self.expiry.as_mut() else {
            return;
        };
        expiry.touch(&self.ids, self.tops.len());
        for g in expiry.expired() {
            for ((k, _), r) in std::mem::take(&mut self.tops[g]) {
                self.bytes -= ranked::entry_bytes(&k, r.as_ref());
            }
        }
    }

    fn intern(&mut self, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        match &mut self.groups {
            Some(g) => {
                let keys = self
                    .cfg
                    .partition
                    .iter()
                    .map(|k| k.evaluate(batch).and_then(|v| v.into_array(n)))
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                g.intern(&keys, &mut self.ids)?;
                self.tops.resize_with(g.len(), BTreeMap::new);
            }
            None => {
                self.ids.clear();
                self.ids.resize(n, 0);
                self.tops.resize_with(1, BTreeMap::new);
            }
        }
        Ok(())
    }
}

/// The rows to emit: (row, rank from 1, kind).
type Emits = Vec<(OwnedRow, u64, RowKind)>;

/// Changes of one partition between its `old` and `new` top `limit` rows.
fn rank_changes(old: &[(u64, OwnedRow)], new: &Ranked, limit: usize, out: &mut Emits) {
    let new: Vec<(u64, &OwnedRow)> = new.iter().take(limit).map(|((_, s), r)| (*s, r)).collect();
    for r in 0..old.len().max(new.len()) {
        let rank = r as u64 + 1;
        match (old.get(r), new.get(r)) {
            (Some((a, _)), Some((b, _))) if a == b => {}
            (Some((_, o)), Some((_, n))) => {
                out.push((o.clone(), rank, RowKind::UpdateBefore));
                out.push(((*n).clone(), rank, RowKind::UpdateAfter));
            }
            (Some((_, o)), None) => out.push((o.clone(), rank, RowKind::Delete)),
            (None, Some((_, n))) => out.push(((*n).clone(), rank, RowKind::Insert)),
            (None, None) => {}
        }
    }
}

impl Operator for TopNOperator {
    fn name(&self) -> &'static str {
        "TopN"
    }

    fn describe(&self) -> String {
        let part: Vec<String> = self.cfg.partition.iter().map(|e| e.to_string()).collect();
        let order: Vec<String> = self
            .cfg
            .order
            .iter()
            .map(|k| {
                let dir = if k.options.descending { " DESC" } else { "" };
                format!("{}{dir}", k.expr)
            })
            .collect();
        format!(
            "TopN: {} per [{}] by [{}]",
            self.cfg.limit,
            part.join(", "),
            order.join(", ")
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.output)
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        Some(TopNOperator::state_size(self))
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        self.snapshot_tops()
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        self.restore_tops(states, keys)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let signs: Option<Vec<i64>> = changelog::ops(&batch).map(|o| {
            o.values()
                .iter()
                .map(|&c| changelog::sign_of_code(c))
                .collect()
        });
        if signs.is_some() != self.cfg.retracts {
            return Err(Error::internal("Top-N input kind differs from its plan"));
        }
        self.intern(&batch)?;
        let keys = self
            .cfg
            .order
            .iter()
            .map(|k| k.expr.evaluate(&batch).and_then(|v| v.into_array(n)))
            .collect::<datafusion::error::Result<Vec<ArrayRef>>>()?;
        let keys = self.order.convert_columns(&keys)?;
        let data = changelog::data(&batch)?;
        let rows = self.rows.convert_columns(data.columns())?;
        // Over a changelog every live row is kept.
        let keep = if self.cfg.retracts {
            usize::MAX
        } else {
            self.cfg.limit
        };
        // Each touched partition's ranks before the batch.
        let mut before: Vec<(usize, Vec<(u64, OwnedRow)>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for i in 0..n {
            let g = self.ids[i];
            let top = &mut self.tops[g];
            let key = keys.row(i);
            let retract = signs.as_ref().is_some_and(|s| s[i] < 0);
            if !retract && !ranked::fits(top, keep, key.as_ref()) {
                continue;
            }
            if seen.insert(g) {
                let old = top
                    .iter()
                    .take(self.cfg.limit)
                    .map(|((_, s), r)| (*s, r.clone()))
                    .collect();
                before.push((g, old));
            }
            let delta = if retract {
                ranked::remove(top, key.as_ref(), rows.row(i))
            } else {
                self.seq += 1;
                ranked::insert(top, keep, key.as_ref(), self.seq, rows.row(i))
            };
            self.bytes = self.bytes.saturating_add_signed(delta);
        }
        let mut emits = Emits::new();
        for (g, old) in &before {
            rank_changes(old, &self.tops[*g], self.cfg.limit, &mut emits);
        }
        self.expire();
        if emits.is_empty() {
            return Ok(());
        }
        let mut cols = self
            .rows
            .convert_rows(emits.iter().map(|(r, _, _)| r.row()))?;
        cols.push(Arc::new(UInt64Array::from_iter_values(
            emits.iter().map(|e| e.1),
        )));
        let data = crate::operators::window_aggregate::batch_of(&self.cfg.schema, cols)?;
        let ops: Int8Array = emits.iter().map(|e| e.2.code()).collect();
        out.push(changelog::with_ops(
            &self.output,
            data.columns().to_vec(),
            ops,
        )?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::batch_i64;
    use arrow::compute::SortOptions;
    use arrow::datatypes::{DataType, Field};
    use arrow::util::display::array_value_to_string;
    use datafusion::physical_expr::expressions::col;

    fn top2(input: &SchemaRef) -> TopNOperator {
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("rn", DataType::UInt64, false));
        let cfg = TopNConfig {
            partition: vec![col("k", input).expect("k")],
            order: vec![SortKey {
                expr: col("v", input).expect("v"),
                options: SortOptions {
                    descending: true,
                    nulls_first: false,
                },
            }],
            limit: 2,
            schema: Arc::new(Schema::new(fields)),
            ttl: None,
            retracts: false,
        };
        TopNOperator::try_new(cfg, input).expect("operator")
    }

    fn lines(out: &mut Output) -> Vec<String> {
        let mut v = Vec::new();
        for b in out.take_batches() {
            let ops = changelog::ops(&b).expect("changelog").clone();
            for i in 0..b.num_rows() {
                let cells: Vec<String> = (0..3)
                    .map(|c| array_value_to_string(b.column(c), i).expect("cell"))
                    .collect();
                let kind = RowKind::from_code(ops.value(i)).expect("kind");
                v.push(format!("{}[{}]", kind.short(), cells.join(", ")));
            }
        }
        v
    }

    #[test]
    fn ranks_shift_as_better_rows_arrive() {
        let b1 = batch_i64(&[("k", &[1, 1, 2]), ("v", &[5, 7, 1])]);
        let mut op = top2(&b1.schema());
        let mut out = Output::default();
        op.on_batch(0, b1, &mut out).expect("batch");
        assert_eq!(
            lines(&mut out),
            ["+I[1, 7, 1]", "+I[1, 5, 2]", "+I[2, 1, 1]"]
        );
        // 6 enters at rank 2 and pushes 5 out; 3 never enters.
        let b2 = batch_i64(&[("k", &[1, 1]), ("v", &[6, 3])]);
        op.on_batch(0, b2, &mut out).expect("batch");
        assert_eq!(lines(&mut out), ["-U[1, 5, 2]", "+U[1, 6, 2]"]);
        assert_eq!(op.state_size().0, 2);
    }

    /// Restored at any parallelism, each partition keeps its ranks (and
    /// the arrival order among equal keys).
    #[test]
    fn restores_every_partitions_ranks() {
        use crate::operators::test_util::{assert_restores, Feed};
        let b = |k: &[i64], v: &[i64]| batch_i64(&[("k", k), ("v", v)]);
        let s = b(&[], &[]).schema();
        let before = [Feed::Rows(0, b(&[1, 1, 2, 3, 3, 3], &[5, 7, 1, 4, 4, 2]))];
        let after = [
            Feed::Rows(0, b(&[1, 2, 3, 4], &[6, 0, 4, 9])),
            Feed::Rows(0, b(&[1, 3, 4], &[8, 9, 1])),
        ];
        let route = |_: usize, batch: &RecordBatch, range: crate::checkpoint::KeyRange| {
            range
                .filter_by(batch, &[Arc::clone(batch.column(0))])
                .expect("routes")
        };
        assert_restores(&|| Box::new(top2(&s)), &before, &after, &route);
    }
}
