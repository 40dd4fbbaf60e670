//! Script mode: run statements in order, print results, stop at the first
//! error (`-f`, `-c`, `--init`, stdin that is not a terminal).

use std::path::Path;

use anyhow::anyhow;
use sluice_engine::{Session, StatementResult};

use crate::errors;
use crate::output::{self, Format, RowStream};

/// Run a file's statements in order. Relative file paths in its
/// `CREATE TABLE`s are relative to the file's own folder.
pub async fn run_file(session: &Session, path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf);
    let before = session.set_base_dir(folder);
    let result = run_text(session, &text, Some(&path.display().to_string())).await;
    session.set_base_dir(before);
    result
}

/// Run statements in order; stop at the first error, which comes back
/// rendered with the offending line and a caret.
pub async fn run_text(session: &Session, text: &str, file: Option<&str>) -> anyhow::Result<()> {
    run_statements(session, text, file)
        .await
        .map_err(|e| anyhow!(errors::render(&e, Some(text))))
}

async fn run_statements(session: &Session, text: &str, file: Option<&str>) -> anyhow::Result<()> {
    let statements = session.parse(text, file)?;
    for stmt in &statements {
        let result = session.execute(stmt).await?;
        // Errors while it runs carry its position (the query handle adds it).
        print_result(session, result).await?;
    }
    Ok(())
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
