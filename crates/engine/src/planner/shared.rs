//! Tables scanned more than once in one query (a self-join, a view used
//! twice) are read once: one source with the columns every scan needs,
//! fanned out to each scan, which keeps its own columns. So generators,
//! Kafka topics and files give every branch the same rows, read once.
//! Upsert tables are the exception: each scan normalizes its own read.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::logical_plan::TableScan;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::changelog::ChangelogMode;
use sluice_common::{Error, Result};
use sluice_exec::graph::{SharedNode, StreamNode};
use sluice_exec::operators::stateless::Step;

use super::{project_changelog, Planned};

/// A table scanned more than once.
pub(crate) struct SharedScan {
    /// The table's columns any scan reads, in table order.
    pub columns: Vec<usize>,
    /// The shared read, once planned.
    built: Option<Built>,
}

/// The shared read and what its output is.
struct Built {
    node: Arc<SharedNode>,
    schema: DFSchemaRef,
    rowtime: Vec<bool>,
    bounded: bool,
    changelog: ChangelogMode,
}

/// The tables `plan` scans more than once, by name.
pub(crate) fn find(plan: &LogicalPlan) -> HashMap<String, SharedScan> {
    let mut seen: HashMap<String, (usize, BTreeSet<usize>)> = HashMap::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let (uses, cols) = seen.entry(scan.table_name.to_string()).or_default();
            *uses += 1;
            match &scan.projection {
                Some(p) => cols.extend(p.iter().copied()),
                None => cols.extend(0..scan.source.schema().fields().len()),
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    seen.into_iter()
        .filter(|(_, (uses, _))| *uses > 1)
        .map(|(name, (_, cols))| {
            let scan = SharedScan {
                columns: cols.into_iter().collect(),
                built: None,
            };
            (name, scan)
        })
        .collect()
}

impl SharedScan {
    /// One scan's read of the shared table: `read` plans the shared
    /// source (the first time), then the scan keeps its `wanted` columns.
    pub fn scan(
        &mut self,
        scan: &TableScan,
        wanted: &[usize],
        read: impl FnOnce(&[usize]) -> Result<Planned>,
    ) -> Result<Planned> {
        if self.built.is_none() {
            let planned = read(&self.columns)?;
            self.built = Some(Built {
                schema: Arc::clone(&planned.schema),
                rowtime: planned.rowtime.clone(),
                bounded: planned.bounded,
                changelog: planned.changelog.clone(),
                node: SharedNode::new(planned.materialize()),
            });
        }
        let Some(b) = &self.built else {
            return Err(Error::internal("a shared scan was not built"));
        };
        let positions = wanted
            .iter()
            .map(|w| self.columns.iter().position(|c| c == w))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| Error::internal("a scan reads a column the shared read lacks"))?;
        let n = positions.len();
        let projected = Arc::clone(&scan.projected_schema);
        let steps = if positions.iter().copied().eq(0..self.columns.len()) {
            vec![]
        } else {
            let exprs = positions
                .iter()
                .map(|&i| {
                    let name = b.schema.field(i).name();
                    Arc::new(Column::new(name, i)) as Arc<dyn PhysicalExpr>
                })
                .collect();
            vec![Step::Project(exprs, Arc::clone(projected.inner()))]
        };
        let sources: Vec<Option<usize>> = positions.iter().copied().map(Some).collect();
        Ok(Planned {
            node: StreamNode::reading(&b.node),
            steps,
            schema: projected,
            rowtime: positions.iter().map(|&i| b.rowtime[i]).collect(),
            windows: vec![None; n],
            bounded: b.bounded,
            changelog: project_changelog(&b.changelog, &sources),
        })
    }
}
