//! The interactive shell: a line editor with history, completion and
//! multi-line statements; live results; background jobs; shell commands.

mod commands;
mod helper;
mod input;
mod live;
mod updating;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};
use sluice_engine::jobs::JobState;
use sluice_engine::{Session, StatementResult};

use crate::errors;
use crate::output::{self, Format};
use helper::{SharedCatalog, SqlHelper};

/// What the loop does after an input.
pub(crate) enum Flow {
    Continue,
    Quit,
}

/// Run the shell until Ctrl-D or `\q`.
pub async fn run(session: &Session) -> anyhow::Result<()> {
    let config = Config::builder()
        .max_history_size(10_000)?
        .history_ignore_dups(true)?
        .history_ignore_space(true)
        .completion_type(rustyline::CompletionType::List)
        .build();
    let catalog = SharedCatalog::default();
    let mut editor: Editor<SqlHelper, FileHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(SqlHelper::new(catalog.clone())));
    // From now on SIGINT (Ctrl-C while a statement runs) is caught by
    // tokio instead of ending the process; a running query listens for it.
    let _sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let history = history_path();
    if let Some(path) = &history {
        // A missing file is the first run.
        let _ = editor.load_history(path);
    }
    eprintln!(
        "Sluice {} — streaming SQL. End statements with ';'. \
         Type help for commands, Ctrl-D to exit.",
        env!("CARGO_PKG_VERSION")
    );
    refresh_catalog(session, &catalog).await;
    loop {
        report_ended_jobs(session);
        let line = tokio::task::block_in_place(|| editor.readline("sluice> "));
        let text = match line {
            Ok(text) => text,
            // Ctrl-C at the prompt drops the line being typed.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if text.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(text.as_str());
        if let Some(path) = &history {
            if let Err(e) = editor.save_history(path) {
                eprintln!("warning: cannot save history to {}: {e}", path.display());
            }
        }
        let flow = run_input(session, &text, None).await;
        refresh_catalog(session, &catalog).await;
        if matches!(flow, Flow::Quit) {
            break;
        }
    }
    shut_down_jobs(session).await;
    Ok(())
}

/// `$SLUICE_HISTORY`, else `~/.sluice_history`.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".sluice_history"))
}

async fn refresh_catalog(session: &Session, catalog: &SharedCatalog) {
    let tables = session.catalog_columns().await;
    catalog.lock().unwrap_or_else(|p| p.into_inner()).tables = tables;
}

/// Run what was typed (or a file's text): a shell command, or SQL
/// statements in order. Errors are printed; the first one stops the rest.
pub(crate) async fn run_input(session: &Session, text: &str, file: Option<&str>) -> Flow {
    let trimmed = text.trim();
    if input::is_shell_command(trimmed) {
        return commands::run(session, trimmed).await;
    }
    let started = Instant::now();
    let result = run_sql(session, text, file).await;
    if let Err(e) = result {
        eprintln!("{}", errors::render(&e, Some(text)));
    }
    if session.settings().get("timing").ok().as_deref() == Some("on") {
        eprintln!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1000.0);
    }
    Flow::Continue
}

async fn run_sql(session: &Session, text: &str, file: Option<&str>) -> anyhow::Result<()> {
    for stmt in session.parse(text, file)? {
        match session.execute(&stmt).await? {
            StatementResult::Done(msg) => eprintln!("{msg}"),
            StatementResult::Rows(schema, batches) => {
                let format = match Format::of(session) {
                    Format::Changelog => Format::Table,
                    f => f,
                };
                output::print(&output::render(format, &schema, &batches, true)?)?;
            }
            StatementResult::Query(handle) => live::show(session, handle).await?,
            StatementResult::Insert(handle) => {
                if let Some(notice) = handle.notice() {
                    eprintln!("{notice}");
                }
                let bounded = handle.is_bounded();
                let id = session.jobs().submit(stmt.text.clone(), handle);
                eprintln!(
                    "Job {id} started{}. SHOW JOBS follows it; STOP JOB {id} ends it.",
                    if bounded {
                        ""
                    } else {
                        " (unbounded: runs until stopped)"
                    }
                );
            }
        }
    }
    Ok(())
}

/// Tell the user about jobs that ended since the last prompt.
fn report_ended_jobs(session: &Session) {
    for job in session.jobs().take_ended() {
        let secs = job.summary.elapsed.as_secs_f64();
        match &job.state {
            JobState::Failed(e) => eprintln!("Job {} failed after {secs:.1}s: {e}", job.id),
            _ => eprintln!(
                "Job {} finished in {secs:.1}s: {} row(s) written",
                job.id, job.summary.rows_out
            ),
        }
    }
}

/// On exit: wait for bounded jobs to finish (Ctrl-C stops them), stop
/// unbounded ones; say what happens.
async fn shut_down_jobs(session: &Session) {
    let running = |bounded: bool| -> Vec<u64> {
        session
            .jobs()
            .list()
            .into_iter()
            .filter(|j| j.state == JobState::Running && j.bounded == bounded)
            .map(|j| j.id)
            .collect()
    };
    for id in running(false) {
        if session.jobs().stop(id).is_ok() {
            eprintln!("Stopped job {id} (unbounded).");
        }
    }
    let waiting = running(true);
    if !waiting.is_empty() {
        eprintln!(
            "Waiting for {} running job(s) to finish; Ctrl-C stops them.",
            waiting.len()
        );
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            if running(true).is_empty() {
                break;
            }
            tokio::select! {
                _ = &mut ctrl_c => {
                    for id in running(true) {
                        if session.jobs().stop(id).is_ok() {
                            eprintln!("Stopped job {id}.");
                        }
                    }
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        report_ended_jobs(session);
    }
    eprintln!("Bye.");
}
