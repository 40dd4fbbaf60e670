//! `sluice-fuzz`: long fuzzing runs.
//!
//! ```text
//! cargo run --release -p sluice-fuzz -- --statements 100000 --seed 1 [--timeout-secs 5]
//! ```
//!
//! Prints a progress line every 1000 statements, then the summary and every
//! failure; exits 1 if there were failures. Each statement is written to
//! `target/fuzz-current.sql` before it runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sluice_fuzz::cases::{Step, GROUP};
use sluice_fuzz::worker::{self, WorkerConfig};
use sluice_fuzz::{supervise, target_dir, RunConfig};

/// Seeded SQL fuzzer for Sluice: generated and mutated statements; fails on
/// panics, internal errors, raw-internals messages, hangs and crashes.
#[derive(Parser, Debug)]
#[command(name = "sluice-fuzz")]
struct Args {
    /// Number of statements (half generated, half mutated from sql-tests).
    #[arg(long, default_value_t = 10_000)]
    statements: u64,
    /// The seed; the same seed gives the same statements.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A statement running longer than this fails the run.
    #[arg(long, default_value_t = 5.0)]
    timeout_secs: f64,
    /// Leave out deeply nested statements (to look for other bugs while a
    /// deep-nesting bug is open).
    #[arg(long)]
    skip_deep: bool,
    /// Do not write each statement to target/fuzz-current.sql.
    #[arg(long)]
    no_current_file: bool,
    /// Run only this step (after replaying its group up to it), e.g. 1234.
    #[arg(long, value_name = "STEP")]
    only: Option<Step>,
    /// Run this SQL (after the catalog's setup statements) instead of
    /// generated statements, and report what happens.
    #[arg(long, value_name = "SQL")]
    sql: Option<String>,
    /// Print the text of this step and exit.
    #[arg(long, value_name = "STEP")]
    print: Option<Step>,
    /// Print every statement's outcome and error message.
    #[arg(long)]
    verbose: bool,
    /// Run as a worker (used by the supervisor).
    #[arg(long, hide = true)]
    worker: bool,
    /// Worker: first statement to report.
    #[arg(long, hide = true, default_value_t = 0)]
    start_at: u64,
    /// Worker: statements not to run.
    #[arg(long, hide = true, value_delimiter = ',')]
    skip: Vec<u64>,
    /// Worker: statement shapes not to run.
    #[arg(long, hide = true)]
    skip_shape: Vec<String>,
    /// Worker: where to write each statement.
    #[arg(long, hide = true)]
    current_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sluice-fuzz: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let target = target_dir(&exe);
    let timeout = Duration::from_secs_f64(args.timeout_secs.max(0.1));
    let mut cfg = RunConfig {
        seed: args.seed,
        statements: args.statements,
        start_at: 0,
        timeout,
        current_file: (!args.no_current_file).then(|| target.join("fuzz-current.sql")),
        skip_deep: args.skip_deep,
        sql: args.sql.clone(),
        max_restarts: 500,
        skip_shape_after: 3,
        verbose: args.verbose,
        exe,
        target: target.clone(),
        progress_every: 1000,
    };
    if args.worker {
        if let Err(e) = worker::enter_sandbox(&target) {
            eprintln!("sluice-fuzz worker: cannot make its sandbox: {e}");
            return ExitCode::FAILURE;
        }
        let code = worker::run(WorkerConfig {
            cases: cfg.cases(),
            statements: args.statements,
            start_at: args.start_at,
            skip: args.skip,
            timeout,
            current_file: args.current_file,
            verbose: args.verbose,
            skip_shapes: args.skip_shape,
        });
        return ExitCode::from(code as u8);
    }
    if let Some(step) = args.print {
        println!("{};", cfg.cases().text(step));
        return ExitCode::SUCCESS;
    }
    if let Some(step) = args.only {
        let n = match step {
            Step::Stmt(n) => n,
            Step::Setup { group, .. } => group * GROUP,
        };
        println!("{};", cfg.cases().text(step));
        cfg.start_at = n;
        cfg.statements = n + 1;
        cfg.progress_every = 0;
        cfg.verbose = true;
    }
    if cfg.sql.is_some() {
        cfg.statements = 1;
        cfg.progress_every = 0;
        cfg.verbose = true;
    }
    let report = match supervise(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice-fuzz: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !report.failures.is_empty() {
        println!("{}", report.failure_listing());
    }
    println!("{}", report.summary());
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
