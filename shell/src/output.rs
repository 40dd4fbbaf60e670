//! Printing results in the session's format (`SET format = ...` or
//! `--format`): a boxed table, a changelog (`+I[...]` per row, as Flink's
//! print connector writes it), CSV with a header, or JSON lines.

use std::io::Write;

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use sluice_common::changelog::{self, RowKind};
use sluice_engine::{format, QuerySummary, Session};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A boxed table.
    Table,
    /// One `+I[v1, v2]` line per row.
    Changelog,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// The session's current format.
    pub fn of(session: &Session) -> Format {
        let value = session
            .settings()
            .get("format")
            .unwrap_or_else(|_| "table".to_string());
        match value.as_str() {
            "changelog" => Format::Changelog,
            "csv" => Format::Csv,
            "json" => Format::Json,
            _ => Format::Table,
        }
    }
}

/// Changelog rows with their kind as a first `op` column (`+I`, `-U`,
/// ...), for the formats that print columns; append-only rows unchanged.
fn with_op_column(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> anyhow::Result<(SchemaRef, Vec<RecordBatch>)> {
    if !batches.iter().any(|b| changelog::ops(b).is_some()) {
        return Ok((schema.clone(), batches.to_vec()));
    }
    let mut fields = vec![Field::new("op", DataType::Utf8, false)];
    fields.extend(schema.fields().iter().map(|f| f.as_ref().clone()));
    let out_schema: SchemaRef = Arc::new(Schema::new(fields));
    let batches = batches
        .iter()
        .map(|b| {
            let mut cols: Vec<ArrayRef> = vec![Arc::new(kinds(b))];
            cols.extend(changelog::data(b)?.columns().iter().cloned());
            Ok(RecordBatch::try_new(out_schema.clone(), cols)?)
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((out_schema, batches))
}

/// Each row's kind as `+I`/`-U`/`+U`/`-D`.
fn kinds(batch: &RecordBatch) -> StringArray {
    match changelog::ops(batch) {
        Some(ops) => ops
            .values()
            .iter()
            .map(|&c| Some(RowKind::from_code(c).map_or("?", RowKind::short)))
            .collect(),
        None => (0..batch.num_rows()).map(|_| Some("+I")).collect(),
    }
}

/// One `+I[v1, v2]` line per row, with the row's kind.
fn changelog_lines(batches: &[RecordBatch]) -> anyhow::Result<String> {
    let mut out = String::new();
    for b in batches {
        let kinds = kinds(b);
        let data = changelog::data(b)?;
        for (i, row) in format::rows_as_strings(&[data])?.into_iter().enumerate() {
            out.push_str(kinds.value(i));
            out.push('[');
            out.push_str(&row.join(", "));
            out.push_str("]\n");
        }
    }
    Ok(out)
}

/// Text for a complete result (`header` = print the CSV header).
pub fn render(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    header: bool,
) -> anyhow::Result<String> {
    let raw = batches;
    let (schema, batches) = with_op_column(schema, batches)?;
    let (schema, batches) = (&schema, &batches[..]);
    Ok(match format {
        Format::Table => format::table(schema, batches)? + "\n",
        Format::Csv => {
            let text = format::csv(schema, batches)?;
            if header {
                text
            } else {
                text.split_once('\n')
                    .map(|(_, rest)| rest.to_string())
                    .unwrap_or_default()
            }
        }
        Format::Json => format::json(batches)?,
        Format::Changelog => changelog_lines(raw)?,
    })
}

/// Prints a result in a line format (changelog, csv, json) batch by batch
/// as it arrives: the CSV header once, also when there are no rows.
pub struct RowStream {
    format: Format,
    schema: SchemaRef,
    rows: u64,
}

impl RowStream {
    /// A stream of rows of `schema` printed in `format`.
    pub fn new(format: Format, schema: SchemaRef) -> Self {
        RowStream {
            format,
            schema,
            rows: 0,
        }
    }

    /// Print one batch.
    pub fn push(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        let header = self.rows == 0;
        self.rows += batch.num_rows() as u64;
        print(&render(
            self.format,
            &self.schema,
            std::slice::from_ref(batch),
            header,
        )?)
    }

    /// The result ended: a CSV result without rows still gets its header.
    pub fn finish(&self) -> anyhow::Result<()> {
        if self.rows == 0 && self.format == Format::Csv {
            print(&render(self.format, &self.schema, &[], true)?)?;
        }
        Ok(())
    }

    /// Rows printed.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

/// Write text to stdout now.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// The line printed after a query: rows, time, late and bad rows.
pub fn query_note(rows: u64, summary: &QuerySummary) -> String {
    let mut note = format!("{rows} row(s) in {:.3}s", summary.elapsed.as_secs_f64());
    add_drops(&mut note, summary);
    if let Some(c) = &summary.checkpoints {
        if let Some(last) = &c.last {
            note.push_str(&format!(
                ", {} checkpoint(s), the last #{} ({} ms, {} B)",
                c.completed,
                last.id,
                last.duration.as_millis(),
                last.bytes
            ));
        }
    }
    note
}

/// The line printed after an INSERT that ran to its end.
pub fn insert_note(summary: &QuerySummary) -> String {
    let mut note = if summary.result_rows == summary.rows_out as i64 {
        format!(
            "Inserted {} row(s) in {:.3}s",
            summary.rows_out,
            summary.elapsed.as_secs_f64()
        )
    } else {
        // An updating result: its changes, and the rows they leave.
        format!(
            "Wrote {} change(s), {} result row(s), in {:.3}s",
            summary.rows_out,
            summary.result_rows,
            summary.elapsed.as_secs_f64()
        )
    };
    add_drops(&mut note, summary);
    note
}

fn add_drops(note: &mut String, summary: &QuerySummary) {
    if summary.late_rows > 0 {
        note.push_str(&format!(", {} late row(s) dropped", summary.late_rows));
    }
    if summary.nulled_records > 0 {
        note.push_str(&format!(
            ", {} record(s) kept with NULL in fields that did not decode",
            summary.nulled_records
        ));
    }
    if summary.bad_records > 0 {
        note.push_str(&format!(", {} bad record(s) skipped", summary.bad_records));
    }
}
