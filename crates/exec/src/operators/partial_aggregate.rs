//! Local (first-phase) window aggregation, fused onto a source: each chunk
//! of rows is aggregated by pane and key on the thread that made it, and
//! leaves as one partial row per (pane, key) holding the aggregates' states
//! and how many rows they cover. The window aggregate downstream merges the
//! partials (`merge_batch`) instead of aggregating rows, so the shuffle and
//! the keyed instances see a fraction of the rows, and most of the work
//! runs on the decode workers.
//!
//! Within a chunk the watermark does not move (it advances after the
//! chunk), so a chunk's rows of one pane are all on time or all late, and
//! results — late rows included — are those of aggregating rows directly.

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, TimestampMillisecondArray, UInt64Array};
use arrow::compute::concat;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::window::WindowKind;
use sluice_common::{Error, Result};

use super::window_aggregate::{
    batch_of, AggInput, GroupKey, WindowAggConfig, WindowAggregateOperator, WindowRole,
};
use crate::row::RowFunction;

/// First phase of a window aggregate (see the module docs).
pub struct PartialAggregate {
    cfg: WindowAggConfig,
    input_schema: SchemaRef,
    schema: SchemaRef,
}

impl PartialAggregate {
    /// A first phase for `cfg` over rows of `input_schema`; returns it with
    /// the config of the second phase, which merges its output.
    pub fn split(cfg: WindowAggConfig, input_schema: SchemaRef) -> Result<(Self, WindowAggConfig)> {
        let mut fields = vec![Field::new(
            "pane",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        )];
        let mut final_keys = Vec::with_capacity(cfg.keys.len());
        for key in &cfg.keys {
            match key {
                GroupKey::Window(role) => final_keys.push(GroupKey::Window(*role)),
                GroupKey::Expr(e) => {
                    // Named after the column it copies, so plans read well.
                    let name = match e.downcast_ref::<Column>() {
                        Some(c) => c.name().to_string(),
                        None => format!("k{}", fields.len() - 1),
                    };
                    let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(&name, fields.len()));
                    fields.push(Field::new(name, e.data_type(&input_schema)?, true));
                    final_keys.push(GroupKey::Expr(column));
                }
            }
        }
        let mut states = Vec::with_capacity(cfg.aggregates.len());
        for (i, a) in cfg.aggregates.iter().enumerate() {
            let start = fields.len();
            for f in a.expr.state_fields()? {
                fields.push(Field::new(
                    format!("s{i}_{}", f.name()),
                    f.data_type().clone(),
                    true,
                ));
            }
            states.push(start..fields.len());
        }
        let rows = fields.len();
        fields.push(Field::new("rows", DataType::UInt64, false));
        let schema = Arc::new(Schema::new(fields));
        let second = WindowAggConfig {
            spec: cfg.spec,
            panes: cfg.panes,
            window_column: 0,
            // Column 0 holds each partial's pane: its start, or for
            // expanded CUMULATE windows (kept by their end) its end.
            window_role: if cfg.spec.kind == WindowKind::Cumulate && !cfg.panes {
                WindowRole::End
            } else {
                WindowRole::Start
            },
            keys: final_keys,
            aggregates: cfg
                .aggregates
                .iter()
                .map(|a| super::window_aggregate::AggregateCall {
                    expr: Arc::clone(&a.expr),
                    filter: None,
                })
                .collect(),
            schema: Arc::clone(&cfg.schema),
            input: AggInput::Partials { states, rows },
        };
        let first = PartialAggregate {
            cfg,
            input_schema,
            schema,
        };
        Ok((first, second))
    }
}

impl RowFunction for PartialAggregate {
    fn name(&self) -> &'static str {
        "PartialAggregate"
    }

    fn describe(&self) -> String {
        let aggs: Vec<&str> = self.cfg.aggregates.iter().map(|a| a.expr.name()).collect();
        format!(
            "PartialAggregate: {} per chunk keys=[{}] aggs=[{}]",
            self.cfg.spec,
            self.cfg.describe_keys(),
            aggs.join(", ")
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn apply(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let mut op =
            WindowAggregateOperator::try_new(self.cfg.clone(), &self.input_schema)?.counting_rows();
        let no_pane = batch.column(self.cfg.window_column).null_count() as u64;
        op.update(&batch)?;
        let mut parts: Vec<RecordBatch> = Vec::new();
        for p in op.take_partials()? {
            let n = p.num_groups;
            let mut cols: Vec<ArrayRef> =
                vec![Arc::new(TimestampMillisecondArray::from_value(p.pane, n))];
            cols.extend(p.keys);
            for s in p.states {
                cols.extend(s);
            }
            let mut rows = p.rows;
            rows.resize(n, 0);
            cols.push(Arc::new(UInt64Array::from(rows)));
            parts.push(batch_of(&self.schema, cols)?);
        }
        if no_pane > 0 {
            // Rows without event time: one row with no pane, counted late
            // downstream.
            let fields = self.schema.fields();
            let mut cols: Vec<ArrayRef> = fields[..fields.len() - 1]
                .iter()
                .map(|f| new_null_array(f.data_type(), 1))
                .collect();
            cols.push(Arc::new(UInt64Array::from(vec![no_pane])));
            parts.push(batch_of(&self.schema, cols)?);
        }
        match parts.len() {
            0 => Ok(RecordBatch::new_empty(Arc::clone(&self.schema))),
            1 => Ok(parts.remove(0)),
            _ => {
                let cols = (0..self.schema.fields().len())
                    .map(|i| {
                        let arrays: Vec<&dyn Array> =
                            parts.iter().map(|b| b.column(i).as_ref()).collect();
                        concat(&arrays).map_err(Error::from)
                    })
                    .collect::<Result<Vec<_>>>()?;
                batch_of(&self.schema, cols)
            }
        }
    }
}
