//! `sluice-common`: the vocabulary every Sluice crate shares.
//!
//! * [`Message`] — what travels on every edge of a streaming graph: data
//!   batches and the control markers (watermarks, checkpoint barriers, end of
//!   stream) in one ordered channel.
//! * [`changelog`] — row kinds (`+I/-U/+U/-D`) of updating streams, carried
//!   as a last `Int8` column, and folding a changelog into a table.
//! * [`Watermark`] — event time in milliseconds since the epoch.
//! * [`Error`] / [`Result`] — errors that name the fault (the user's SQL, an
//!   external system, a bad record, or a bug).
//!
//! This crate does no I/O and stays small on purpose.
#![deny(missing_docs)]

pub mod changelog;
mod error;
mod fold;
mod message;
mod secrets;
mod sql_types;
pub mod window;

pub use error::{datafusion_message, is_user_internal_error, Error, Result, SourceLocation};
pub use fold::Fold;
pub use message::{Barrier, Message, Watermark};
pub use secrets::{is_secret_option, MASK};
pub use sql_types::{arrow_to_sql_names, sql_type_name};
