//! The extended query protocol (Parse, Bind, Describe, Execute), which most
//! drivers speak by default (psycopg 3, JDBC, npgsql, Go's pgx).
//!
//! A parsed statement is its SQL text; Bind's parameters are put into it
//! as SQL literals (`$1` outside quotes and comments), typed by what the
//! client declared (numbers and booleans as themselves, anything else as
//! a quoted string that Sluice casts where it is used). Describing a
//! portal or a prepared statement plans a query without running it; a
//! `SHOW`, `DESCRIBE` or `EXPLAIN`, whose columns are known only by
//! running it, runs when described and its result is kept for the Execute
//! of that same Bind.
//! Results are sent in text format; a client asking for binary results is
//! told to ask for text.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::portal::Portal;
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{
    DescribePortalResponse, DescribeResponse, DescribeStatementResponse, FieldInfo, Response,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use sluice_engine::ParsedStatement;
use sluice_engine::Session;

use super::{encode, pg_error, Handler};

/// A statement of the extended protocol: its SQL text.
#[derive(Debug, Clone)]
pub struct Prepared {
    sql: String,
    /// The largest `$n` it names.
    parameters: usize,
}

/// Makes [`Prepared`] statements.
#[derive(Debug)]
pub struct Parser;

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Prepared>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let parameters = placeholders(sql).iter().map(|p| p.1).max().unwrap_or(0);
        Ok(Prepared {
            sql: sql.to_string(),
            parameters,
        })
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(vec![Type::UNKNOWN; stmt.parameters])
    }

    fn get_result_schema(
        &self,
        _stmt: &Prepared,
        _format: Option<&pgwire::api::portal::Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(vec![])
    }
}

/// Each `$n` outside string literals (also `$$...$$` and `$tag$...$tag$`),
/// quoted identifiers and comments, and not inside a name (`price$1`):
/// its byte range and `n`.
fn placeholders(sql: &str) -> Vec<(std::ops::Range<usize>, usize)> {
    let b = sql.as_bytes();
    let in_name = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == q && b.get(i + 1) == Some(&q) {
                        i += 2;
                    } else if b[i] == q {
                        break;
                    } else {
                        i += 1;
                    }
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'$' if i > 0 && in_name(b[i - 1]) => {
                // Part of a name: skip the rest of it.
                while i < b.len() && in_name(b[i]) {
                    i += 1;
                }
            }
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if let Ok(n) = sql[start + 1..i].parse::<usize>() {
                    if n > 0 {
                        out.push((start..i, n));
                    }
                }
            }
            b'$' => {
                // A dollar-quoted string: `$tag$` ... the same `$tag$`.
                let tag_end = b[i + 1..]
                    .iter()
                    .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(e) if b[e] == b'$' => {
                        let tag = &b[i..=e];
                        let body = e + 1;
                        i = b[body..]
                            .windows(tag.len())
                            .position(|w| w == tag)
                            .map_or(b.len(), |p| body + p + tag.len());
                    }
                    _ => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Parameter `idx` of `portal` as a SQL literal.
fn literal(portal: &Portal<Prepared>, idx: usize) -> PgWireResult<String> {
    let declared = portal.statement.parameter_types.get(idx).cloned().flatten();
    let ty = declared.unwrap_or(Type::UNKNOWN);
    let Some(Some(raw)) = portal.parameters.get(idx) else {
        return Ok("NULL".to_string());
    };
    let text = if portal.parameter_format.is_binary(idx) {
        match binary_text(portal, idx, &ty)? {
            Some(text) => text,
            None => return Ok("NULL".to_string()),
        }
    } else {
        let text = std::str::from_utf8(raw).map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        text.to_string()
    };
    let text = text.as_str();
    let numeric = [
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::NUMERIC,
        Type::OID,
    ];
    Ok(if numeric.contains(&ty) {
        number(text)
    } else if ty == Type::BOOL && matches!(text, "t" | "true" | "f" | "false") {
        text.starts_with('t').to_string().to_ascii_uppercase()
    } else {
        quoted(text)
    })
}

/// A number as a literal: in parentheses (`10-$1` with -5 must not become
/// the comment `10--5`); anything but digits, a sign, a point and an
/// exponent (`NaN`, `Infinity`) as a string cast to DOUBLE.
fn number(text: &str) -> String {
    let plain = text.bytes().any(|c| c.is_ascii_digit())
        && text
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E'));
    if plain {
        format!("({text})")
    } else {
        format!("CAST({} AS DOUBLE)", quoted(text))
    }
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A binary parameter of type `ty` in text form (as a client sends it in
/// text format).
fn binary_text(portal: &Portal<Prepared>, idx: usize, ty: &Type) -> PgWireResult<Option<String>> {
    Ok(match *ty {
        Type::INT2 => portal.parameter::<i16>(idx, ty)?.map(|v| v.to_string()),
        Type::INT4 => portal.parameter::<i32>(idx, ty)?.map(|v| v.to_string()),
        Type::INT8 => portal.parameter::<i64>(idx, ty)?.map(|v| v.to_string()),
        Type::FLOAT4 => portal.parameter::<f32>(idx, ty)?.map(|v| v.to_string()),
        Type::FLOAT8 => portal.parameter::<f64>(idx, ty)?.map(|v| v.to_string()),
        Type::BOOL => portal.parameter::<bool>(idx, ty)?.map(|v| v.to_string()),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            portal.parameter::<String>(idx, ty)?
        }
        _ => {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".into(),
                "0A000".into(),
                format!(
                    "parameter ${} is {} in binary format, which Sluice does not read: send it \
                     as text",
                    idx + 1,
                    ty.name()
                ),
            ))))
        }
    })
}

/// The portal's SQL with its parameters in place.
fn bound_sql(portal: &Portal<Prepared>) -> PgWireResult<String> {
    let sql = &portal.statement.statement.sql;
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (range, n) in placeholders(sql) {
        out.push_str(&sql[at..range.start]);
        if n > portal.parameter_len() {
            return Err(PgWireError::ParameterIndexOutOfBound(n - 1));
        }
        out.push_str(&literal(portal, n - 1)?);
        at = range.end;
    }
    out.push_str(&sql[at..]);
    Ok(out)
}

/// The extended protocol's handler of one connection.
pub struct Extended {
    handler: Handler,
    /// The result of the portal last described by running it (a `SHOW`,
    /// `DESCRIBE` or `EXPLAIN`), for its Execute: the portal's identity
    /// (its execution state, new at each Bind) and the response.
    described: Mutex<Option<(usize, Response)>>,
}

/// A portal's identity: each Bind makes a new one.
fn identity(portal: &Portal<Prepared>) -> usize {
    Arc::as_ptr(&portal.state) as usize
}

/// Statements whose rows are known only by running them (and that change
/// nothing): described by running them.
fn shows_rows(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default();
    ["SHOW", "DESCRIBE", "DESC", "EXPLAIN"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
}

impl Extended {
    pub fn new(session: Arc<Session>) -> Self {
        Extended {
            handler: Handler { session },
            described: Mutex::new(None),
        }
    }

    /// The portal's one statement.
    fn statement(&self, portal: &Portal<Prepared>) -> PgWireResult<Option<ParsedStatement>> {
        let sql = bound_sql(portal)?;
        let statements = self
            .handler
            .session
            .parse(&sql, None)
            .map_err(|e| PgWireError::UserError(pg_error(&e)))?;
        let mut statements = statements.into_iter();
        match (statements.next(), statements.next()) {
            (None, _) => Ok(None),
            (Some(one), None) => Ok(Some(one)),
            _ => Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".into(),
                "42601".into(),
                "cannot insert multiple commands into a prepared statement".into(),
            )))),
        }
    }

    /// Run the portal's statement (one statement).
    async fn run<C>(&self, client: &mut C, portal: &Portal<Prepared>) -> PgWireResult<Response>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let stmt = match self.statement(portal) {
            Ok(Some(stmt)) => stmt,
            Ok(None) => return Ok(Response::EmptyQuery),
            Err(PgWireError::UserError(e)) => return Ok(Response::Error(e)),
            Err(e) => return Err(e),
        };
        let response = match self.handler.session.execute(&stmt).await {
            Ok(result) => self.handler.respond(client, result, &stmt.text).await?,
            Err(e) => Response::Error(pg_error(&e)),
        };
        text_only(response, portal)
    }
}

/// Refuse binary results: rows go in text format.
fn text_only(response: Response, portal: &Portal<Prepared>) -> PgWireResult<Response> {
    if let Response::Query(q) = &response {
        let columns = q.row_schema().len();
        if (0..columns).any(|i| portal.result_column_format.is_binary(i)) {
            return Ok(Response::Error(Box::new(ErrorInfo::new(
                "ERROR".into(),
                "0A000".into(),
                "Sluice sends results in text format: ask for text results (binary results \
                 are not supported)"
                    .into(),
            ))));
        }
    }
    Ok(response)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl ExtendedQueryHandler for Extended {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        Arc::new(Parser)
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Prepared>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let stmt = &target.statement;
        let parameters: Vec<Type> = (0..stmt.parameters)
            .map(|i| {
                let declared = target.parameter_types.get(i).cloned().flatten();
                declared.unwrap_or(Type::UNKNOWN)
            })
            .collect();
        // Planned with each parameter NULL: its columns do not depend on them.
        let placeholders = placeholders(&stmt.sql);
        let mut sql = stmt.sql.clone();
        for (range, _) in placeholders.into_iter().rev() {
            sql.replace_range(range, "NULL");
        }
        let session = &self.handler.session;
        let schema = match session.parse(&sql, None) {
            Ok(s) if s.len() == 1 => session.query_schema(&s[0]).await,
            _ => Ok(None),
        };
        let fields = match schema {
            Ok(Some(schema)) => encode::fields(&schema).as_ref().clone(),
            Ok(None) => vec![],
            Err(e) => return Err(PgWireError::UserError(pg_error(&e))),
        };
        Ok(DescribeStatementResponse::new(parameters, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(stmt) = self.statement(portal)? else {
            return Ok(DescribePortalResponse::no_data());
        };
        if shows_rows(&stmt.text) {
            let response = self.run(client, portal).await?;
            let described = match &response {
                Response::Query(q) => DescribePortalResponse::new(q.row_schema().as_ref().clone()),
                _ => DescribePortalResponse::no_data(),
            };
            *lock(&self.described) = Some((identity(portal), response));
            return Ok(described);
        }
        // A query is planned, not run; anything else returns no rows.
        match self.handler.session.query_schema(&stmt).await {
            Ok(Some(schema)) => Ok(DescribePortalResponse::new(
                encode::fields(&schema).as_ref().clone(),
            )),
            Ok(None) => Ok(DescribePortalResponse::no_data()),
            Err(e) => Err(PgWireError::UserError(pg_error(&e))),
        }
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let described = {
            let mut cached = lock(&self.described);
            match cached.take() {
                Some((id, response)) if id == identity(portal) => Some(response),
                other => {
                    *cached = other;
                    None
                }
            }
        };
        match described {
            Some(response) => Ok(response),
            None => self.run(client, portal).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_skip_quotes_and_comments() {
        let sql = "SELECT '$1', \"$2\", $3 -- $4\n, /* $5 */ $12 FROM t WHERE a = 'it''s $6'";
        let found: Vec<usize> = placeholders(sql).into_iter().map(|p| p.1).collect();
        assert_eq!(found, vec![3, 12]);
        let sql = "SELECT price$1, `x'$2`, $$ $3 $$, $t$ $4 $t$, $5";
        let found: Vec<usize> = placeholders(sql).into_iter().map(|p| p.1).collect();
        assert_eq!(found, vec![5]);
    }
}
