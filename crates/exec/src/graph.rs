//! A query's dataflow: a tree of nodes, turned into tasks by [`launch`].
//! A subtree read by several consumers (a table scanned twice in one
//! query) is a [`SharedNode`]: it runs once and a tee copies its output to
//! every consumer, so all of them see the same rows, each routed by its
//! own exchange. The tree is then a DAG.

use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use sluice_common::{Message, Result};
use tokio::sync::mpsc::{channel, Receiver};
use tokio::task::JoinSet;

use crate::checkpoint::launch::{node_key, Launching};
use crate::checkpoint::KeyRange;
use crate::checkpoint::{CheckpointConfig, JobCheckpoints};
use crate::exchange::{Exchange, Outbox};
use crate::gather::run_gather;
use crate::metrics::NodeMetrics;
use crate::operator::Operator;
use crate::plan::{NodeId, Partitioning, PlanNode};
use crate::row::{Chain, RowFunction, RowOperator};
use crate::runtime::{run_operator, run_sink, CHANNEL_CAPACITY};
use crate::sink::Sink;
use crate::source::{Source, SourceContext};
use crate::workers::{Across, Crossing, WorkerRoute, Workers};

/// What a node runs.
pub enum NodeKind {
    /// A leaf, with the row functions fused onto it.
    Source(Box<dyn Source>, Chain),
    /// An inner node: one operator per parallel instance (at least one).
    Operator(Vec<Box<dyn Operator>>),
    /// One consumer's read of a shared node.
    Shared(Arc<SharedNode>),
}

/// A node with several consumers: launched once, when the last consumer
/// is, with a tee into every consumer's outbox.
pub struct SharedNode {
    pub(crate) node: Mutex<Option<StreamNode>>,
    waiting: Mutex<Vec<Outbox>>,
    schema: SchemaRef,
    metrics: Arc<NodeMetrics>,
}

impl SharedNode {
    /// Share `node` (of parallelism 1, e.g. a source); each consumer reads
    /// it through [`StreamNode::reading`].
    pub fn new(node: StreamNode) -> Arc<Self> {
        Arc::new(SharedNode {
            schema: node.schema(),
            metrics: Arc::clone(&node.metrics),
            node: Mutex::new(Some(node)),
            waiting: Mutex::new(Vec::new()),
        })
    }
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

    /// A consumer's read of `shared`.
    pub fn reading(shared: &Arc<SharedNode>) -> Self {
        StreamNode {
            kind: NodeKind::Shared(Arc::clone(shared)),
            inputs: vec![],
            exchanges: vec![],
            metrics: Arc::clone(&shared.metrics),
            upsert_key: None,
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
            NodeKind::Source(..) | NodeKind::Shared(_) => 1,
            NodeKind::Operator(ops) => ops.len(),
        }
    }

    /// Schema of the node's output.
    pub fn schema(&self) -> SchemaRef {
        match &self.kind {
            NodeKind::Source(s, chain) => chain.output_schema(s.output_schema()),
            NodeKind::Operator(ops) => ops[0].output_schema(),
            NodeKind::Shared(shared) => Arc::clone(&shared.schema),
        }
    }

    /// This node in the streaming plan, its inputs numbered first from
    /// `next` (see [`crate::plan`]). A shared node is shown in full where
    /// it is first read, then as a reference to its id.
    pub fn plan(&self, next: &mut Numbering) -> PlanNode {
        match &self.kind {
            NodeKind::Shared(shared) => {
                let key = Arc::as_ptr(shared) as usize;
                if let Some(id) = next.shared.iter().find(|(k, _)| *k == key).map(|s| s.1) {
                    return PlanNode {
                        id: 0,
                        operator: "Shared".to_string(),
                        line: format!("Shared: the output of #{id}, read once"),
                        parallelism: 1,
                        partitioning: Partitioning::Forward,
                        schema: Arc::clone(&shared.schema),
                        upsert_key: None,
                        metrics: Arc::default(),
                        children: vec![],
                    }
                    .numbered(&mut next.next);
                }
                let node = shared.node.lock().ok();
                let plan = match node.as_ref().and_then(|n| n.as_ref()) {
                    Some(n) => n.plan(next),
                    None => PlanNode {
                        id: 0,
                        operator: "Shared".to_string(),
                        line: "Shared: running".to_string(),
                        parallelism: 1,
                        partitioning: Partitioning::Forward,
                        schema: Arc::clone(&shared.schema),
                        upsert_key: None,
                        metrics: Arc::clone(&shared.metrics),
                        children: vec![],
                    }
                    .numbered(&mut next.next),
                };
                next.shared.push((key, plan.id));
                plan
            }
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
                .numbered(&mut next.next);
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
                    .numbered(&mut next.next);
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
                        Exchange::Forward | Exchange::Broadcast | Exchange::Global => None,
                    })
                    .collect();
                let hash = (!groups.is_empty()).then_some(groups);
                let id = next.next;
                let mut line = ops[0].describe();
                if let Some(across) = &next.across {
                    line.push_str(&self.across_line(across, id));
                }
                PlanNode {
                    id: 0,
                    operator: ops[0].name().to_string(),
                    line,
                    parallelism: ops.len(),
                    partitioning: hash.map_or(Partitioning::Forward, Partitioning::Hash),
                    schema: ops[0].output_schema(),
                    upsert_key: self.upsert_key.clone(),
                    metrics: Arc::clone(&self.metrics),
                    children,
                }
                .numbered(&mut next.next)
            }
        }
    }
}

/// Plan numbering: the next id, and the ids given to shared nodes.
#[derive(Default)]
pub struct Numbering {
    /// The next node id.
    pub next: NodeId,
    shared: Vec<(usize, NodeId)>,
    /// The job runs on several workers: edges that cross them are marked.
    pub across: Option<Across>,
}

impl StreamNode {
    /// EXPLAIN's note on the inputs of this node (plan id `id`) that cross
    /// workers: how rows are routed and through which topic.
    fn across_line(&self, across: &Across, id: NodeId) -> String {
        let notes: Vec<String> = self
            .exchanges
            .iter()
            .enumerate()
            .filter_map(|(k, e)| {
                let route = WorkerRoute::of(e)?;
                let topic = crate::workers::topic_name(&across.pipeline, id, k);
                let input = if self.exchanges.len() > 1 {
                    format!("input {k} ")
                } else {
                    String::new()
                };
                Some(format!("{input}{} through {topic}", route.describe()))
            })
            .collect();
        if notes.is_empty() {
            return String::new();
        }
        format!(" [across {} workers: {}]", across.workers, notes.join("; "))
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
    /// The other processes running this query with this one, if any
    /// ([`crate::workers`]).
    pub workers: Option<Arc<dyn Workers>>,
    /// The job is planned for several workers (EXPLAIN marks the edges
    /// between them).
    pub across: Option<Across>,
}

impl StreamGraph {
    /// The streaming plan (sink on top), sharing the nodes' counters.
    pub fn plan(&self) -> PlanNode {
        let mut next = Numbering {
            across: self.across.clone(),
            ..Numbering::default()
        };
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
                .numbered(&mut next.next)
            }
            None => root,
        }
    }
}

/// Spawn every node of `graph` into `tasks`. Returns the receiver of the
/// root's output when the graph has no sink.
pub fn launch(graph: StreamGraph, tasks: &mut JoinSet<Result<()>>) -> Option<Receiver<Message>> {
    launch_with(graph, tasks, None)
}

/// Spawn an `INSERT INTO` job that checkpoints by `cfg` (resuming from
/// `cfg.restored`), with its checkpoint coordinator.
pub fn launch_checkpointed(
    graph: StreamGraph,
    tasks: &mut JoinSet<Result<()>>,
    cfg: CheckpointConfig,
) -> Result<JobCheckpoints> {
    let mut launching = Launching::prepare(&graph, cfg)?;
    let exposed = launching
        .exposed()
        .ok_or_else(|| sluice_common::Error::internal("checkpoint coordinator missing"))?;
    launch_with(graph, tasks, Some(&launching));
    launching.spawn(tasks);
    Ok(exposed)
}

fn launch_with(
    graph: StreamGraph,
    tasks: &mut JoinSet<Result<()>>,
    ck: Option<&Launching>,
) -> Option<Receiver<Message>> {
    let (tx, rx) = channel(CHANNEL_CAPACITY);
    let ids = match &graph.workers {
        Some(_) => node_ids(&graph.plan()),
        None => Vec::new(),
    };
    let root = graph.root;
    let out = Outbox::single(tx);
    let ctx = Launch {
        parallelism: graph.parallelism,
        ordered: graph.ordered,
        workers: graph.workers.as_ref(),
        ids: &ids,
    };
    if root.parallelism() > 1 {
        // One stream out, in an order that does not depend on timing.
        let senders = gather(root.parallelism(), out, ctx.ordered, tasks);
        launch_node(root, senders, ctx, ck, tasks);
    } else {
        launch_node(root, vec![out], ctx, ck, tasks);
    }
    match graph.sink {
        Some((sink, metrics)) => {
            let checkpoint = ck.and_then(Launching::sink);
            tasks.spawn(run_sink(sink, rx, metrics, checkpoint));
            None
        }
        None => Some(rx),
    }
}

/// How a graph's tasks are made.
#[derive(Clone, Copy)]
struct Launch<'a> {
    /// Threads a parallel source may use.
    parallelism: usize,
    /// Gathers keep a timing-independent order.
    ordered: bool,
    /// The job's workers, when it has several.
    workers: Option<&'a Arc<dyn Workers>>,
    /// Plan ids of the operator nodes, by [`node_key`] (with workers).
    ids: &'a [(usize, NodeId)],
}

/// Every node's plan id by its counters' address.
fn node_ids(plan: &PlanNode) -> Vec<(usize, NodeId)> {
    let mut out = vec![(Arc::as_ptr(&plan.metrics) as usize, plan.id)];
    for c in &plan.children {
        out.extend(node_ids(c));
    }
    out
}

/// Copy every message from `rx` to each of `outs` (each routes batches by
/// its own exchange), until the input ends or every consumer is gone.
async fn run_tee(mut rx: Receiver<Message>, outs: Vec<Outbox>) -> Result<()> {
    let mut open = vec![true; outs.len()];
    while let Some(msg) = rx.recv().await {
        for (out, open) in outs.iter().zip(open.iter_mut()).filter(|(_, o)| **o) {
            *open = match &msg {
                Message::Batch(b) => {
                    let parts = out.partition(b.clone())?;
                    out.send_parts(parts).await
                }
                other => out.broadcast(other.clone()).await,
            };
        }
        if !open.iter().any(|o| *o) {
            return Ok(());
        }
    }
    Ok(())
}

/// Run `source`: resumed from its checkpointed position, or (it had
/// finished) only its end.
async fn run_source(
    mut source: Box<dyn Source>,
    ctx: SourceContext,
    checkpoint: Option<(
        crate::checkpoint::TaskCheckpoint,
        Option<crate::checkpoint::State>,
    )>,
) -> Result<()> {
    let Some((handle, restored)) = checkpoint else {
        return source.run(ctx).await;
    };
    let ctx = ctx.with_checkpoint(handle);
    if let Some(state) = restored {
        if crate::source::is_finished(&state) {
            ctx.finish().await;
            return Ok(());
        }
        source.restore(&state)?;
    }
    source.run(ctx).await
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
    ck: Option<&Launching>,
    tasks: &mut JoinSet<Result<()>>,
) {
    let key = node_key(&node);
    match node.kind {
        NodeKind::Shared(shared) => {
            let Ok(mut waiting) = shared.waiting.lock() else {
                return;
            };
            waiting.extend(outboxes);
            // The last consumer launched (the others are gone) launches
            // the node, with a tee to all of them.
            if Arc::strong_count(&shared) > 1 {
                return;
            }
            let outs = std::mem::take(&mut *waiting);
            drop(waiting);
            let Some(node) = shared.node.lock().ok().and_then(|mut n| n.take()) else {
                return;
            };
            let (tx, rx) = channel(CHANNEL_CAPACITY);
            tasks.spawn(run_tee(rx, outs));
            launch_node(node, vec![Outbox::single(tx)], ctx, ck, tasks);
        }
        NodeKind::Source(mut source, chain) => {
            let checkpoint = ck.and_then(|c| c.source(key));
            let out = outboxes.remove(0);
            let source_ctx = SourceContext::with_chain(out, node.metrics, chain, ctx.parallelism);
            // Across workers a source reads its share; one that cannot
            // split is read by worker 0 alone.
            if let Some(w) = ctx.workers {
                if !source.share(w.index(), w.count()) && w.index() != 0 {
                    tasks.spawn(async move {
                        source_ctx.finish().await;
                        Ok(())
                    });
                    return;
                }
            }
            tasks.spawn(run_source(source, source_ctx, checkpoint));
        }
        NodeKind::Operator(ops) => {
            let p = ops.len();
            let mut receivers: Vec<Vec<(usize, Receiver<Message>)>> =
                (0..p).map(|_| Vec::new()).collect();
            let n_inputs = node.inputs.len();
            // Across workers a hash-fed instance owns a share of the job's
            // key groups: instance `w * p + i` of `N * p`.
            let global_keys = ctx
                .workers
                .filter(|_| {
                    node.exchanges
                        .iter()
                        .any(|e| matches!(e, Exchange::Hash(_)))
                })
                .map(|w| (w.index(), w.count()));
            for (k, (input, exchange)) in node.inputs.into_iter().zip(node.exchanges).enumerate() {
                if let (Some(w), Some(route)) = (ctx.workers, WorkerRoute::of(&exchange)) {
                    let crossing = Crossing {
                        node: ctx.id_of(key),
                        input: k,
                        inputs: n_inputs,
                        route,
                        schema: input.schema(),
                    };
                    let local: Vec<_> = (0..p).map(|_| channel(CHANNEL_CAPACITY)).collect();
                    let mut senders = Vec::with_capacity(p);
                    for (j, (tx, rx)) in local.into_iter().enumerate() {
                        senders.push(tx);
                        receivers[j].push((k, rx));
                    }
                    cross_workers(w.as_ref(), &crossing, input, senders, ctx, ck, tasks);
                    continue;
                }
                let p_in = input.parallelism();
                if p == 1 && p_in > 1 {
                    // Many instances into one: through an ordered gather.
                    let (tx, rx) = channel(CHANNEL_CAPACITY);
                    receivers[0].push((k, rx));
                    let outboxes = gather(p_in, Outbox::single(tx), ctx.ordered, tasks);
                    launch_node(input, outboxes, ctx, ck, tasks);
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
                        // Every row to one instance (there is one).
                        Exchange::Global => Outbox::hash(senders, vec![]),
                        Exchange::Broadcast => Outbox::broadcast_all(senders),
                    });
                }
                launch_node(input, input_outboxes, ctx, ck, tasks);
            }
            let metrics = &node.metrics;
            for (i, ((mut op, inputs), out)) in
                ops.into_iter().zip(receivers).zip(outboxes).enumerate()
            {
                let checkpoint = match ck.and_then(|c| c.operator(key, i)) {
                    Some((handle, states, mut keys)) => {
                        if let Some((w, n)) = global_keys {
                            keys = KeyRange {
                                instance: w * keys.parallelism + i,
                                parallelism: n * keys.parallelism,
                            };
                        }
                        if let Err(e) = op.restore(states, keys) {
                            tasks.spawn(async move { Err(e) });
                            continue;
                        }
                        Some(handle)
                    }
                    None => None,
                };
                tasks.spawn(run_operator(
                    op,
                    inputs,
                    out,
                    Arc::clone(metrics),
                    checkpoint,
                ));
            }
        }
    }
}

/// The edges of `graph` that cross workers, as its launch names them.
pub fn crossings(graph: &StreamGraph) -> Vec<Crossing> {
    let ids = node_ids(&graph.plan());
    let mut out = Vec::new();
    collect_crossings(&graph.root, &ids, &mut out);
    out
}

fn collect_crossings(node: &StreamNode, ids: &[(usize, NodeId)], out: &mut Vec<Crossing>) {
    match &node.kind {
        NodeKind::Source(..) => {}
        NodeKind::Shared(shared) => {
            if let Some(n) = shared.node.lock().ok().as_ref().and_then(|n| n.as_ref()) {
                collect_crossings(n, ids, out);
            }
        }
        NodeKind::Operator(_) => {
            let key = node_key(node);
            let id = ids.iter().find(|(k, _)| *k == key).map_or(0, |(_, id)| *id);
            for (k, (input, exchange)) in node.inputs.iter().zip(&node.exchanges).enumerate() {
                if let Some(route) = WorkerRoute::of(exchange) {
                    if !out.iter().any(|c| c.node == id && c.input == k) {
                        out.push(Crossing {
                            node: id,
                            input: k,
                            inputs: node.inputs.len(),
                            route,
                            schema: input.schema(),
                        });
                    }
                }
                collect_crossings(input, ids, out);
            }
        }
    }
}

impl Launch<'_> {
    /// The plan id of the node whose key is `key`.
    fn id_of(&self, key: usize) -> NodeId {
        self.ids
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, id)| *id)
    }
}

/// Launch `input` into the writer of `edge`, and the edge's reader into
/// `senders` (the consumer's local instances).
fn cross_workers(
    workers: &dyn Workers,
    edge: &Crossing,
    input: StreamNode,
    senders: Vec<tokio::sync::mpsc::Sender<Message>>,
    ctx: Launch,
    ck: Option<&Launching>,
    tasks: &mut JoinSet<Result<()>>,
) {
    let (writer, reader) = match (workers.writer(edge), workers.reader(edge)) {
        (Ok(w), Ok(r)) => (w, r),
        (Err(e), _) | (_, Err(e)) => {
            tasks.spawn(async move { Err(e) });
            return;
        }
    };
    let (tx, rx) = channel(CHANNEL_CAPACITY);
    let p_in = input.parallelism();
    let outboxes = if p_in > 1 {
        gather(p_in, Outbox::single(tx), false, tasks)
    } else {
        vec![Outbox::single(tx)]
    };
    launch_node(input, outboxes, ctx, ck, tasks);
    tasks.spawn(writer.run(rx));
    let out = match &edge.route {
        WorkerRoute::Hash(keys) => {
            Outbox::hash_within(senders, keys.clone(), workers.index(), workers.count())
        }
        WorkerRoute::Broadcast => Outbox::broadcast_all(senders),
        WorkerRoute::Global => Outbox::hash(senders, vec![]),
    };
    let source_ctx = SourceContext::with_chain(out, Arc::default(), Chain::default(), 1);
    tasks.spawn(reader.run(source_ctx));
}
