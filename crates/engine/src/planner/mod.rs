//! From DataFusion's optimized `LogicalPlan` to a dataflow of streaming
//! operators.
//!
//! The plan is walked bottom-up. Filters and projections are not turned into
//! nodes at once: they collect as pending [`Step`]s and are fused into one
//! `Stateless` task when a stateful node (or the root) consumes them. Each
//! planned piece tracks which columns are *time attributes* (an event-time
//! column with a watermark, or a window's `window_time`) and which are window
//! columns, so window aggregates and window TVFs can be checked and planned.

mod aggregate;
mod join;
pub(crate) mod late;
mod lineage;
mod scan;
mod shared;
mod temporal;
mod time_join;
mod top_n;
mod union;
mod updating;
mod watermark;

use watermark::WatermarkStep;

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::logical_plan::{FetchType, SkipType};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_exec::graph::StreamNode;
use sluice_exec::operators::changelog::FoldOperator;
use sluice_exec::operators::limit::LimitOperator;
use sluice_exec::operators::proctime::ProcTime;
use sluice_exec::operators::stateless::{StatelessOperator, Step};
use sluice_exec::operators::window_aggregate::WindowRole;
use sluice_exec::operators::window_assign::WindowAssignOperator;
use sluice_sql::temporal::VersionedNode;
use sluice_sql::window::{WindowKind, WindowSpec, WindowTvfNode};

mod over;
mod proctime;
mod sort;

/// A window column's origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowCol {
    pub role: WindowRole,
    pub spec: WindowSpec,
    /// The TVF assigns panes, not windows (HOP or CUMULATE under a window
    /// aggregate).
    pub panes: bool,
}

/// A planned piece of the dataflow.
pub(crate) struct Planned {
    node: StreamNode,
    steps: Vec<Step>,
    /// Logical schema of this piece's output.
    pub schema: DFSchemaRef,
    /// Per output column: is it a time attribute?
    pub rowtime: Vec<bool>,
    /// Per output column: window column origin.
    pub windows: Vec<Option<WindowCol>>,
    /// Every source under it is bounded.
    pub bounded: bool,
    /// Append-only or updating (and its upsert key).
    pub changelog: ChangelogMode,
}

impl Planned {
    /// The input column `e` names, when it is a time attribute.
    pub(crate) fn rowtime_column(&self, e: &Expr) -> Option<usize> {
        match e {
            Expr::Column(c) => self
                .schema
                .index_of_column(c)
                .ok()
                .filter(|&i| self.rowtime[i]),
            _ => None,
        }
    }

    /// Fuse pending steps into a node.
    pub fn materialize(self) -> StreamNode {
        let key = self.upsert_key_names();
        if self.steps.is_empty() {
            return self.node.with_upsert_key(key);
        }
        let input_schema = self.node.schema();
        let op = StatelessOperator::new(self.steps, input_schema);
        self.node.then(Arc::new(op)).with_upsert_key(key)
    }

    /// This piece with its node's upsert key named for EXPLAIN (for a node
    /// that makes an updating result; steps fused later name theirs in
    /// [`Planned::materialize`]).
    pub fn with_named_key(mut self) -> Self {
        let key = self.upsert_key_names();
        self.node = self.node.with_upsert_key(key);
        self
    }

    /// Names of the upsert key columns, if the output has a key.
    pub fn upsert_key_names(&self) -> Option<Vec<String>> {
        self.changelog.upsert_key().map(|k| {
            k.iter()
                .map(|&i| self.schema.field(i).name().clone())
                .collect()
        })
    }

    fn arrow_schema(&self) -> SchemaRef {
        Arc::clone(self.schema.inner())
    }

    /// The Arrow schema of the batches this piece emits (the data columns,
    /// then the row kind when updating).
    pub fn materialize_schema(&self) -> SchemaRef {
        if self.changelog.is_updating() {
            sluice_common::changelog::with_op_field(self.schema.inner())
        } else {
            self.arrow_schema()
        }
    }
}

/// A planned query: its tree and what its output is.
pub struct RootPlan {
    /// The operator tree.
    pub node: StreamNode,
    /// Every source is bounded.
    pub bounded: bool,
    /// Append-only or updating.
    pub changelog: ChangelogMode,
    /// Names of the upsert key columns.
    pub key_names: Option<Vec<String>>,
    /// The result's time: its first time attribute, else its first window
    /// end (or start) column.
    pub time_column: Option<usize>,
}

/// Plans one query.
pub struct StreamPlanner<'a> {
    state: &'a SessionState,
    /// HOP TVFs whose consumer aggregates panes (by node address).
    pane_tvfs: HashSet<usize>,
    /// Instances of keyed operators.
    pub(crate) parallelism: usize,
    /// How long updating operators keep an idle key (`None`: forever).
    pub(crate) state_ttl: Option<std::time::Duration>,
    /// Mini-batches before updating aggregates: latency and rows.
    pub(crate) mini_batch: Option<(std::time::Duration, usize)>,
    /// When window aggregates emit besides when a window closes.
    pub(crate) emit: Option<sluice_exec::operators::window_aggregate::EmitStrategy>,
    /// `table.exec.source.idle-timeout`, for Kafka tables without their own.
    pub(crate) source_idle: Option<std::time::Duration>,
    /// Scans are for a streaming job: running materialized views are
    /// followed (their changes read), not read as they are.
    pub(crate) follow_views: bool,
    /// Tables scanned more than once, read once (by table name).
    pub(crate) shared: std::cell::RefCell<std::collections::HashMap<String, shared::SharedScan>>,
    /// Processes running the query together (`sluice.workers`): edges into
    /// keyed and global operators then cross them even at parallelism 1.
    pub(crate) workers: usize,
}

impl<'a> StreamPlanner<'a> {
    /// A planner using `state` for expression planning; keyed operators
    /// get `parallelism` instances.
    pub fn new(state: &'a SessionState, plan: &LogicalPlan, parallelism: usize) -> Self {
        StreamPlanner {
            state,
            pane_tvfs: lineage::pane_candidates(plan),
            shared: std::cell::RefCell::new(shared::find(plan)),
            parallelism: parallelism.max(1),
            state_ttl: None,
            mini_batch: None,
            emit: None,
            source_idle: None,
            follow_views: false,
            workers: 1,
        }
    }

    /// The query runs in `workers` processes ([`sluice_exec::workers`]).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// How rows reach an operator with `instances` instances keyed by
    /// `keys`: hashed when it has several instances or the job several
    /// workers; without keys, to its one instance of the whole job.
    pub(crate) fn exchange(
        &self,
        keys: Vec<Arc<dyn PhysicalExpr>>,
        instances: usize,
    ) -> sluice_exec::exchange::Exchange {
        use sluice_exec::exchange::Exchange;
        let across = self.workers > 1;
        if across && keys.is_empty() {
            Exchange::Global
        } else if across || instances > 1 {
            Exchange::Hash(keys)
        } else {
            Exchange::Forward
        }
    }

    /// Put `op`, which reads every row of the query (ORDER BY, LIMIT), over
    /// `input`: in one instance of the whole job.
    pub(crate) fn wrap_global(
        &self,
        input: Planned,
        op: Box<dyn sluice_exec::operator::Operator>,
    ) -> Planned {
        let mut planned = self.wrap(input, op);
        if self.workers > 1 {
            planned.node.exchanges = vec![sluice_exec::exchange::Exchange::Global];
        }
        planned
    }

    /// Follow running materialized views (planning a job, not a SELECT).
    pub fn with_follow_views(mut self, follow: bool) -> Self {
        self.follow_views = follow;
        self
    }

    /// Kafka tables without `scan.watermark.idle-timeout` use `idle`
    /// (`table.exec.source.idle-timeout`).
    pub fn with_source_idle_timeout(mut self, idle: Option<std::time::Duration>) -> Self {
        self.source_idle = idle;
        self
    }

    /// Window aggregates emit early and late results by `emit`
    /// (`table.exec.emit.*`).
    pub fn with_emit_strategy(
        mut self,
        emit: Option<sluice_exec::operators::window_aggregate::EmitStrategy>,
    ) -> Self {
        self.emit = emit;
        self
    }

    /// Updating aggregates read their input in mini-batches of up to this
    /// latency and row count (`table.exec.mini-batch.*`).
    pub fn with_mini_batch(mut self, mini_batch: Option<(std::time::Duration, usize)>) -> Self {
        self.mini_batch = mini_batch;
        self
    }

    /// Updating operators forget keys idle for `ttl`
    /// (`table.exec.state.ttl`).
    pub fn with_state_ttl(mut self, ttl: Option<std::time::Duration>) -> Self {
        self.state_ttl = ttl;
        self
    }

    pub(crate) fn physical(&self, e: &Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(create_physical_expr(
            e,
            schema,
            self.state.execution_props(),
            &PhysicalPlanningContext::default(),
        )?)
    }

    /// [`StreamPlanner::physical`] of each of `exprs`.
    pub(crate) fn physical_all(
        &self,
        exprs: &[Expr],
        schema: &DFSchema,
    ) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
        exprs.iter().map(|e| self.physical(e, schema)).collect()
    }

    /// Plan `plan` into a node tree.
    pub fn plan_root(&self, plan: &LogicalPlan) -> Result<RootPlan> {
        let p = self.plan(plan)?;
        // The shared reads are held by their readers only: the last
        // launched launches the read.
        self.shared.borrow_mut().clear();
        let window = |role: Option<WindowRole>| {
            p.windows
                .iter()
                .position(|w| w.is_some_and(|w| role.is_none_or(|r| w.role == r)))
        };
        let time_column = p
            .rowtime
            .iter()
            .position(|&r| r)
            .or_else(|| window(Some(WindowRole::End)))
            .or_else(|| window(None));
        Ok(RootPlan {
            time_column,
            bounded: p.bounded,
            changelog: p.changelog.clone(),
            key_names: p.upsert_key_names(),
            node: p.materialize(),
        })
    }

    pub(crate) fn plan(&self, plan: &LogicalPlan) -> Result<Planned> {
        match plan {
            LogicalPlan::TableScan(scan) => scan::plan_scan(self, scan),
            LogicalPlan::Values(values) => scan::plan_values(self, values),
            LogicalPlan::EmptyRelation(e) => scan::plan_empty(e.produce_one_row, &e.schema),
            LogicalPlan::Projection(p) => {
                let mut input = self.plan(&p.input)?;
                let mut rowtime = Vec::with_capacity(p.expr.len());
                let mut windows = Vec::with_capacity(p.expr.len());
                let mut sources = Vec::with_capacity(p.expr.len());
                for e in &p.expr {
                    let src = match e.clone().unalias() {
                        Expr::Column(c) => input.schema.index_of_column(&c).ok(),
                        _ => None,
                    };
                    rowtime.push(src.is_some_and(|i| input.rowtime[i]));
                    windows.push(src.and_then(|i| input.windows[i]));
                    sources.push(src);
                }
                input.changelog = project_changelog(&input.changelog, &sources);
                if watermark::calls_current_watermark(&p.expr) {
                    let step = WatermarkStep::Project(&p.expr, Arc::clone(p.schema.inner()));
                    input = watermark::plan_step(self, input, step)?;
                } else {
                    let exprs = p
                        .expr
                        .iter()
                        .map(|e| self.physical(e, &input.schema))
                        .collect::<Result<Vec<_>>>()?;
                    input
                        .steps
                        .push(Step::Project(exprs, Arc::clone(p.schema.inner())));
                }
                input.schema = Arc::clone(&p.schema);
                input.rowtime = rowtime;
                input.windows = windows;
                Ok(input)
            }
            LogicalPlan::Filter(f) => {
                if let LogicalPlan::Window(w) = f.input.as_ref() {
                    if top_n::is_row_number(w) && top_n::is_rank_bound(w, &f.predicate) {
                        return top_n::plan_top_n(self, w, &f.predicate);
                    }
                }
                if let Some(plan) = top_n::normalize(f)? {
                    return self.plan(&plan);
                }
                let mut input = self.plan(&f.input)?;
                if watermark::calls_current_watermark([&f.predicate]) {
                    return watermark::plan_step(self, input, WatermarkStep::Filter(&f.predicate));
                }
                let pred = self.physical(&f.predicate, &input.schema)?;
                input.steps.push(Step::Filter(pred));
                Ok(input)
            }
            LogicalPlan::SubqueryAlias(a) => {
                let mut input = self.plan(&a.input)?;
                input.schema = Arc::clone(&a.schema);
                Ok(input)
            }
            LogicalPlan::Extension(ext) => {
                if let Some(tvf) = ext.node.as_any().downcast_ref::<WindowTvfNode>() {
                    return self.plan_window_tvf(tvf);
                }
                // A temporal join plans its versioned side itself.
                if ext.node.as_any().is::<VersionedNode>() {
                    return Err(Error::plan(
                        "FOR SYSTEM_TIME AS OF is the right side of a temporal join \
                         (stream JOIN table FOR SYSTEM_TIME AS OF stream.time ON ...)",
                    )
                    .near("SYSTEM_TIME"));
                }
                Err(Error::internal(format!(
                    "unknown plan node {}",
                    ext.node.name()
                )))
            }
            LogicalPlan::Aggregate(agg) => aggregate::plan_aggregate(self, agg),
            LogicalPlan::Union(u) => union::plan_union(self, u),
            LogicalPlan::Limit(limit) => {
                let input = self.plan(&limit.input)?;
                let input = self.folded(input, "LIMIT")?;
                let skip = match limit.get_skip_type()? {
                    SkipType::Literal(n) => n,
                    SkipType::UnsupportedExpr => {
                        return Err(Error::plan("OFFSET must be a constant").near("OFFSET"))
                    }
                };
                let fetch = match limit.get_fetch_type()? {
                    FetchType::Literal(n) => n,
                    FetchType::UnsupportedExpr => {
                        return Err(Error::plan("LIMIT must be a constant").near("LIMIT"))
                    }
                };
                let op = LimitOperator::new(input.arrow_schema(), skip, fetch);
                Ok(self.wrap_global(input, Box::new(op)))
            }
            LogicalPlan::Sort(s) => sort::plan_sort(self, s),
            LogicalPlan::Distinct(_) => Err(Error::plan(
                "SELECT DISTINCT on a stream is an updating result, which is not supported yet; \
                 group by a window (TUMBLE/HOP) instead",
            )
            .near("DISTINCT")),
            LogicalPlan::Join(j) => join::plan_join(self, j),
            LogicalPlan::Window(w) if top_n::is_row_number(w) => Err(Error::plan(
                "ROW_NUMBER() on a stream is a Top-N: filter it as `WHERE rn <= N` (or `rn < N`, \
                 `rn = 1`) with a constant N",
            )
            .near("ROW_NUMBER")),
            LogicalPlan::Window(w) => over::plan_over(self, w),
            other => Err(Error::plan(format!(
                "{} is not supported in a streaming query",
                other.display()
            ))),
        }
    }

    /// Put `op` over `input` keeping its column annotations.
    pub(crate) fn wrap(
        &self,
        input: Planned,
        op: Box<dyn sluice_exec::operator::Operator>,
    ) -> Planned {
        let schema = Arc::clone(&input.schema);
        let rowtime = input.rowtime.clone();
        let windows = input.windows.clone();
        let bounded = input.bounded;
        let changelog = if sluice_common::changelog::is_changelog(&op.output_schema()) {
            input.changelog.clone()
        } else {
            ChangelogMode::AppendOnly
        };
        Planned {
            node: StreamNode::operator(op, vec![input.materialize()]),
            steps: vec![],
            schema,
            rowtime,
            windows,
            bounded,
            changelog,
        }
    }

    /// An updating input's final table, append-only, for an operator that
    /// reads whole results (ORDER BY, LIMIT): bounded inputs only.
    pub(crate) fn folded(&self, input: Planned, what: &str) -> Result<Planned> {
        if !input.changelog.is_updating() {
            return Ok(input);
        }
        if !input.bounded {
            return Err(Error::plan(format!(
                "{what} over an updating result of an unbounded input is not supported (for the \
                 top rows per key use ROW_NUMBER() OVER (PARTITION BY .. ORDER BY ..) <= N)"
            ))
            .near(what.split_whitespace().next().unwrap_or(what)));
        }
        let key = input.changelog.upsert_key().map(<[usize]>::to_vec);
        let op = FoldOperator::try_new(&input.materialize_schema(), key)?;
        Ok(self.wrap_global(input, Box::new(op)))
    }

    fn plan_window_tvf(&self, tvf: &WindowTvfNode) -> Result<Planned> {
        let mut input = self.plan(&tvf.input)?;
        // A window over processing time: the clock becomes the time and
        // its watermark, set just before the window.
        if !input.changelog.is_updating()
            && !input.rowtime[tvf.time_index]
            && proctime::is_proctime(&tvf.input, &tvf.time_column.name)
        {
            let op = ProcTime::try_new(tvf.time_index, input.arrow_schema())?;
            input = self.wrap(input, Box::new(op));
            input.rowtime[tvf.time_index] = true;
        }
        if input.changelog.is_updating() {
            let name = tvf.spec.kind.name();
            return Err(Error::plan(format!(
                "a window table function ({name}) needs an append-only input, but its input is \
                 an updating result (rows change after they were emitted)"
            ))
            .near(name));
        }
        if !input.rowtime[tvf.time_index] {
            return Err(Error::plan(format!(
                "cannot window on column '{}': it is not an event-time column. Declare it in \
                 CREATE TABLE with `WATERMARK FOR {} AS {} - INTERVAL '5' SECOND` (or window on \
                 the window_time of an inner window)",
                tvf.time_column.name, tvf.time_column.name, tvf.time_column.name
            ))
            .near_any(vec![
                format!("DESCRIPTOR {}", tvf.time_column.name),
                tvf.time_column.name.clone(),
            ]));
        }
        let spec = tvf.spec;
        // An emit strategy keeps each window's own state (no panes).
        let panes = self
            .pane_tvfs
            .contains(&(tvf as *const WindowTvfNode as usize))
            && (self.emit.is_none() || spec.kind == WindowKind::Session);
        if spec.kind == WindowKind::Session && !panes {
            let keys = if tvf.partition.is_empty() {
                String::new()
            } else {
                format!(
                    " and exactly its PARTITION BY columns ({})",
                    tvf.partition.join(", ")
                )
            };
            return Err(Error::plan(format!(
                "a SESSION window must be aggregated directly: GROUP BY window_start, \
                 window_end{keys}, with aggregates over the input's own columns"
            ))
            .near("SESSION"));
        }
        // In pane mode rows get their pane (a tumble of the pane length);
        // under a SESSION aggregate, their own window (merged there).
        let assign_spec = if spec.kind == WindowKind::Session {
            spec
        } else if panes {
            WindowSpec {
                kind: WindowKind::Tumble,
                size: spec.pane(),
                slide: spec.pane(),
                offset: spec.offset,
            }
        } else {
            spec
        };
        let n_in = input.schema.fields().len();
        let schema = tvf.schema().clone();
        let mut rowtime = input.rowtime.clone();
        rowtime.extend([false, false, true]);
        let mut windows = input.windows.clone();
        for role in [WindowRole::Start, WindowRole::End, WindowRole::Time] {
            windows.push(Some(WindowCol { role, spec, panes }));
        }
        debug_assert_eq!(windows.len(), n_in + 3);
        let bounded = input.bounded;
        let op = WindowAssignOperator::new(assign_spec, tvf.time_index, Arc::clone(schema.inner()));
        Ok(Planned {
            node: input.materialize().then(Arc::new(op)),
            steps: vec![],
            schema,
            rowtime,
            windows,
            bounded,
            changelog: ChangelogMode::AppendOnly,
        })
    }
}

/// The changelog mode after a projection whose output column `i` is input
/// column `sources[i]` (when a plain column): the upsert key survives when
/// all its columns pass through.
pub(crate) fn project_changelog(mode: &ChangelogMode, sources: &[Option<usize>]) -> ChangelogMode {
    match mode {
        ChangelogMode::AppendOnly => ChangelogMode::AppendOnly,
        ChangelogMode::Updating { upsert_key } => {
            let key = upsert_key.as_ref().and_then(|k| {
                k.iter()
                    .map(|c| sources.iter().position(|s| *s == Some(*c)))
                    .collect::<Option<Vec<usize>>>()
            });
            ChangelogMode::Updating { upsert_key: key }
        }
    }
}

use datafusion::logical_expr::UserDefinedLogicalNodeCore;
