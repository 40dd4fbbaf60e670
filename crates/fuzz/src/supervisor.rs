//! The supervisor: runs workers, reads their reports, and when one dies
//! (stack overflow, abort, watchdog timeout) records the statement it died
//! on and starts a new worker after it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cases::{Cases, Step, GROUP};
use crate::check::Symptom;
use crate::corpus;
use crate::report::{Failure, Report};

/// One run: a seed and a number of statements.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The seed.
    pub seed: u64,
    /// How many statements.
    pub statements: u64,
    /// Start at this statement (replaying earlier ones of its group).
    pub start_at: u64,
    /// Per-statement time limit.
    pub timeout: Duration,
    /// Workers write each statement here before running it.
    pub current_file: Option<PathBuf>,
    /// Leave out the deep-nesting generator (development only).
    pub skip_deep: bool,
    /// Run this statement (after the catalog's setup) instead of generated
    /// ones.
    pub sql: Option<String>,
    /// Print every error message and outcome (for reproducing one statement).
    pub verbose: bool,
    /// Skip statements shaped like one that hung or crashed this many
    /// times already (0: never skip), so one bug does not cost a timeout
    /// per statement.
    pub skip_shape_after: u32,
    /// Stop the run after this many dead workers (hangs, crashes).
    pub max_restarts: u32,
    /// The `sluice-fuzz` binary to run as the worker.
    pub exe: PathBuf,
    /// The target directory (sandboxes, failing statements).
    pub target: PathBuf,
    /// Print a progress line to stderr every this many statements (0: never).
    pub progress_every: u64,
}

impl RunConfig {
    /// The generator of this run's statements.
    pub fn cases(&self) -> Cases {
        Cases {
            seed: self.seed,
            corpus: corpus::load(&corpus::sql_tests_dir()),
            skip_deep: self.skip_deep,
            sql: self.sql.clone(),
        }
    }
}

/// The target directory an executable was built into (`target/debug/x`,
/// `target/debug/deps/x`).
pub fn target_dir(exe: &Path) -> PathBuf {
    let mut dir = exe.parent().unwrap_or(Path::new("."));
    if dir.ends_with("deps") {
        dir = dir.parent().unwrap_or(dir);
    }
    dir.parent().unwrap_or(dir).to_path_buf()
}

/// Run `cfg.statements` statements in as many workers as it takes.
pub fn supervise(cfg: &RunConfig) -> std::io::Result<Report> {
    let cases = cfg.cases();
    let started = Instant::now();
    let mut report = Report {
        seed: cfg.seed,
        ..Report::default()
    };
    let mut start_at = cfg.start_at;
    let mut skip: Vec<u64> = Vec::new();
    let mut shapes: std::collections::BTreeMap<String, u32> = Default::default();
    loop {
        let mut cmd = Command::new(&cfg.exe);
        cmd.arg("--worker")
            .args(["--seed", &cfg.seed.to_string()])
            .args(["--statements", &cfg.statements.to_string()])
            .args(["--start-at", &start_at.to_string()])
            .args(["--timeout-secs", &cfg.timeout.as_secs_f64().to_string()]);
        if !skip.is_empty() {
            let list: Vec<String> = skip.iter().map(|n| n.to_string()).collect();
            cmd.args(["--skip", &list.join(",")]);
        }
        if let Some(f) = &cfg.current_file {
            cmd.arg("--current-file").arg(f);
        }
        if cfg.skip_deep {
            cmd.arg("--skip-deep");
        }
        if cfg.verbose {
            cmd.arg("--verbose");
        }
        let known: Vec<&String> = shapes
            .iter()
            .filter(|(_, n)| cfg.skip_shape_after > 0 && **n >= cfg.skip_shape_after)
            .map(|(s, _)| s)
            .collect();
        for s in known {
            cmd.args(["--skip-shape", s]);
        }
        if let Some(sql) = &cfg.sql {
            cmd.args(["--sql", sql]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let pid = child.id();
        let mut stderr = child.stderr.take();
        let drain = std::thread::spawn(move || {
            let mut buf = String::new();
            if let Some(e) = stderr.as_mut() {
                let _ = e.read_to_string(&mut buf);
            }
            buf
        });
        let mut last_start: Option<Step> = None;
        let mut timed_out: Option<Duration> = None;
        let mut ended = false;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line?;
                let mut parts = line.splitn(4, ' ');
                let (tag, step) = (
                    parts.next().unwrap_or(""),
                    parts.next().and_then(|s| s.parse::<Step>().ok()),
                );
                match (tag, step) {
                    ("START", Some(s)) => last_start = Some(s),
                    ("DONE", Some(s)) => {
                        let class = parts.next().unwrap_or("?");
                        let micros = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
                        report.record(s, class, Duration::from_micros(micros));
                        if cfg.verbose && matches!(s, Step::Stmt(_)) {
                            println!("step {s}: {class} in {:.3} s", micros as f64 / 1e6);
                        }
                        last_start = None;
                        if cfg.progress_every > 0
                            && matches!(s, Step::Stmt(n) if (n + 1) % cfg.progress_every == 0)
                        {
                            eprintln!(
                                "sluice-fuzz: {} statements, {} failures, {:.0} s",
                                report.statements,
                                report.failures.len(),
                                started.elapsed().as_secs_f64()
                            );
                        }
                    }
                    ("FAIL", Some(s)) => {
                        let symptom = parts
                            .next()
                            .and_then(Symptom::from_name)
                            .unwrap_or(Symptom::Panic);
                        let msg = unescape(parts.next().unwrap_or(""));
                        report.failures.push(failure(cfg, &cases, s, symptom, msg));
                    }
                    ("ERROR", Some(s)) if cfg.verbose => {
                        println!(
                            "step {s}: {}",
                            unescape(line.splitn(3, ' ').nth(2).unwrap_or(""))
                        );
                    }
                    ("TIMEOUT", Some(_)) => {
                        timed_out = Some(Duration::from_micros(
                            parts.next().and_then(|m| m.parse().ok()).unwrap_or(0),
                        ));
                    }
                    ("END", _) => ended = true,
                    _ => {}
                }
            }
        }
        let status = child.wait()?;
        let stderr = drain.join().unwrap_or_default();
        let _ = std::fs::remove_dir_all(cfg.target.join("fuzz-sandbox").join(pid.to_string()));
        if ended && status.success() {
            break;
        }
        let Some(step) = last_start else {
            return Err(std::io::Error::other(format!(
                "the worker failed outside any statement ({status}):\n{stderr}"
            )));
        };
        let (symptom, msg, took) = match timed_out {
            Some(t) => (
                Symptom::Timeout,
                format!("still running after {:.1} s (hang)", t.as_secs_f64()),
                t,
            ),
            None => (
                Symptom::Crash,
                crash_message(status, &stderr),
                Duration::ZERO,
            ),
        };
        report.record(step, symptom.name(), took);
        report
            .failures
            .push(failure(cfg, &cases, step, symptom, msg));
        report.restarts += 1;
        *shapes
            .entry(crate::report::shape(&cases.text(step)))
            .or_default() += 1;
        // A statement replayed before `start_at` (to rebuild its group's
        // session) is skipped from now on; reporting still starts at
        // `start_at`.
        start_at = match step {
            Step::Stmt(n) => {
                skip.push(n);
                start_at.max(n + 1)
            }
            Step::Setup { group, .. } => start_at.max((group + 1) * GROUP),
        };
        if start_at >= cfg.statements {
            break;
        }
        if report.restarts >= cfg.max_restarts {
            report.stopped_at = Some(start_at);
            break;
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

fn failure(
    cfg: &RunConfig,
    cases: &Cases,
    step: Step,
    symptom: Symptom,
    message: String,
) -> Failure {
    let text = cases.text(step);
    let dir = cfg.target.join("fuzz-failures");
    let path = dir.join(format!("seed{}-step{step}.sql", cfg.seed));
    let body = format!(
        "-- seed {} step {step}: {}\n-- {}\n{text};\n",
        cfg.seed,
        symptom.name(),
        message.replace('\n', "\n-- ")
    );
    let file = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&path, body))
        .ok()
        .map(|_| path.display().to_string());
    let flags = if cfg.skip_deep { " --skip-deep" } else { "" };
    let reproduce = match &cfg.sql {
        Some(_) => "the same --sql".to_string(),
        None => format!(
            "cargo run -p sluice-fuzz -- --seed {}{flags} --only {step}",
            cfg.seed
        ),
    };
    Failure {
        seed: cfg.seed,
        step,
        symptom,
        message,
        text,
        file,
        reproduce,
    }
}

fn crash_message(status: ExitStatus, stderr: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (_, Some(sig)) => format!("killed by signal {sig}"),
        (Some(code), None) => format!("exited with code {code}"),
        _ => status.to_string(),
    };
    let what = if stderr.contains("has overflowed its stack") {
        "stack overflow: "
    } else if stderr.contains("memory allocation") {
        "out of memory: "
    } else {
        ""
    };
    let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("{what}worker {how}: {}", tail.join(" | "))
}

/// The inverse of [`crate::worker::escape`].
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        let s = "a\\b\nc\td";
        assert_eq!(unescape(&crate::worker::escape(s)), s);
    }

    #[test]
    fn target_dir_from_executables() {
        assert_eq!(
            target_dir(Path::new("/t/debug/sluice-fuzz")),
            Path::new("/t")
        );
        assert_eq!(
            target_dir(Path::new("/t/debug/deps/fuzz-1")),
            Path::new("/t")
        );
    }
}
