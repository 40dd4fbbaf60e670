//! Buffered rows into statements: inserts as multi-row `INSERT`s; with a
//! key, the buffer is reduced to the last change per key (a `-U` is
//! skipped, as Flink's upsert writer does) and written as multi-row
//! `INSERT .. ON CONFLICT (key) DO UPDATE` and `DELETE .. WHERE (key) IN`.
//! Values travel as text parameters cast to each column's type, so every
//! type PostgreSQL can read from text works, and nothing is spliced into
//! the SQL.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use arrow::row::{OwnedRow, RowConverter, SortField};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_common::changelog::{self, RowKind};
use sluice_common::Result;

use super::table::{quote, Target};

/// PostgreSQL's limit on parameters in one statement.
const MAX_PARAMS: usize = 65_535;

/// One statement and its parameters.
pub struct Statement {
    pub sql: String,
    pub params: Vec<Option<String>>,
    pub rows: usize,
}

/// The text of every value of `batch` (column-major), `None` for NULL.
fn texts(batch: &RecordBatch) -> Result<Vec<Vec<Option<String>>>> {
    let options = FormatOptions::default();
    let mut out = Vec::with_capacity(batch.num_columns());
    for col in batch.columns() {
        let mut values = Vec::with_capacity(col.len());
        if let Some(b) = col.as_binary_opt::<i32>() {
            for v in b.iter() {
                values.push(v.map(hex));
            }
        } else if let Some(b) = col.as_binary_opt::<i64>() {
            for v in b.iter() {
                values.push(v.map(hex));
            }
        } else {
            let f = ArrayFormatter::try_new(col.as_ref(), &options)?;
            for i in 0..col.len() {
                values.push(col.is_valid(i).then(|| f.value(i).to_string()));
            }
        }
        out.push(values);
    }
    Ok(out)
}

/// `bytea` input: `\x` and hex digits.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("\\x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The rows to write, reduced: for inserts every row, in order; with a key
/// the last change of each key.
pub struct Reduced {
    /// Rows to insert (or upsert): (batch, row).
    pub upserts: Vec<(usize, usize)>,
    /// Rows whose key to delete.
    pub deletes: Vec<(usize, usize)>,
}

/// Reduce `batches` (data columns, then the row-kind column when a
/// changelog) by `key` (column indices; empty: every row is an insert).
pub fn reduce(batches: &[RecordBatch], key: &[usize]) -> Result<Reduced> {
    if key.is_empty() {
        let upserts = batches
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r)))
            .collect();
        return Ok(Reduced {
            upserts,
            deletes: vec![],
        });
    }
    let Some(first) = batches.first() else {
        return Ok(Reduced {
            upserts: vec![],
            deletes: vec![],
        });
    };
    let fields = key
        .iter()
        .map(|&k| SortField::new(first.column(k).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let mut last: HashMap<OwnedRow, (usize, usize, bool)> = HashMap::new();
    let mut order: Vec<OwnedRow> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let cols: Vec<_> = key.iter().map(|&k| batch.column(k).clone()).collect();
        let rows = converter.convert_columns(&cols)?;
        let ops = changelog::ops(batch);
        for r in 0..batch.num_rows() {
            let kind = ops
                .and_then(|o| RowKind::from_code(o.value(r)))
                .unwrap_or(RowKind::Insert);
            let delete = match kind {
                RowKind::UpdateBefore => continue,
                RowKind::Delete => true,
                RowKind::Insert | RowKind::UpdateAfter => false,
            };
            let k = rows.row(r).owned();
            if last.insert(k.clone(), (b, r, delete)).is_none() {
                order.push(k);
            }
        }
    }
    let mut reduced = Reduced {
        upserts: vec![],
        deletes: vec![],
    };
    for k in order {
        if let Some(&(b, r, delete)) = last.get(&k) {
            if delete {
                reduced.deletes.push((b, r));
            } else {
                reduced.upserts.push((b, r));
            }
        }
    }
    Ok(reduced)
}

/// The statements writing `reduced` rows of `batches` into `target`.
pub fn statements(
    target: &Target,
    batches: &[RecordBatch],
    reduced: &Reduced,
    rows_per_statement: usize,
) -> Result<Vec<Statement>> {
    let values = batches
        .iter()
        .map(|b| texts(&changelog::data(b)?))
        .collect::<Result<Vec<_>>>()?;
    let all: Vec<usize> = (0..target.columns.len()).collect();
    let mut out = Vec::new();
    let per = |width: usize| (MAX_PARAMS / width.max(1)).clamp(1, rows_per_statement.max(1));
    for chunk in reduced.upserts.chunks(per(all.len())) {
        out.push(statement(target, &values, chunk, &all, Kind::Upsert));
    }
    for chunk in reduced.deletes.chunks(per(target.key.len())) {
        out.push(statement(target, &values, chunk, &target.key, Kind::Delete));
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Upsert,
    Delete,
}

fn statement(
    target: &Target,
    values: &[Vec<Vec<Option<String>>>],
    rows: &[(usize, usize)],
    cols: &[usize],
    kind: Kind,
) -> Statement {
    let names: Vec<String> = cols
        .iter()
        .map(|&c| quote(&target.columns[c].name))
        .collect();
    let mut sql = match kind {
        Kind::Upsert => format!(
            "INSERT INTO {} ({}) VALUES ",
            target.qualified,
            names.join(", ")
        ),
        Kind::Delete => format!(
            "DELETE FROM {} WHERE ({}) IN (",
            target.qualified,
            names.join(", ")
        ),
    };
    let mut params = Vec::with_capacity(rows.len() * cols.len());
    for (i, &(b, r)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (j, &c) in cols.iter().enumerate() {
            if j > 0 {
                sql.push_str(", ");
            }
            params.push(values[b][c][r].clone());
            sql.push_str(&format!(
                "${}::{}",
                params.len(),
                target.columns[c].sql_type
            ));
        }
        sql.push(')');
    }
    match kind {
        Kind::Delete => sql.push(')'),
        Kind::Upsert if !target.key.is_empty() => {
            let keys: Vec<String> = target
                .key
                .iter()
                .map(|&k| quote(&target.columns[k].name))
                .collect();
            let rest: Vec<String> = (0..target.columns.len())
                .filter(|c| !target.key.contains(c))
                .map(|c| {
                    let n = quote(&target.columns[c].name);
                    format!("{n} = EXCLUDED.{n}")
                })
                .collect();
            if rest.is_empty() {
                sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", ")));
            } else {
                sql.push_str(&format!(
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    keys.join(", "),
                    rest.join(", ")
                ));
            }
        }
        Kind::Upsert => {}
    }
    Statement {
        sql,
        params,
        rows: rows.len(),
    }
}
