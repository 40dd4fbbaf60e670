//! The streaming plan: every node of a query's dataflow as data — node id,
//! operator kind, parallelism, how it reads its inputs, output schema,
//! changelog mode and upsert key — apart from the objects that run it.
//!
//! Node ids are given in a fixed order (a node's inputs before the node,
//! left to right; a source before the row functions fused onto it; the sink
//! last), so the same query planned twice, in one process or in several,
//! gets the same ids and the same [`PlanNode::fingerprint`]. Ids are what
//! checkpointed state will be named by; the fingerprint is how processes
//! that share a query check they built the same plan. EXPLAIN prints the
//! plan, EXPLAIN ANALYZE with each node's live counters, EXPLAIN VERBOSE with
//! schemas and the fingerprint.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use sluice_common::changelog;
use sluice_common::sql_type_name;

use crate::metrics::NodeMetrics;

/// A node's number within its plan.
pub type NodeId = u32;

/// How a node's instances receive their input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partitioning {
    /// A leaf: no input.
    Source,
    /// Run on its input's task (a row function fused onto a source).
    Fused,
    /// Instance `i` of the input feeds instance `i` (or all into one).
    Forward,
    /// Rows are routed by the hash of key expressions: one group (the
    /// keys, comma-separated) per hashed input.
    Hash(Vec<String>),
}

/// One node of the streaming plan, with its inputs.
#[derive(Debug, Clone)]
pub struct PlanNode {
    /// Its id (see the module docs).
    pub id: NodeId,
    /// Operator kind, e.g. `UpdatingAggregate`.
    pub operator: String,
    /// Kind and parameters, as EXPLAIN prints them.
    pub line: String,
    /// Instances (output streams).
    pub parallelism: usize,
    /// How its inputs reach the instances.
    pub partitioning: Partitioning,
    /// Schema of its output (the row-kind column last when updating).
    pub schema: SchemaRef,
    /// Upsert key column names of an updating output.
    pub upsert_key: Option<Vec<String>>,
    /// Live counters.
    pub metrics: Arc<NodeMetrics>,
    /// Inputs.
    pub children: Vec<PlanNode>,
}

impl PlanNode {
    /// This node (its children already numbered) with the next id.
    pub(crate) fn numbered(mut self, next: &mut NodeId) -> PlanNode {
        self.id = *next;
        *next += 1;
        self
    }

    /// Whether the node's output is a changelog.
    pub fn is_updating(&self) -> bool {
        changelog::is_changelog(&self.schema)
    }

    /// EXPLAIN's text for the node: id, line, parallelism, partitioning,
    /// changelog mode.
    fn head(&self) -> String {
        let mut line = format!("#{} {}", self.id, self.line);
        if self.parallelism > 1 {
            let _ = write!(line, " (parallelism={}", self.parallelism);
            if let Partitioning::Hash(groups) = &self.partitioning {
                let groups: Vec<String> = groups.iter().map(|g| format!("[{g}]")).collect();
                let _ = write!(line, ", hash by {}", groups.join(" / "));
            }
            line.push(')');
        }
        if self.is_updating() {
            match &self.upsert_key {
                Some(k) => {
                    let _ = write!(line, " [updating, upsert key [{}]]", k.join(", "));
                }
                None => line.push_str(" [updating]"),
            }
        }
        line
    }

    /// Render as indented lines; with `analyze`, with counters.
    pub fn render(&self, analyze: bool) -> Vec<String> {
        let mut out = Vec::new();
        self.render_into(0, analyze, false, &mut out);
        out
    }

    /// Render with each node's output columns, after a line with the
    /// plan's fingerprint.
    pub fn render_verbose(&self) -> Vec<String> {
        let mut out = vec![format!("plan fingerprint {:016x}", self.fingerprint())];
        self.render_into(0, false, true, &mut out);
        out
    }

    fn render_into(&self, depth: usize, analyze: bool, verbose: bool, out: &mut Vec<String>) {
        let indent = "  ".repeat(depth);
        let mut line = format!("{indent}{}", self.head());
        if analyze {
            line.push_str(&counters(&self.metrics));
        }
        out.push(line);
        if verbose {
            out.push(format!("{indent}    columns: {}", columns(&self.schema)));
        }
        for c in &self.children {
            c.render_into(depth + 1, analyze, verbose, out);
        }
    }

    /// A hash of everything the plan says (not its counters): equal for
    /// equal plans, across processes of the same build.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv::default();
        self.hash_into(&mut h);
        h.0
    }

    /// [`PlanNode::fingerprint`] leaving out each node's parallelism: equal
    /// for the workers of one job, whatever the parallelism each runs at.
    pub fn shape_fingerprint(&self) -> u64 {
        let mut h = Fnv::default();
        self.hash_shape(&mut h, false);
        h.0
    }

    fn hash_into(&self, h: &mut Fnv) {
        self.hash_shape(h, true);
    }

    fn hash_shape(&self, h: &mut Fnv, parallelism: bool) {
        h.write(&self.id.to_le_bytes());
        h.write(self.line.as_bytes());
        if parallelism {
            h.write(&(self.parallelism as u64).to_le_bytes());
        }
        h.write(format!("{:?}", self.partitioning).as_bytes());
        h.write(columns(&self.schema).as_bytes());
        h.write(format!("{:?}", self.upsert_key).as_bytes());
        h.write(&(self.children.len() as u64).to_le_bytes());
        for c in &self.children {
            c.hash_shape(h, parallelism);
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
            self.children.iter().map(PlanNode::source_rows).sum()
        }
    }

    /// Every node, inputs first (in id order).
    pub fn nodes(&self) -> Vec<&PlanNode> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out.sort_by_key(|n| n.id);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a PlanNode>) {
        for c in &self.children {
            c.collect(out);
        }
        out.push(self);
    }
}

/// `a BIGINT, b STRING` (the row-kind column shown as `$op`).
fn columns(schema: &SchemaRef) -> String {
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.name() == changelog::OP_COLUMN {
                "$op".to_string()
            } else {
                format!("{} {}", f.name(), sql_type_name(f.data_type()))
            }
        })
        .collect();
    cols.join(", ")
}

/// EXPLAIN ANALYZE's counters of one node.
fn counters(m: &NodeMetrics) -> String {
    let mut line = format!(" [rows_in={}, rows_out={}", m.rows_in(), m.rows_out());
    if m.state_rows().is_some() {
        // Joins: the pairs found (rows_out also counts padded rows and
        // retractions).
        let _ = write!(line, ", rows_matched={}", m.matched_rows());
    }
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
    if let Some([l, r]) = m.state_rows() {
        let _ = write!(line, ", state_rows=[{l}, {r}]");
    }
    if m.bad_records() > 0 {
        let _ = write!(line, ", bad_records_skipped={}", m.bad_records());
    }
    let _ = write!(line, ", watermark={}]", m.watermark().display());
    line
}

/// FNV-1a, 64 bits: a hash that is the same in every process and build.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
