//! Subqueries inside expressions are checked before planning. `IN (SELECT
//! ...)` and `EXISTS` become semi and anti joins; a scalar subquery (`(SELECT
//! ...)` as a value) is refused: over streams it is a join without a key.
//! Nesting is limited, as DataFusion's planning of deeply nested subqueries
//! takes exponential time. Subqueries in FROM (derived tables, window TVF
//! arguments) are fine.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Statement, TableFactor, Visit, Visitor};
use sluice_common::{Error, Result};

/// IN and EXISTS subqueries nested deeper than this are refused.
const MAX_NESTING: usize = 3;

/// Fail on the first scalar subquery in `stmt`, or IN and EXISTS
/// subqueries nested too deep.
pub fn reject_expression_subqueries(stmt: &Statement) -> Result<()> {
    let mut v = Find {
        in_table_function: 0,
        depth: 0,
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
    /// IN and EXISTS subqueries around the expression visited.
    depth: usize,
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
        let found = match e {
            Expr::Subquery(_) => Error::plan(
                "scalar subqueries ((SELECT ...) as a value) are not supported on streams; \
                 join the subquery in FROM instead",
            )
            .near("SELECT SELECT"),
            Expr::InSubquery { .. } | Expr::Exists { .. } => {
                self.depth += 1;
                if self.depth <= MAX_NESTING {
                    return ControlFlow::Continue(());
                }
                Error::plan(format!(
                    "IN and EXISTS subqueries nest at most {MAX_NESTING} deep"
                ))
                .near(if matches!(e, Expr::Exists { .. }) {
                    "EXISTS"
                } else {
                    "IN SELECT"
                })
            }
            _ => return ControlFlow::Continue(()),
        };
        self.found = Some(found);
        ControlFlow::Break(())
    }

    fn post_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if self.in_table_function == 0 && matches!(e, Expr::InSubquery { .. } | Expr::Exists { .. })
        {
            self.depth -= 1;
        }
        ControlFlow::Continue(())
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
    fn scalar_subqueries_are_refused_relations_are_not() {
        assert!(check("SELECT (SELECT 1)").is_err());
        check("SELECT a FROM t WHERE a IN (SELECT b FROM u)").expect("semi join");
        check("SELECT a FROM t WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.b = t.a)")
            .expect("anti join");
        let deep = "SELECT a FROM t WHERE a IN (SELECT a FROM t WHERE a IN (SELECT a FROM t \
                    WHERE a IN (SELECT a FROM t WHERE a IN (SELECT a FROM t))))";
        assert!(check(deep).is_err());
        check("SELECT a FROM (SELECT a FROM t) s").expect("derived table");
        check("SELECT * FROM TUMBLE((SELECT * FROM t), ts, INTERVAL '1' SECOND)")
            .expect("TVF argument");
        check("SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))")
            .expect("TVF");
    }
}
