//! `CREATE TABLE` with Flink's streaming extensions: `WATERMARK FOR`,
//! `PRIMARY KEY ... NOT ENFORCED`, `METADATA [FROM 'key'] [VIRTUAL]` columns,
//! computed columns (`name AS expr`) and `WITH (...)` connector options.

use datafusion::sql::sqlparser::ast::{DataType, Expr};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::parser::ident_name;

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
    /// `name AS expr`: a computed column (its type is the expression's;
    /// `data_type` is `Unspecified`).
    pub computed: Option<Expr>,
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

pub(crate) fn is_create_table(parser: &Parser) -> bool {
    let [a, b, c] = parser.peek_tokens();
    let kw = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
    kw(&a, Keyword::CREATE)
        && (kw(&b, Keyword::TABLE)
            || ((kw(&b, Keyword::TEMPORARY) || kw(&b, Keyword::TEMP)) && kw(&c, Keyword::TABLE)))
}

pub(crate) fn parse_create_table(p: &mut Parser) -> Result<CreateTableDef, ParserError> {
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
    if p.parse_keyword(Keyword::AS) {
        // A computed column: `name AS expr [COMMENT '...']`.
        let expr = p.parse_expr()?;
        if p.parse_keyword(Keyword::COMMENT) {
            let _ = p.next_token();
        }
        return Ok(ColumnDef {
            name,
            data_type: DataType::Unspecified,
            not_null: false,
            metadata: None,
            computed: Some(expr),
        });
    }
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
        } else if p.parse_keyword(Keyword::COMMENT) {
            let _ = p.next_token();
        } else {
            break;
        }
    }
    Ok(ColumnDef {
        name,
        data_type,
        not_null,
        metadata,
        computed: None,
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
