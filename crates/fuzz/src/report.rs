//! A run's tally: statements by outcome, the slowest one, and the failures
//! grouped by symptom and message, each with a reproducible statement.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::cases::Step;
use crate::check::Symptom;

/// Print failing statements longer than this only in part (the full text
/// is in the failure's file).
const SHOW_CHARS: usize = 3000;

/// One failure.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The run's seed.
    pub seed: u64,
    /// The failing step.
    pub step: Step,
    /// What went wrong.
    pub symptom: Symptom,
    /// The error message, panic message or crash output.
    pub message: String,
    /// The statement.
    pub text: String,
    /// Where the full statement was written, if it was.
    pub file: Option<String>,
    /// A command that runs the statement again.
    pub reproduce: String,
}

impl Failure {
    /// Failures with the same signature are probably the same bug.
    pub fn signature(&self) -> String {
        let msg = self.message.lines().next().unwrap_or("");
        // Drop the position and numbers, which vary with the statement.
        let msg = match msg.find(": ") {
            Some(i) if msg.starts_with("line ") => &msg[i + 2..],
            _ => msg,
        };
        let mut out = String::new();
        let mut last_digit = false;
        for c in msg.chars().take(100) {
            if c.is_ascii_digit() {
                if !last_digit {
                    out.push('#');
                }
                last_digit = true;
            } else {
                out.push(c);
                last_digit = false;
            }
        }
        if matches!(self.symptom, Symptom::Timeout | Symptom::Crash) {
            // The message says little; the statement's shape says more.
            return format!("{}: {out} [{}]", self.symptom.name(), shape(&self.text));
        }
        format!("{}: {out}", self.symptom.name())
    }
}

/// What a statement is mostly made of: its two most repeated words or
/// operators (repeated at least 10 times), else its first words.
pub fn shape(text: &str) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_uppercase())
        .collect();
    for w in &words {
        *counts.entry(w.clone()).or_default() += 1;
    }
    let mut top: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n >= 10).collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if top.is_empty() {
        return words.iter().take(4).cloned().collect::<Vec<_>>().join(" ");
    }
    let names: Vec<&str> = top.iter().take(2).map(|(w, _)| w.as_str()).collect();
    format!("repeated {}", names.join(" "))
}

/// The outcome of one run (one seed).
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The run's seed.
    pub seed: u64,
    /// Statements run (setup statements not included).
    pub statements: u64,
    /// Setup statements run.
    pub setup: u64,
    /// Steps by outcome class: ok, unbounded (planned only), error kinds,
    /// and failure symptoms.
    pub classes: BTreeMap<String, u64>,
    /// The slowest step and its time.
    pub slowest: Option<(Step, Duration)>,
    /// Every failure.
    pub failures: Vec<Failure>,
    /// Times a worker died and was restarted.
    pub restarts: u32,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The run stopped early (too many dead workers) before this statement.
    pub stopped_at: Option<u64>,
}

impl Report {
    /// Count one finished step.
    pub fn record(&mut self, step: Step, class: &str, took: Duration) {
        match step {
            Step::Stmt(_) => self.statements += 1,
            Step::Setup { .. } => self.setup += 1,
        }
        *self.classes.entry(class.to_string()).or_default() += 1;
        if self.slowest.is_none_or(|(_, t)| took > t) {
            self.slowest = Some((step, took));
        }
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        let count = |k: &str| self.classes.get(k).copied().unwrap_or(0);
        let errors: Vec<String> = self
            .classes
            .iter()
            .filter(|(k, _)| {
                !["ok", "unbounded", "known-hang", "crash", "timeout"].contains(&k.as_str())
            })
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let slowest = match self.slowest {
            Some((s, t)) => format!("slowest: step {s} {:.3} s", t.as_secs_f64()),
            None => "slowest: -".into(),
        };
        let distinct = self.distinct().len();
        let stopped = match self.stopped_at {
            Some(n) => format!(
                " STOPPED EARLY before statement {n} after {} dead workers;",
                self.restarts
            ),
            None => String::new(),
        };
        format!(
            "sluice-fuzz seed {}: {} statements (+{} setup) in {:.1} s: ok {}, planned only (unbounded) {}, errors: [{}], hangs {}, crashes {}, skipped as shaped like a known hang/crash {}; {} failures ({} distinct), {} worker restarts;{stopped} {}",
            self.seed,
            self.statements,
            self.setup,
            self.elapsed.as_secs_f64(),
            count("ok"),
            count("unbounded"),
            errors.join(", "),
            count("timeout"),
            count("crash"),
            count("known-hang"),
            self.failures.len(),
            distinct,
            self.restarts,
            slowest
        )
    }

    /// Failures grouped by signature, shortest statement first in each.
    pub fn distinct(&self) -> BTreeMap<String, Vec<&Failure>> {
        let mut groups: BTreeMap<String, Vec<&Failure>> = BTreeMap::new();
        for f in &self.failures {
            groups.entry(f.signature()).or_default().push(f);
        }
        for list in groups.values_mut() {
            list.sort_by_key(|f| f.text.len());
        }
        groups
    }

    /// Every failure, grouped: symptom, message, and the statements (with
    /// seed and step) that show it.
    pub fn failure_listing(&self) -> String {
        let mut out = String::new();
        for (sig, list) in self.distinct() {
            let _ = writeln!(out, "\n=== {sig} ({} statements)", list.len());
            for f in list.iter().take(3) {
                let _ = writeln!(
                    out,
                    "--- seed {} step {} ({}):",
                    f.seed,
                    f.step,
                    f.symptom.name()
                );
                let _ = writeln!(out, "    reproduce: {}", f.reproduce);
                let mut msg: String = f.message.chars().take(SHOW_CHARS).collect();
                if f.message.chars().count() > SHOW_CHARS {
                    msg += " ...";
                }
                let _ = writeln!(out, "    symptom: {}", msg.replace('\n', "\n    "));
                let text: String = f.text.chars().take(SHOW_CHARS).collect();
                let _ = writeln!(out, "{text};");
                if f.text.chars().count() > SHOW_CHARS {
                    let where_ = f.file.as_deref().unwrap_or("--print the step");
                    let _ = writeln!(
                        out,
                        "    ... ({} chars in all; full text in {where_})",
                        f.text.len()
                    );
                }
            }
            if list.len() > 3 {
                let steps: Vec<String> = list[3..].iter().map(|f| f.step.to_string()).collect();
                let _ = writeln!(out, "--- also at steps: {}", steps.join(" "));
            }
        }
        out
    }
}
