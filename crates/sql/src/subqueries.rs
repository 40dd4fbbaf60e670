//! Subqueries inside expressions (`(SELECT ...)` as a value, `IN (SELECT
//! ...)`, `EXISTS`) are refused before planning: over streams they are
//! joins, which Sluice does not run yet, and DataFusion's planning of deeply
//! nested ones takes exponential time. Subqueries in FROM (derived tables,
//! window TVF arguments) are fine.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Statement, TableFactor, Visit, Visitor};
use sluice_common::{Error, Result};

/// Fail on the first subquery used as an expression in `stmt`.
pub fn reject_expression_subqueries(stmt: &Statement) -> Result<()> {
    let mut v = Find {
        in_table_function: 0,
        found: None,
    };
    let _ = stmt.visit(&mut v);
    match v.found {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Find {
    /// Inside the arguments of a table function in FROM (`TUMBLE((SELECT
    /// ...), ...)`), where a subquery is a relation.
    in_table_function: usize,
    found: Option<Error>,
}

fn is_table_function(t: &TableFactor) -> bool {
    matches!(
        t,
        TableFactor::Function { .. }
            | TableFactor::TableFunction { .. }
            | TableFactor::Table { args: Some(_), .. }
    )
}

impl Visitor for Find {
    type Break = ();

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        if is_table_function(t) {
            self.in_table_function += 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        if is_table_function(t) {
            self.in_table_function -= 1;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if self.in_table_function > 0 {
            return ControlFlow::Continue(());
        }
        let near = match e {
            Expr::Subquery(_) => "SELECT SELECT",
            Expr::InSubquery { .. } => "IN SELECT",
            Expr::Exists { .. } => "EXISTS",
            _ => return ControlFlow::Continue(()),
        };
        self.found = Some(
            Error::plan(
                "subqueries in expressions (scalar subqueries, IN (SELECT ...), EXISTS) are not \
                 supported on streams yet; use a subquery in FROM",
            )
            .near(near),
        );
        ControlFlow::Break(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse_sql, SluiceStatement};

    fn check(sql: &str) -> Result<()> {
        let stmts = parse_sql(sql, None).expect("parses");
        let SluiceStatement::Sql(s) = &stmts[0].statement else {
            panic!("sql");
        };
        reject_expression_subqueries(s)
    }

    #[test]
    fn expression_subqueries_are_refused_relations_are_not() {
        assert!(check("SELECT (SELECT 1)").is_err());
        assert!(check("SELECT a FROM t WHERE a IN (SELECT b FROM u)").is_err());
        assert!(check("SELECT a FROM t WHERE EXISTS (SELECT 1)").is_err());
        check("SELECT a FROM (SELECT a FROM t) s").expect("derived table");
        check("SELECT * FROM TUMBLE((SELECT * FROM t), ts, INTERVAL '1' SECOND)")
            .expect("TVF argument");
        check("SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))")
            .expect("TVF");
    }
}
