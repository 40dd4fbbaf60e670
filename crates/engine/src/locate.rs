//! Where in the statement an error is: the SQL span DataFusion reported, the
//! name an error points at ([`Error::Near`]), or a name its message quotes
//! (a table, column, function or option), found among the statement's
//! tokens; the statement's start when none of these is there.

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use sluice_common::{datafusion_message, is_user_internal_error, Error, SourceLocation};
use sluice_sql::dialect::SluiceDialect;
use sluice_sql::parser::ParsedStatement;

/// A statement and its tokens, to find names in.
struct Statement<'a> {
    stmt: &'a ParsedStatement,
    tokens: Vec<TokenWithSpan>,
}

/// Give `e` a position in `stmt` and a message in SQL terms.
pub(crate) fn locate(e: Error, stmt: &ParsedStatement) -> Error {
    if matches!(e, Error::At { .. }) {
        return e;
    }
    let tokens = Tokenizer::new(&SluiceDialect, &stmt.text)
        .tokenize_with_location()
        .unwrap_or_default();
    let s = Statement { stmt, tokens };
    match e {
        Error::Near { near, source } => {
            let loc = near
                .iter()
                .find_map(|alt| {
                    let words: Vec<&str> = alt.split_whitespace().collect();
                    s.find_words(&words)
                })
                .unwrap_or_else(|| stmt.location.clone());
            clean(*source).at(loc)
        }
        Error::DataFusion(df) => {
            let span = df
                .diagnostic()
                .and_then(|d| d.span)
                .filter(|s| s.start.line > 0)
                .map(|s| SourceLocation {
                    file: stmt.location.file.clone(),
                    line: s.start.line,
                    column: s.start.column,
                });
            let err = clean(Error::DataFusion(df));
            // A span on the statement's first token says no more than the
            // statement's position: a name the message gives is better.
            let span =
                span.filter(|s| (s.line, s.column) != (stmt.location.line, stmt.location.column));
            let loc = span
                .or_else(|| s.find_quoted(&err.message()))
                .unwrap_or_else(|| stmt.location.clone());
            err.at(loc)
        }
        e => {
            let loc = s
                .find_quoted(&e.message())
                .unwrap_or_else(|| stmt.location.clone());
            clean(e).at(loc)
        }
    }
}

/// DataFusion errors the user caused become plan errors with a message in
/// SQL terms; the others keep their kind.
fn clean(e: Error) -> Error {
    match e {
        Error::DataFusion(df) => {
            let msg = datafusion_message(&df);
            match df.find_root() {
                DataFusionError::Plan(_)
                | DataFusionError::SchemaError(..)
                | DataFusionError::SQL(..)
                | DataFusionError::NotImplemented(_)
                | DataFusionError::ArrowError(..)
                | DataFusionError::Execution(_) => Error::Plan(msg),
                DataFusionError::Internal(m) if is_user_internal_error(m) => Error::Plan(msg),
                _ => Error::DataFusion(df),
            }
        }
        e => e,
    }
}

/// Keywords a message may be about, found in the statement when the
/// message names nothing else: (what the message says, the keyword).
const KEYWORDS: &[(&str, &str)] = &[
    ("LIMIT", "LIMIT"),
    ("OFFSET", "OFFSET"),
    ("UNION", "UNION"),
    ("INTERSECT", "INTERSECT"),
    ("EXCEPT", "EXCEPT"),
    ("HAVING", "HAVING"),
    ("ORDER BY", "ORDER"),
    ("GROUP BY", "GROUP"),
    ("WHERE", "WHERE"),
    ("JOIN", "JOIN"),
    ("VALUES", "VALUES"),
    ("insert", "INSERT"),
    ("INSERT", "INSERT"),
    ("WITH", "WITH"),
];

/// Names a message points at: quoted ones (`'x'`, `"x"`; `'f(INT)'` names
/// `f`), the word after "named" (`No field named x.`), a leading
/// `FUNCTION:`, then keywords it mentions.
fn quoted_names(msg: &str) -> Vec<String> {
    let mut names = Vec::new();
    for quote in ['\'', '"', '`'] {
        let mut parts = msg.split(quote);
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            if !inside.is_empty() && inside.len() <= 128 {
                names.push(inside.to_string());
                // `'upper(INT)'`: the function.
                if let Some((f, _)) = inside.split_once('(') {
                    if !f.is_empty() {
                        names.push(f.to_string());
                    }
                }
            }
        }
    }
    if let Some(i) = msg.find("named ") {
        let word: String = msg[i + 6..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '$'))
            .collect();
        let word = word.trim_end_matches('.');
        if !word.is_empty() {
            names.insert(0, word.to_string());
        }
    }
    // "DATE_FORMAT: argument 1 must be ...".
    if let Some((head, _)) = msg.split_once(':') {
        if !head.is_empty() && head.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            names.push(head.to_string());
        }
    }
    for (said, keyword) in KEYWORDS {
        if msg.contains(said) {
            names.push(keyword.to_string());
        }
    }
    names
}

impl Statement<'_> {
    /// The position of the first name `msg` quotes that the statement has.
    fn find_quoted(&self, msg: &str) -> Option<SourceLocation> {
        quoted_names(msg).iter().find_map(|name| {
            // `t.col` is found as the words `t`, `col`, or as `col` alone.
            let is_ident = |w: &str| {
                !w.is_empty()
                    && w.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
            };
            let words: Vec<&str> = name.split('.').collect();
            if words.len() == 1 || !words.iter().all(|w| is_ident(w)) {
                return self.find_words(&[name]);
            }
            self.find_words(&words)
                .or_else(|| self.find_words(&words[words.len() - 1..]))
        })
    }

    /// Find `words` in order among the tokens; the position of the last.
    fn find_words(&self, words: &[&str]) -> Option<SourceLocation> {
        let mut found = 0;
        let mut last = None;
        for t in &self.tokens {
            if found < words.len() && matches_word(t, words[found]) {
                last = Some(t);
                found += 1;
            }
        }
        let t = last.filter(|_| found == words.len() && found > 0)?;
        Some(absolute(self.stmt, t))
    }
}

/// `word` may list alternatives: `DISTINCT|GROUP`.
fn matches_word(t: &TokenWithSpan, word: &str) -> bool {
    word.split('|').any(|word| match &t.token {
        Token::Word(w) => w.value.eq_ignore_ascii_case(word),
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s == word,
        _ => false,
    })
}

/// A token's position in the whole text (the statement starts at its
/// location).
fn absolute(stmt: &ParsedStatement, t: &TokenWithSpan) -> SourceLocation {
    let (line, column) = (t.span.start.line, t.span.start.column);
    let start = &stmt.location;
    SourceLocation {
        file: start.file.clone(),
        line: start.line + line - 1,
        column: if line == 1 {
            start.column + column - 1
        } else {
            column
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sql::parser::parse_sql;

    fn stmt(sql: &str) -> ParsedStatement {
        parse_sql(sql, None)
            .expect("parses")
            .pop()
            .expect("a statement")
    }

    fn position(e: Error) -> (u64, u64) {
        match e {
            Error::At { location, .. } => (location.line, location.column),
            other => panic!("no position: {other}"),
        }
    }

    #[test]
    fn near_words_point_at_the_last_word() {
        let s = stmt("SELECT ts FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))");
        let e = Error::plan("x").near("DESCRIPTOR ts");
        assert_eq!(position(locate(e, &s)), (1, 49));
    }

    #[test]
    fn quoted_names_in_messages_are_found() {
        let s = stmt("SELECT a,\n  nope(a) FROM t");
        let e = Error::plan("Invalid function 'nope'");
        assert_eq!(position(locate(e, &s)), (2, 3));
        let e = Error::plan("No field named t.zz. Valid fields are t.a");
        let s = stmt("SELECT t.zz FROM t");
        assert_eq!(position(locate(e, &s)), (1, 10));
    }

    #[test]
    fn without_a_name_the_statement_start() {
        let s = stmt("  SELECT 1");
        assert_eq!(position(locate(Error::plan("bad"), &s)), (1, 3));
    }
}
