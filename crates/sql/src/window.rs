//! Window table functions TUMBLE, HOP and CUMULATE.
//!
//! Both TVF dialects are planned here, by a DataFusion [`RelationPlanner`]:
//! Flink's `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), size))` and RisingWave's
//! `TUMBLE(t, ts, size)` (HOP takes `slide, size`, CUMULATE `step, size`).
//! The result is a
//! [`WindowTvfNode`]: the input's columns plus `window_start`,
//! `window_end` and `window_time` (= `window_end - 1 ms`).

use std::cmp::Ordering;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::{plan_err, Column, DFSchema, DFSchemaRef, Result, ScalarValue};
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName, ObjectNamePart,
    TableFactor, Value,
};

use crate::dialect::{PARTITION_BY_FUNCTION, TABLE_ARG_FUNCTION};
pub use sluice_common::window::{fmt_ms, gcd, WindowKind, WindowSpec};

/// Names of the columns a window TVF adds.
pub const WINDOW_START: &str = "window_start";
/// See [`WINDOW_START`].
pub const WINDOW_END: &str = "window_end";
/// See [`WINDOW_START`].
pub const WINDOW_TIME: &str = "window_time";

/// Most windows a HOP may put a row in (and panes a window may merge):
/// a day of windows sliding by the second fits.
pub const MAX_WINDOWS_PER_ROW: i64 = 100_000;

/// The logical node of a window TVF.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowTvfNode {
    /// The windowed relation.
    pub input: LogicalPlan,
    /// The event-time column (`DESCRIPTOR(ts)`).
    pub time_column: Column,
    /// Index of `time_column` in the input schema.
    pub time_index: usize,
    /// Window shape.
    pub spec: WindowSpec,
    /// SESSION's `PARTITION BY` columns.
    pub partition: Vec<String>,
    schema: DFSchemaRef,
}

impl PartialOrd for WindowTvfNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.spec.partial_cmp(&other.spec)
    }
}

impl WindowTvfNode {
    /// Build the node; checks the time column and the `PARTITION BY`
    /// columns.
    pub fn try_new(
        input: LogicalPlan,
        time_column: &str,
        spec: WindowSpec,
        partition: Vec<String>,
    ) -> Result<Self> {
        let in_schema = input.schema();
        for p in &partition {
            if in_schema
                .qualified_fields_with_unqualified_name(p)
                .is_empty()
            {
                return plan_err!("PARTITION BY {p}: no column named '{p}' in the windowed table");
            }
        }
        let Some((qualifier, field)) = in_schema
            .qualified_fields_with_unqualified_name(time_column)
            .into_iter()
            .next()
        else {
            let names: Vec<&str> = in_schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            return plan_err!(
                "DESCRIPTOR({time_column}): no column named '{time_column}' in the windowed table (columns: {})",
                names.join(", ")
            );
        };
        if !matches!(field.data_type(), DataType::Timestamp(_, _)) {
            return plan_err!(
                "DESCRIPTOR({time_column}): column '{time_column}' is {}, but a window needs a TIMESTAMP event-time column",
                field.data_type()
            );
        }
        let column = Column::new(qualifier.cloned(), field.name());
        let time_index = in_schema.index_of_column(&column)?;
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        let extra = DFSchema::from_unqualified_fields(
            vec![
                Field::new(WINDOW_START, ts.clone(), false),
                Field::new(WINDOW_END, ts.clone(), false),
                Field::new(WINDOW_TIME, ts, false),
            ]
            .into(),
            Default::default(),
        )?;
        let mut schema = in_schema.as_ref().clone();
        schema.merge(&extra);
        if schema.fields().len() != in_schema.fields().len() + 3 {
            return plan_err!(
                "the windowed table already has a column named window_start, window_end or window_time; rename it first"
            );
        }
        Ok(WindowTvfNode {
            input,
            time_column: column,
            time_index,
            spec,
            partition,
            schema: Arc::new(schema),
        })
    }
}

impl UserDefinedLogicalNodeCore for WindowTvfNode {
    fn name(&self) -> &str {
        "WindowTvf"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "WindowTvf: {} on {}", self.spec, self.time_column)?;
        if !self.partition.is_empty() {
            write!(f, " partition by {}", self.partition.join(", "))?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let Some(input) = inputs.pop() else {
            return plan_err!("WindowTvf needs one input");
        };
        WindowTvfNode::try_new(
            input,
            &self.time_column.name,
            self.spec,
            self.partition.clone(),
        )
    }

    /// Only the input columns the query reads (and the time column) are
    /// needed, so a scan below the window decodes only those.
    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let n = self.input.schema().fields().len();
        let mut needed: Vec<usize> = output_columns.iter().copied().filter(|&i| i < n).collect();
        needed.push(self.time_index);
        let schema = self.input.schema();
        for p in &self.partition {
            let found = schema.qualified_fields_with_unqualified_name(p);
            if let Some((q, f)) = found.first() {
                if let Ok(i) = schema.index_of_column(&Column::new(q.cloned(), f.name())) {
                    needed.push(i);
                }
            }
        }
        needed.sort_unstable();
        needed.dedup();
        Some(vec![needed])
    }
}

/// Plans `TUMBLE(...)` / `HOP(...)` in FROM, in both TVF dialects.
#[derive(Debug, Default)]
pub struct WindowRelationPlanner;

impl RelationPlanner for WindowRelationPlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        ctx: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let (name, args, alias) = match relation {
            TableFactor::Table {
                name,
                args: Some(args),
                alias,
                ..
            } if window_kind(&name).is_some() => (name, args.args, alias),
            TableFactor::Function {
                name, args, alias, ..
            } if window_kind(&name).is_some() => (name, args, alias),
            TableFactor::TableFunction {
                expr: SqlExpr::Function(f),
                alias,
            } if window_kind(&f.name).is_some() => {
                let args = match f.args {
                    FunctionArguments::List(list) => list.args,
                    _ => vec![],
                };
                (f.name, args, alias)
            }
            TableFactor::TableFunction {
                expr: SqlExpr::Function(f),
                ..
            } => return unknown_table_function(&f.name),
            TableFactor::TableFunction { expr, .. } => {
                return plan_err!("FROM TABLE(...) needs a table function call, found {expr}")
            }
            other => return Ok(RelationPlanning::Original(Box::new(other))),
        };
        let Some(kind) = window_kind(&name) else {
            return plan_err!("not a window function: {name}");
        };
        let plan = plan_window(kind, args, ctx)?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation {
            plan,
            alias,
        })))
    }
}

/// A table function Sluice does not have, named in SQL terms.
fn unknown_table_function(name: &ObjectName) -> Result<RelationPlanning> {
    plan_err!(
        "unknown table function '{name}' (window table functions: TUMBLE, HOP, CUMULATE, SESSION)"
    )
}

/// Whether `name` (as written) names a window table function.
pub fn is_window_tvf(name: &str) -> bool {
    kind_of_name(name).is_some()
}

fn window_kind(name: &ObjectName) -> Option<WindowKind> {
    kind_of_name(&name.0.last()?.as_ident()?.value)
}

fn kind_of_name(name: &str) -> Option<WindowKind> {
    match name.to_ascii_uppercase().as_str() {
        "TUMBLE" => Some(WindowKind::Tumble),
        "HOP" => Some(WindowKind::Hop),
        "CUMULATE" => Some(WindowKind::Cumulate),
        "SESSION" => Some(WindowKind::Session),
        _ => None,
    }
}

/// Arguments by role, from positional or named (`SIZE => ...`) arguments.
#[derive(Default)]
struct WindowArgs {
    data: Option<SqlExpr>,
    timecol: Option<SqlExpr>,
    slide: Option<SqlExpr>,
    size: Option<SqlExpr>,
    offset: Option<SqlExpr>,
}

fn bind_args(kind: WindowKind, args: Vec<FunctionArg>) -> Result<WindowArgs> {
    let fname = kind.name();
    let positional: &[&str] = match kind {
        WindowKind::Tumble => &["DATA", "TIMECOL", "SIZE", "OFFSET"],
        WindowKind::Hop => &["DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"],
        WindowKind::Cumulate => &["DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"],
        WindowKind::Session => &["DATA", "TIMECOL", "GAP"],
    };
    let mut out = WindowArgs::default();
    for (i, arg) in args.into_iter().enumerate() {
        let (role, expr) = match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => match positional.get(i) {
                Some(r) => (r.to_string(), e),
                None => return plan_err!("{fname} takes at most {} arguments", positional.len()),
            },
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(e),
                ..
            } => (name.value.to_ascii_uppercase(), e),
            other => return plan_err!("{fname}: unsupported argument {other}"),
        };
        let slot = match role.as_str() {
            "DATA" => &mut out.data,
            "TIMECOL" => &mut out.timecol,
            "SLIDE" if kind == WindowKind::Hop => &mut out.slide,
            "STEP" if kind == WindowKind::Cumulate => &mut out.slide,
            "SIZE" if kind != WindowKind::Session => &mut out.size,
            "GAP" if kind == WindowKind::Session => &mut out.size,
            "OFFSET" => &mut out.offset,
            other => return plan_err!("{fname} has no argument named {other}"),
        };
        if slot.replace(expr).is_some() {
            return plan_err!("{fname}: argument {role} is given twice");
        }
    }
    Ok(out)
}

fn plan_window(
    kind: WindowKind,
    args: Vec<FunctionArg>,
    ctx: &mut dyn RelationPlannerContext,
) -> Result<LogicalPlan> {
    let usage = match kind {
        WindowKind::Tumble => "TUMBLE(TABLE t, DESCRIPTOR(ts), size [, offset])",
        WindowKind::Hop => "HOP(TABLE t, DESCRIPTOR(ts), slide, size [, offset])",
        WindowKind::Cumulate => "CUMULATE(TABLE t, DESCRIPTOR(ts), step, size [, offset])",
        WindowKind::Session => "SESSION(TABLE t [PARTITION BY k], DESCRIPTOR(ts), gap)",
    };
    let a = bind_args(kind, args)?;
    let (Some(data), Some(timecol), Some(size)) = (a.data, a.timecol, a.size) else {
        return plan_err!("missing arguments; use {usage}");
    };
    let size = interval_ms(
        size,
        if kind == WindowKind::Session {
            "gap"
        } else {
            "size"
        },
        ctx,
    )?;
    let slide = match (kind, a.slide) {
        (WindowKind::Hop, Some(s)) => interval_ms(s, "slide", ctx)?,
        (WindowKind::Cumulate, Some(s)) => interval_ms(s, "step", ctx)?,
        (WindowKind::Hop, None) => return plan_err!("missing slide; use {usage}"),
        (WindowKind::Cumulate, None) => return plan_err!("missing step; use {usage}"),
        (WindowKind::Tumble | WindowKind::Session, _) => size,
    };
    let offset = match a.offset {
        Some(o) => interval_ms(o, "offset", ctx)?,
        None => 0,
    };
    if size <= 0 || slide <= 0 {
        let what = match kind {
            WindowKind::Cumulate => "step and max size",
            WindowKind::Session => "gap",
            _ => "size and slide",
        };
        let s = if kind == WindowKind::Session {
            " a"
        } else {
            ""
        };
        return plan_err!(
            "{} window {what} must be{s} positive interval{}",
            kind.name(),
            if s.is_empty() { "s" } else { "" }
        );
    }
    if kind == WindowKind::Cumulate && size % slide != 0 {
        return plan_err!(
            "CUMULATE max size ({}) must be an integral multiple of its step ({})",
            fmt_ms(size),
            fmt_ms(slide)
        );
    }
    if kind == WindowKind::Cumulate && size / slide > MAX_WINDOWS_PER_ROW {
        return plan_err!(
            "CUMULATE max size {} with step {} makes {} windows per period; at most {} are \
             supported: use a larger step",
            fmt_ms(size),
            fmt_ms(slide),
            size / slide,
            MAX_WINDOWS_PER_ROW
        );
    }
    if kind == WindowKind::Hop && slide > size {
        return plan_err!(
            "HOP slide ({}) is larger than its size ({}): rows between windows would be lost",
            fmt_ms(slide),
            fmt_ms(size)
        );
    }
    let panes = size / gcd(size, slide);
    if size / slide > MAX_WINDOWS_PER_ROW || panes > MAX_WINDOWS_PER_ROW {
        return plan_err!(
            "HOP size {} with slide {} puts each row in {} windows of {} panes; at most {} \
             are supported: use a larger slide",
            fmt_ms(size),
            fmt_ms(slide),
            size / slide,
            panes,
            MAX_WINDOWS_PER_ROW
        );
    }
    let (data, partition) = partition_keys(data)?;
    if !partition.is_empty() && kind != WindowKind::Session {
        return plan_err!("{}: only SESSION takes PARTITION BY", kind.name());
    }
    let input = ctx.plan(data_relation(data)?)?;
    let time_column = descriptor_column(timecol)?;
    let spec = WindowSpec {
        kind,
        size,
        slide,
        offset,
    };
    let node = WindowTvfNode::try_new(input, &time_column, spec, partition)?;
    Ok(LogicalPlan::Extension(Extension {
        node: Arc::new(node),
    }))
}

/// The table argument and its `PARTITION BY` column names, if any.
fn partition_keys(data: SqlExpr) -> Result<(SqlExpr, Vec<String>)> {
    let SqlExpr::Function(f) = data else {
        return Ok((data, vec![]));
    };
    if f.name.to_string() != PARTITION_BY_FUNCTION {
        return Ok((SqlExpr::Function(f), vec![]));
    }
    let FunctionArguments::List(list) = f.args else {
        return plan_err!("PARTITION BY without a table");
    };
    let mut args = list.args.into_iter().map(|a| match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
        other => plan_err!("unexpected {other} in PARTITION BY"),
    });
    let Some(table) = args.next() else {
        return plan_err!("PARTITION BY without a table");
    };
    let keys = args
        .map(|k| match k? {
            SqlExpr::Identifier(i) => Ok(crate::parser::ident_name(i)),
            SqlExpr::CompoundIdentifier(mut is) => match is.pop() {
                Some(i) => Ok(crate::parser::ident_name(i)),
                None => plan_err!("empty column name in PARTITION BY"),
            },
            other => plan_err!("PARTITION BY takes column names, found {other}"),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((table?, keys))
}

/// The first argument: `TABLE t`, `t` or `(subquery)`.
fn data_relation(data: SqlExpr) -> Result<TableFactor> {
    let name = match data {
        SqlExpr::Function(f) if f.name.to_string().eq_ignore_ascii_case(TABLE_ARG_FUNCTION) => {
            match single_arg(f.args) {
                Some(SqlExpr::Identifier(i)) => ObjectName(vec![ObjectNamePart::Identifier(i)]),
                Some(SqlExpr::CompoundIdentifier(is)) => {
                    ObjectName(is.into_iter().map(ObjectNamePart::Identifier).collect())
                }
                _ => return plan_err!("TABLE argument must name a table or view"),
            }
        }
        SqlExpr::Identifier(i) => ObjectName(vec![ObjectNamePart::Identifier(i)]),
        SqlExpr::CompoundIdentifier(is) => {
            ObjectName(is.into_iter().map(ObjectNamePart::Identifier).collect())
        }
        SqlExpr::Subquery(q) => {
            return Ok(TableFactor::Derived {
                lateral: false,
                subquery: q,
                alias: None,
                sample: None,
            })
        }
        other => return plan_err!("the first window argument must be a table, found {other}"),
    };
    Ok(TableFactor::Table {
        name,
        alias: None,
        args: None,
        with_hints: vec![],
        version: None,
        with_ordinality: false,
        partitions: vec![],
        json_path: None,
        sample: None,
        index_hints: vec![],
    })
}

fn single_arg(args: FunctionArguments) -> Option<SqlExpr> {
    match args {
        FunctionArguments::List(mut list) if list.args.len() == 1 => match list.args.pop() {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => Some(e),
            _ => None,
        },
        _ => None,
    }
}

/// The second argument: `DESCRIPTOR(ts)`, `ts` or `'ts'`.
fn descriptor_column(timecol: SqlExpr) -> Result<String> {
    let expr = match timecol {
        SqlExpr::Function(f) if f.name.to_string().eq_ignore_ascii_case("DESCRIPTOR") => {
            match single_arg(f.args) {
                Some(e) => e,
                None => return plan_err!("DESCRIPTOR takes exactly one column"),
            }
        }
        other => other,
    };
    match expr {
        SqlExpr::Identifier(i) => Ok(crate::parser::ident_name(i)),
        SqlExpr::CompoundIdentifier(mut is) => match is.pop() {
            Some(i) => Ok(crate::parser::ident_name(i)),
            None => plan_err!("empty column name"),
        },
        SqlExpr::Value(v) => match v.value {
            Value::SingleQuotedString(s) => Ok(s),
            other => plan_err!("the time column must be a column name, found {other}"),
        },
        other => plan_err!("the time column must be a column name, found {other}"),
    }
}

fn interval_ms(e: SqlExpr, what: &str, ctx: &mut dyn RelationPlannerContext) -> Result<i64> {
    let text = e.to_string();
    let expr = ctx.sql_to_expr(e, &DFSchema::empty())?;
    let ms = match &expr {
        Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) if v.months == 0 => {
            Some(v.days as i64 * 86_400_000 + v.nanoseconds / 1_000_000)
        }
        Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => {
            Some(v.days as i64 * 86_400_000 + v.milliseconds as i64)
        }
        _ => None,
    };
    match ms {
        Some(ms) => Ok(ms),
        None => plan_err!(
            "window {what} must be a constant day-time interval such as INTERVAL '10' SECOND, found {text}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_alignment() {
        let hop = WindowSpec {
            kind: WindowKind::Hop,
            size: 10_000,
            slide: 4_000,
            offset: 0,
        };
        assert_eq!(hop.last_start(9_999), 8_000);
        assert_eq!(hop.last_start(-1), -4_000);
        assert_eq!(hop.pane(), 2_000);
        assert_eq!(hop.to_string(), "HOP(slide=4s, size=10s)");
    }
}
