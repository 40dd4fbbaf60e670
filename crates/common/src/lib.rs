//! `sluice-common`: the vocabulary every Sluice crate shares.
//!
//! * [`Message`] — what travels on every edge of a streaming graph: data
//!   batches and the control markers (watermarks, checkpoint barriers, end of
//!   stream) in one ordered channel.
//! * [`Watermark`] — event time in milliseconds since the epoch.
//! * [`Error`] / [`Result`] — errors that name the fault (the user's SQL, an
//!   external system, a bad record, or a bug).
//!
//! This crate does no I/O and stays small on purpose.
#![deny(missing_docs)]

mod error;
mod message;
mod sql_types;

pub use error::{datafusion_message, is_user_internal_error, Error, Result, SourceLocation};
pub use message::{Barrier, Message, Watermark};
pub use sql_types::arrow_to_sql_names;
