//! A session: catalog plus statement execution.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::catalog::TableProvider;
use datafusion::datasource::ViewTable;
use datafusion::execution::context::{SessionConfig, SessionContext, SessionState};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::logical_plan::dml::InsertOp;
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::optimizer::Optimizer;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Statement};
use sluice_common::{changelog, Error, Result};
use sluice_connectors::memory::MemoryStore;
use sluice_exec::graph::StreamGraph;
use sluice_exec::sink::Resume;
use sluice_exec::workers::Across;

use crate::checkpoints::JobCheckpointing;
use sluice_sql::legacy::rewrite_group_windows;
use sluice_sql::parser::{ident_name, parse_sql, ParsedStatement, SluiceStatement};
use sluice_sql::table::StreamTable;
use sluice_sql::temporal::TemporalRelationPlanner;
use sluice_sql::window::WindowRelationPlanner;

use crate::jobs::Jobs;
use crate::planner::StreamPlanner;
use crate::planner_thread::{on_planner_thread, plan_async};
use crate::query::{QueryHandle, ResultShape};
use crate::settings::Settings;
use crate::show;
use crate::tables::{describe_rows, physical_columns, ConnectorTable};

/// What a statement produced.
pub enum StatementResult {
    /// DDL done; a message for the user.
    Done(String),
    /// A small, complete result (SHOW, DESCRIBE, EXPLAIN).
    Rows(SchemaRef, Vec<RecordBatch>),
    /// A running `SELECT`; read its rows from the handle.
    Query(QueryHandle),
    /// A running `INSERT INTO`; wait for it or let it run.
    Insert(QueryHandle),
}

/// Catalog, settings, background jobs and statement execution. Cheap to
/// share behind `&`.
pub struct Session {
    pub(crate) ctx: SessionContext,
    settings: Mutex<Settings>,
    jobs: Jobs,
    /// Materialized views, by name.
    views: Mutex<crate::materialized::Views>,
    /// Relative `path` options are resolved against this folder (the
    /// folder of the script being run); `None`: the working directory.
    base_dir: Mutex<Option<PathBuf>>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A session with an empty catalog.
    pub fn new() -> Self {
        // Rewriting COUNT(DISTINCT) into two aggregations would turn one
        // window aggregate into a window aggregate plus an updating one.
        let rules = Optimizer::new()
            .rules
            .into_iter()
            .filter(|r| r.name() != "single_distinct_aggregation_to_group_by")
            .collect();
        // Spans let plan errors point at the offending identifier.
        let mut config = SessionConfig::new();
        config.options_mut().sql_parser.collect_spans = true;
        // Memory tables' rows, where the planner and sinks find them.
        let config = config.with_extension(Arc::new(MemoryStore::default()));
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_optimizer_rules(rules)
            .with_relation_planners(vec![
                Arc::new(WindowRelationPlanner),
                Arc::new(TemporalRelationPlanner),
            ])
            .with_analyzer_rule(crate::functions::cast_rule())
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::functions::register(&ctx);
        Session {
            ctx,
            settings: Mutex::default(),
            jobs: Jobs::default(),
            views: Mutex::default(),
            base_dir: Mutex::default(),
        }
    }

    /// Resolve relative file paths in `CREATE TABLE` against `dir` from now
    /// on (`None`: the working directory); returns the folder used before.
    /// Script runners set it to the script's own folder.
    pub fn set_base_dir(&self, dir: Option<PathBuf>) -> Option<PathBuf> {
        let mut base = self.base_dir.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut base, dir)
    }

    pub(crate) fn base_dir(&self) -> Option<PathBuf> {
        self.base_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Split and parse SQL text (`file` names it in error positions).
    pub fn parse(&self, sql: &str, file: Option<&str>) -> Result<Vec<ParsedStatement>> {
        parse_sql(sql, file)
    }

    /// The session's settings (`SET`/`RESET`).
    pub fn settings(&self) -> MutexGuard<'_, Settings> {
        // Settings are plain values; a poisoned lock still holds valid ones.
        self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session's background jobs.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// The materialized views.
    pub(crate) fn views(&self) -> MutexGuard<'_, crate::materialized::Views> {
        self.views.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every table and view with its column names, sorted by name (for
    /// completion in the shell).
    pub async fn catalog_columns(&self) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for name in self.table_names() {
            if let Ok(p) = self.ctx.table_provider(name.as_str()).await {
                let cols = p
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                out.push((name, cols));
            }
        }
        out
    }

    /// Names of all tables and views, sorted.
    pub fn table_names(&self) -> Vec<String> {
        let mut names = self
            .ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Run one statement. Errors carry the statement's position (or the
    /// exact position DataFusion reported).
    pub async fn execute(&self, stmt: &ParsedStatement) -> Result<StatementResult> {
        let result = self
            .execute_inner(stmt)
            .await
            .map_err(|e| crate::locate::locate(e, stmt))?;
        Ok(match result {
            StatementResult::Query(h) => StatementResult::Query(h.located(stmt.location.clone())),
            StatementResult::Insert(h) => StatementResult::Insert(h.located(stmt.location.clone())),
            other => other,
        })
    }

    /// The columns of a query's rows, planned without running it (for a
    /// client that asks before executing); `None` for any other statement.
    pub async fn query_schema(&self, stmt: &ParsedStatement) -> Result<Option<SchemaRef>> {
        let SluiceStatement::Sql(sql) = &stmt.statement else {
            return Ok(None);
        };
        let sql = rewritten(sql).map_err(|e| crate::locate::locate(e, stmt))?;
        if !matches!(sql, Statement::Query(_)) {
            return Ok(None);
        }
        let (graph, _) = self
            .graph(sql, &self.ctx.state())
            .await
            .map_err(|e| crate::locate::locate(e, stmt))?;
        Ok(Some(changelog::data_schema(&graph.root.schema())))
    }

    pub(crate) async fn execute_inner(&self, stmt: &ParsedStatement) -> Result<StatementResult> {
        let state = self.ctx.state();
        match &stmt.statement {
            SluiceStatement::CreateTable(def) => self.create_table(def, &state),
            SluiceStatement::Command(cmd) => self.run_command(cmd).await,
            SluiceStatement::Sql(sql) => {
                let sql = rewritten(sql)?;
                match sql {
                    Statement::Query(_) => {
                        Ok(StatementResult::Query(self.start(sql, &state).await?))
                    }
                    Statement::Insert(mut insert) => {
                        self.skip_virtual_columns(&mut insert).await;
                        let sql = Statement::Insert(insert);
                        self.start_insert(sql, &state, &stmt.text).await
                    }
                    Statement::CreateView(cv) if cv.materialized => {
                        self.create_materialized_view(&cv, &stmt.text, &state).await
                    }
                    Statement::CreateView(cv) => {
                        let name = object_name(&cv.name);
                        if !cv.or_replace && self.ctx.table_exist(name.as_str())? {
                            return Err(Error::plan(format!(
                                "a table or view named {name} already exists"
                            )));
                        }
                        let query = Statement::Query(cv.query.clone());
                        let plan = plan_async(async {
                            let plan = self.logical_plan(query, &state).await?;
                            // Check now that it can run as a stream.
                            StreamPlanner::new(&state, &plan, 1).plan_root(&plan)?;
                            Ok(plan)
                        })?;
                        let view = ViewTable::new(plan, Some(stmt.text.clone()));
                        self.ctx.deregister_table(name.as_str())?;
                        self.ctx.register_table(name.as_str(), Arc::new(view))?;
                        Ok(StatementResult::Done(format!("View '{name}' created")))
                    }
                    Statement::Drop {
                        object_type: datafusion::sql::sqlparser::ast::ObjectType::MaterializedView,
                        if_exists,
                        names,
                        ..
                    } => self.drop_materialized_views(if_exists, &names),
                    Statement::Drop {
                        object_type,
                        if_exists,
                        names,
                        ..
                    } => self.drop(object_type, if_exists, &names).await,
                    Statement::ShowTables { .. } => Ok(show::show_tables(&self.ctx)?),
                    Statement::ExplainTable { table_name, .. } => {
                        let name = object_name(&table_name);
                        let provider = self.provider(&name).await?;
                        let extra = match provider.downcast_ref::<StreamTable>() {
                            Some(t) => describe_rows(t).await?,
                            None => vec![],
                        };
                        show::describe(provider.as_ref(), extra)
                    }
                    Statement::Explain {
                        statement,
                        analyze,
                        verbose,
                        ..
                    } => self.explain(*statement, analyze, verbose, &state).await,
                    other => Err(Error::plan(format!(
                        "unsupported statement: {}",
                        statement_kind(&other)
                    ))),
                }
            }
        }
    }

    pub(crate) async fn provider(&self, name: &str) -> Result<Arc<dyn TableProvider>> {
        self.ctx
            .table_provider(name)
            .await
            .map_err(|_| Error::plan(format!("table or view '{name}' does not exist")))
    }

    pub(crate) async fn logical_plan(
        &self,
        stmt: Statement,
        state: &SessionState,
    ) -> Result<LogicalPlan> {
        // Flink's names for unnamed result columns: in the statement when
        // it has no `*`, else on top of the plan.
        let (stmt, star_query) = match stmt {
            Statement::Query(mut q) => {
                let done = crate::names::alias_in_statement(&mut q);
                let star_query = (!done).then(|| q.clone());
                (Statement::Query(q), star_query)
            }
            other => (other, None),
        };
        let mut plan = state
            .statement_to_plan(DFStatement::Statement(Box::new(stmt)))
            .await?;
        if let Some(mut q) = star_query {
            plan = crate::names::flink_names(&mut q, plan)?;
        }
        Ok(state.optimize(&plan)?)
    }

    /// Plan a query or insert into a dataflow, on the planning thread; also
    /// says whether it is bounded.
    async fn graph(
        &self,
        stmt: Statement,
        state: &SessionState,
    ) -> Result<(StreamGraph, ResultShape)> {
        let (graph, shape, _, _) = plan_async(self.graph_here(stmt, state, None))?;
        Ok((graph, shape))
    }

    /// Plan `stmt`; an INSERT whose text is `job` (a job to run, not to
    /// EXPLAIN) also gets its checkpointing.
    async fn graph_here(
        &self,
        stmt: Statement,
        state: &SessionState,
        job: Option<&str>,
    ) -> Result<(
        StreamGraph,
        ResultShape,
        Option<JobCheckpointing>,
        Option<String>,
    )> {
        let plan = self.logical_plan(stmt, state).await?;
        if std::env::var_os("SLUICE_TMP_PLAN").is_some() {
            eprintln!("{}", plan.display_indent());
        }
        let (across, parallelism, ttl, mini_batch, emit, idle, checkpoints) = {
            let settings = self.settings();
            (
                match &plan {
                    LogicalPlan::Dml(_) => settings.workers()?.map(|w| Across {
                        workers: w.count,
                        pipeline: settings
                            .value("pipeline.name")
                            .unwrap_or("<pipeline.name>")
                            .to_string(),
                    }),
                    _ => None,
                },
                settings.parallelism(),
                settings.state_ttl(),
                settings.mini_batch(),
                settings.emit_strategy()?,
                settings.source_idle_timeout(),
                match job {
                    Some(_) => settings.checkpointing()?,
                    None => None,
                },
            )
        };
        let planner = StreamPlanner::new(state, &plan, parallelism)
            .with_state_ttl(ttl)
            .with_mini_batch(mini_batch)
            .with_emit_strategy(emit)
            .with_source_idle_timeout(idle)
            .with_follow_views(matches!(plan, LogicalPlan::Dml(_)))
            .with_workers(across.as_ref().map_or(1, |a| a.workers));
        match &plan {
            LogicalPlan::Dml(dml)
                if matches!(
                    dml.op,
                    WriteOp::Insert(InsertOp::Append | InsertOp::Overwrite)
                ) =>
            {
                let overwrite = dml.op == WriteOp::Insert(InsertOp::Overwrite);
                if self.is_materialized_view(dml.table_name.table()) {
                    return Err(Error::plan(format!(
                        "{} is a materialized view: only its own query writes it",
                        dml.table_name
                    )));
                }
                let plan = planner.plan_root(&dml.input)?;
                let bounded = plan.bounded;
                let provider = source_as_provider(&dml.target)?;
                let Some(table) = provider.downcast_ref::<StreamTable>() else {
                    return Err(Error::plan(format!(
                        "cannot insert into {}",
                        dml.table_name
                    )));
                };
                let ct = ConnectorTable::of(table)?;
                if overwrite && !(bounded && ct.connector.overwrites()) {
                    return Err(Error::plan(format!(
                        "INSERT OVERWRITE works on filesystem tables with bounded input (as in \
                         Flink's batch mode); {} is {}{}",
                        dml.table_name,
                        table.connector(),
                        if bounded {
                            ""
                        } else {
                            " and the query is unbounded"
                        }
                    )));
                }
                ct.check_accepts(&plan.changelog, plan.key_names.as_deref())?;
                let sink = ct.sink(state, overwrite)?;
                let checkpointing = match job {
                    Some(text) => {
                        let id = crate::checkpoints::JobIdentity {
                            sink_table: &dml.table_name.to_string(),
                            statement: text,
                            plan: &dml.input.display_indent().to_string(),
                            sink: &format!("{:?}", table.options),
                        };
                        crate::checkpoints::configure(checkpoints, &id, self.base_dir().as_deref())?
                    }
                    _ => None,
                };
                let shape = ResultShape::of(&plan);
                let kafka = crate::workers::kafka_of(&dml.input);
                let graph = StreamGraph {
                    root: physical_columns(plan.node, table),
                    sink: Some((sink, Arc::default())),
                    parallelism,
                    ordered: bounded,
                    workers: None,
                    across,
                };
                Ok((graph, shape, checkpointing, kafka))
            }
            LogicalPlan::Dml(dml) => Err(Error::plan(format!(
                "{} is not supported on streams",
                dml.op
            ))),
            _ => {
                let plan = planner.plan_root(&plan)?;
                let shape = ResultShape::of(&plan);
                let graph = StreamGraph {
                    ordered: plan.bounded,
                    root: plan.node,
                    sink: None,
                    parallelism,
                    workers: None,
                    across: None,
                };
                Ok((graph, shape, None, None))
            }
        }
    }

    async fn start(&self, stmt: Statement, state: &SessionState) -> Result<QueryHandle> {
        let (graph, shape) = self.graph(stmt, state).await?;
        Ok(QueryHandle::start(graph, shape))
    }

    /// Start an INSERT job (its text `text`), checkpointing and resuming
    /// as the settings say.
    async fn start_insert(
        &self,
        stmt: Statement,
        state: &SessionState,
        text: &str,
    ) -> Result<StatementResult> {
        let (mut graph, shape, mut checkpointing, kafka) =
            plan_async(self.graph_here(stmt, state, Some(text)))?;
        let (workers, pipeline) = {
            let settings = self.settings();
            let name = settings.value("pipeline.name").map(str::to_string);
            (settings.workers()?, name)
        };
        let mut joined = None;
        if let Some(w) = workers {
            if let Some(ck) = checkpointing.as_mut() {
                crate::workers::share_checkpoints(ck, &w)?;
            }
            let finished = checkpointing
                .as_ref()
                .and_then(|ck| ck.config.restored.as_ref())
                .is_some_and(|r| r.finished);
            if !finished {
                joined = Some(crate::workers::join(&mut graph, w, pipeline, kafka).await?);
            }
        }
        let reporting = graph.workers.clone();
        let Some(mut ck) = checkpointing else {
            if let Some((sink, _)) = graph.sink.as_ref().filter(|(s, _)| s.needs_checkpoints()) {
                return Err(Error::plan(format!(
                    "{} commits with checkpoints ('sink.delivery-guarantee' = 'exactly-once'): \
                     set 'execution.checkpointing.interval' and 'state.checkpoints.dir'",
                    sink.describe()
                )));
            }
            let mut handle = QueryHandle::start(graph, shape);
            if let (Some(notice), Some(w)) = (joined, reporting) {
                handle.add_notice(notice);
                handle.report_to(w);
            }
            return Ok(StatementResult::Insert(handle));
        };
        if let Some((sink, _)) = graph.sink.as_mut() {
            let interval = ck.interval();
            match sink.prepare_checkpoints(&ck.config.job, interval).await? {
                Resume::Any => {}
                Resume::From(_) if reporting.is_some() => {
                    return Err(Error::plan(format!(
                        "{} keeps its commits in its destination, which a job spread over \
                         workers does not support yet with checkpoints",
                        sink.describe()
                    )))
                }
                Resume::From(committed) => ck.resume_committed(committed)?,
            }
        }
        if let Some(done) = ck.config.restored.as_ref().filter(|r| r.finished) {
            // The job finished: only its last commit may be missing.
            let (mut sink, _) = graph
                .sink
                .take()
                .ok_or_else(|| Error::internal("an INSERT without a sink"))?;
            let state = done.tasks.first().map(|(_, s)| s.clone());
            sink.start_checkpoints(&ck.config.job, state.as_ref())
                .await?;
            sink.commit_final(done.id).await?;
            return Ok(StatementResult::Done(format!(
                "Job '{}' already finished (its checkpoint {} in {}): nothing to run. To run it \
                 again, SET 'pipeline.name' to another name or remove its checkpoints.",
                ck.config.job,
                done.id,
                done.path.display()
            )));
        }
        let mut handle = QueryHandle::start_checkpointed(graph, shape, ck.config, ck.notice)?;
        if let (Some(notice), Some(w)) = (joined, reporting) {
            handle.add_notice(notice);
            handle.report_to(w);
        }
        Ok(StatementResult::Insert(handle))
    }

    async fn explain(
        &self,
        stmt: Statement,
        analyze: bool,
        verbose: bool,
        state: &SessionState,
    ) -> Result<StatementResult> {
        if !matches!(stmt, Statement::Query(_) | Statement::Insert(_)) {
            return Err(Error::plan("EXPLAIN works on SELECT and INSERT statements"));
        }
        let (graph, shape) = self.graph(stmt, state).await?;
        let lines = if analyze {
            if !shape.bounded {
                return Err(Error::plan(
                    "EXPLAIN ANALYZE runs the query to its end, so it needs bounded inputs",
                ));
            }
            let handle = QueryHandle::start(graph, shape);
            let explain = handle.explain().clone();
            let summary = handle.wait().await?;
            let mut lines = explain.render(true);
            let mut last = format!(
                "-- rows in: {}, rows out: {}, late rows dropped: {}, bad records skipped: {}",
                summary.rows_in, summary.rows_out, summary.late_rows, summary.bad_records
            );
            if summary.nulled_records > 0 {
                last.push_str(&format!(
                    ", records kept with NULL fields: {}",
                    summary.nulled_records
                ));
            }
            lines.push(last);
            lines
        } else if verbose {
            graph.plan().render_verbose()
        } else {
            graph.plan().render(false)
        };
        show::lines_result("plan", lines)
    }
}

/// The leading keywords of a statement (`CREATE INDEX`), for messages.
fn statement_kind(stmt: &Statement) -> String {
    let text = stmt.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .take(3)
        .collect();
    if words.is_empty() {
        text.chars().take(40).collect()
    } else {
        words.join(" ")
    }
}

pub(crate) fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) => ident_name(i.clone()),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A SQL statement as the planner takes it: subqueries checked, legacy
/// group windows and Flink's calls rewritten.
fn rewritten(sql: &Statement) -> Result<Statement> {
    on_planner_thread(|| {
        let mut sql = sql.clone();
        sluice_sql::subqueries::reject_expression_subqueries(&sql)?;
        rewrite_group_windows(&mut sql)?;
        sluice_sql::flink_calls::rewrite_flink_calls(&mut sql)?;
        Ok(sql)
    })
}
