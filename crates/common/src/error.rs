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
    /// The query was cancelled by the user.
    #[error("query cancelled")]
    Cancelled,
    /// An error raised while evaluating or planning through DataFusion.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// An Arrow kernel failed.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// A bug in Sluice.
    #[error("internal error (bug): {0}")]
    Internal(String),
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
    /// Shorthand for [`Error::Plan`].
    pub fn plan(msg: impl Into<String>) -> Self {
        Error::Plan(msg.into())
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
            e => Error::At {
                location,
                source: Box::new(e),
            },
        }
    }
}

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

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
