//! Flink's legacy group windows, rewritten into the window TVF form.
//!
//! `SELECT TUMBLE_START(ts, INTERVAL '1' MINUTE), k, COUNT(*) FROM t
//!  GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE), k`
//! becomes
//! `SELECT window_start, k, COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts),
//!  INTERVAL '1' MINUTE)) AS t GROUP BY window_start, window_end, k`.
//! The rewrite is on the AST, so positions in error messages stay right.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, Ident, ObjectName, ObjectNamePart, Query, SetExpr, Statement, TableAlias,
    TableFactor, VisitMut, VisitorMut,
};
use sluice_common::{Error, Result};

use crate::ast::call;

use datafusion::sql::sqlparser::parser::Parser;

use crate::dialect::{SluiceDialect, PARTITION_BY_FUNCTION, TABLE_ARG_FUNCTION};
use crate::window::{WINDOW_END, WINDOW_START, WINDOW_TIME};

/// Rewrite every legacy group window in `stmt` (nested queries included),
/// then turn the table argument of every window TVF into a subquery
/// `(SELECT * FROM t)`, so DataFusion sees (and resolves) the table.
pub fn rewrite_group_windows(stmt: &mut Statement) -> Result<()> {
    let mut v = Rewriter { error: None };
    let _ = stmt.visit(&mut v);
    if let Some(e) = v.error {
        return Err(e);
    }
    let mut t = TvfArgs { error: None };
    let _ = stmt.visit(&mut t);
    match t.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct TvfArgs {
    error: Option<Error>,
}

impl VisitorMut for TvfArgs {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let (name, args) = match factor {
            TableFactor::Table {
                name,
                args: Some(args),
                ..
            } => (name.to_string(), &mut args.args),
            TableFactor::Function { name, args, .. } => (name.to_string(), args),
            TableFactor::TableFunction {
                expr: Expr::Function(f),
                ..
            } => match &mut f.args {
                FunctionArguments::List(list) => (f.name.to_string(), &mut list.args),
                _ => return ControlFlow::Continue(()),
            },
            _ => return ControlFlow::Continue(()),
        };
        if !crate::window::is_window_tvf(&name) {
            return ControlFlow::Continue(());
        }
        let data = args.iter_mut().find_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(e),
                ..
            } if name.value.eq_ignore_ascii_case("DATA") => Some(e),
            _ => None,
        });
        let Some(data) = data else {
            return ControlFlow::Continue(());
        };
        // `TABLE t PARTITION BY k`: the table is the wrapper's first argument.
        let wrapped =
            matches!(&*data, Expr::Function(f) if f.name.to_string() == PARTITION_BY_FUNCTION);
        let data = if wrapped {
            match data {
                Expr::Function(f) => match &mut f.args {
                    FunctionArguments::List(list) => match list.args.first_mut() {
                        Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => e,
                        _ => return ControlFlow::Continue(()),
                    },
                    _ => return ControlFlow::Continue(()),
                },
                _ => return ControlFlow::Continue(()),
            }
        } else {
            data
        };
        let table = match data {
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case(TABLE_ARG_FUNCTION) => {
                match &f.args {
                    FunctionArguments::List(list) => match list.args.as_slice() {
                        [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => Some(e.to_string()),
                        _ => None,
                    },
                    _ => None,
                }
            }
            Expr::Identifier(i) => Some(i.to_string()),
            Expr::CompoundIdentifier(is) => Some(
                is.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join("."),
            ),
            _ => None,
        };
        if let Some(table) = table {
            let sql = format!("SELECT * FROM {table}");
            match Parser::parse_sql(&SluiceDialect, &sql) {
                Ok(mut stmts) => match stmts.pop() {
                    Some(Statement::Query(q)) => *data = Expr::Subquery(q),
                    _ => self.error = Some(Error::plan(format!("bad table name {table}"))),
                },
                Err(e) => self.error = Some(Error::plan(format!("bad table name {table}: {e}"))),
            }
        }
        ControlFlow::Continue(())
    }
}

struct Rewriter {
    error: Option<Error>,
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            if let Err(e) = rewrite_select(select) {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

fn call_name(f: &Function) -> String {
    f.name.to_string().to_ascii_uppercase()
}

fn is_group_window(e: &Expr) -> bool {
    matches!(e, Expr::Function(f) if matches!(call_name(f).as_str(), "TUMBLE" | "HOP" | "SESSION"))
}

fn rewrite_select(select: &mut datafusion::sql::sqlparser::ast::Select) -> Result<()> {
    let GroupByExpr::Expressions(exprs, _) = &mut select.group_by else {
        return Ok(());
    };
    let Some(pos) = exprs.iter().position(is_group_window) else {
        return Ok(());
    };
    let Expr::Function(window) = exprs.remove(pos) else {
        return Err(Error::internal("group window is not a function"));
    };
    if exprs.iter().any(is_group_window) {
        return Err(Error::plan(
            "only one group window (TUMBLE, HOP or SESSION) per GROUP BY",
        ));
    }
    exprs.insert(pos, ident(WINDOW_START));
    exprs.insert(pos + 1, ident(WINDOW_END));

    let name = call_name(&window);
    let mut args = match window.args {
        FunctionArguments::List(list) => list.args,
        _ => vec![],
    };
    if args.is_empty() {
        return Err(Error::plan(format!(
            "{name}() needs a time column and an interval"
        )));
    }
    let time = args.remove(0);
    let time_col = match &time {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(i))) => i.clone(),
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::CompoundIdentifier(is))) => {
            match is.last() {
                Some(i) => i.clone(),
                None => return Err(Error::plan(format!("{name}: empty time column"))),
            }
        }
        other => {
            return Err(Error::plan(format!(
                "{name}: the first argument must be an event-time column, found {other}"
            )))
        }
    };

    if select.from.len() != 1 || !select.from[0].joins.is_empty() {
        return Err(Error::plan(format!(
            "GROUP BY {name}(...) needs exactly one table in FROM (no joins)"
        )));
    }
    let relation = std::mem::replace(&mut select.from[0].relation, placeholder());
    let (data, alias) = match relation {
        TableFactor::Table {
            name: tname,
            alias,
            args: None,
            ..
        } => {
            let alias = alias.or_else(|| {
                tname
                    .0
                    .last()
                    .and_then(ObjectNamePart::as_ident)
                    .map(|i| TableAlias {
                        explicit: true,
                        name: i.clone(),
                        columns: vec![],
                        at: None,
                    })
            });
            (call(TABLE_ARG_FUNCTION, vec![object_expr(tname)]), alias)
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => (Expr::Subquery(subquery), alias),
        other => {
            return Err(Error::plan(format!(
                "GROUP BY {name}(...) over {other} is not supported; use a table, view or subquery"
            )))
        }
    };
    // A session is per the other GROUP BY keys: its PARTITION BY.
    let data = if name == "SESSION" {
        let keys: Vec<Expr> = exprs
            .iter()
            .filter(|e| !matches!(e, Expr::Identifier(i) if i.value == WINDOW_START || i.value == WINDOW_END))
            .cloned()
            .collect();
        if keys
            .iter()
            .any(|k| !matches!(k, Expr::Identifier(_) | Expr::CompoundIdentifier(_)))
        {
            return Err(Error::plan(
                "GROUP BY SESSION(...) takes other keys as plain columns",
            ));
        }
        let mut args = vec![data];
        args.extend(keys);
        call(PARTITION_BY_FUNCTION, args)
    } else {
        data
    };
    let mut tvf_args = vec![data, call("DESCRIPTOR", vec![Expr::Identifier(time_col)])];
    for a in args {
        match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => tvf_args.push(e),
            other => return Err(Error::plan(format!("{name}: unsupported argument {other}"))),
        }
    }
    select.from[0].relation = TableFactor::TableFunction {
        expr: call(&name, tvf_args),
        alias,
    };

    // TUMBLE_START(...) -> window_start, and so on, wherever they appear.
    let replace = |e: &mut Expr| {
        if let Expr::Function(f) = e {
            let col = match call_name(f).as_str() {
                "TUMBLE_START" | "HOP_START" | "SESSION_START" => Some(WINDOW_START),
                "TUMBLE_END" | "HOP_END" | "SESSION_END" => Some(WINDOW_END),
                "TUMBLE_ROWTIME" | "HOP_ROWTIME" | "SESSION_ROWTIME" => Some(WINDOW_TIME),
                _ => None,
            };
            if let Some(col) = col {
                *e = ident(col);
            }
        }
        ControlFlow::<()>::Continue(())
    };
    let mut uses_rowtime = false;
    let mut replace = |e: &mut Expr| {
        uses_rowtime |= matches!(e, Expr::Function(f) if call_name(f).ends_with("_ROWTIME"));
        replace(e)
    };
    let _ = visit_expressions_mut(&mut select.projection, &mut replace);
    let _ = visit_expressions_mut(&mut select.having, &mut replace);
    // TUMBLE_ROWTIME is window_time, a key like window_start and window_end.
    if uses_rowtime {
        if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
            exprs.insert(pos + 2, ident(WINDOW_TIME));
        }
    }
    Ok(())
}

fn ident(name: &str) -> Expr {
    Expr::Identifier(Ident::new(name))
}

fn object_expr(name: ObjectName) -> Expr {
    let mut idents: Vec<Ident> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().cloned())
        .collect();
    if idents.len() == 1 {
        Expr::Identifier(idents.remove(0))
    } else {
        Expr::CompoundIdentifier(idents)
    }
}

fn placeholder() -> TableFactor {
    TableFactor::TableFunction {
        expr: ident("__placeholder"),
        alias: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse_sql, SluiceStatement};

    #[test]
    fn rewrites_group_by_tumble() {
        let sql = "SELECT TUMBLE_START(ts, INTERVAL '1' MINUTE) AS s, k, COUNT(*) FROM t \
                   GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE), k";
        let mut stmts = parse_sql(sql, None).expect("parses");
        let SluiceStatement::Sql(stmt) = &mut stmts[0].statement else {
            panic!("not sql")
        };
        rewrite_group_windows(stmt).expect("rewrites");
        assert_eq!(
            stmt.to_string(),
            "SELECT window_start AS s, k, COUNT(*) FROM TABLE(TUMBLE((SELECT * FROM t), DESCRIPTOR(ts), \
             INTERVAL '1' MINUTE)) AS t GROUP BY window_start, window_end, k"
        );
    }
}
