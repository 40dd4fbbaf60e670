//! Splits SQL text into statements and parses Sluice's own `CREATE TABLE`
//! (with `WATERMARK FOR` and `WITH (...)` connector options); every other
//! statement is parsed by sqlparser with [`SluiceDialect`].

use datafusion::sql::sqlparser::ast::{Ident, Statement};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};
use sluice_common::{Error, Result, SourceLocation};

use crate::commands::{is_command, parse_command, SessionCommand};
use crate::create_table::{is_create_table, parse_create_table};
use crate::dialect::{with_parse_budget, SluiceDialect};
use crate::nesting::{check_nesting, PARSER_RECURSION_LIMIT};

/// One parsed statement and where it starts in the text.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    /// The statement.
    pub statement: SluiceStatement,
    /// Position of its first token (1-based line and column).
    pub location: SourceLocation,
    /// The statement's own text.
    pub text: String,
}

/// Statements Sluice parses itself, plus everything sqlparser parses.
#[derive(Debug, Clone)]
pub enum SluiceStatement {
    /// `CREATE TABLE` with streaming extensions.
    CreateTable(Box<CreateTableDef>),
    /// `SET`, `RESET`, `SHOW JOBS`, `STOP JOB`, `SHOW CREATE TABLE`.
    Command(SessionCommand),
    /// Any other statement.
    Sql(Box<Statement>),
}

pub use crate::create_table::{ColumnDef, CreateTableDef, MetadataDef, WatermarkDef};

/// The message when the parser's budget ran out.
const TOO_COMPLEX: &str = "statement too complex to parse: a deeply nested expression with a \
     syntax error inside? (the position is where the parser gave up)";

/// Parse SQL text into statements. `file` is used in error positions.
pub fn parse_sql(sql: &str, file: Option<&str>) -> Result<Vec<ParsedStatement>> {
    let dialect = SluiceDialect;
    let tokens = Tokenizer::new(&dialect, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| {
            let location = SourceLocation {
                file: file.map(str::to_string),
                line: e.location.line,
                column: e.location.column,
            };
            Error::Syntax(e.message).at(location)
        })?;
    if let Err(deep) = check_nesting(&tokens) {
        let start = tokens
            .get(deep.token)
            .map(|t| t.span.start)
            .unwrap_or(Location { line: 1, column: 1 });
        return Err(Error::Syntax(deep.message).at(to_location(start, file)));
    }
    // Generous for any statement that parses; small next to the
    // exponential retries of a deep one that does not.
    let budget = 32 * tokens.len() + 10_000;
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(tokens);
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let start = parser.peek_token();
        if start.token == Token::EOF {
            break;
        }
        let location = to_location(start.span.start, file);
        let (statement, gave_up) = with_parse_budget(budget, || parse_one(&mut parser));
        let statement = statement.map_err(|e| {
            let e = match e {
                ParserError::RecursionLimitExceeded if gave_up => {
                    ParserError::ParserError(TOO_COMPLEX.to_string())
                }
                e => e,
            };
            syntax_error(e, &parser, file, sql)
        })?;
        let end = parser.peek_token();
        if !matches!(end.token, Token::SemiColon | Token::EOF) {
            let e = ParserError::ParserError(format!(
                "expected ';' or end of input after the statement, found: {}",
                end.token
            ));
            return Err(syntax_error(e, &parser, file, sql));
        }
        let text = slice_text(sql, start.span.start, end.span.start);
        out.push(ParsedStatement {
            statement,
            location,
            text,
        });
    }
    Ok(out)
}

fn to_location(loc: Location, file: Option<&str>) -> SourceLocation {
    SourceLocation {
        file: file.map(str::to_string),
        line: loc.line,
        column: loc.column,
    }
}

/// The text between two token positions (end exclusive; EOF = rest).
fn slice_text(sql: &str, start: Location, end: Location) -> String {
    let offset = |loc: Location| -> usize {
        if loc.line == 0 {
            return sql.len();
        }
        let mut line = 1;
        let mut col = 1;
        for (i, ch) in sql.char_indices() {
            if line == loc.line && col == loc.column {
                return i;
            }
            if ch == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
        }
        sql.len()
    };
    let (a, b) = (offset(start), offset(end));
    sql.get(a..b.max(a)).unwrap_or("").trim().to_string()
}

/// A sqlparser error with the position of the token it stopped at (the
/// end of the text when it stopped there).
fn syntax_error(e: ParserError, parser: &Parser, file: Option<&str>, sql: &str) -> Error {
    let msg = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "expression nested too deeply".to_string(),
    };
    // sqlparser appends " at Line: l, Column: c"; we report the position ourselves.
    let (msg, pos) = match msg.rfind(" at Line: ") {
        Some(i) => {
            let pos = parse_line_col(&msg[i + 4..]);
            (msg[..i].to_string(), pos)
        }
        None => (msg, None),
    };
    let loc = pos.unwrap_or_else(|| {
        let t = parser.peek_token();
        (t.span.start.line, t.span.start.column)
    });
    let loc = if loc.0 == 0 { end_of(sql) } else { loc };
    Error::Syntax(msg).at(SourceLocation {
        file: file.map(str::to_string),
        line: loc.0,
        column: loc.1,
    })
}

/// The line and column just after the last character of `sql` that is not
/// whitespace (where an unfinished statement stopped).
fn end_of(sql: &str) -> (u64, u64) {
    let text = sql.trim_end();
    let line = text.lines().count().max(1) as u64;
    let last = text.lines().last().unwrap_or("");
    (line, last.chars().count() as u64 + 1)
}

fn parse_line_col(s: &str) -> Option<(u64, u64)> {
    // "Line: 3, Column: 7"
    let s = s.strip_prefix("Line: ")?;
    let (line, rest) = s.split_once(", Column: ")?;
    let col: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((line.trim().parse().ok()?, col.parse().ok()?))
}

fn parse_one(parser: &mut Parser) -> Result<SluiceStatement, ParserError> {
    if is_command(parser) {
        return parse_command(parser).map(SluiceStatement::Command);
    }
    if is_create_table(parser) {
        return parse_create_table(parser).map(|c| SluiceStatement::CreateTable(Box::new(c)));
    }
    parser
        .parse_statement()
        .map(|s| SluiceStatement::Sql(Box::new(s)))
}

/// Unquoted identifiers are case-insensitive (lower-cased), quoted ones kept.
pub fn ident_name(i: Ident) -> String {
    if i.quote_style.is_some() {
        i.value
    } else {
        i.value.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(sql: &str) -> CreateTableDef {
        let stmts = parse_sql(sql, None).expect("parses");
        match &stmts[0].statement {
            SluiceStatement::CreateTable(c) => c.as_ref().clone(),
            other => panic!("not a create table: {other:?}"),
        }
    }

    #[test]
    fn create_table_with_watermark_and_options() {
        let c = create(
            "CREATE TABLE Bid (auction BIGINT, price DECIMAL(10, 2), ts TIMESTAMP(3) NOT NULL,\n\
             WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)\n\
             WITH ('connector' = 'filesystem', path = '/tmp/x', properties.bootstrap.servers = 'h:1')",
        );
        assert_eq!(c.name, "bid");
        assert_eq!(c.columns.len(), 3);
        assert!(c.columns[2].not_null);
        let wm = c.watermark.expect("watermark");
        assert_eq!(wm.column, "ts");
        assert_eq!(wm.expr.to_string(), "ts - INTERVAL '5' SECOND");
        assert_eq!(c.options[0], ("connector".into(), "filesystem".into()));
        assert_eq!(c.options[2].0, "properties.bootstrap.servers");
    }

    #[test]
    fn statements_and_positions() {
        let stmts = parse_sql("SELECT 1;\n  SELECT 2 ;", Some("f.sql")).expect("parses");
        assert_eq!(stmts.len(), 2);
        assert_eq!(stmts[1].location.line, 2);
        assert_eq!(stmts[1].location.column, 3);
        assert_eq!(stmts[1].text, "SELECT 2");
    }

    #[test]
    fn unexpected_end_points_after_the_text() {
        let err = parse_sql("SELECT 1;\nSELECT 1 +\n  2 +\n", Some("f.sql")).expect_err("fails");
        assert!(
            err.to_string().starts_with("f.sql:3:6: syntax error"),
            "{err}"
        );
        let err = parse_sql("SELECT (1 +\n  2\n", Some("f.sql")).expect_err("fails");
        assert_eq!(
            err.to_string(),
            "f.sql:1:8: syntax error: this parenthesis is never closed"
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse_sql("SELECT 1;\nSELEC 2", Some("f.sql")).expect_err("fails");
        let msg = err.to_string();
        assert!(msg.starts_with("f.sql:2:1: syntax error"), "{msg}");
    }
}
