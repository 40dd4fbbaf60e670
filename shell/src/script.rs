//! Running statements and printing their results.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::anyhow;
use sluice_engine::{format, Session, StatementResult};

use crate::OutputFormat;

/// Prints results in the chosen format: rows to stdout, notes to stderr.
pub struct Printer {
    pub format: OutputFormat,
}

impl Printer {
    fn rows(
        &self,
        schema: &arrow_schema::SchemaRef,
        batches: &[arrow_array::RecordBatch],
    ) -> anyhow::Result<()> {
        let text = match self.format {
            OutputFormat::Table => format::table(schema, batches)? + "\n",
            OutputFormat::Csv => format::csv(schema, batches)?,
            OutputFormat::Json => format::json(batches)?,
        };
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }
}

/// Run a file's statements in order.
pub async fn run_file(session: &Session, path: &Path, out: &Printer) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    run_text(session, &text, Some(&path.display().to_string()), out).await
}

/// Run statements in order; stop at the first error.
pub async fn run_text(
    session: &Session,
    text: &str,
    file: Option<&str>,
    out: &Printer,
) -> anyhow::Result<()> {
    let statements = session.parse(text, file)?;
    for stmt in &statements {
        let result = session.execute(stmt).await?;
        print_result(result, out).await?;
    }
    Ok(())
}

async fn print_result(result: StatementResult, out: &Printer) -> anyhow::Result<()> {
    match result {
        StatementResult::Done(msg) => eprintln!("{msg}"),
        StatementResult::Rows(schema, batches) => out.rows(&schema, &batches)?,
        StatementResult::Query(handle) => {
            let schema = handle.schema();
            let (batches, summary) = handle.collect().await?;
            out.rows(&schema, &batches)?;
            let mut note = format!(
                "{} row(s) in {:.3}s",
                format::row_count(&batches),
                summary.elapsed.as_secs_f64()
            );
            if summary.late_rows > 0 {
                note.push_str(&format!(", {} late row(s) dropped", summary.late_rows));
            }
            if summary.bad_records > 0 {
                note.push_str(&format!(", {} bad record(s) skipped", summary.bad_records));
            }
            eprintln!("{note}");
        }
        StatementResult::Insert(handle) => {
            let summary = handle.wait().await?;
            let mut note = format!(
                "Inserted {} row(s) in {:.3}s",
                summary.rows_out,
                summary.elapsed.as_secs_f64()
            );
            if summary.late_rows > 0 {
                note.push_str(&format!(", {} late row(s) dropped", summary.late_rows));
            }
            eprintln!("{note}");
        }
    }
    Ok(())
}

/// A plain prompt: statements end with `;`. Errors are printed and the
/// prompt comes back.
pub async fn prompt(session: &Session, out: &Printer) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut buffer = String::new();
    eprintln!("Welcome to Sluice. End statements with ';'. Type \\q to quit.");
    loop {
        eprint!(
            "{}",
            if buffer.is_empty() {
                "sluice> "
            } else {
                "   ...> "
            }
        );
        std::io::stderr().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            return Ok(());
        }
        if buffer.is_empty() && matches!(line.trim(), "\\q" | "quit" | "exit") {
            return Ok(());
        }
        buffer.push_str(&line);
        if !buffer.trim_end().ends_with(';') {
            continue;
        }
        let text = std::mem::take(&mut buffer);
        if let Err(e) = run_text(session, &text, None, out).await {
            eprintln!("{e}");
        }
    }
}
