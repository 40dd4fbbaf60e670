//! Window aggregation that emits each window once, when the watermark passes
//! its end, and frees its state then.
//!
//! State is kept per *pane* with DataFusion's vectorised [`GroupValues`] and
//! [`GroupsAccumulator`]s:
//! * TUMBLE (and HOP whose rows were expanded per window): a pane is a window;
//!   closing it evaluates the accumulators directly.
//! * HOP in pane mode: panes are `gcd(size, slide)` long and hold partial
//!   states; when a pane closes its partial state is extracted, and when a
//!   window closes the partials of its panes are merged. No row is copied
//!   into several windows.
//!
//! Lateness is Flink's rule, per window: a window `[start, end)` fires when
//! the watermark reaches `end - 1` (a watermark `W` says no row with event
//! time `<= W` follows). A row is dropped (and counted as late) only when
//! every window holding it has fired. In pane mode a row whose pane has
//! closed while some window holding it has not fired yet is added to that
//! closed pane, so the windows still to fire count it and those that fired
//! do not (Flink's `SliceSharedWindowAggProcessor`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::logical_expr::GroupsAccumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{GroupsAccumulatorAdapter, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use sluice_common::window::{WindowKind, WindowSpec};
use sluice_common::{Error, Result, Watermark};

use crate::operator::{Operator, Output};
use crate::time::to_millis;

mod checkpoint;
mod emit;
mod fire;
mod late;

pub use emit::{EmitStrategy, EmitWindowAggregate};

pub(crate) use late::fired;
use late::{pick_rows, Fate};

/// Which window column a group key or the window input column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowRole {
    /// `window_start`.
    Start,
    /// `window_end`.
    End,
    /// `window_time` (= end - 1 ms).
    Time,
}

impl std::fmt::Display for WindowRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WindowRole::Start => "window_start",
            WindowRole::End => "window_end",
            WindowRole::Time => "window_time",
        })
    }
}

/// One GROUP BY key.
#[derive(Debug, Clone)]
pub enum GroupKey {
    /// A window column, computed from the window being emitted.
    Window(WindowRole),
    /// Any other key, evaluated on the input rows.
    Expr(Arc<dyn PhysicalExpr>),
}

/// One aggregate call with its optional `FILTER (WHERE ...)`.
#[derive(Debug, Clone)]
pub struct AggregateCall {
    /// The aggregate.
    pub expr: Arc<AggregateFunctionExpr>,
    /// Its filter.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
}

/// How the operator reads windows from its input.
#[derive(Debug, Clone)]
pub struct WindowAggConfig {
    /// The window shape.
    pub spec: WindowSpec,
    /// Pane mode (HOP without expansion): the input's window column holds
    /// pane starts, not window starts.
    pub panes: bool,
    /// Input column holding the window (or pane) start/end/time.
    pub window_column: usize,
    /// Which one it holds.
    pub window_role: WindowRole,
    /// GROUP BY keys, in output order.
    pub keys: Vec<GroupKey>,
    /// Aggregates, in output order after the keys.
    pub aggregates: Vec<AggregateCall>,
    /// Output schema: keys then aggregates.
    pub schema: SchemaRef,
    /// Rows, or partial states to merge.
    pub input: AggInput,
}

/// What a window aggregate's input rows are.
#[derive(Debug, Clone, Default)]
pub enum AggInput {
    /// Rows to aggregate.
    #[default]
    Rows,
    /// Partial states made by a `PartialAggregate` (see
    /// [`super::partial_aggregate`]): the pane start in the window column,
    /// the keys, each aggregate's state columns at `states[i]` and the
    /// number of input rows each partial row stands for at `rows` (so late
    /// rows are counted as rows).
    Partials {
        /// State columns of each aggregate.
        states: Vec<std::ops::Range<usize>>,
        /// The row-count column.
        rows: usize,
    },
}

impl WindowAggConfig {
    /// The keys that are not window columns (what instances are hashed by).
    pub fn key_exprs(&self) -> Vec<Arc<dyn PhysicalExpr>> {
        self.keys
            .iter()
            .filter_map(|k| match k {
                GroupKey::Expr(e) => Some(Arc::clone(e)),
                GroupKey::Window(_) => None,
            })
            .collect()
    }

    /// The keys as EXPLAIN shows them.
    pub(crate) fn describe_keys(&self) -> String {
        describe_keys(&self.keys)
    }
}

/// GROUP BY keys as EXPLAIN shows them.
pub(crate) fn describe_keys(keys: &[GroupKey]) -> String {
    let keys: Vec<String> = keys
        .iter()
        .map(|k| match k {
            GroupKey::Window(r) => r.to_string(),
            GroupKey::Expr(e) => e.to_string(),
        })
        .collect();
    keys.join(", ")
}

/// Aggregate calls as EXPLAIN shows them.
pub(crate) fn describe_aggregates(aggregates: &[AggregateCall]) -> String {
    let names: Vec<String> = aggregates
        .iter()
        .map(|a| a.expr.name().to_string())
        .collect();
    names.join(", ")
}

/// A batch of `schema` from `cols`, casting columns that differ from the
/// planned types only in metadata (e.g. an accumulator's nullability).
pub(crate) fn batch_of(schema: &SchemaRef, cols: Vec<ArrayRef>) -> Result<RecordBatch> {
    let cols = cols
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                arrow::compute::cast(&c, f.data_type()).map_err(Error::from)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), cols)?)
}

struct PaneState {
    groups: Option<Box<dyn GroupValues>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    num_groups: usize,
    /// Input rows per group (kept only when making partials).
    rows: Vec<u64>,
}

/// Partial states of a closed pane (pane mode): the pane's rows when it
/// closed, then one part per batch of late rows added afterwards.
type ClosedPane = Vec<PanePart>;

/// Partial states of some rows of one pane.
struct PanePart {
    keys: Vec<ArrayRef>,
    states: Vec<Vec<ArrayRef>>,
    num_groups: usize,
}

/// One pane's partial aggregation, taken out to be sent downstream.
pub(crate) struct PartialPane {
    pub pane: i64,
    pub keys: Vec<ArrayRef>,
    pub states: Vec<Vec<ArrayRef>>,
    pub rows: Vec<u64>,
    pub num_groups: usize,
}

/// Keys, group count and accumulators of a pane taken out of the map.
type TakenPane = (Vec<ArrayRef>, usize, Vec<Box<dyn GroupsAccumulator>>);

/// See the module docs.
pub struct WindowAggregateOperator {
    cfg: WindowAggConfig,
    key_schema: SchemaRef,
    key_exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// Length of a pane: the window size, or gcd(size, slide) in pane
    /// mode; 0 for expanded CUMULATE windows, kept by their end.
    unit: i64,
    open: BTreeMap<i64, PaneState>,
    closed: BTreeMap<i64, ClosedPane>,
    watermark: i64,
    last_fired_end: i64,
    /// Count input rows per group (to make partials).
    count_rows: bool,
}

impl std::fmt::Debug for WindowAggregateOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowAggregateOperator")
            .field("spec", &self.cfg.spec)
            .field("open_panes", &self.open.len())
            .finish()
    }
}

impl WindowAggregateOperator {
    /// Build from a config; `input_schema` is the schema of input batches.
    pub fn try_new(cfg: WindowAggConfig, input_schema: &Schema) -> Result<Self> {
        let key_exprs = cfg.key_exprs();
        let key_fields = key_exprs
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let dt = e.data_type(input_schema)?;
                Ok(arrow::datatypes::Field::new(format!("k{i}"), dt, true))
            })
            .collect::<Result<Vec<_>>>()?;
        let unit = if cfg.panes {
            cfg.spec.pane()
        } else if cfg.spec.kind == WindowKind::Cumulate {
            // Expanded CUMULATE windows share their start: each is kept
            // under its end.
            if cfg.window_role == WindowRole::Start {
                return Err(Error::internal("a CUMULATE window read by its start"));
            }
            0
        } else {
            cfg.spec.size
        };
        Ok(WindowAggregateOperator {
            key_schema: Arc::new(Schema::new(key_fields)),
            key_exprs,
            unit,
            cfg,
            open: BTreeMap::new(),
            closed: BTreeMap::new(),
            watermark: i64::MIN,
            last_fired_end: i64::MIN,
            count_rows: false,
        })
    }

    /// An instance that counts rows per group, to make partials.
    pub(crate) fn counting_rows(mut self) -> Self {
        self.count_rows = true;
        self
    }

    /// Group-key interning for one pane or window (`None` without keys).
    fn new_groups(&self) -> Result<Option<Box<dyn GroupValues>>> {
        if self.key_exprs.is_empty() {
            return Ok(None);
        }
        Ok(Some(new_group_values(
            Arc::clone(&self.key_schema),
            &GroupOrdering::None,
        )?))
    }

    fn new_pane(&self) -> Result<PaneState> {
        Ok(PaneState {
            groups: self.new_groups()?,
            accumulators: self.new_accumulators()?,
            num_groups: 0,
            rows: vec![],
        })
    }

    fn new_accumulators(&self) -> Result<Vec<Box<dyn GroupsAccumulator>>> {
        new_accumulators(&self.cfg.aggregates)
    }

    /// Start of the pane holding each row (None for NULL window values).
    fn pane_starts(&self, batch: &RecordBatch) -> Result<arrow::array::Int64Array> {
        let v = to_millis(batch.column(self.cfg.window_column))?;
        let shift = match self.cfg.window_role {
            WindowRole::Start => 0,
            WindowRole::End => -self.unit,
            WindowRole::Time => 1 - self.unit,
        };
        Ok(arrow::compute::kernels::arity::unary(&v, |x: i64| {
            x + shift
        }))
    }

    /// Aggregate `batch` into the open panes.
    pub(crate) fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut open = std::mem::take(&mut self.open);
        let result = self.update_panes(&mut open, batch);
        self.open = open;
        result
    }

    /// Aggregate `batch` into the pane states of `target`, by pane.
    fn update_panes(
        &self,
        target: &mut BTreeMap<i64, PaneState>,
        batch: &RecordBatch,
    ) -> Result<()> {
        let n = batch.num_rows();
        let keys = eval_all(&self.key_exprs, batch)?;
        let mut args = Vec::with_capacity(self.cfg.aggregates.len());
        let mut filters = Vec::with_capacity(self.cfg.aggregates.len());
        let merge = matches!(self.cfg.input, AggInput::Partials { .. });
        for (i, a) in self.cfg.aggregates.iter().enumerate() {
            if let AggInput::Partials { states, .. } = &self.cfg.input {
                let range = states
                    .get(i)
                    .ok_or_else(|| Error::internal("missing partial state columns"))?;
                args.push(batch.columns()[range.clone()].to_vec());
                filters.push(None);
                continue;
            }
            args.push(eval_all(&a.expr.expressions(), batch)?);
            filters.push(match &a.filter {
                Some(f) => Some(f.evaluate(batch)?.into_array(n)?),
                None => None,
            });
        }
        let panes = self.pane_starts(batch)?;
        // Rows grouped by pane; a batch usually spans one or two panes.
        let mut by_pane: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for (i, p) in panes.iter().enumerate() {
            if let Some(p) = p {
                by_pane.entry(p).or_default().push(i as u32);
            }
        }
        let single = by_pane.len() == 1 && by_pane.values().all(|v| v.len() == n);
        for (pane, rows) in by_pane {
            let pick = |cols: &[ArrayRef]| -> Result<Vec<ArrayRef>> {
                if single {
                    return Ok(cols.to_vec());
                }
                let idx = UInt32Array::from(rows.clone());
                cols.iter()
                    .map(|c| take(c, &idx, None).map_err(Error::from))
                    .collect()
            };
            let pane_keys = pick(&keys)?;
            let pane_args = args.iter().map(|a| pick(a)).collect::<Result<Vec<_>>>()?;
            let pane_filters = filters
                .iter()
                .map(|f| match f {
                    Some(f) => pick(std::slice::from_ref(f)).map(|mut v| v.pop()),
                    None => Ok(None),
                })
                .collect::<Result<Vec<_>>>()?;
            let state = match target.entry(pane) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(self.new_pane()?),
            };
            let mut group_ids = Vec::new();
            match &mut state.groups {
                Some(g) => {
                    g.intern(&pane_keys, &mut group_ids)?;
                    state.num_groups = g.len();
                }
                None => {
                    group_ids = vec![0; rows.len()];
                    state.num_groups = 1;
                }
            }
            if self.count_rows {
                state.rows.resize(state.num_groups, 0);
                for &g in &group_ids {
                    state.rows[g] += 1;
                }
            }
            for (acc, (a, f)) in state
                .accumulators
                .iter_mut()
                .zip(pane_args.iter().zip(&pane_filters))
            {
                if merge {
                    acc.merge_batch(a, &group_ids, state.num_groups)?;
                } else {
                    let f = f.as_ref().map(|f| f.as_boolean());
                    acc.update_batch(a, &group_ids, f, state.num_groups)?;
                }
            }
        }
        Ok(())
    }
}

/// Fresh vectorised accumulators for `aggregates` (through
/// `GroupsAccumulatorAdapter` where an aggregate has no groups version).
pub(crate) fn new_accumulators(
    aggregates: &[AggregateCall],
) -> Result<Vec<Box<dyn GroupsAccumulator>>> {
    aggregates
        .iter()
        .map(|a| -> Result<Box<dyn GroupsAccumulator>> {
            if a.expr.groups_accumulator_supported() {
                Ok(a.expr.create_groups_accumulator()?)
            } else {
                let agg = Arc::clone(&a.expr);
                Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
                    agg.create_accumulator()
                })))
            }
        })
        .collect()
}

pub(crate) fn eval_all(
    exprs: &[Arc<dyn PhysicalExpr>],
    batch: &RecordBatch,
) -> Result<Vec<ArrayRef>> {
    exprs
        .iter()
        .map(|e| Ok(e.evaluate(batch)?.into_array(batch.num_rows())?))
        .collect()
}

impl Operator for WindowAggregateOperator {
    fn name(&self) -> &'static str {
        "WindowAggregate"
    }

    fn describe(&self) -> String {
        format!(
            "WindowAggregate: {}{} keys=[{}] aggs=[{}]",
            self.cfg.spec,
            if self.cfg.panes {
                format!(" panes={}", sluice_common::window::fmt_ms(self.unit))
            } else {
                String::new()
            },
            self.cfg.describe_keys(),
            describe_aggregates(&self.cfg.aggregates)
        )
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.cfg.schema)
    }

    fn snapshots(&self) -> crate::checkpoint::Snapshots {
        crate::checkpoint::Snapshots::Stateful
    }

    fn snapshot(&mut self) -> Result<crate::checkpoint::State> {
        self.snapshot_panes()
    }

    fn restore(
        &mut self,
        states: &[crate::checkpoint::State],
        keys: crate::checkpoint::KeyRange,
    ) -> Result<()> {
        self.restore_panes(states, keys)
    }

    fn on_batch(&mut self, _input: usize, batch: RecordBatch, out: &mut Output) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let fate = self.row_fates(&batch)?;
        if fate.iter().all(|f| *f == Fate::Open) {
            return self.update(&batch);
        }
        let late = self.rows_of(&batch, &fate, Fate::Dropped)?;
        if late > 0 {
            out.add_late(late);
        }
        let open = pick_rows(&batch, &fate, Fate::Open)?;
        if open.num_rows() > 0 {
            self.update(&open)?;
        }
        let kept = pick_rows(&batch, &fate, Fate::IntoClosedPane)?;
        if kept.num_rows() > 0 {
            self.add_to_closed_panes(&kept)?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: Watermark, out: &mut Output) -> Result<Option<Watermark>> {
        self.watermark = wm.0;
        self.close_panes(wm.0, out)?;
        if self.cfg.panes {
            self.fire_windows(wm.0, out)?;
        }
        Ok(Some(wm))
    }
}

#[cfg(test)]
mod tests;
