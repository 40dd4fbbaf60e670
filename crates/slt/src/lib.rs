//! `sluice-slt`: runs `sql-tests/**/*.slt` (sqllogictest format) against a
//! fresh Sluice [`Session`] per file.
//!
//! `SELECT` results are read to the end (bounded inputs end by themselves);
//! `INSERT` statements are waited for, so a file's statements run in order.
//! An updating result is compared as its final table (the changelog
//! folded by its upsert key), or with `SET format = changelog` as the
//! changelog itself.
//! Cells are formatted as the shell prints them (`NULL`, timestamps as
//! `YYYY-MM-DD HH:MM:SS[.fff]`).
#![deny(missing_docs)]

pub mod kafka;
pub mod postgres;

use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use async_trait::async_trait;
use sluice_engine::{format, Session, StatementResult};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

/// One session per test file.
pub struct SluiceDb {
    session: Session,
}

impl Default for SluiceDb {
    fn default() -> Self {
        SluiceDb {
            session: Session::new(),
        }
    }
}

/// Cells as sqllogictest expects them: an empty string is `(empty)`.
fn cells(
    batches: &[arrow::record_batch::RecordBatch],
) -> Result<Vec<Vec<String>>, sluice_common::Error> {
    let mut rows = format::rows_as_strings(batches)?;
    for cell in rows.iter_mut().flatten() {
        if cell.is_empty() {
            *cell = "(empty)".to_string();
        }
    }
    Ok(rows)
}

/// A result table for the runner.
fn rows_output(
    schema: &arrow::datatypes::SchemaRef,
    batches: &[arrow::record_batch::RecordBatch],
) -> Result<DBOutput<DefaultColumnType>, sluice_common::Error> {
    Ok(DBOutput::Rows {
        types: schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect(),
        rows: cells(batches)?,
    })
}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating()
        || matches!(t, DataType::Decimal128(_, _) | DataType::Decimal256(_, _))
    {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

impl SluiceDb {
    /// `SET format = changelog`: results are the changelog itself, each
    /// row led by its kind (`+I`, `-U`, `+U`, `-D`); otherwise an updating
    /// result is its final table.
    fn changelog_format(&self) -> bool {
        self.session
            .settings()
            .get("format")
            .is_ok_and(|f| f == "changelog")
    }
}

/// Rows led by their kind.
fn changelog_output(
    schema: &arrow::datatypes::SchemaRef,
    batches: &[arrow::record_batch::RecordBatch],
) -> Result<DBOutput<DefaultColumnType>, sluice_common::Error> {
    use sluice_common::changelog::{self, RowKind};
    let mut rows = Vec::new();
    for b in batches {
        let data = changelog::data(b)?;
        let kinds: Vec<&str> = match changelog::ops(b) {
            Some(ops) => ops
                .values()
                .iter()
                .map(|&c| RowKind::from_code(c).map_or("?", RowKind::short))
                .collect(),
            None => vec!["+I"; b.num_rows()],
        };
        for (row, kind) in cells(&[data])?.into_iter().zip(kinds) {
            let mut r = vec![kind.to_string()];
            r.extend(row);
            rows.push(r);
        }
    }
    let mut types = vec![DefaultColumnType::Text];
    types.extend(schema.fields().iter().map(|f| column_type(f.data_type())));
    Ok(DBOutput::Rows { types, rows })
}

#[async_trait]
impl AsyncDB for SluiceDb {
    type Error = sluice_common::Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Self::Error> {
        let statements = self.session.parse(sql, None)?;
        let mut output = DBOutput::StatementComplete(0);
        for stmt in &statements {
            output = match self.session.execute(stmt).await? {
                StatementResult::Done(_) => DBOutput::StatementComplete(0),
                StatementResult::Insert(h) => DBOutput::StatementComplete(h.wait().await?.rows_out),
                StatementResult::Rows(schema, batches) => rows_output(&schema, &batches)?,
                StatementResult::Query(h) => {
                    let schema = h.schema();
                    if self.changelog_format() {
                        let (batches, _) = h.collect().await?;
                        changelog_output(&schema, &batches)?
                    } else {
                        let (batches, _) = h.collect_table().await?;
                        rows_output(&schema, &batches)?
                    }
                }
            };
        }
        Ok(output)
    }

    async fn shutdown(&mut self) {}

    async fn run_command(command: std::process::Command) -> std::io::Result<std::process::Output> {
        kafka::run_command(command).await
    }

    fn engine_name(&self) -> &str {
        "sluice"
    }
}

/// Every `.slt` file under `dir`, in path order.
pub fn slt_files(dir: &Path) -> Vec<PathBuf> {
    fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect(&path, out);
            } else if path.extension().is_some_and(|e| e == "slt") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    files
}
