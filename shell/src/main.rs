//! `sluice`: the shell. `sluice -f file.sql` and `sluice -c "sql"` run
//! statements in order and exit non-zero on the first error; with no
//! arguments it reads statements from a terminal (or from stdin when it is
//! not a terminal). `sluice --listen ADDR` serves the session over the
//! PostgreSQL protocol (after running `--init`, `-f` or `-c`, if given).
//! `sluice worker --job job.sql --workers N --index I` runs worker I of N
//! of the script's INSERT jobs (docs/scale-out.md).

mod errors;
mod output;
mod repl;
mod script;
mod serve;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
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
    #[command(subcommand)]
    command_kind: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one worker of a job spread over several processes: the file's
    /// INSERT jobs each read this worker's share of their Kafka partitions
    /// and exchange rows with the other workers through Kafka.
    Worker(WorkerArgs),
}

#[derive(Debug, clap::Args)]
struct WorkerArgs {
    /// The job: a script of SET, CREATE TABLE and INSERT statements (the
    /// same file for every worker).
    #[arg(long, value_name = "FILE")]
    job: PathBuf,
    /// How many workers run the job.
    #[arg(long, value_name = "N")]
    workers: usize,
    /// Which worker this is: 0 to N-1.
    #[arg(long, value_name = "I")]
    index: usize,
    /// The Kafka the workers meet on (default: that of the first Kafka
    /// table a job reads).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_servers: Option<String>,
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
    if let Some(Command::Worker(w)) = &args.command_kind {
        if w.index >= w.workers {
            anyhow::bail!(
                "--index {} is not below --workers {}: workers are numbered from 0",
                w.index,
                w.workers
            );
        }
        {
            let mut settings = session.settings();
            settings.set("sluice.workers", &w.workers.to_string())?;
            settings.set("sluice.worker.index", &w.index.to_string())?;
            if let Some(b) = &w.bootstrap_servers {
                settings.set("sluice.worker.bootstrap-servers", b)?;
            }
        }
        return script::run_file(&session, &w.job, Unbounded::Wait).await;
    }
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
