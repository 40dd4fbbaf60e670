//! `sluice-exec`: the streaming runtime.
//!
//! A query runs as a tree of [`graph::StreamNode`]s: [`source::Source`]s at
//! the leaves, [`operator::Operator`]s above them and an optional
//! [`sink::Sink`] at the root. Each operator runs as one or more parallel
//! instances, each one tokio task; instances are joined by bounded channels
//! carrying [`sluice_common::Message`]s ([`exchange`] routes rows by key), so
//! a slow consumer slows its producers down (backpressure) instead of
//! buffering. Stateless row functions ([`row`]) are fused onto sources, and
//! sources that split into chunks make them on several threads
//! ([`pipeline`]) without changing the stream they emit.
//!
//! The run loop ([`runtime`]) owns the protocol: it combines watermarks of
//! several inputs (minimum), aligns barriers, forwards end of stream and calls
//! one operator hook per message. Operators are plain synchronous state
//! machines and never block. [`plan`] describes a built dataflow as data:
//! node ids, kinds, parallelism, partitioning, schemas and changelog modes.
#![deny(missing_docs)]

pub mod checkpoint;
pub mod exchange;
pub mod gather;
pub mod graph;
pub mod metrics;
pub mod operator;
pub mod operators;
pub mod pipeline;
pub mod plan;
pub mod row;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod time;
pub mod watermark;
pub mod workers;
