//! Errors that name the fault.

use std::fmt;

use arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// A position in SQL text or in a data file (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceLocation {
    /// File name, if the text came from a file.
    pub file: Option<String>,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}:{}:{}", self.line, self.column),
            None => write!(f, "line {}, column {}", self.line, self.column),
        }
    }
}

/// Every fallible Sluice operation returns this error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL text does not parse.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// The user's SQL is valid but cannot be planned (unknown name, a window
    /// over a column without a watermark, unsupported streaming SQL, ...).
    #[error("plan error: {0}")]
    Plan(String),
    /// A running query failed (a value that cannot be computed, a
    /// changelog a sink cannot apply, ...).
    #[error("execution error: {0}")]
    Execution(String),
    /// An external system (Kafka, a database) refused or failed a request.
    #[error("{system} error: {message}")]
    External {
        /// Which system (`kafka`, `postgresql`).
        system: &'static str,
        /// What it said, secrets masked.
        message: String,
    },
    /// A record in a source could not be decoded.
    #[error("bad record: {0}")]
    BadRecord(String),
    /// Reading or writing an external resource failed.
    #[error("io error: {context}: {source}")]
    Io {
        /// What was being done (path, connector, ...).
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Taking, writing or restoring a checkpoint failed.
    #[error("checkpoint error: {0}")]
    Checkpoint(String),
    /// The query was cancelled by the user.
    #[error("query cancelled")]
    Cancelled,
    /// A job spread over workers rolls back to its last complete
    /// checkpoint (another worker restarted); running it again resumes.
    #[error("{0}")]
    RolledBack(String),
    /// An error raised while evaluating or planning through DataFusion
    /// (shown in SQL terms: its root cause, SQL type names).
    #[error("{}", datafusion_message(.0))]
    DataFusion(#[from] DataFusionError),
    /// An Arrow kernel failed.
    #[error("{}", crate::sql_types::arrow_to_sql_names(&.0.to_string()))]
    Arrow(#[from] ArrowError),
    /// A bug in Sluice.
    #[error("internal error (bug): {0}")]
    Internal(String),
    /// An error about something the statement names (a table, a column, a
    /// function, or a keyword such as `JOIN`): the session points at the
    /// first of the `near` alternatives the statement has (an alternative
    /// of several words, `DESCRIPTOR ts`, is found in order and the last
    /// word pointed at).
    #[error("{source}")]
    Near {
        /// The alternatives, in order of preference.
        near: Vec<String>,
        /// What.
        source: Box<Error>,
    },
    /// An error with the position in the SQL text it belongs to.
    #[error("{location}: {source}")]
    At {
        /// Where.
        location: SourceLocation,
        /// What.
        source: Box<Error>,
    },
}

impl Error {
    /// PostgreSQL's SQLSTATE for this error, as the PostgreSQL protocol
    /// server reports it.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::At { source, .. } | Error::Near { source, .. } => source.sqlstate(),
            Error::Syntax(_) => "42601",
            Error::Plan(_) => "42000",
            Error::DataFusion(e) => match e.find_root() {
                DataFusionError::SchemaError(..) => "42703",
                DataFusionError::SQL(..) => "42601",
                DataFusionError::Plan(..) => "42000",
                DataFusionError::NotImplemented(..) => "0A000",
                _ => "22000",
            },
            Error::Execution(_) | Error::BadRecord(_) | Error::Arrow(_) => "22000",
            Error::External { .. } | Error::Checkpoint(_) => "58000",
            Error::Io { .. } => "58030",
            Error::Cancelled | Error::RolledBack(_) => "57014",
            Error::Internal(_) => "XX000",
        }
    }

    /// Shorthand for [`Error::Plan`].
    pub fn plan(msg: impl Into<String>) -> Self {
        Error::Plan(msg.into())
    }

    /// Shorthand for [`Error::Execution`].
    pub fn execution(msg: impl Into<String>) -> Self {
        Error::Execution(msg.into())
    }

    /// Shorthand for [`Error::External`].
    pub fn external(system: &'static str, message: impl Into<String>) -> Self {
        Error::External {
            system,
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Attach a position, unless the error already carries one.
    pub fn at(self, location: SourceLocation) -> Self {
        match self {
            e @ Error::At { .. } => e,
            Error::Near { source, .. } => source.at(location),
            e => Error::At {
                location,
                source: Box::new(e),
            },
        }
    }

    /// Point the error at the first mention of `words` in the statement
    /// (`"GROUP"`, or `"DESCRIPTOR ts"`: the `ts` after `DESCRIPTOR`; see
    /// [`Error::Near`]), unless it already has a place.
    pub fn near(self, words: impl Into<String>) -> Self {
        self.near_any(vec![words.into()])
    }

    /// Point the error at the first of the alternatives the statement has.
    pub fn near_any(self, near: Vec<String>) -> Self {
        match self {
            e @ (Error::At { .. } | Error::Near { .. }) => e,
            e => Error::Near {
                near,
                source: Box::new(e),
            },
        }
    }

    /// What is wrong, without the kind prefix (`plan error: `) or a
    /// position: for wrapping into another message without doubling it.
    pub fn message(&self) -> String {
        match self.innermost() {
            Error::Syntax(m)
            | Error::Plan(m)
            | Error::Execution(m)
            | Error::BadRecord(m)
            | Error::Checkpoint(m)
            | Error::Internal(m) => m.clone(),
            Error::External { message, .. } => message.clone(),
            Error::DataFusion(df) => datafusion_message(df),
            e => e.to_string(),
        }
    }

    /// The error without a position or place: what is wrong.
    pub fn innermost(&self) -> &Error {
        match self {
            Error::At { source, .. } | Error::Near { source, .. } => source.innermost(),
            e => e,
        }
    }
}

/// What a DataFusion error says, in SQL terms: its root cause, without
/// DataFusion's kind prefixes ("Error during planning: ", "Arrow error: ",
/// ...), backtraces, catalog names or Arrow type names.
pub fn datafusion_message(e: &DataFusionError) -> String {
    let root = e.find_root();
    let mut msg = root.strip_backtrace();
    const PREFIXES: [&str; 9] = [
        "Compute error: ",
        "Error during planning: ",
        "Schema error: ",
        "SQL error: ",
        "This feature is not implemented: ",
        "Arrow error: ",
        "Execution error: ",
        "Optimizer rule ",
        "Invalid argument error: ",
    ];
    while let Some(rest) = PREFIXES.iter().find_map(|p| msg.strip_prefix(p)) {
        msg = rest.to_string();
    }
    if is_user_internal_error(&msg) {
        if let Some(rest) = msg.strip_prefix("Internal error: ") {
            msg = rest.to_string();
        }
    }
    // Users never see DataFusion's default catalog and schema names.
    let msg = msg
        .replace("'datafusion.public.", "'")
        .replace("datafusion.public.", "");
    let msg = without_debug_dump(&msg);
    let msg = match msg.as_str() {
        "Unsupported ast node in sqltorel" => "this expression is not supported".to_string(),
        m if m.starts_with("Unsupported ast node") => "this FROM item is not supported".into(),
        m if m.starts_with("Unsupported Interval Expression with last_field") => {
            "INTERVAL '...' <unit> TO <unit> ranges are not supported; write one unit \
             (INTERVAL '14' MONTH) or a string (INTERVAL '1 year 2 months')"
                .into()
        }
        _ => msg,
    };
    let msg = no_matching_signature(&msg).unwrap_or(msg);
    // DataFusion's names for what the user wrote.
    let msg = msg
        .replace("count(Int64(1))", "COUNT(*)")
        .replace("While expanding wildcard, column", "column");
    let msg = msg.replace(DATAFUSION_BUG_NOTE, "");
    let msg = crate::sql_types::arrow_to_sql_names(msg.trim());
    shorten(&msg, MAX_MESSAGE)
}

/// DataFusion's note on internal errors, which are not always its bugs (a
/// call no signature accepts is reported as one).
const DATAFUSION_BUG_NOTE: &str = "This issue was likely caused by a bug in DataFusion's code. \
     Please help us to resolve this by filing a bug report in our issue tracker: \
     https://github.com/apache/datafusion/issues";

/// Longest message shown; longer ones (echoed values, signature lists) are
/// cut.
const MAX_MESSAGE: usize = 400;

/// "No function matches ... 'f(T)'", the candidates on one line.
fn no_matching_signature(msg: &str) -> Option<String> {
    let start = msg.find("No function matches the given name and argument types")?;
    let rest = &msg[start..];
    let (head, candidates) = rest
        .split_once("Candidate functions:")
        .unwrap_or((rest, ""));
    let head = head
        .replace(
            "No function matches the given name and argument types",
            "no function matches",
        )
        .replace(
            ". You might need to add explicit type casts.",
            "; add explicit CASTs",
        )
        .replace(
            " You might need to add explicit type casts.",
            "; add explicit CASTs",
        );
    // Signatures name type classes (`String`, `Decimal`): in SQL terms.
    let candidates: Vec<String> = candidates
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.replace("(String", "(STRING")
                .replace(", String", ", STRING")
                .replace("Decimal", "DECIMAL")
                .replace("Interval", "INTERVAL")
                .replace("Duration", "INTERVAL")
                .replace("(Timestamp", "(TIMESTAMP")
                .replace(", Timestamp", ", TIMESTAMP")
                .replace("(Time)", "(TIME)")
                .replace(", Time)", ", TIME)")
                .replace("(Date", "(DATE")
                .replace("UInt64", "BIGINT UNSIGNED")
                .replace("Numeric", "NUMERIC")
        })
        .collect();
    if candidates.is_empty() {
        return Some(head.trim().to_string());
    }
    Some(format!(
        "{} (it takes {})",
        head.trim(),
        candidates.join(", ")
    ))
}

/// `msg` cut to `max` characters.
fn shorten(msg: &str, max: usize) -> String {
    if msg.chars().count() <= max {
        return msg.to_string();
    }
    let cut: String = msg.chars().take(max).collect();
    format!("{cut}…")
}

/// Whether a DataFusion internal error is the user's (a call no signature
/// accepts, types that do not coerce), not a bug.
pub fn is_user_internal_error(msg: &str) -> bool {
    [
        "failed to match any signature",
        "No function matches",
        "Failed to coerce",
    ]
    .iter()
    .any(|m| msg.contains(m))
}

/// Markers of a Rust `Debug` dump of parser or plan structures.
const DUMP_MARKERS: [&str; 6] = [
    "Ident {",
    "quote_style",
    "Span(Location",
    "ValueWithSpan",
    "{ expr:",
    "{ name:",
];

/// `msg` up to where a `Debug` dump of internal structures starts (a
/// CamelCase name followed by `{` or `(` that holds a dump marker).
fn without_debug_dump(msg: &str) -> String {
    let Some(first_marker) = DUMP_MARKERS.iter().filter_map(|m| msg.find(m)).min() else {
        return msg.to_string();
    };
    let starts = msg.char_indices().filter(|&(i, c)| {
        c.is_ascii_uppercase()
            && (i == 0 || msg[..i].ends_with([' ', ':', '(']))
            && i <= first_marker
    });
    for (i, _) in starts {
        let word_len = msg[i..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(msg.len() - i);
        let after = &msg[i + word_len..];
        if after.starts_with(" {") || after.starts_with('(') {
            return msg[..i]
                .trim_end()
                .trim_end_matches(':')
                .trim_end()
                .to_string();
        }
    }
    msg[..first_marker].trim_end().to_string()
}

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_dumps_are_cut() {
        assert_eq!(
            without_debug_dump(
                "Substring without for/from is not valid Substring { expr: Identifier(Ident { value: \"k\" }) }"
            ),
            "Substring without for/from is not valid"
        );
        assert_eq!(
            without_debug_dump("Unsupported ast node TableFunction { expr: Function(Function { name: x }) } in create_relation"),
            "Unsupported ast node"
        );
        assert_eq!(without_debug_dump("No field named a"), "No field named a");
    }

    #[test]
    fn location_is_attached_once() {
        let loc = SourceLocation {
            file: Some("q.sql".into()),
            line: 3,
            column: 7,
        };
        let e = Error::plan("unknown table 'x'")
            .at(loc.clone())
            .at(SourceLocation::default());
        assert_eq!(e.to_string(), "q.sql:3:7: plan error: unknown table 'x'");
    }
}
