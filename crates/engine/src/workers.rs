//! An INSERT job spread over several Sluice processes (`sluice.workers`):
//! the settings, the Kafka the workers meet on, and joining them before
//! the job starts ([`sluice_exec::workers`],
//! [`sluice_connectors::kafka::workers`]).

use std::sync::Arc;

use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::LogicalPlan;
use sluice_common::{Error, Result};
use sluice_connectors::kafka::workers::{KafkaWorkers, WorkerConfig};
use sluice_exec::graph::{crossings, Numbering, StreamGraph};
use sluice_sql::table::StreamTable;

use crate::settings::WorkerSettings;

/// `properties.bootstrap.servers` of the first Kafka table `plan` reads.
pub(crate) fn kafka_of(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let provider = source_as_provider(&scan.source).ok();
            let table = provider
                .as_ref()
                .and_then(|p| p.downcast_ref::<StreamTable>());
            if let Some(t) = table.filter(|t| t.connector().contains("kafka")) {
                found = t.options.get("properties.bootstrap.servers").cloned();
            }
        }
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Meet the other workers of the job `pipeline` (its Kafka: the setting,
/// else `kafka`, that of a table it reads) and attach them to `graph`.
/// Returns what to tell the user.
pub(crate) async fn join(
    graph: &mut StreamGraph,
    settings: WorkerSettings,
    pipeline: Option<String>,
    kafka: Option<String>,
) -> Result<String> {
    let pipeline = pipeline.ok_or_else(|| {
        Error::plan(
            "a job spread over workers ('sluice.workers') is named by 'pipeline.name', which \
             names its Kafka topics: SET 'pipeline.name' = '<name>' before the INSERT",
        )
    })?;
    let bootstrap = settings.bootstrap.or(kafka).ok_or_else(|| {
        Error::plan(
            "workers exchange rows through Kafka: SET 'sluice.worker.bootstrap-servers' \
             (the job reads no Kafka table to take it from)",
        )
    })?;
    let cfg = WorkerConfig {
        pipeline: pipeline.clone(),
        index: settings.index,
        count: settings.count,
        bootstrap,
        start_timeout: settings.start_timeout,
    };
    let edges = crossings(graph);
    // The dataflow below the sink: each worker writes with a sink of its
    // own (a file sink names its files by process).
    let root = graph.root.plan(&mut Numbering::default());
    let plan = format!("{:016x}", root.shape_fingerprint());
    let workers = KafkaWorkers::join(cfg, &edges, plan).await?;
    graph.workers = Some(Arc::new(workers));
    Ok(format!(
        "Job '{pipeline}' runs as worker {} of {} ({} repartition topic(s)).",
        settings.index,
        settings.count,
        edges.len()
    ))
}

/// A checkpointing job spread over workers: each worker keeps its
/// checkpoints in `<job dir>/worker-<i>-of-<N>` (its sink names its files
/// `<job>-worker-<i>`), a checkpoint counts once every worker holds it,
/// and every worker resumes from the newest one they all hold (or, when
/// every worker's newest is its last, has finished). Newer checkpoints of
/// this worker are abandoned, so all workers number the next ones alike.
pub(crate) fn share_checkpoints(
    ck: &mut crate::checkpoints::JobCheckpointing,
    w: &WorkerSettings,
) -> Result<()> {
    use sluice_exec::checkpoint::store;
    if ck.chosen {
        return Err(Error::plan(
            "'execution.savepoint.path' chooses one process's checkpoint; a job spread over \
             workers resumes from the newest checkpoint every worker holds: unset it",
        ));
    }
    let cfg = &mut ck.config;
    let base = cfg.job_dir.clone();
    let dir_of = |i: usize| base.join(format!("worker-{i}-of-{}", w.count));
    let dirs: Vec<std::path::PathBuf> = (0..w.count).map(dir_of).collect();
    let mine = dirs[w.index].clone();
    let all_finished = dirs
        .iter()
        .all(|d| store::newest_complete(d).is_some_and(|(_, f)| f));
    let id = if all_finished {
        store::newest_complete(&mine).map(|(id, _)| id)
    } else {
        store::ids(&mine).into_iter().find(|id| {
            dirs.iter()
                .all(|d| store::finished_flag(d, *id) == Some(false))
        })
    };
    cfg.restored = match id {
        Some(id) => {
            let loaded = store::load(&store::checkpoint_dir(&mine, id))?;
            crate::checkpoints::check_fingerprint(&loaded, &cfg.fingerprint, &cfg.job)?;
            store::discard_after(&mine, id)?;
            Some(Arc::new(loaded))
        }
        None => {
            store::discard_after(&mine, 0)?;
            None
        }
    };
    ck.notice = cfg.restored.as_ref().map(|l| {
        format!(
            "Job '{}' resumes from checkpoint {} ({}), the newest every worker holds.",
            cfg.job,
            l.id,
            l.path.display()
        )
    });
    cfg.job = format!("{}-worker-{}", cfg.job, w.index);
    cfg.siblings = dirs.into_iter().filter(|d| *d != mine).collect();
    cfg.job_dir = mine;
    Ok(())
}
