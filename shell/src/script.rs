//! Script mode: run statements in order, print results, stop at the first
//! error (`-f`, `-c`, `--init`, stdin that is not a terminal).

use std::path::Path;

use anyhow::anyhow;
use sluice_engine::{Session, StatementResult};

use crate::errors;
use crate::output::{self, Format, RowStream};

/// What a script does with an INSERT (or materialized view) over
/// unbounded input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unbounded {
    /// Run it here until it ends (or the process is stopped).
    Wait,
    /// Start it, and every materialized view's job, as a background job
    /// and go on (before serving: views are queried while they run).
    Background,
}

/// Run a file's statements in order. Relative file paths in its
/// `CREATE TABLE`s are relative to the file's own folder.
pub async fn run_file(session: &Session, path: &Path, unbounded: Unbounded) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf);
    let before = session.set_base_dir(folder);
    let result = run_text(session, &text, Some(&path.display().to_string()), unbounded).await;
    session.set_base_dir(before);
    result
}

/// Run statements in order; stop at the first error, which comes back
/// rendered with the offending line and a caret.
pub async fn run_text(
    session: &Session,
    text: &str,
    file: Option<&str>,
    unbounded: Unbounded,
) -> anyhow::Result<()> {
    run_statements(session, text, file, unbounded)
        .await
        .map_err(|e| anyhow!(errors::render(&e, Some(text))))
}

async fn run_statements(
    session: &Session,
    text: &str,
    file: Option<&str>,
    unbounded: Unbounded,
) -> anyhow::Result<()> {
    let statements = session.parse(text, file)?;
    'statements: for stmt in &statements {
        loop {
            let result = match session.execute(stmt).await? {
                StatementResult::Insert(handle)
                    if unbounded == Unbounded::Background
                        && (!handle.is_bounded() || is_view(&stmt.text)) =>
                {
                    if let Some(notice) = handle.notice() {
                        eprintln!("{notice}");
                    }
                    let id = session.jobs().submit(stmt.text.clone(), handle);
                    eprintln!("Job {id} started in the background.");
                    continue 'statements;
                }
                r => r,
            };
            // Errors while it runs carry its position (the query handle
            // adds it). A job spread over workers whose worker restarted
            // rolls back: run again, it resumes from the last checkpoint
            // every worker holds and meets the restarted worker.
            match print_result(session, result).await {
                Err(e) if rolled_back(&e) => eprintln!("{}; running the job again", root(&e)),
                r => break r?,
            }
        }
    }
    Ok(())
}

/// The innermost Sluice error of `e`, as text.
fn root(e: &anyhow::Error) -> String {
    match e.downcast_ref::<sluice_common::Error>() {
        Some(err) => err.innermost().to_string(),
        None => e.to_string(),
    }
}

/// Whether `e` says the job rolls back (and may be run again).
fn rolled_back(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sluice_common::Error>()
        .is_some_and(|err| matches!(err.innermost(), sluice_common::Error::RolledBack(_)))
}

/// Whether `text` is a CREATE MATERIALIZED VIEW.
fn is_view(text: &str) -> bool {
    let words: Vec<String> = text
        .split_whitespace()
        .take(3)
        .map(str::to_ascii_uppercase)
        .collect();
    words == ["CREATE", "MATERIALIZED", "VIEW"]
}

async fn print_result(session: &Session, result: StatementResult) -> anyhow::Result<()> {
    let format = Format::of(session);
    match result {
        StatementResult::Done(msg) => eprintln!("{msg}"),
        StatementResult::Rows(schema, batches) => {
            output::print(&output::render(format, &schema, &batches, true)?)?
        }
        StatementResult::Query(mut handle) => {
            let schema = handle.schema();
            if format == Format::Table {
                // A table needs every row to size its columns.
                // An updating result prints as its final table.
                let (batches, summary) = handle.collect_table().await?;
                output::print(&output::render(format, &schema, &batches, true)?)?;
                let rows = sluice_engine::format::row_count(&batches) as u64;
                eprintln!("{}", output::query_note(rows, &summary));
            } else {
                // Other formats stream rows as they come.
                let mut stream = RowStream::new(format, schema);
                while let Some(batch) = handle.next_batch().await? {
                    stream.push(&batch)?;
                }
                stream.finish()?;
                eprintln!("{}", output::query_note(stream.rows(), &handle.summary()));
            }
        }
        StatementResult::Insert(handle) => {
            if let Some(notice) = handle.notice() {
                eprintln!("{notice}");
            }
            let summary = handle.wait().await?;
            eprintln!("{}", output::insert_note(&summary));
        }
    }
    Ok(())
}
