//! Window Top-N: `ROW_NUMBER() OVER (PARTITION BY window_start,
//! window_end, .. ORDER BY ..) ... WHERE rn <= N` over windowed rows
//! (Flink's window ranking). Each window keeps its partitions' best N rows;
//! when the watermark passes the window's end the ranked rows are emitted
//! once, append-only, and the window's state is freed. Rows of a window
//! that has fired are late: dropped and counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt64Array};
use arrow::datatypes::{Schema, SchemaRef, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::{Result, Watermark};

use crate::operator::{Operator, Output};
use crate::operators::ranked::{self, Ranked};
use crate::operators::sort::SortKey;

/// What a window Top-N computes.
#[derive(Debug, Clone)]
pub struct WindowTopNConfig {
    /// PARTITION BY keys (they include the window columns).
    pub partition: Vec<Arc<dyn PhysicalExpr>>,
    /// ORDER BY keys.
    pub order: Vec<SortKey>,
    /// N: rows kept per partition.
    pub limit: usize,
    /// Input column holding the window's end (or start, with `size`).
    pub window_column: usize,
    /// Added to the window column's value to get the window's end (0 when
    /// it is `window_end`, the window size when it is `window_start`).
    pub end_offset: i64,
    /// Output schema: the input's columns, then `rn`.
    pub schema: SchemaRef,
}

/// See the module docs.
pub struct WindowTopNOperator {
    cfg: WindowTopNConfig,
    rows: RowConverter,
    keys: RowConverter,
    order: RowConverter,
    /// Window end -> partition key (ordered, so output is deterministic) ->
    /// ranked rows.
    windows: BTreeMap<i64, BTreeMap<Box<[u8]>, Ranked>>,
    watermark: i64,
    seq: u64,
    held: usize,
}

impl WindowTopNOperator {
    /// Over batches of `input`.
    pub fn try_new(cfg: WindowTopNConfig, input: &Schema) -> Result<Self> {
        let (rows, order) = ranked::converters(input, &cfg.order)?;
        let keys = RowConverter::new(
            cfg.partition
                .iter()
                .map(|e| Ok(SortField::new(e.data_type(input)?)))
                .collect::<Result<Vec<_>>>()?,
        )?;
        Ok(WindowTopNOperator {
            cfg,
            rows,
            keys,
            order,
            windows: BTreeMap::new(),
            watermark: i64::MIN,
            seq: 0,
            held: 0,
        })
    }

    fn eval(exprs: &[&Arc<dyn PhysicalExpr>], batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let n = batch.num_rows();
        Ok(exprs
            .iter()
            .map(|e| e.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<datafusion::error::Result<Vec<_>>>()?)
    }
}

impl Operator for WindowTopNOperator {
    fn name(&self) -> &'static str {
        "WindowTopN"
    }

    fn describe(&self) -> String {
        let part: Vec<String> = self.cfg.partition.iter().map(|e| e.to_string()).collect();
        format!(
            "WindowTopN: {} per [{}], emitted when the window closes",
            self.cfg.limit,
            part.join(", ")
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.cfg.schema)
    }

    fn state_size(&self) -> Option<(usize, usize)> {
        let partitions = self.windows.values().map(BTreeMap::len).sum();
        Some((partitions, self.held))
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    /// Every kept row with its arrival number (its window and partition
    /// are in its columns), the watermark and the arrival counter.
    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        let input = Arc::new(Schema::new(
            self.cfg.schema.fields()[..self.cfg.schema.fields().len() - 1].to_vec(),
        ));
        let tops = self.windows.values().flat_map(BTreeMap::values);
        let rows = ranked::snapshot_rows(&input, &self.rows, tops)?;
        let meta = crate::checkpoint::state::scalars(&[
            ("watermark", self.watermark),
            ("seq", self.seq as i64),
        ]);
        Ok(crate::checkpoint::State::new()
            .with("rows", rows)
            .with("meta", meta))
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        use crate::checkpoint::state::scalar;
        for state in states {
            let meta = state.require("meta")?;
            self.watermark = self.watermark.max(scalar(meta, "watermark")?);
            self.seq = self.seq.max(scalar(meta, "seq")? as u64);
            let (data, seqs, _) = ranked::split_rows(state.require("rows")?)?;
            let part: Vec<_> = self.cfg.partition.iter().collect();
            let mask = keys.mask(&Self::eval(&part, &data)?, data.num_rows())?;
            let seqs: Vec<u64> = (0..mask.len())
                .filter(|&i| mask.value(i))
                .map(|i| seqs[i])
                .collect();
            let data = arrow::compute::filter_record_batch(&data, &mask)?;
            let part_keys = self.keys.convert_columns(&Self::eval(&part, &data)?)?;
            let order: Vec<_> = self.cfg.order.iter().map(|k| &k.expr).collect();
            let order = self.order.convert_columns(&Self::eval(&order, &data)?)?;
            let rows = self.rows.convert_columns(data.columns())?;
            let window = data.column(self.cfg.window_column);
            let window = window.as_primitive::<TimestampMillisecondType>();
            for (i, &seq) in seqs.iter().enumerate() {
                let end = window.value(i).saturating_add(self.cfg.end_offset);
                let top = self
                    .windows
                    .entry(end)
                    .or_default()
                    .entry(part_keys.row(i).as_ref().into())
                    .or_default();
                let key = order.row(i);
                let delta = ranked::insert(top, self.cfg.limit, key.as_ref(), seq, rows.row(i));
                self.held = self.held.saturating_add_signed(delta);
            }
        }
        Ok(())
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let part: Vec<_> = self.cfg.partition.iter().collect();
        let keys = self.keys.convert_columns(&Self::eval(&part, &batch)?)?;
        let order: Vec<_> = self.cfg.order.iter().map(|k| &k.expr).collect();
        let order = self.order.convert_columns(&Self::eval(&order, &batch)?)?;
        let rows = self.rows.convert_columns(batch.columns())?;
        let window = batch.column(self.cfg.window_column);
        let window = window.as_primitive::<TimestampMillisecondType>();
        let mut late = 0;
        for i in 0..n {
            if window.is_null(i) {
                late += 1;
                continue;
            }
            let end = window.value(i).saturating_add(self.cfg.end_offset);
            if end - 1 <= self.watermark {
                late += 1;
                continue;
            }
            let top = self
                .windows
                .entry(end)
                .or_default()
                .entry(keys.row(i).as_ref().into())
                .or_default();
            let key = order.row(i);
            if !ranked::fits(top, self.cfg.limit, key.as_ref()) {
                continue;
            }
            self.seq += 1;
            let delta = ranked::insert(top, self.cfg.limit, key.as_ref(), self.seq, rows.row(i));
            self.held = self.held.saturating_add_signed(delta);
        }
        out.add_late(late);
        Ok(())
    }

    fn on_watermark(&mut self, wm: Watermark, out: &mut Output) -> Result<Option<Watermark>> {
        self.watermark = wm.millis();
        while let Some(entry) = self.windows.first_entry() {
            if *entry.key() - 1 > self.watermark {
                break;
            }
            let partitions = entry.remove();
            let mut ranked: Vec<(OwnedRow, u64)> = Vec::new();
            for (_, top) in partitions {
                for (r, ((k, _), row)) in top.into_iter().enumerate() {
                    self.held -= ranked::entry_bytes(&k, row.as_ref());
                    ranked.push((row, r as u64 + 1));
                }
            }
            let mut cols = self
                .rows
                .convert_rows(ranked.iter().map(|(r, _)| r.row()))?;
            cols.push(Arc::new(UInt64Array::from_iter_values(
                ranked.iter().map(|r| r.1),
            )));
            out.push(crate::operators::window_aggregate::batch_of(
                &self.cfg.schema,
                cols,
            )?);
        }
        Ok(Some(wm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::{assert_restores, batch_ts, Feed};
    use arrow::compute::SortOptions;
    use arrow::datatypes::{DataType, Field};
    use datafusion::physical_expr::expressions::col;

    /// Open windows' ranked rows survive a restore at any parallelism and
    /// are emitted once, when their window closes.
    #[test]
    fn restores_open_windows_ranks() {
        // `ts` stands for window_end.
        let s = batch_ts(&[], &[], &[]).schema();
        let make = || -> Box<dyn Operator> {
            let mut fields: Vec<Field> = s.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.push(Field::new("rn", DataType::UInt64, false));
            let cfg = WindowTopNConfig {
                partition: vec![col("ts", &s).expect("ts"), col("k", &s).expect("k")],
                order: vec![SortKey {
                    expr: col("v", &s).expect("v"),
                    options: SortOptions {
                        descending: true,
                        nulls_first: false,
                    },
                }],
                limit: 2,
                window_column: 0,
                end_offset: 0,
                schema: Arc::new(Schema::new(fields)),
            };
            Box::new(WindowTopNOperator::try_new(cfg, &s).expect("operator"))
        };
        let before = [Feed::Rows(
            0,
            batch_ts(
                &[10_000, 10_000, 10_000, 20_000],
                &[1, 1, 2, 1],
                &[5, 7, 1, 3],
            ),
        )];
        let after = [
            Feed::Rows(
                0,
                batch_ts(&[10_000, 20_000, 20_000], &[1, 1, 2], &[6, 9, 4]),
            ),
            Feed::Watermark(9_999),
            Feed::Rows(0, batch_ts(&[20_000], &[2], &[8])),
            Feed::Watermark(i64::MAX),
        ];
        let route = |_: usize, b: &RecordBatch, range: crate::checkpoint::KeyRange| {
            let keys = [Arc::clone(b.column(0)), Arc::clone(b.column(1))];
            range.filter_by(b, &keys).expect("routes")
        };
        assert_restores(&make, &before, &after, &route);
    }
}
