//! A query's dataflow: a tree of nodes, turned into tasks by [`launch`].

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use sluice_common::{Message, Result};
use tokio::sync::mpsc::{channel, Receiver};
use tokio::task::JoinSet;

use crate::exchange::{Exchange, Outbox};
use crate::gather::run_gather;
use crate::metrics::NodeMetrics;
use crate::operator::Operator;
use crate::plan::{NodeId, Partitioning, PlanNode};
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

    /// This node in the streaming plan, its inputs numbered first from
    /// `next` (see [`crate::plan`]).
    pub fn plan(&self, next: &mut NodeId) -> PlanNode {
        match &self.kind {
            NodeKind::Source(s, chain) => {
                let mut node = PlanNode {
                    id: 0,
                    operator: s.name().to_string(),
                    line: s.describe(),
                    parallelism: 1,
                    partitioning: Partitioning::Source,
                    schema: s.output_schema(),
                    upsert_key: None,
                    metrics: Arc::clone(&self.metrics),
                    children: vec![],
                }
                .numbered(next);
                let steps = chain.steps();
                let last = steps.len();
                for (k, (f, metrics)) in steps.iter().enumerate() {
                    node = PlanNode {
                        id: 0,
                        operator: f.name().to_string(),
                        line: f.describe(),
                        parallelism: 1,
                        partitioning: Partitioning::Fused,
                        schema: f.output_schema(),
                        upsert_key: (k + 1 == last).then(|| self.upsert_key.clone()).flatten(),
                        metrics: Arc::clone(metrics),
                        children: vec![node],
                    }
                    .numbered(next);
                }
                if last == 0 {
                    node.upsert_key.clone_from(&self.upsert_key);
                }
                node
            }
            NodeKind::Operator(ops) => {
                let children = self.inputs.iter().map(|i| i.plan(next)).collect();
                // One group of key expressions per hashed input.
                let groups: Vec<String> = self
                    .exchanges
                    .iter()
                    .filter_map(|e| match e {
                        Exchange::Hash(keys) => {
                            let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                            Some(keys.join(", "))
                        }
                        Exchange::Forward => None,
                    })
                    .collect();
                let hash = (!groups.is_empty()).then_some(groups);
                PlanNode {
                    id: 0,
                    operator: ops[0].name().to_string(),
                    line: ops[0].describe(),
                    parallelism: ops.len(),
                    partitioning: hash.map_or(Partitioning::Forward, Partitioning::Hash),
                    schema: ops[0].output_schema(),
                    upsert_key: self.upsert_key.clone(),
                    metrics: Arc::clone(&self.metrics),
                    children,
                }
                .numbered(next)
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
    /// The streaming plan (sink on top), sharing the nodes' counters.
    pub fn plan(&self) -> PlanNode {
        let mut next = 0;
        let root = self.root.plan(&mut next);
        match &self.sink {
            Some((sink, metrics)) => {
                let schema = Arc::clone(&root.schema);
                PlanNode {
                    id: 0,
                    operator: sink.name().to_string(),
                    line: sink.describe(),
                    parallelism: 1,
                    partitioning: Partitioning::Forward,
                    schema,
                    upsert_key: None,
                    metrics: Arc::clone(metrics),
                    children: vec![root],
                }
                .numbered(&mut next)
            }
            None => root,
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
