//! Materialized views: `CREATE MATERIALIZED VIEW v AS SELECT ...` makes a
//! memory table `v` with the query's columns (keyed by the query's upsert
//! key when its result updates) and starts the query as a job writing it
//! (`INSERT INTO v SELECT ...`): appended rows are kept, updates applied
//! by key. `SELECT ... FROM v` reads the table as it is (each change batch
//! is applied whole under the table's lock, so a reader never sees half of
//! one). Like an INSERT, the job runs to its end in a script over bounded
//! inputs and in the background in the shell. `DROP MATERIALIZED VIEW`
//! stops the job and drops the table.

use std::collections::BTreeMap;

use datafusion::execution::context::SessionState;
use datafusion::sql::sqlparser::ast::{
    CreateTableOptions, CreateView, Expr, ObjectName, SqlOption, Statement, Value,
};
use sluice_common::changelog::ChangelogMode;
use sluice_common::sql_type_name;
use sluice_common::{changelog, Error, Result};
use sluice_connectors::options::parse_duration_ms;
use sluice_sql::parser::parse_sql;

use crate::jobs::JobState;
use crate::planner::StreamPlanner;
use crate::planner_thread::plan_async;
use crate::session::{object_name, Session, StatementResult};
use crate::show::string_rows;

/// A materialized view: the statement that made it (its job's statement)
/// and its query.
#[derive(Debug, Clone)]
pub(crate) struct MaterializedView {
    statement: String,
    query: String,
}

/// What a view's query gives: its table's DDL, the kind of rows, its time
/// column and its columns.
struct ViewShape {
    ddl: String,
    mode: ChangelogMode,
    time_column: Option<usize>,
    schema: arrow::datatypes::SchemaRef,
}

/// A view's `WITH (...)` options: `'retention'` and `'retention.column'`.
struct ViewOptions {
    retention: Option<(i64, Option<String>)>,
}

/// The options a view takes.
const KNOWN: [&str; 2] = ["retention", "retention.column"];

impl ViewOptions {
    fn of(name: &str, options: &CreateTableOptions) -> Result<Self> {
        let pairs = match options {
            CreateTableOptions::None => vec![],
            CreateTableOptions::With(o) => o.iter().map(key_value).collect::<Result<_>>()?,
            other => {
                return Err(Error::plan(format!(
                    "a materialized view takes options as WITH ('key' = 'value'), not {other}"
                )))
            }
        };
        let map: BTreeMap<String, String> = pairs.into_iter().collect();
        if let Some(k) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Error::plan(format!(
                "materialized view {name}: unknown option '{k}' (a view takes 'retention' and \
                 'retention.column')"
            ))
            .near(k.as_str()));
        }
        let retention = match map.get("retention") {
            None => None,
            Some(v) => Some(
                parse_duration_ms(v)
                    .filter(|&ms| ms > 0 && ms <= i64::MAX as u64)
                    .ok_or_else(|| {
                        Error::plan(format!(
                            "materialized view {name}: 'retention' = '{v}' is not a positive \
                             duration such as '1 h'"
                        ))
                    })? as i64,
            ),
        };
        let column = map.get("retention.column").cloned();
        if let (None, Some(_)) = (retention, &column) {
            return Err(Error::plan(format!(
                "materialized view {name}: 'retention.column' needs 'retention'"
            )));
        }
        Ok(ViewOptions {
            retention: retention.map(|r| (r, column)),
        })
    }

    /// The retention's column (index) and length in ms.
    fn resolve(self, shape: &ViewShape) -> Result<Option<(usize, i64)>> {
        let Some((keep, column)) = self.retention else {
            return Ok(None);
        };
        let column = match column {
            Some(c) => sluice_connectors::memory::time_column(&shape.schema, &c)?,
            None => shape.time_column.ok_or_else(|| {
                Error::plan(
                    "'retention' keeps rows by a time column and the view's query has none \
                     (no time attribute or window column): name one with 'retention.column'",
                )
            })?,
        };
        Ok(Some((column, keep)))
    }
}

/// `'key' = 'value'` of a WITH clause.
fn key_value(o: &SqlOption) -> Result<(String, String)> {
    match o {
        SqlOption::KeyValue { key, value } => {
            let value = match value {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                },
                other => other.to_string(),
            };
            Ok((key.value.to_ascii_lowercase(), value))
        }
        other => Err(Error::plan(format!(
            "a materialized view option must be 'key' = 'value', not {other}"
        ))),
    }
}

/// The session's materialized views, by name.
pub(crate) type Views = BTreeMap<String, MaterializedView>;

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Session {
    /// `CREATE MATERIALIZED VIEW`: the table, then the job that fills it.
    pub(crate) async fn create_materialized_view(
        &self,
        cv: &CreateView,
        text: &str,
        state: &SessionState,
    ) -> Result<StatementResult> {
        let name = object_name(&cv.name);
        if cv.or_replace {
            return Err(Error::plan(format!(
                "CREATE OR REPLACE MATERIALIZED VIEW is not supported: DROP MATERIALIZED VIEW \
                 {name} first"
            )));
        }
        if self.ctx.table_exist(name.as_str())? {
            return Err(Error::plan(format!(
                "a table or view named {name} already exists"
            )));
        }
        let query = cv.query.to_string();
        let retention = ViewOptions::of(&name, &cv.options)?;
        let shape = self.view_table_ddl(&name, Statement::Query(cv.query.clone()), state)?;
        let retention = retention.resolve(&shape)?;
        for stmt in parse_sql(&shape.ddl, None)? {
            Box::pin(self.execute_inner(&stmt)).await?;
        }
        let table = crate::tables::memory_store(state)?.get(&name)?;
        table.set_view(shape.mode);
        if let Some((column, keep_ms)) = retention {
            table.set_retention(column, keep_ms)?;
        }
        let insert = format!("INSERT INTO {} {query}", quote(&name));
        let started = async {
            let mut stmts = parse_sql(&insert, None)?;
            let stmt = stmts.pop().ok_or_else(|| Error::internal("no INSERT"))?;
            Box::pin(self.execute_inner(&stmt)).await
        };
        let result = match started.await {
            Ok(StatementResult::Insert(mut h)) => {
                h.add_notice(format!(
                    "Materialized view '{name}' created: a job keeps it up to date."
                ));
                StatementResult::Insert(h)
            }
            // An INSERT done at once is a checkpointed job that had
            // finished: the view is restored whole, nothing is left to run.
            Ok(StatementResult::Done(msg)) => StatementResult::Done(format!(
                "Materialized view '{name}' restored from its checkpoint. {msg}"
            )),
            other => {
                // The table without its job would be a stale copy.
                self.ctx.deregister_table(name.as_str())?;
                crate::tables::forget_memory_table(&self.ctx.state(), &name);
                return match other {
                    Err(e) => Err(e),
                    Ok(_) => Err(Error::internal("a materialized view's job did not start")),
                };
            }
        };
        let statement = text.to_string();
        self.views()
            .insert(name, MaterializedView { statement, query });
        Ok(result)
    }

    /// `CREATE TABLE` of the view's table: the query's columns, and its
    /// upsert key as the PRIMARY KEY when its result updates; and the kind
    /// of rows the query gives (as a job: views it reads are followed).
    fn view_table_ddl(
        &self,
        name: &str,
        query: Statement,
        state: &SessionState,
    ) -> Result<ViewShape> {
        let (schema, key, mode, time_column) = plan_async(async {
            let plan = self.logical_plan(query, state).await?;
            let root = StreamPlanner::new(state, &plan, 1)
                .with_follow_views(true)
                .plan_root(&plan)?;
            let schema = changelog::data_schema(&root.node.schema());
            let key = root.key_names.filter(|_| root.changelog.is_updating());
            Ok((schema, key, root.changelog, root.time_column))
        })?;
        if let Some(dup) = schema
            .fields()
            .iter()
            .enumerate()
            .find(|(i, f)| schema.fields()[..*i].iter().any(|g| g.name() == f.name()))
        {
            return Err(Error::plan(format!(
                "the materialized view's query has two columns named {}: name them apart \
                 with AS",
                dup.1.name()
            )));
        }
        let mut cols: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", quote(f.name()), sql_type_name(f.data_type())))
            .collect();
        if let Some(k) = key {
            let k: Vec<String> = k.iter().map(|c| quote(c)).collect();
            cols.push(format!("PRIMARY KEY ({}) NOT ENFORCED", k.join(", ")));
        }
        Ok(ViewShape {
            ddl: format!("CREATE TABLE {} ({})", quote(name), cols.join(", ")),
            mode,
            time_column,
            schema,
        })
    }

    /// `SHOW MATERIALIZED VIEWS`: each view, its job's state and query.
    pub(crate) fn show_materialized_views(&self) -> Result<StatementResult> {
        let jobs = self.jobs().list();
        let rows = self
            .views()
            .iter()
            .map(|(name, v)| {
                let job = jobs.iter().rev().find(|j| j.statement == v.statement);
                let state = match job {
                    Some(j) => format!("job {}: {}", j.id, j.state),
                    None => "ran to its end".to_string(),
                };
                vec![name.clone(), state, v.query.clone()]
            })
            .collect();
        string_rows(&["name", "maintained by", "query"], rows)
    }

    /// `DROP MATERIALIZED VIEW`: stop the job, drop the table.
    pub(crate) fn drop_materialized_views(
        &self,
        if_exists: bool,
        names: &[ObjectName],
    ) -> Result<StatementResult> {
        for n in names {
            let name = object_name(n);
            let Some(view) = self.views().remove(&name) else {
                if if_exists {
                    continue;
                }
                return Err(Error::plan(format!(
                    "materialized view '{name}' does not exist"
                )));
            };
            for job in self.jobs().list() {
                if job.statement == view.statement && job.state == JobState::Running {
                    self.jobs().stop(job.id)?;
                }
            }
            self.ctx.deregister_table(name.as_str())?;
            crate::tables::forget_memory_table(&self.ctx.state(), &name);
        }
        Ok(StatementResult::Done("Materialized view dropped".into()))
    }

    /// Whether `name` is a materialized view.
    pub(crate) fn is_materialized_view(&self, name: &str) -> bool {
        self.views().contains_key(name)
    }
}
