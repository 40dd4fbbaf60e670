//! What counts as a failure: a panic, an internal error, or an error
//! message that shows raw internals (Rust `Debug` dumps) or is too long to
//! read. Ordinary syntax, plan and runtime errors are fine; they are only
//! counted by kind.

use datafusion::error::DataFusionError;
use sluice_common::Error;

/// Error messages longer than this are failures.
pub const MAX_MESSAGE: usize = 600;

/// Pieces of Rust `Debug` output that never belong in a user-facing message.
pub const RAW_MARKERS: &[&str] = &[
    "Ident {",
    "Function(Function {",
    "TableFunction {",
    "Some(",
    "ObjectName(",
    "quote_style",
    "span: Span",
    "Span(Location",
    "Identifier(Ident",
    "Value(",
    "FunctionArg",
    "TableFactor",
    "Expr::",
    "Box<",
    "Arc<",
];

/// A symptom that fails the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Symptom {
    /// A panic (caught, or reported by a query task).
    Panic,
    /// `internal error (bug)`, or DataFusion's internal error.
    Internal,
    /// The message contains a Rust `Debug` dump.
    RawInternals,
    /// The message is longer than [`MAX_MESSAGE`].
    TooLong,
    /// The statement ran past the timeout.
    Timeout,
    /// The worker process died (stack overflow, abort, signal).
    Crash,
}

impl Symptom {
    /// A short name for summaries and the worker protocol.
    pub fn name(&self) -> &'static str {
        match self {
            Symptom::Panic => "panic",
            Symptom::Internal => "internal-error",
            Symptom::RawInternals => "raw-internals",
            Symptom::TooLong => "too-long-message",
            Symptom::Timeout => "timeout",
            Symptom::Crash => "crash",
        }
    }

    /// The inverse of [`Symptom::name`].
    pub fn from_name(s: &str) -> Option<Symptom> {
        [
            Symptom::Panic,
            Symptom::Internal,
            Symptom::RawInternals,
            Symptom::TooLong,
            Symptom::Timeout,
            Symptom::Crash,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// The kind of an ordinary error, for the summary.
pub fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::At { source, .. } | Error::Near { source, .. } => error_kind(source),
        Error::Syntax(_) => "syntax",
        Error::Plan(_) => "plan",
        Error::BadRecord(_)
        | Error::Io { .. }
        | Error::Arrow(_)
        | Error::Execution(_)
        | Error::Checkpoint(_)
        | Error::External { .. } => "runtime",
        Error::DataFusion(df) => match df.find_root() {
            DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::SQL(..)
            | DataFusionError::NotImplemented(_) => "plan",
            _ => "runtime",
        },
        Error::Cancelled | Error::RolledBack(_) => "cancelled",
        Error::Internal(_) => "internal",
    }
}

/// Whether an error message is a failure, and why.
pub fn check_message(msg: &str) -> Option<Symptom> {
    // "a query task panicked", "chunk worker panicked", "panicked at".
    if msg.contains("panicked") {
        return Some(Symptom::Panic);
    }
    if msg.contains("internal error (bug)")
        || msg.contains("This issue was likely caused by a bug in DataFusion")
    {
        return Some(Symptom::Internal);
    }
    if RAW_MARKERS.iter().any(|m| msg.contains(m)) {
        return Some(Symptom::RawInternals);
    }
    // A kind said twice (`plan error: column 'b': plan error: ...`), or an
    // Arrow type name where SQL says INT or STRING.
    let kinds = [
        "plan error: ",
        "syntax error: ",
        "bad record: ",
        "io error: ",
    ];
    if kinds.iter().any(|k| msg.matches(k).count() > 1)
        || ["Int32", "Int64", "Utf8", "Float64"]
            .iter()
            .any(|t| msg.contains(&format!(" {t}")) || msg.contains(&format!("({t}")))
    {
        return Some(Symptom::RawInternals);
    }
    if msg.chars().count() > MAX_MESSAGE {
        return Some(Symptom::TooLong);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_errors_pass() {
        assert_eq!(
            check_message("line 1, column 15: plan error: table 'nope' not found"),
            None
        );
        assert_eq!(error_kind(&Error::plan("x").at(Default::default())), "plan");
    }

    #[test]
    fn failures_are_recognised() {
        let internal = Error::internal("a query task panicked: boom").to_string();
        assert_eq!(check_message(&internal), Some(Symptom::Panic));
        assert_eq!(
            check_message("internal error (bug): x"),
            Some(Symptom::Internal)
        );
        let raw = "unsupported argument TableFunction { expr: Function(Function { name: ObjectName([Identifier(Ident { value: \"x\" })]) }) }";
        assert_eq!(check_message(raw), Some(Symptom::RawInternals));
        assert_eq!(check_message(&"x".repeat(601)), Some(Symptom::TooLong));
        assert_eq!(
            check_message("plan error: column 'b': plan error: bad"),
            Some(Symptom::RawInternals)
        );
        assert_eq!(
            check_message("plan error: cannot cast Utf8 to Int32"),
            Some(Symptom::RawInternals)
        );
        for s in [Symptom::Panic, Symptom::Crash, Symptom::Timeout] {
            assert_eq!(Symptom::from_name(s.name()), Some(s));
        }
    }
}
