//! A query's dataflow: a tree of nodes, turned into tasks by [`launch`].

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use sluice_common::{Message, Result};
use tokio::sync::mpsc::{channel, Receiver};
use tokio::task::JoinSet;

use crate::metrics::NodeMetrics;
use crate::operator::Operator;
use crate::runtime::{run_operator, run_sink, CHANNEL_CAPACITY};
use crate::sink::Sink;
use crate::source::{Source, SourceContext};

/// What a node runs.
pub enum NodeKind {
    /// A leaf.
    Source(Box<dyn Source>),
    /// An inner node.
    Operator(Box<dyn Operator>),
}

/// One node of the dataflow tree with its inputs.
pub struct StreamNode {
    /// What it runs.
    pub kind: NodeKind,
    /// Its inputs, in input-index order.
    pub inputs: Vec<StreamNode>,
    /// Its counters.
    pub metrics: Arc<NodeMetrics>,
}

impl StreamNode {
    /// A source leaf.
    pub fn source(source: Box<dyn Source>) -> Self {
        StreamNode {
            kind: NodeKind::Source(source),
            inputs: vec![],
            metrics: Arc::default(),
        }
    }

    /// An operator over `inputs`.
    pub fn operator(op: Box<dyn Operator>, inputs: Vec<StreamNode>) -> Self {
        StreamNode {
            kind: NodeKind::Operator(op),
            inputs,
            metrics: Arc::default(),
        }
    }

    /// Schema of the node's output.
    pub fn schema(&self) -> SchemaRef {
        match &self.kind {
            NodeKind::Source(s) => s.output_schema(),
            NodeKind::Operator(o) => o.output_schema(),
        }
    }

    /// A display tree sharing this node's counters.
    pub fn explain(&self) -> ExplainNode {
        let line = match &self.kind {
            NodeKind::Source(s) => s.describe(),
            NodeKind::Operator(o) => o.describe(),
        };
        ExplainNode {
            line,
            metrics: Arc::clone(&self.metrics),
            children: self.inputs.iter().map(StreamNode::explain).collect(),
        }
    }
}

/// A query ready to run: the tree and, for `INSERT INTO`, its sink.
pub struct StreamGraph {
    /// The root of the tree.
    pub root: StreamNode,
    /// Where results go; `None` means to the caller.
    pub sink: Option<(Box<dyn Sink>, Arc<NodeMetrics>)>,
}

impl StreamGraph {
    /// The EXPLAIN tree (sink on top).
    pub fn explain(&self) -> ExplainNode {
        let root = self.root.explain();
        match &self.sink {
            Some((sink, metrics)) => ExplainNode {
                line: sink.describe(),
                metrics: Arc::clone(metrics),
                children: vec![root],
            },
            None => root,
        }
    }
}

/// EXPLAIN output: one line per node, children indented.
#[derive(Debug, Clone)]
pub struct ExplainNode {
    /// Node name and parameters.
    pub line: String,
    /// Live counters.
    pub metrics: Arc<NodeMetrics>,
    /// Inputs.
    pub children: Vec<ExplainNode>,
}

impl ExplainNode {
    /// Render as indented lines; with `analyze`, with counters.
    pub fn render(&self, analyze: bool) -> Vec<String> {
        let mut out = Vec::new();
        self.render_into(0, analyze, &mut out);
        out
    }

    fn render_into(&self, depth: usize, analyze: bool, out: &mut Vec<String>) {
        let mut line = format!("{}{}", "  ".repeat(depth), self.line);
        if analyze {
            let m = &self.metrics;
            let _ = write!(line, " [rows_in={}, rows_out={}", m.rows_in(), m.rows_out());
            if m.late_rows() > 0 {
                let _ = write!(line, ", late_rows_dropped={}", m.late_rows());
            }
            if m.bad_records() > 0 {
                let _ = write!(line, ", bad_records_skipped={}", m.bad_records());
            }
            let _ = write!(line, ", watermark={}]", m.watermark().display());
        }
        out.push(line);
        for c in &self.children {
            c.render_into(depth + 1, analyze, out);
        }
    }

    /// Sum of a counter over the whole tree.
    pub fn total(&self, f: &dyn Fn(&NodeMetrics) -> u64) -> u64 {
        f(&self.metrics) + self.children.iter().map(|c| c.total(f)).sum::<u64>()
    }

    /// Per-partition lag of every source that reports one.
    pub fn partition_lag(&self) -> Vec<(i32, i64)> {
        let mut out = self.metrics.partition_lag();
        for c in &self.children {
            out.extend(c.partition_lag());
        }
        out
    }

    /// Rows read by all sources (leaves).
    pub fn source_rows(&self) -> u64 {
        if self.children.is_empty() {
            self.metrics.rows_out()
        } else {
            self.children.iter().map(ExplainNode::source_rows).sum()
        }
    }
}

/// Spawn every node of `graph` into `tasks`. Returns the receiver of the
/// root's output when the graph has no sink.
pub fn launch(graph: StreamGraph, tasks: &mut JoinSet<Result<()>>) -> Option<Receiver<Message>> {
    let rx = launch_node(graph.root, tasks);
    match graph.sink {
        Some((sink, metrics)) => {
            tasks.spawn(run_sink(sink, rx, metrics));
            None
        }
        None => Some(rx),
    }
}

fn launch_node(node: StreamNode, tasks: &mut JoinSet<Result<()>>) -> Receiver<Message> {
    let (tx, rx) = channel(CHANNEL_CAPACITY);
    match node.kind {
        NodeKind::Source(source) => {
            let ctx = SourceContext::new(tx, node.metrics);
            tasks.spawn(source.run(ctx));
        }
        NodeKind::Operator(op) => {
            let inputs = node
                .inputs
                .into_iter()
                .map(|n| launch_node(n, tasks))
                .collect();
            tasks.spawn(run_operator(op, inputs, tx, node.metrics));
        }
    }
    rx
}
