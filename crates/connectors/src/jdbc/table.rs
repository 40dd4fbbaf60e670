//! The PostgreSQL table a JDBC table names, checked against the Sluice
//! table at start-up: every column exists with a compatible type, the
//! PRIMARY KEY (for upserts) is the PostgreSQL table's primary key or a
//! unique index, and no NOT NULL column without a default is left out.

use arrow::datatypes::{DataType, SchemaRef};
use sluice_common::{Error, Result};
use tokio_postgres::Client;

use super::JdbcOptions;

/// A column as PostgreSQL has it.
#[derive(Debug, Clone)]
pub struct PgColumn {
    pub name: String,
    /// `format_type`, e.g. `numeric(10,2)`: what values are cast to.
    pub sql_type: String,
    /// The base type's name (`int4`, `varchar`, ...).
    pub udt: String,
    pub not_null: bool,
    pub has_default: bool,
}

/// The target table: its quoted name and, per Sluice column, the
/// PostgreSQL column it writes.
#[derive(Debug, Clone)]
pub struct Target {
    pub qualified: String,
    /// Its schema (namespace), quoted.
    pub schema: String,
    pub columns: Vec<PgColumn>,
    /// Indices (into the Sluice columns) of the upsert key.
    pub key: Vec<usize>,
}

/// `"name"`, with quotes doubled.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.table` or `table` as (schema, table) for the catalog.
fn split_name(name: &str) -> (Option<&str>, &str) {
    match name.split_once('.') {
        Some((s, t)) => (Some(s), t),
        None => (None, name),
    }
}

/// The PostgreSQL types a column of `t` may be written to.
fn accepts(t: &DataType, udt: &str) -> bool {
    use DataType::*;
    let ints = |widest: &[&str]| widest.contains(&udt) || udt == "numeric";
    match t {
        Boolean => udt == "bool",
        Int8 | Int16 | UInt8 => ints(&["int2", "int4", "int8"]),
        Int32 | UInt16 => ints(&["int4", "int8"]),
        Int64 | UInt32 => ints(&["int8"]),
        UInt64 => udt == "numeric",
        Float16 | Float32 => matches!(udt, "float4" | "float8" | "numeric"),
        Float64 => matches!(udt, "float8" | "numeric"),
        Decimal128(..) | Decimal256(..) => matches!(udt, "numeric" | "float8"),
        Utf8 | LargeUtf8 | Utf8View => matches!(
            udt,
            "text" | "varchar" | "bpchar" | "json" | "jsonb" | "uuid" | "name" | "citext"
        ),
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => udt == "bytea",
        Date32 | Date64 => udt == "date",
        Time32(_) | Time64(_) => udt == "time",
        Timestamp(_, _) => matches!(udt, "timestamp" | "timestamptz"),
        Interval(_) => udt == "interval",
        _ => false,
    }
}

fn not_found(o: &JdbcOptions, what: String) -> Error {
    Error::plan(format!(
        "table {}: PostgreSQL table '{}' on {} {what}",
        o.table,
        o.table_name,
        o.server()
    ))
}

/// Look the target table up and check it fits `schema` with upsert key
/// `key` (indices; empty: inserts only).
pub async fn inspect(
    client: &Client,
    o: &JdbcOptions,
    schema: &SchemaRef,
    key: &[usize],
) -> Result<Target> {
    let (ns, name) = split_name(&o.table_name);
    let rows = client
        .query(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, a.attnotnull, \
                    a.atthasdef, c.oid::bigint, n.nspname \
             FROM pg_attribute a JOIN pg_class c ON a.attrelid = c.oid \
             JOIN pg_namespace n ON c.relnamespace = n.oid \
             JOIN pg_type t ON a.atttypid = t.oid \
             WHERE c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped \
               AND c.relkind IN ('r', 'p') \
               AND ($2::text IS NULL AND pg_table_is_visible(c.oid) OR n.nspname = $2) \
             ORDER BY a.attnum",
            &[&name, &ns],
        )
        .await
        .map_err(|e| super::client::pg_error(o, "could not read the table's columns", &e))?;
    if rows.is_empty() {
        return Err(not_found(
            o,
            "does not exist; create it first (Sluice does not create tables in PostgreSQL)".into(),
        ));
    }
    let oid: i64 = rows[0].get(5);
    let nsp: String = rows[0].get(6);
    let pg: Vec<PgColumn> = rows
        .iter()
        .map(|r| PgColumn {
            name: r.get(0),
            sql_type: r.get(1),
            udt: r.get(2),
            not_null: r.get(3),
            has_default: r.get(4),
        })
        .collect();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let found = pg
            .iter()
            .find(|c| c.name == *f.name())
            .or_else(|| pg.iter().find(|c| c.name.eq_ignore_ascii_case(f.name())));
        let Some(c) = found else {
            return Err(not_found(o, format!("has no column '{}'", f.name())));
        };
        if !accepts(f.data_type(), &c.udt) {
            return Err(not_found(
                o,
                format!(
                    "has column '{}' of type {}, which cannot hold {} values",
                    c.name,
                    c.sql_type,
                    sluice_common::sql_type_name(f.data_type())
                ),
            ));
        }
        columns.push(c.clone());
    }
    if let Some(c) = pg
        .iter()
        .find(|c| c.not_null && !c.has_default && !columns.iter().any(|w| w.name == c.name))
    {
        return Err(not_found(
            o,
            format!(
                "has column '{}' NOT NULL without a default, which table {} does not write",
                c.name, o.table
            ),
        ));
    }
    if !key.is_empty() {
        check_key(client, o, oid, &columns, key).await?;
    }
    Ok(Target {
        qualified: format!("{}.{}", quote(&nsp), quote(name)),
        schema: quote(&nsp),
        columns,
        key: key.to_vec(),
    })
}

/// Upserts need a primary key or unique index on exactly the key columns
/// (`ON CONFLICT` names it).
async fn check_key(
    client: &Client,
    o: &JdbcOptions,
    oid: i64,
    columns: &[PgColumn],
    key: &[usize],
) -> Result<()> {
    let rows = client
        .query(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) \
             FROM pg_index i JOIN pg_attribute a \
               ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1::bigint::oid AND i.indisunique AND i.indpred IS NULL \
               AND i.indexprs IS NULL \
             GROUP BY i.indexrelid",
            &[&oid],
        )
        .await
        .map_err(|e| super::client::pg_error(o, "could not read the table's keys", &e))?;
    let mut want: Vec<&str> = key.iter().map(|&k| columns[k].name.as_str()).collect();
    want.sort_unstable();
    let found = rows.iter().any(|r| {
        let cols: Vec<String> = r.get(0);
        cols.iter().map(String::as_str).eq(want.iter().copied())
    });
    if found {
        return Ok(());
    }
    Err(not_found(
        o,
        format!(
            "has no primary key or unique index on ({}), which upserts by table {}'s \
             PRIMARY KEY need (ON CONFLICT)",
            want.join(", "),
            o.table
        ),
    ))
}
