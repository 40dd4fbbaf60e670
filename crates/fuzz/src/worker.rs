//! The worker process: runs a range of steps in-process and reports each on
//! stdout, one line per event, so a supervisor can tell which statement a
//! stack overflow or a hang killed it on.
//!
//! ```text
//! START <step>                       about to run (flushed)
//! DONE <step> <class> <micros>       class: ok, unbounded, or an error kind
//! FAIL <step> <symptom> <message>    message escaped (\n, \t, \\)
//! ERROR <step> <message>             with --verbose: every error message
//! TIMEOUT <step> <micros>            from the watchdog, which then exits 3
//! END
//! ```

use std::collections::VecDeque;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_engine::{format, Session, StatementResult};

use crate::cases::{Cases, Step, GROUP};
use crate::check::{check_message, error_kind, Symptom};

/// Exit code of a worker stopped by its watchdog.
pub const TIMEOUT_EXIT: i32 = 3;

/// Stop reading a query's results after this many rows.
pub const ROW_CAP: usize = 10_000;

/// What a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Statement generation.
    pub cases: Cases,
    /// Run statements `0..statements`.
    pub statements: u64,
    /// Report from this statement on; earlier ones of its group are
    /// replayed silently to rebuild the session's state.
    pub start_at: u64,
    /// Statements never to run again (they killed an earlier worker).
    pub skip: Vec<u64>,
    /// Per-statement time limit.
    pub timeout: Duration,
    /// Write each statement here before running it.
    pub current_file: Option<PathBuf>,
    /// Also report every error message (`ERROR <step> <message>`).
    pub verbose: bool,
    /// Skip statements of these shapes ([`crate::report::shape`]): they
    /// already hung or crashed twice in this run (class `known-hang`).
    pub skip_shapes: Vec<String>,
}

/// The statement being run, for the watchdog.
struct Current {
    step: Option<Step>,
    started: Instant,
    text: String,
    recent: VecDeque<Step>,
}

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn take_panic() -> Option<String> {
    LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Escape a message onto one protocol line.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\t', "\\t")
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    // A supervisor that went away cannot be told anything.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Run the worker; returns the process exit code.
pub fn run(cfg: WorkerConfig) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice-fuzz worker: cannot start the runtime: {e}");
            return 2;
        }
    };
    std::panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.to_string());
    }));
    let current = Arc::new(Mutex::new(Current {
        step: None,
        started: Instant::now(),
        text: String::new(),
        recent: VecDeque::new(),
    }));
    start_watchdog(Arc::clone(&current), cfg.timeout, cfg.cases.seed);
    let mut w = Worker {
        cfg: &cfg,
        runtime,
        current,
    };
    let mut g = cfg.start_at / GROUP;
    while g * GROUP < cfg.statements {
        w.group(g);
        g += 1;
    }
    emit("END");
    0
}

fn start_watchdog(current: Arc<Mutex<Current>>, timeout: Duration, seed: u64) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(50));
        let cur = current.lock().unwrap_or_else(|p| p.into_inner());
        let Some(step) = cur.step else { continue };
        let elapsed = cur.started.elapsed();
        if elapsed > timeout {
            emit(&format!("TIMEOUT {step} {}", elapsed.as_micros()));
            let recent: Vec<String> = cur.recent.iter().map(|s| s.to_string()).collect();
            eprintln!(
                "sluice-fuzz: statement {step} of seed {seed} still running after {:.1} s \
                 (timeout {} s); recent steps: {}\n{}",
                elapsed.as_secs_f64(),
                timeout.as_secs(),
                recent.join(" "),
                cur.text
            );
            std::process::exit(TIMEOUT_EXIT);
        }
    });
}

struct Worker<'a> {
    cfg: &'a WorkerConfig,
    runtime: tokio::runtime::Runtime,
    current: Arc<Mutex<Current>>,
}

impl Worker<'_> {
    fn group(&mut self, g: u64) {
        let session = Session::new();
        let first = g * GROUP;
        let resumed = first < self.cfg.start_at;
        for (k, text) in self.cfg.cases.setup(g).into_iter().enumerate() {
            self.step(&session, Step::Setup { group: g, k }, &text, resumed);
        }
        for n in first..(first + GROUP).min(self.cfg.statements) {
            if self.cfg.skip.contains(&n) {
                continue;
            }
            let text = self.cfg.cases.statement(n);
            if !self.cfg.skip_shapes.is_empty()
                && self.cfg.skip_shapes.contains(&crate::report::shape(&text))
            {
                if n >= self.cfg.start_at {
                    emit(&format!("DONE {n} known-hang 0"));
                }
                continue;
            }
            self.step(&session, Step::Stmt(n), &text, n < self.cfg.start_at);
        }
    }

    /// Run one step; `silent` replays it without reporting.
    fn step(&mut self, session: &Session, step: Step, text: &str, silent: bool) {
        emit(&format!("START {step}"));
        if let Some(path) = &self.cfg.current_file {
            let _ = std::fs::write(
                path,
                format!("-- seed {} step {step}\n{text};\n", self.cfg.cases.seed),
            );
        }
        {
            let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
            cur.step = Some(step);
            cur.started = Instant::now();
            cur.text = text.to_string();
            cur.recent.push_back(step);
            if cur.recent.len() > 16 {
                cur.recent.pop_front();
            }
        }
        take_panic();
        let started = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.runtime.block_on(execute(session, text))
        }));
        let micros = started.elapsed().as_micros();
        self.current.lock().unwrap_or_else(|p| p.into_inner()).step = None;
        let panic = take_panic();
        let (class, failure) = match result {
            Err(_) => ("panic", Some((Symptom::Panic, panic.unwrap_or_default()))),
            Ok(Ok(unbounded)) => {
                let class = if unbounded { "unbounded" } else { "ok" };
                (
                    class,
                    panic.map(|p| (Symptom::Panic, format!("a panic without an error: {p}"))),
                )
            }
            Ok(Err(e)) => {
                let msg = e.to_string();
                if self.cfg.verbose && !silent {
                    emit(&format!("ERROR {step} {}", escape(&msg)));
                }
                let failure = check_message(&msg).map(|s| match &panic {
                    Some(p) => (s, format!("{msg}\n[{p}]")),
                    None => (s, msg.clone()),
                });
                (error_kind(&e), failure)
            }
        };
        if silent {
            return;
        }
        if let Some((symptom, msg)) = failure {
            emit(&format!("FAIL {step} {} {}", symptom.name(), escape(&msg)));
        }
        emit(&format!("DONE {step} {class} {micros}"));
    }
}

/// Parse and run every statement of `text`; whether some input was
/// unbounded (and so only planned).
async fn execute(session: &Session, text: &str) -> sluice_common::Result<bool> {
    let mut unbounded = false;
    for stmt in session.parse(text, None)? {
        match session.execute(&stmt).await? {
            StatementResult::Done(_) => {}
            StatementResult::Rows(_, batches) => {
                format::rows_as_strings(&batches)?;
            }
            StatementResult::Query(mut h) => {
                if !h.is_bounded() {
                    unbounded = true;
                    continue;
                }
                let mut rows = 0;
                while let Some(b) = h.next_batch().await? {
                    rows += b.num_rows();
                    format::rows_as_strings(std::slice::from_ref(&b))?;
                    if rows >= ROW_CAP {
                        break;
                    }
                }
            }
            StatementResult::Insert(h) => {
                if h.is_bounded() {
                    h.wait().await?;
                } else {
                    unbounded = true;
                }
            }
        }
    }
    Ok(unbounded)
}

/// Make a scratch directory with a copy of `sql-tests/data` and enter it,
/// so file sinks in mutated statements cannot overwrite the repository's
/// test data.
pub fn enter_sandbox(target: &Path) -> std::io::Result<PathBuf> {
    let dir = target
        .join("fuzz-sandbox")
        .join(std::process::id().to_string());
    let data = crate::corpus::sql_tests_dir().join("data");
    copy_dir(&data, &dir.join("sql-tests/data"))?;
    std::fs::create_dir_all(dir.join("target/slt-out"))?;
    std::env::set_current_dir(&dir)?;
    Ok(dir)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(&path, to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
