//! Session commands that are not queries: `SET`, `RESET`, `SHOW JOBS`,
//! `STOP JOB n`, `SHOW CREATE TABLE t` and `SHOW MATERIALIZED VIEWS`.

use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::parser::ident_name;

/// A session command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    /// `SET` (list all settings) or `SET key = value`.
    Set(Option<(String, String)>),
    /// `RESET` (all settings) or `RESET key`.
    Reset(Option<String>),
    /// `SHOW JOBS`.
    ShowJobs,
    /// `STOP JOB n [WITH SAVEPOINT]`.
    StopJob(u64, bool),
    /// `SHOW CREATE TABLE name` (or `VIEW`).
    ShowCreateTable(String),
    /// `SHOW MATERIALIZED VIEWS`.
    ShowMaterializedViews,
}

fn word(t: &Token, text: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(text))
}

fn is_end(t: &Token) -> bool {
    matches!(t, Token::SemiColon | Token::EOF)
}

/// Whether the next tokens start a session command.
pub(crate) fn is_command(p: &Parser) -> bool {
    let [a, b, c] = p.peek_tokens();
    (word(&a, "SET") && !word(&b, "TIME") && !word(&b, "TRANSACTION"))
        || word(&a, "RESET")
        || (word(&a, "SHOW") && word(&b, "JOBS"))
        || (word(&a, "SHOW") && word(&b, "MATERIALIZED") && word(&c, "VIEWS"))
        || (word(&a, "STOP") && word(&b, "JOB"))
        || (word(&a, "SHOW") && word(&b, "CREATE") && (word(&c, "TABLE") || word(&c, "VIEW")))
}

/// Parse a session command (call only when [`is_command`] said so).
pub(crate) fn parse_command(p: &mut Parser) -> Result<SessionCommand, ParserError> {
    let first = p.next_token();
    if word(&first.token, "SET") {
        if is_end(&p.peek_token().token) {
            return Ok(SessionCommand::Set(None));
        }
        let key = setting_text(p, true)?;
        if !p.consume_token(&Token::Eq) {
            return p.expected("'=' after the setting name", p.peek_token());
        }
        let value = setting_text(p, false)?;
        return Ok(SessionCommand::Set(Some((key, value))));
    }
    if word(&first.token, "RESET") {
        if is_end(&p.peek_token().token) {
            return Ok(SessionCommand::Reset(None));
        }
        return Ok(SessionCommand::Reset(Some(setting_text(p, true)?)));
    }
    if word(&first.token, "STOP") {
        p.next_token(); // JOB
        let t = p.next_token();
        let id = match &t.token {
            Token::Number(n, _) => n.parse().ok(),
            Token::SingleQuotedString(s) => s.parse().ok(),
            _ => None,
        };
        let Some(id) = id else {
            return p.expected("a job id (a number from SHOW JOBS)", t);
        };
        let t = p.peek_token();
        if is_end(&t.token) {
            return Ok(SessionCommand::StopJob(id, false));
        }
        let with = p.next_token();
        let save = p.next_token();
        if !word(&with.token, "WITH") || !word(&save.token, "SAVEPOINT") {
            return p.expected("the end of STOP JOB, or WITH SAVEPOINT", with);
        }
        return Ok(SessionCommand::StopJob(id, true));
    }
    // SHOW JOBS | SHOW CREATE TABLE|VIEW name
    let second = p.next_token();
    if word(&second.token, "JOBS") {
        return Ok(SessionCommand::ShowJobs);
    }
    if word(&second.token, "MATERIALIZED") {
        p.next_token(); // VIEWS
        return Ok(SessionCommand::ShowMaterializedViews);
    }
    p.next_token(); // TABLE | VIEW
    let name = p.parse_object_name(false)?;
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|part| part.as_ident().cloned().map(ident_name))
        .collect();
    Ok(SessionCommand::ShowCreateTable(parts.join(".")))
}

/// A setting's key or value: a quoted string, or the text of the tokens up
/// to `=` (for a key) or the end of the statement, so `max-rows` and
/// `sql-client.execution.result-mode` need no quotes.
fn setting_text(p: &mut Parser, key: bool) -> Result<String, ParserError> {
    let first = p.peek_token();
    if let Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) = &first.token {
        p.next_token();
        return Ok(s.clone());
    }
    let mut text = String::new();
    loop {
        let t = p.peek_token();
        if is_end(&t.token) || (key && t.token == Token::Eq) {
            break;
        }
        match &t.token {
            Token::Word(w) => text.push_str(&w.value),
            other => text.push_str(&other.to_string()),
        }
        p.next_token();
    }
    if text.is_empty() {
        let what = if key { "a setting name" } else { "a value" };
        return p.expected(what, first);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse_sql, SluiceStatement};

    fn command(sql: &str) -> SessionCommand {
        let stmts = parse_sql(sql, None).expect("parses");
        match &stmts[0].statement {
            SluiceStatement::Command(c) => c.clone(),
            other => panic!("not a command: {other:?}"),
        }
    }

    fn set(k: &str, v: &str) -> SessionCommand {
        SessionCommand::Set(Some((k.to_string(), v.to_string())))
    }

    #[test]
    fn set_and_reset_take_quoted_or_bare_keys() {
        assert_eq!(command("SET"), SessionCommand::Set(None));
        assert_eq!(command("SET 'max-rows' = '20';"), set("max-rows", "20"));
        assert_eq!(command("SET max-rows = 20"), set("max-rows", "20"));
        assert_eq!(
            command("SET sql-client.execution.result-mode = changelog"),
            set("sql-client.execution.result-mode", "changelog")
        );
        assert_eq!(command("RESET"), SessionCommand::Reset(None));
        assert_eq!(
            command("RESET 'format'"),
            SessionCommand::Reset(Some("format".to_string()))
        );
    }

    #[test]
    fn jobs_and_show_create() {
        assert_eq!(command("SHOW JOBS"), SessionCommand::ShowJobs);
        assert_eq!(
            command("show materialized views"),
            SessionCommand::ShowMaterializedViews
        );
        assert_eq!(command("stop job 3"), SessionCommand::StopJob(3, false));
        assert_eq!(
            command("STOP JOB 3 WITH SAVEPOINT"),
            SessionCommand::StopJob(3, true)
        );
        assert_eq!(
            command("SHOW CREATE TABLE Bids"),
            SessionCommand::ShowCreateTable("bids".to_string())
        );
        let err = parse_sql("STOP JOB x", None).expect_err("needs a number");
        assert!(err.to_string().contains("a job id"), "{err}");
        let err = parse_sql("SET x", None).expect_err("needs =");
        assert!(err.to_string().contains("'='"), "{err}");
    }
}
