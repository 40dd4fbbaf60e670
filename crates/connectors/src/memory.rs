//! Rows held in memory: the `memory` connector and `VALUES`.

use std::sync::Arc;

use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use sluice_common::changelog::{self, ChangelogMode};
use sluice_common::{Error, Fold, Result, Watermark};
use sluice_exec::checkpoint::state::{scalar, scalars};
use sluice_exec::checkpoint::{CheckpointId, State};
use sluice_exec::sink::{Resume, Sink, FINAL};
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
    stored: Mutex<Stored>,
    /// Per checkpointing job writing it: the last checkpoint whose rows
    /// it holds.
    committed: Mutex<HashMap<String, CheckpointId>>,
}

enum Stored {
    Batches(Vec<RecordBatch>),
    Folded(Fold),
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
            stored: Mutex::new(stored),
            committed: Mutex::new(HashMap::new()),
        })
    }

    /// The last checkpoint of `job` whose rows the table holds (0: none).
    pub fn committed(&self, job: &str) -> CheckpointId {
        self.committed
            .lock()
            .map_or(0, |c| c.get(job).copied().unwrap_or(0))
    }

    /// Apply the rows of `job`'s checkpoint `id` (after those before it).
    fn commit(&self, job: &str, id: CheckpointId, rows: Vec<RecordBatch>) -> Result<()> {
        for batch in rows {
            self.write(batch)?;
        }
        self.committed
            .lock()
            .map_err(|_| Error::internal("memory table lock poisoned"))?
            .insert(job.to_string(), id);
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Stored>> {
        self.stored
            .lock()
            .map_err(|_| Error::internal("memory table lock poisoned"))
    }

    /// The current rows.
    pub fn snapshot(&self) -> Result<Vec<RecordBatch>> {
        Ok(match &*self.lock()? {
            Stored::Batches(b) => b.clone(),
            Stored::Folded(f) if f.is_empty() => vec![],
            Stored::Folded(f) => vec![f.table()?],
        })
    }

    /// Append rows, or apply a changelog batch (of this table's columns
    /// plus the row kind).
    pub fn write(&self, batch: RecordBatch) -> Result<()> {
        let mut stored = self.lock()?;
        let changelog = changelog::ops(&batch).is_some();
        if let (Stored::Batches(batches), true) = (&mut *stored, changelog) {
            let mut fold = Fold::try_new(Arc::clone(&self.schema), self.key.clone())?;
            for b in batches.iter() {
                fold.apply(b)?;
            }
            *stored = Stored::Folded(fold);
        }
        match &mut *stored {
            Stored::Batches(b) => b.push(batch),
            Stored::Folded(f) => f.apply(&batch)?,
        }
        Ok(())
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

/// Writes results into a memory table: appends, or applies a changelog. In
/// a checkpointing job the rows become visible when the checkpoint after
/// them completes; the table records the job's last committed checkpoint,
/// from which the job resumes (in this process; a new process starts the
/// job anew, as its memory tables are new).
#[derive(Debug)]
pub struct MemorySink {
    table: Arc<MemoryTable>,
    /// A checkpointing job: its name, its rows since the last barrier and
    /// the rows of checkpoints not complete yet.
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    job: String,
    open: Vec<RecordBatch>,
    precommitted: VecDeque<(CheckpointId, Vec<RecordBatch>)>,
}

impl MemorySink {
    /// A sink into `table`.
    pub fn new(table: Arc<MemoryTable>) -> Self {
        MemorySink {
            table,
            pending: None,
        }
    }

    /// `batch` (rows, or a changelog) as the table's columns.
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let ops = changelog::ops(batch).cloned();
        let data = changelog::data(batch)?;
        let cols = data
            .columns()
            .iter()
            .zip(self.table.schema.fields())
            .map(|(c, f)| cast(c, f.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let table = &self.table;
        let err = |e: arrow::error::ArrowError| {
            Error::execution(format!("INSERT INTO {}: {e}", table.name))
        };
        Ok(match ops {
            Some(ops) => {
                let schema = changelog::with_op_field(&table.schema);
                let mut cols = cols;
                cols.push(Arc::new(ops));
                RecordBatch::try_new(schema, cols).map_err(err)?
            }
            None => RecordBatch::try_new(Arc::clone(&table.schema), cols).map_err(err)?,
        })
    }
}

#[async_trait]
impl Sink for MemorySink {
    fn name(&self) -> &'static str {
        "MemorySink"
    }

    fn describe(&self) -> String {
        match &self.table.key {
            Some(k) => {
                let names: Vec<&str> = k
                    .iter()
                    .map(|&i| self.table.schema.field(i).name().as_str())
                    .collect();
                format!(
                    "MemorySink: {} (upsert on [{}])",
                    self.table.name,
                    names.join(", ")
                )
            }
            None => format!("MemorySink: {}", self.table.name),
        }
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let batch = self.conform(&batch)?;
        match &mut self.pending {
            Some(p) => {
                p.open.push(batch);
                Ok(())
            }
            None => self.table.write(batch),
        }
    }

    async fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    fn checkpoints(&self) -> bool {
        true
    }

    /// The job resumes from the last checkpoint whose rows the table holds
    /// (none in a new process: the job starts anew).
    async fn prepare_checkpoints(&mut self, job: &str, _: Option<Duration>) -> Result<Resume> {
        Ok(Resume::From(self.table.committed(job)))
    }

    async fn start_checkpoints(&mut self, job: &str, _restored: Option<&State>) -> Result<()> {
        self.pending = Some(Pending {
            job: job.to_string(),
            open: Vec::new(),
            precommitted: VecDeque::new(),
        });
        Ok(())
    }

    async fn pre_commit(&mut self, id: CheckpointId) -> Result<State> {
        if let Some(p) = &mut self.pending {
            let rows = std::mem::take(&mut p.open);
            p.precommitted.push_back((id, rows));
        }
        Ok(State::new())
    }

    async fn commit(&mut self, id: CheckpointId) -> Result<()> {
        self.commit_up_to(id, id)
    }

    async fn commit_final(&mut self, id: CheckpointId) -> Result<()> {
        self.commit_up_to(FINAL, id)
    }
}

impl MemorySink {
    /// Apply the rows pre-committed up to `upto`, recording `last` for the
    /// [`FINAL`] ones.
    fn commit_up_to(&mut self, upto: CheckpointId, last: CheckpointId) -> Result<()> {
        let Some(p) = &mut self.pending else {
            return Ok(());
        };
        while p.precommitted.front().is_some_and(|(id, _)| *id <= upto) {
            let Some((id, rows)) = p.precommitted.pop_front() else {
                break;
            };
            let id = if id == FINAL { last } else { id };
            self.table.commit(&p.job, id, rows)?;
        }
        Ok(())
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
        let rows = cx.memory.get(table.name)?.snapshot()?;
        Ok(BuiltSource {
            source: Box::new(BatchSource::new(table.name, rows, scan.full)),
            bounded: true,
        })
    }

    fn check_accepts(&self, _: &TableDesc, _: &ChangelogMode, _: Option<&[String]>) -> Result<()> {
        Ok(())
    }

    fn sink(&self, table: &TableDesc, cx: &ConnectorContext, _: bool) -> Result<Box<dyn Sink>> {
        Ok(Box::new(MemorySink::new(cx.memory.get(table.name)?)))
    }
}
