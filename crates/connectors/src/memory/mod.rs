//! Rows held in memory: the `memory` connector and `VALUES`.
//!
//! A memory table that is a materialized view can also be followed: a
//! streaming job reading it gets its rows, then every change its job
//! applies after them (`feed.rs`).

mod feed;
mod retention;
mod sink;
mod view_state;

pub use feed::FollowSource;
pub use retention::time_column;
pub use sink::MemorySink;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

use sluice_common::changelog::{self, ChangelogMode};
use sluice_common::{Error, Fold, Result, Watermark};
use sluice_exec::checkpoint::state::{scalar, scalars};
use sluice_exec::checkpoint::{CheckpointId, State};
use sluice_exec::sink::Sink;
use sluice_exec::source::{ScanColumns, Source, SourceContext};

use crate::options::Options;
use crate::registry::{BuiltSource, Connector, ConnectorContext, ScanRequest, TableDesc};

/// A bounded source over batches. With a watermark expression, a watermark
/// follows each batch (so each `INSERT` into a memory table is one step of
/// event time: rows of a later INSERT can be late).
#[derive(Debug)]
pub struct BatchSource {
    label: String,
    batches: Vec<RecordBatch>,
    scan: ScanColumns,
    /// A restored source: the next batch and the watermark sent last.
    resume: Option<(usize, Watermark)>,
}

impl BatchSource {
    /// A source emitting `batches` (of the columns `scan` makes) as `scan`
    /// emits them.
    pub fn new(label: impl Into<String>, batches: Vec<RecordBatch>, scan: ScanColumns) -> Self {
        BatchSource {
            label: label.into(),
            batches,
            scan,
            resume: None,
        }
    }
}

#[async_trait]
impl Source for BatchSource {
    fn name(&self) -> &'static str {
        "MemorySource"
    }

    fn describe(&self) -> String {
        let rows: usize = self.batches.iter().map(|b| b.num_rows()).sum();
        format!("MemorySource: {} ({rows} rows)", self.label)
    }

    fn output_schema(&self) -> SchemaRef {
        self.scan.emitted()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let (skip, wm) = self.resume.unwrap_or((0, Watermark::MIN));
        ctx.resume_watermark(wm);
        for (i, batch) in self.batches.into_iter().enumerate().skip(skip) {
            if let Some(id) = ctx.barrier_due() {
                let position = scalars(&[("next", i as i64), ("watermark", ctx.watermark().0)]);
                if !ctx
                    .send_barrier(id, State::new().with("position", position))
                    .await
                {
                    return Ok(());
                }
            }
            let sent = ctx.send_with_watermark(batch, &self.scan).await?;
            if !sent {
                return Ok(());
            }
        }
        ctx.finish().await;
        Ok(())
    }

    /// The batches are the table's rows when the query was planned: a job
    /// rerun by the same script reads the same ones.
    fn checkpoints(&self) -> bool {
        true
    }

    fn restore(&mut self, state: &State) -> Result<()> {
        let position = state.require("position")?;
        let next = scalar(position, "next")?;
        let wm = Watermark(scalar(position, "watermark")?);
        self.resume = Some((next.max(0) as usize, wm));
        Ok(())
    }
}

/// The rows of a `memory` table. Without a primary key, appended rows are
/// kept as the batches they came in (each a step of event time when read
/// back) until a changelog is written, which is applied as a multiset (a
/// `-U`/`-D` removes one equal row). With a primary key every write is an
/// upsert by that key (`-D` removes the key's row).
#[derive(Debug)]
pub struct MemoryTable {
    name: String,
    schema: SchemaRef,
    key: Option<Vec<usize>>,
    stored: Mutex<Inner>,
    /// Per checkpointing job writing it: the last checkpoint whose rows
    /// it holds.
    committed: Mutex<HashMap<String, CheckpointId>>,
    /// A materialized view's table: what kinds of rows its job writes.
    view: OnceLock<ChangelogMode>,
    /// Sinks writing it now.
    writers: AtomicUsize,
    /// Bumped when a change is fed, read or a writer or reader leaves.
    signal: tokio::sync::watch::Sender<u64>,
}

/// The rows, and the changes not yet read by every follower.
struct Inner {
    stored: Stored,
    feed: feed::Feed,
    retention: Option<retention::Retention>,
}

enum Stored {
    Batches(Vec<RecordBatch>),
    Folded(Fold),
}

impl Stored {
    /// The current rows.
    fn rows(&self) -> Result<Vec<RecordBatch>> {
        Ok(match self {
            Stored::Batches(b) => b.clone(),
            Stored::Folded(f) if f.is_empty() => vec![],
            Stored::Folded(f) => vec![f.table()?],
        })
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}, {} changes unread", self.stored, self.feed.len())
    }
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stored::Batches(b) => write!(f, "{} batches", b.len()),
            Stored::Folded(t) => write!(f, "{} rows", t.len()),
        }
    }
}

impl MemoryTable {
    /// An empty table; `key` are the primary key's column indices.
    pub fn try_new(name: &str, schema: SchemaRef, key: Option<Vec<usize>>) -> Result<Self> {
        let stored = match &key {
            Some(k) => Stored::Folded(Fold::try_new(Arc::clone(&schema), Some(k.clone()))?),
            None => Stored::Batches(Vec::new()),
        };
        Ok(MemoryTable {
            name: name.to_string(),
            schema,
            key,
            stored: Mutex::new(Inner {
                stored,
                feed: feed::Feed::default(),
                retention: None,
            }),
            committed: Mutex::new(HashMap::new()),
            view: OnceLock::new(),
            writers: AtomicUsize::new(0),
            signal: tokio::sync::watch::Sender::new(0),
        })
    }

    /// The last checkpoint of `job` whose rows the table holds (0: none).
    pub fn committed(&self, job: &str) -> CheckpointId {
        self.committed
            .lock()
            .map_or(0, |c| c.get(job).copied().unwrap_or(0))
    }

    /// Record that the table holds the rows of `job`'s checkpoint `id`.
    fn set_committed(&self, job: &str, id: CheckpointId) -> Result<()> {
        self.committed
            .lock()
            .map_err(|_| Error::internal("memory table lock poisoned"))?
            .insert(job.to_string(), id);
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>> {
        self.stored
            .lock()
            .map_err(|_| Error::internal("memory table lock poisoned"))
    }

    /// The current rows.
    pub fn snapshot(&self) -> Result<Vec<RecordBatch>> {
        self.lock()?.stored.rows()
    }

    /// Append rows, or apply a changelog batch (of this table's columns
    /// plus the row kind). Followers get what changed.
    pub fn write(&self, batch: RecordBatch) -> Result<()> {
        let mut inner = self.lock()?;
        let Inner {
            stored,
            feed,
            retention,
        } = &mut *inner;
        if let Some(r) = retention {
            r.observe(&batch)?;
        }
        let changelog = changelog::ops(&batch).is_some();
        if let (Stored::Batches(batches), true) = (&mut *stored, changelog) {
            let mut fold = Fold::try_new(Arc::clone(&self.schema), self.key.clone())?;
            for b in batches.iter() {
                fold.apply(b)?;
            }
            *stored = Stored::Folded(fold);
        }
        // What changed, for followers (none: nothing is computed for them).
        let change = match stored {
            Stored::Batches(b) => {
                let change = feed.has_readers().then(|| batch.clone());
                b.push(batch);
                change
            }
            Stored::Folded(f) if feed.has_readers() => Some(f.apply_diff(&batch)?),
            Stored::Folded(f) => {
                f.apply(&batch)?;
                None
            }
        };
        if let Some(r) = retention {
            r.expire(stored)?;
        }
        if let Some(change) = change.filter(|c| c.num_rows() > 0) {
            feed.push(change);
            drop(inner);
            self.notify();
        }
        Ok(())
    }

    /// Keep rows only while column `column` (a timestamp) is within
    /// `keep_ms` of the newest time written (see `retention.rs`).
    pub fn set_retention(&self, column: usize, keep_ms: i64) -> Result<()> {
        self.lock()?.retention = Some(retention::Retention::new(column, keep_ms));
        Ok(())
    }

    /// Wake whoever waits on the feed.
    fn notify(&self) {
        self.signal.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Make the table a materialized view's, whose job writes rows of
    /// `mode`: streaming jobs reading it while the job runs follow it.
    pub fn set_view(&self, mode: ChangelogMode) {
        let _ = self.view.set(mode);
    }

    /// What a streaming job reading the table now follows: the kinds of
    /// rows of a materialized view whose job is running (`None`: the table
    /// is read as it is).
    pub fn followed(&self) -> Option<&ChangelogMode> {
        self.view
            .get()
            .filter(|_| self.writers.load(Ordering::SeqCst) > 0)
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table's columns.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

/// Every memory table of a session, by name (runtime data, kept out of the
/// catalog, which holds only definitions).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore(Arc<RwLock<HashMap<String, Arc<MemoryTable>>>>);

impl MemoryStore {
    /// Add (or replace) a table.
    pub fn insert(&self, table: MemoryTable) -> Result<()> {
        self.0
            .write()
            .map_err(|_| Error::internal("memory store lock poisoned"))?
            .insert(table.name.clone(), Arc::new(table));
        Ok(())
    }

    /// The table named `name`.
    pub fn get(&self, name: &str) -> Result<Arc<MemoryTable>> {
        self.0
            .read()
            .map_err(|_| Error::internal("memory store lock poisoned"))?
            .get(name)
            .cloned()
            .ok_or_else(|| Error::internal(format!("memory table {name} has no storage")))
    }

    /// Forget a table.
    pub fn remove(&self, name: &str) {
        if let Ok(mut m) = self.0.write() {
            m.remove(name);
        }
    }
}

/// `connector = 'memory'` (the default): rows kept in the session, read
/// back as a bounded stream; a changelog written into it is applied.
#[derive(Debug)]
pub struct MemoryConnector;

impl Connector for MemoryConnector {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn validate(&self, table: &TableDesc) -> Result<()> {
        Options::new(table.name, table.options).finish()
    }

    fn create(&self, table: &TableDesc, cx: &ConnectorContext) -> Result<Option<String>> {
        let key = (!table.primary_key.is_empty()).then(|| table.primary_key.to_vec());
        let t = MemoryTable::try_new(table.name, Arc::clone(table.schema), key)?;
        cx.memory.insert(t)?;
        Ok(None)
    }

    fn source(
        &self,
        table: &TableDesc,
        scan: ScanRequest,
        cx: &ConnectorContext,
    ) -> Result<BuiltSource> {
        let t = cx.memory.get(table.name)?;
        // A running view is followed; so is one whose job ended since the
        // scan's row kinds were chosen (it then ends after its rows).
        let updating = changelog::is_changelog(scan.full.made());
        if cx.follow_views && t.view.get().is_some() && (t.followed().is_some() || updating) {
            return Ok(BuiltSource {
                source: Box::new(FollowSource::new(t, scan.full)),
                bounded: false,
            });
        }
        let rows = t.snapshot()?;
        Ok(BuiltSource {
            source: Box::new(BatchSource::new(table.name, rows, scan.full)),
            bounded: true,
        })
    }

    /// A materialized view followed by a streaming job reads as the rows
    /// its job writes; any other read is of the rows as they are.
    fn changelog_in(&self, table: &TableDesc, cx: &ConnectorContext) -> Result<ChangelogMode> {
        let t = cx.memory.get(table.name)?;
        Ok(match t.followed() {
            Some(mode) if cx.follow_views => mode.clone(),
            _ => ChangelogMode::AppendOnly,
        })
    }

    fn check_accepts(&self, _: &TableDesc, _: &ChangelogMode, _: Option<&[String]>) -> Result<()> {
        Ok(())
    }

    fn sink(&self, table: &TableDesc, cx: &ConnectorContext, _: bool) -> Result<Box<dyn Sink>> {
        Ok(Box::new(MemorySink::new(cx.memory.get(table.name)?)))
    }
}
