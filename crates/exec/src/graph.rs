//! A query's dataflow: a tree of nodes, turned into tasks by [`launch`].

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use sluice_common::changelog;
use sluice_common::{Message, Result};
use tokio::sync::mpsc::{channel, Receiver};
use tokio::task::JoinSet;

use crate::exchange::{Exchange, Outbox};
use crate::gather::run_gather;
use crate::metrics::NodeMetrics;
use crate::operator::Operator;
use crate::row::{Chain, RowFunction, RowOperator};
use crate::runtime::{run_operator, run_sink, CHANNEL_CAPACITY};
use crate::sink::Sink;
use crate::source::{Source, SourceContext};

/// What a node runs.
pub enum NodeKind {
    /// A leaf, with the row functions fused onto it.
    Source(Box<dyn Source>, Chain),
    /// An inner node: one operator per parallel instance (at least one).
    Operator(Vec<Box<dyn Operator>>),
}

/// One node of the dataflow tree with its inputs.
pub struct StreamNode {
    /// What it runs.
    pub kind: NodeKind,
    /// Its inputs, in input-index order.
    pub inputs: Vec<StreamNode>,
    /// How each input reaches the instances.
    pub exchanges: Vec<Exchange>,
    /// Its counters (shared by its instances).
    pub metrics: Arc<NodeMetrics>,
    /// Names of the upsert key columns of an updating output, for EXPLAIN.
    pub upsert_key: Option<Vec<String>>,
}

impl StreamNode {
    /// A source leaf.
    pub fn source(source: Box<dyn Source>) -> Self {
        StreamNode {
            kind: NodeKind::Source(source, Chain::default()),
            inputs: vec![],
            exchanges: vec![],
            metrics: Arc::default(),
            upsert_key: None,
        }
    }

    /// One operator instance over `inputs`.
    pub fn operator(op: Box<dyn Operator>, inputs: Vec<StreamNode>) -> Self {
        let exchanges = vec![Exchange::Forward; inputs.len()];
        Self::parallel(vec![op], inputs, exchanges)
    }

    /// Parallel instances of one operator over `inputs`, each input
    /// distributed by its exchange.
    pub fn parallel(
        instances: Vec<Box<dyn Operator>>,
        inputs: Vec<StreamNode>,
        exchanges: Vec<Exchange>,
    ) -> Self {
        debug_assert!(!instances.is_empty());
        debug_assert_eq!(inputs.len(), exchanges.len());
        StreamNode {
            kind: NodeKind::Operator(instances),
            inputs,
            exchanges,
            metrics: Arc::default(),
            upsert_key: None,
        }
    }

    /// Apply `f` to every row this node emits: fused onto a source, or as
    /// one forward instance per instance of this node.
    pub fn then(mut self, f: Arc<dyn RowFunction>) -> Self {
        if let NodeKind::Source(_, chain) = &mut self.kind {
            chain.push(f);
            return self;
        }
        let instances = (0..self.parallelism())
            .map(|_| Box::new(RowOperator(Arc::clone(&f))) as Box<dyn Operator>)
            .collect();
        Self::parallel(instances, vec![self], vec![Exchange::Forward])
    }

    /// Name the upsert key of this node's updating output (EXPLAIN).
    pub fn with_upsert_key(mut self, key: Option<Vec<String>>) -> Self {
        self.upsert_key = key;
        self
    }

    /// EXPLAIN's note on an updating output: `[updating, upsert key [k]]`.
    fn mode_note(&self) -> String {
        if !changelog::is_changelog(&self.schema()) {
            return String::new();
        }
        match &self.upsert_key {
            Some(k) => format!(" [updating, upsert key [{}]]", k.join(", ")),
            None => " [updating]".to_string(),
        }
    }

    /// Whether this is a source (which row functions are fused onto).
    pub fn is_source(&self) -> bool {
        matches!(self.kind, NodeKind::Source(..))
    }

    /// Number of output streams: instances of an operator; a source is one
    /// stream however many threads make its chunks.
    pub fn parallelism(&self) -> usize {
        match &self.kind {
            NodeKind::Source(..) => 1,
            NodeKind::Operator(ops) => ops.len(),
        }
    }

    /// Schema of the node's output.
    pub fn schema(&self) -> SchemaRef {
        match &self.kind {
            NodeKind::Source(s, chain) => chain.output_schema(s.output_schema()),
            NodeKind::Operator(ops) => ops[0].output_schema(),
        }
    }

    /// A display tree sharing this node's counters.
    pub fn explain(&self) -> ExplainNode {
        match &self.kind {
            NodeKind::Source(s, chain) => {
                let mut node = ExplainNode {
                    line: s.describe(),
                    metrics: Arc::clone(&self.metrics),
                    children: vec![],
                };
                for (f, metrics) in chain.steps() {
                    node = ExplainNode {
                        line: f.describe(),
                        metrics: Arc::clone(metrics),
                        children: vec![node],
                    };
                }
                node
            }
            NodeKind::Operator(ops) => {
                let mut line = ops[0].describe();
                if ops.len() > 1 {
                    let _ = write!(line, " (parallelism={}", ops.len());
                    for e in &self.exchanges {
                        if let Exchange::Hash(keys) = e {
                            let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                            let _ = write!(line, ", hash by [{}]", keys.join(", "));
                        }
                    }
                    line.push(')');
                }
                line.push_str(&self.mode_note());
                ExplainNode {
                    line,
                    metrics: Arc::clone(&self.metrics),
                    children: self.inputs.iter().map(StreamNode::explain).collect(),
                }
            }
        }
    }
}

/// A query ready to run: the tree and, for `INSERT INTO`, its sink.
pub struct StreamGraph {
    /// The root of the tree.
    pub root: StreamNode,
    /// Where results go; `None` means to the caller.
    pub sink: Option<(Box<dyn Sink>, Arc<NodeMetrics>)>,
    /// Threads a parallel source may use for its chunks.
    pub parallelism: usize,
    /// Gathers keep a timing-independent order (bounded queries: a script
    /// gives the same output every run); otherwise rows pass as they come.
    pub ordered: bool,
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
            if m.nulled_records() > 0 {
                let _ = write!(line, ", records_with_null_fields={}", m.nulled_records());
            }
            if m.state_keys() > 0 {
                let _ = write!(
                    line,
                    ", state_keys={}, state_bytes={}",
                    m.state_keys(),
                    m.state_bytes()
                );
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
    let (tx, rx) = channel(CHANNEL_CAPACITY);
    let root = graph.root;
    let out = Outbox::single(tx);
    let ctx = Launch {
        parallelism: graph.parallelism,
        ordered: graph.ordered,
    };
    if root.parallelism() > 1 {
        // One stream out, in an order that does not depend on timing.
        let senders = gather(root.parallelism(), out, ctx.ordered, tasks);
        launch_node(root, senders, ctx, tasks);
    } else {
        launch_node(root, vec![out], ctx, tasks);
    }
    match graph.sink {
        Some((sink, metrics)) => {
            tasks.spawn(run_sink(sink, rx, metrics));
            None
        }
        None => Some(rx),
    }
}

/// How a graph's tasks are made.
#[derive(Clone, Copy)]
struct Launch {
    /// Threads a parallel source may use.
    parallelism: usize,
    /// Gathers keep a timing-independent order.
    ordered: bool,
}

/// Spawn a gather of `n` instances into `out`; returns their outboxes.
fn gather(n: usize, out: Outbox, ordered: bool, tasks: &mut JoinSet<Result<()>>) -> Vec<Outbox> {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| channel(CHANNEL_CAPACITY)).unzip();
    tasks.spawn(run_gather(receivers, out, Arc::default(), ordered));
    senders.into_iter().map(Outbox::single).collect()
}

/// Spawn `node`, whose instance `i` sends into `outboxes[i]`, and its inputs.
fn launch_node(
    node: StreamNode,
    mut outboxes: Vec<Outbox>,
    ctx: Launch,
    tasks: &mut JoinSet<Result<()>>,
) {
    match node.kind {
        NodeKind::Source(source, chain) => {
            let out = outboxes.remove(0);
            let source_ctx = SourceContext::with_chain(out, node.metrics, chain, ctx.parallelism);
            tasks.spawn(source.run(source_ctx));
        }
        NodeKind::Operator(ops) => {
            let p = ops.len();
            let mut receivers: Vec<Vec<(usize, Receiver<Message>)>> =
                (0..p).map(|_| Vec::new()).collect();
            for (k, (input, exchange)) in node.inputs.into_iter().zip(node.exchanges).enumerate() {
                let p_in = input.parallelism();
                if p == 1 && p_in > 1 {
                    // Many instances into one: through an ordered gather.
                    let (tx, rx) = channel(CHANNEL_CAPACITY);
                    receivers[0].push((k, rx));
                    let outboxes = gather(p_in, Outbox::single(tx), ctx.ordered, tasks);
                    launch_node(input, outboxes, ctx, tasks);
                    continue;
                }
                let mut input_outboxes = Vec::with_capacity(p_in);
                for i in 0..p_in {
                    let forward = p_in == p && matches!(exchange, Exchange::Forward);
                    let targets: Vec<usize> = if forward { vec![i] } else { (0..p).collect() };
                    let mut senders = Vec::with_capacity(targets.len());
                    for j in targets {
                        let (tx, rx) = channel(CHANNEL_CAPACITY);
                        senders.push(tx);
                        receivers[j].push((k, rx));
                    }
                    input_outboxes.push(match &exchange {
                        Exchange::Hash(keys) => Outbox::hash(senders, keys.clone()),
                        Exchange::Forward => Outbox::round_robin(senders),
                    });
                }
                launch_node(input, input_outboxes, ctx, tasks);
            }
            for ((op, inputs), out) in ops.into_iter().zip(receivers).zip(outboxes) {
                tasks.spawn(run_operator(op, inputs, out, Arc::clone(&node.metrics)));
            }
        }
    }
}
