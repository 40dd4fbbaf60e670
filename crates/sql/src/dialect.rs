//! The SQL dialect Sluice parses: DataFusion's generic dialect plus the two
//! Flink forms sqlparser does not accept on its own.
//!
//! * `TABLE name` as a function argument, as in
//!   `TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))`. The
//!   prefix hook turns it into the call `TABLE(name)`, which the window
//!   relation planner (`crate::window`) reads back.
//! * `WATERMARK FOR ts AS ...` in `CREATE TABLE` is parsed by
//!   [`crate::parser`], which drives the sqlparser `Parser` itself.

use std::cell::Cell;

use datafusion::sql::sqlparser::ast::{Expr, Ident, ObjectName, ObjectNamePart};
use datafusion::sql::sqlparser::dialect::Dialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

/// Name of the internal function that carries a `TABLE t` argument.
pub const TABLE_ARG_FUNCTION: &str = "TABLE";

thread_local! {
    /// Prefix expressions the parser may still start on this thread (see
    /// [`with_parse_budget`]); unlimited outside it.
    static PREFIX_BUDGET: Cell<Option<usize>> = const { Cell::new(None) };
    /// Whether the budget ran out (the parser gave up).
    static BUDGET_SPENT: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` (a parse) allowing at most `budget` prefix expressions: sqlparser
/// backtracks, and on an error deep inside a nested expression it retries
/// alternatives at every level, which takes exponential time. Past the
/// budget every prefix fails at once with the recursion-limit error, which
/// the parser never retries. Returns `f`'s result and whether the budget
/// ran out.
pub fn with_parse_budget<T>(budget: usize, f: impl FnOnce() -> T) -> (T, bool) {
    PREFIX_BUDGET.with(|b| b.set(Some(budget)));
    BUDGET_SPENT.with(|s| s.set(false));
    let out = f();
    PREFIX_BUDGET.with(|b| b.set(None));
    (out, BUDGET_SPENT.with(Cell::get))
}

/// Take one prefix from the budget; false when none is left.
fn spend_prefix() -> bool {
    PREFIX_BUDGET.with(|b| match b.get() {
        None => true,
        Some(0) => {
            BUDGET_SPENT.with(|s| s.set(true));
            false
        }
        Some(n) => {
            b.set(Some(n - 1));
            true
        }
    })
}

/// Sluice's dialect. Identifiers may be quoted with `"` or `` ` `` (Flink).
#[derive(Debug, Default, Clone, Copy)]
pub struct SluiceDialect;

impl Dialect for SluiceDialect {
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '"' || ch == '`'
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_' || ch == '@'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '@' || ch == '$'
    }

    /// `FOR SYSTEM_TIME AS OF` (temporal joins).
    fn supports_table_versioning(&self) -> bool {
        true
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    fn supports_group_by_expr(&self) -> bool {
        true
    }

    fn supports_named_fn_args_with_rarrow_operator(&self) -> bool {
        true
    }

    fn supports_window_clause_named_window_reference(&self) -> bool {
        true
    }

    fn supports_window_function_null_treatment_arg(&self) -> bool {
        true
    }

    fn supports_projection_trailing_commas(&self) -> bool {
        false
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        if !spend_prefix() {
            return Some(Err(ParserError::RecursionLimitExceeded));
        }
        // `TABLE name` (not `TABLE(`) or `TABLE (SELECT ...)`: a table
        // argument of a window TVF.
        let [first, second, third] = parser.peek_tokens();
        let is_table_kw = matches!(&first, Token::Word(w) if w.keyword == Keyword::TABLE);
        if !is_table_kw {
            return None;
        }
        let is_name = matches!(&second, Token::Word(_) | Token::DoubleQuotedString(_));
        let is_query = second == Token::LParen
            && matches!(&third, Token::Word(w) if matches!(w.keyword, Keyword::SELECT | Keyword::WITH | Keyword::VALUES));
        if is_name {
            parser.next_token();
            let arg = parser.parse_object_name(false).map(table_arg);
            return Some(arg.and_then(|a| partition_by(parser, a)));
        }
        if is_query {
            parser.next_token();
            parser.next_token();
            return Some(parse_subquery_arg(parser).and_then(|a| partition_by(parser, a)));
        }
        None
    }
}

/// The call wrapping a table argument with its `PARTITION BY` keys
/// (`SESSION(TABLE t PARTITION BY k, ...)`): `__PARTITION_BY(table, k...)`.
pub const PARTITION_BY_FUNCTION: &str = "__PARTITION_BY";

/// `PARTITION BY k` or `PARTITION BY (k1, k2)` after a table argument.
fn partition_by(parser: &mut Parser, table: Expr) -> Result<Expr, ParserError> {
    if !parser.parse_keywords(&[Keyword::PARTITION, Keyword::BY]) {
        return Ok(table);
    }
    let keys = if parser.consume_token(&Token::LParen) {
        let keys = parser.parse_comma_separated(Parser::parse_expr)?;
        parser.expect_token(&Token::RParen)?;
        keys
    } else {
        vec![parser.parse_expr()?]
    };
    let mut args = vec![table];
    args.extend(keys);
    Ok(crate::ast::call(PARTITION_BY_FUNCTION, args))
}

/// `(SELECT ...)` after `TABLE (`: the subquery, up to its `)`.
fn parse_subquery_arg(parser: &mut Parser) -> Result<Expr, ParserError> {
    let query = parser.parse_query()?;
    parser.expect_token(&Token::RParen)?;
    Ok(Expr::Subquery(query))
}

/// Wrap a table name as the internal `TABLE(name)` call.
fn table_arg(name: ObjectName) -> Expr {
    let idents: Vec<Ident> = name
        .0
        .into_iter()
        .filter_map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i),
            _ => None,
        })
        .collect();
    let arg = if idents.len() == 1 {
        Expr::Identifier(idents.into_iter().next().unwrap_or_else(|| Ident::new("")))
    } else {
        Expr::CompoundIdentifier(idents)
    };
    crate::ast::call(TABLE_ARG_FUNCTION, vec![arg])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flink_tvf() {
        let sql = "SELECT * FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))";
        let stmts = Parser::parse_sql(&SluiceDialect, sql).expect("parses");
        let text = stmts[0].to_string();
        assert!(text.contains("TUMBLE(TABLE(bid), DESCRIPTOR(ts)"), "{text}");
    }

    #[test]
    fn parses_table_subquery_argument() {
        let sql = "SELECT * FROM TABLE(TUMBLE(TABLE (SELECT * FROM bid WHERE x > 1), DESCRIPTOR(ts), INTERVAL '10' SECOND))";
        let stmts = Parser::parse_sql(&SluiceDialect, sql).expect("parses");
        let text = stmts[0].to_string();
        assert!(
            text.contains("TUMBLE((SELECT * FROM bid WHERE x > 1), DESCRIPTOR(ts)"),
            "{text}"
        );
    }

    #[test]
    fn parses_partition_by_after_a_table_argument() {
        let sql = "SELECT * FROM TABLE(SESSION(TABLE bid PARTITION BY (a, b), DESCRIPTOR(ts), INTERVAL '1' SECOND))";
        let stmt = Parser::parse_sql(&SluiceDialect, sql).expect("parses");
        let text = stmt[0].to_string();
        assert!(
            text.contains("SESSION(__PARTITION_BY(TABLE(bid), a, b), DESCRIPTOR(ts)"),
            "{text}"
        );
    }

    #[test]
    fn table_keyword_elsewhere_still_works() {
        Parser::parse_sql(&SluiceDialect, "SELECT a FROM t").expect("parses");
    }
}
