//! Splits SQL text into statements and parses Sluice's own `CREATE TABLE`
//! (with `WATERMARK FOR` and `WITH (...)` connector options); every other
//! statement is parsed by sqlparser with [`SluiceDialect`].

use datafusion::sql::sqlparser::ast::{DataType, Expr, Ident, Statement};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};
use sluice_common::{Error, Result, SourceLocation};

use crate::commands::{is_command, parse_command, SessionCommand};
use crate::dialect::SluiceDialect;

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

/// A column in `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// Column name (as written; unquoted names are lower-cased).
    pub name: String,
    /// SQL type.
    pub data_type: DataType,
    /// `NOT NULL` was given.
    pub not_null: bool,
    /// `METADATA [FROM 'key'] [VIRTUAL]`: the connector's metadata key
    /// (the column name when no `FROM` is given).
    pub metadata: Option<MetadataDef>,
}

/// A metadata column: its value comes from the connector (a Kafka record's
/// partition, offset, timestamp, ...), not from the record's payload.
#[derive(Debug, Clone)]
pub struct MetadataDef {
    /// The connector's metadata key.
    pub key: String,
    /// `VIRTUAL`: read-only, never written by a sink.
    pub is_virtual: bool,
}

/// `WATERMARK FOR column AS expr`.
#[derive(Debug, Clone)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: String,
    /// The watermark expression, usually `column - INTERVAL 'n' SECOND`.
    pub expr: Expr,
}

/// `CREATE [TEMPORARY] TABLE [IF NOT EXISTS] name (...) [WITH (...)]`.
#[derive(Debug, Clone)]
pub struct CreateTableDef {
    /// Table name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
    /// Event-time declaration.
    pub watermark: Option<WatermarkDef>,
    /// `PRIMARY KEY (...) NOT ENFORCED` columns (informational).
    pub primary_key: Vec<String>,
    /// Connector options in the order written; keys lower-cased.
    pub options: Vec<(String, String)>,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
}

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
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let mut out = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let start = parser.peek_token();
        if start.token == Token::EOF {
            break;
        }
        let location = to_location(start.span.start, file);
        let statement = parse_one(&mut parser).map_err(|e| syntax_error(e, &parser, file))?;
        let end = parser.peek_token();
        if !matches!(end.token, Token::SemiColon | Token::EOF) {
            let e = ParserError::ParserError(format!(
                "expected ';' or end of input after the statement, found: {}",
                end.token
            ));
            return Err(syntax_error(e, &parser, file));
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

/// A sqlparser error with the position of the token it stopped at.
fn syntax_error(e: ParserError, parser: &Parser, file: Option<&str>) -> Error {
    let msg = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "statement nested too deeply".to_string(),
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
    Error::Syntax(msg).at(SourceLocation {
        file: file.map(str::to_string),
        line: loc.0,
        column: loc.1,
    })
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

fn is_create_table(parser: &Parser) -> bool {
    let [a, b, c] = parser.peek_tokens();
    let kw = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
    kw(&a, Keyword::CREATE)
        && (kw(&b, Keyword::TABLE)
            || ((kw(&b, Keyword::TEMPORARY) || kw(&b, Keyword::TEMP)) && kw(&c, Keyword::TABLE)))
}

fn parse_create_table(p: &mut Parser) -> Result<CreateTableDef, ParserError> {
    p.expect_keyword_is(Keyword::CREATE)?;
    let _ = p.parse_one_of_keywords(&[Keyword::TEMPORARY, Keyword::TEMP]);
    p.expect_keyword_is(Keyword::TABLE)?;
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name(p)?;
    if p.parse_keyword(Keyword::AS) {
        return p.expected(
            "a column list; CREATE TABLE ... AS SELECT is not supported",
            p.peek_token(),
        );
    }
    p.expect_token(&Token::LParen)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    let mut primary_key = Vec::new();
    loop {
        if parse_word(p, "WATERMARK") {
            if watermark.is_some() {
                return p.expected("one WATERMARK clause", p.peek_token());
            }
            p.expect_keyword_is(Keyword::FOR)?;
            let column = ident_name(p.parse_identifier()?);
            p.expect_keyword_is(Keyword::AS)?;
            let expr = p.parse_expr()?;
            watermark = Some(WatermarkDef { column, expr });
        } else if p.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
            p.expect_token(&Token::LParen)?;
            loop {
                primary_key.push(ident_name(p.parse_identifier()?));
                if !p.consume_token(&Token::Comma) {
                    break;
                }
            }
            p.expect_token(&Token::RParen)?;
            let _ = p.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
        } else {
            columns.push(parse_column(p, &mut primary_key)?);
        }
        if p.consume_token(&Token::Comma) {
            if p.peek_token().token == Token::RParen {
                break; // trailing comma
            }
            continue;
        }
        break;
    }
    p.expect_token(&Token::RParen)?;
    let options = if p.parse_keyword(Keyword::WITH) {
        parse_options(p)?
    } else {
        Vec::new()
    };
    Ok(CreateTableDef {
        name,
        columns,
        watermark,
        primary_key,
        options,
        if_not_exists,
    })
}

fn parse_column(p: &mut Parser, primary_key: &mut Vec<String>) -> Result<ColumnDef, ParserError> {
    let name = ident_name(p.parse_identifier()?);
    let data_type = p.parse_data_type()?;
    let mut not_null = false;
    let mut metadata = None;
    loop {
        if parse_word(p, "METADATA") {
            let key = if p.parse_keyword(Keyword::FROM) {
                let t = p.next_token();
                match t.token {
                    Token::SingleQuotedString(k) => k,
                    _ => return p.expected("a quoted metadata key after FROM", t),
                }
            } else {
                name.clone()
            };
            let is_virtual = parse_word(p, "VIRTUAL");
            metadata = Some(MetadataDef { key, is_virtual });
        } else if p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
            not_null = true;
        } else if p.parse_keyword(Keyword::NULL) {
            not_null = false;
        } else if p.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
            primary_key.push(name.clone());
            let _ = p.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
        } else {
            break;
        }
    }
    Ok(ColumnDef {
        name,
        data_type,
        not_null,
        metadata,
    })
}

/// `( key = value [, ...] )` where keys are identifiers (possibly dotted) or
/// string literals and values are literals or identifiers.
fn parse_options(p: &mut Parser) -> Result<Vec<(String, String)>, ParserError> {
    p.expect_token(&Token::LParen)?;
    let mut out = Vec::new();
    if p.consume_token(&Token::RParen) {
        return Ok(out);
    }
    loop {
        let key = option_key(p)?;
        p.expect_token(&Token::Eq)?;
        let value = option_value(p)?;
        out.push((key.to_ascii_lowercase(), value));
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    p.expect_token(&Token::RParen)?;
    Ok(out)
}

fn option_key(p: &mut Parser) -> Result<String, ParserError> {
    let t = p.next_token();
    match t.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s),
        Token::Word(w) => {
            let mut key = w.value;
            while p.consume_token(&Token::Period) {
                let next = p.next_token();
                match next.token {
                    Token::Word(w) => {
                        key.push('.');
                        key.push_str(&w.value);
                    }
                    _ => return p.expected("an option name", next),
                }
            }
            Ok(key)
        }
        _ => p.expected("an option name", t),
    }
}

fn option_value(p: &mut Parser) -> Result<String, ParserError> {
    let t: TokenWithSpan = p.next_token();
    match t.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s),
        Token::Number(n, _) => Ok(n),
        Token::Minus => {
            let n = p.next_token();
            match n.token {
                Token::Number(n, _) => Ok(format!("-{n}")),
                _ => p.expected("a number", n),
            }
        }
        Token::Word(w) => Ok(w.value),
        _ => p.expected("an option value", t),
    }
}

/// Consume the next token if it is the (non-reserved) word `word`.
fn parse_word(p: &mut Parser, word: &str) -> bool {
    let is_word = matches!(&p.peek_token().token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
    if is_word {
        p.next_token();
    }
    is_word
}

fn object_name(p: &mut Parser) -> Result<String, ParserError> {
    let name = p.parse_object_name(false)?;
    Ok(name
        .0
        .iter()
        .map(|part| match part.as_ident() {
            Some(i) => ident_name(i.clone()),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join("."))
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
    fn syntax_error_has_position() {
        let err = parse_sql("SELECT 1;\nSELEC 2", Some("f.sql")).expect_err("fails");
        let msg = err.to_string();
        assert!(msg.starts_with("f.sql:2:1: syntax error"), "{msg}");
    }
}
