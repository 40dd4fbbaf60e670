//! `sluice`: the shell. `sluice -f file.sql` and `sluice -c "sql"` run
//! statements in order and exit non-zero on the first error; with no
//! arguments it reads statements from a terminal (or from stdin when it is
//! not a terminal). `sluice --listen ADDR` serves the session over the
//! PostgreSQL protocol (after running `--init`, `-f` or `-c`, if given).

mod errors;
mod output;
mod repl;
mod script;
mod serve;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use script::Unbounded;
use sluice_engine::Session;

/// How SELECT results are printed (`SET format` changes it later).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OutputFormat {
    /// A boxed table.
    Table,
    /// One `+I[...]` line per row (Flink's changelog result mode).
    Changelog,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Json,
}

/// Streaming SQL over files (and soon Kafka), from a shell or a script.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Args {
    /// Run the statements of this file, then exit.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Run these statements, then exit.
    #[arg(short = 'c', long = "command", allow_hyphen_values = true)]
    command: Option<String>,
    /// Run this file first (then -f/-c or the prompt).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Output format of SELECT results.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Serve the session over the PostgreSQL protocol on this address
    /// (e.g. 127.0.0.1:6543) after running --init, -f or -c.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

/// mimalloc reuses freed batch memory instead of returning it to the OS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transparent huge pages off for this process (and the processes it
/// starts): zeroing and compacting 2 MiB pages on first touch cost up to
/// half of a growing-state query's CPU, more than the TLB saves
/// (docs/performance.md, "Huge pages"). Called before memory is touched.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}

fn main() -> ExitCode {
    no_huge_pages();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let session = Session::new();
    let format = match args.format {
        OutputFormat::Table => "table",
        OutputFormat::Changelog => "changelog",
        OutputFormat::Csv => "csv",
        OutputFormat::Json => "json",
    };
    session.settings().set("format", format)?;
    // Before serving, unbounded jobs go to the background.
    let unbounded = if args.listen.is_some() {
        Unbounded::Background
    } else {
        Unbounded::Wait
    };
    if let Some(init) = &args.init {
        script::run_file(&session, init, unbounded).await?;
    }
    if let Some(cmd) = &args.command {
        script::run_text(&session, cmd, None, unbounded).await?;
    } else if let Some(file) = &args.file {
        script::run_file(&session, file, unbounded).await?;
    }
    if let Some(addr) = &args.listen {
        return serve::serve(session, addr).await;
    }
    if args.command.is_some() || args.file.is_some() {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        repl::run(&session).await
    } else {
        let text = std::io::read_to_string(stdin)?;
        script::run_text(&session, &text, Some("<stdin>"), unbounded).await
    }
}
