//! Following a materialized view: its rows, then the changes its job
//! applies, as a stream.
//!
//! The table keeps the changes not yet read by every follower in a
//! [`Feed`]. A follower registers under the table's lock, so the rows it
//! starts from and the first change it reads meet exactly: no change is
//! missed or seen twice. The feed is bounded: a writer waits
//! ([`MemoryTable::wait_room`]) while the slowest follower is
//! [`FEED_BATCHES`] changes behind, so a slow follower holds the view's
//! job back (backpressure) instead of losing changes or growing memory.
//! A follower ends once no job writes the view any more and it has read
//! every change.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sluice_common::changelog;
use sluice_common::Result;
use sluice_exec::source::{ScanColumns, Source, SourceContext};

use super::MemoryTable;

/// Changes a writer may be ahead of the slowest follower.
pub const FEED_BATCHES: usize = 32;

/// Changes not yet read by every follower, and where each follower is.
#[derive(Default)]
pub(super) struct Feed {
    log: VecDeque<RecordBatch>,
    /// Sequence number of `log[0]`.
    first: u64,
    /// Next sequence number each follower reads, by follower id.
    readers: HashMap<u64, u64>,
    next_id: u64,
}

impl Feed {
    pub(super) fn has_readers(&self) -> bool {
        !self.readers.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.log.len()
    }

    pub(super) fn push(&mut self, change: RecordBatch) {
        self.log.push_back(change);
    }

    /// A new follower, reading from the next change.
    fn add_reader(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.readers.insert(id, self.first + self.log.len() as u64);
        id
    }

    fn remove_reader(&mut self, id: u64) {
        self.readers.remove(&id);
        self.trim();
    }

    /// Follower `id`'s next change, if there is one.
    fn take(&mut self, id: u64) -> Option<RecordBatch> {
        let at = self.readers.get_mut(&id)?;
        let change = self.log.get((*at - self.first) as usize)?.clone();
        *at += 1;
        self.trim();
        Some(change)
    }

    /// Drop the changes every follower has read.
    fn trim(&mut self) {
        let slowest = self.readers.values().min().copied();
        let read = slowest.unwrap_or(self.first + self.log.len() as u64);
        while self.first < read && self.log.pop_front().is_some() {
            self.first += 1;
        }
    }

    fn full(&self) -> bool {
        self.log.len() >= FEED_BATCHES
    }
}

impl MemoryTable {
    /// Its rows now and a follower of the changes after them.
    fn follow(self: &Arc<Self>) -> Result<(Vec<RecordBatch>, Follower)> {
        let mut inner = self.lock()?;
        let rows = inner.stored.rows()?;
        let id = inner.feed.add_reader();
        Ok((
            rows,
            Follower {
                table: Arc::clone(self),
                id,
            },
        ))
    }

    /// Wait until the feed has room for a change (at once when nobody
    /// follows the table).
    pub(super) async fn wait_room(&self) -> Result<()> {
        let mut rx = self.signal.subscribe();
        loop {
            rx.borrow_and_update();
            if !self.lock()?.feed.full() {
                return Ok(());
            }
            // The sender lives as long as the table.
            let _ = rx.changed().await;
        }
    }
}

/// One follower's place in a table's feed (left when dropped).
struct Follower {
    table: Arc<MemoryTable>,
    id: u64,
}

impl Follower {
    /// The next change; `None` once no job writes the table and every
    /// change was read.
    async fn next(&mut self) -> Result<Option<RecordBatch>> {
        let mut rx = self.table.signal.subscribe();
        loop {
            rx.borrow_and_update();
            // Read before looking: a last change and its writer's end could
            // both happen in between.
            let ended = self.table.writers.load(Ordering::SeqCst) == 0;
            let change = self.table.lock()?.feed.take(self.id);
            if change.is_some() {
                self.table.notify();
                return Ok(change);
            }
            if ended {
                return Ok(None);
            }
            let _ = rx.changed().await;
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.table.lock() {
            inner.feed.remove_reader(self.id);
        }
        self.table.notify();
    }
}

/// A sink's hold on its table: counts it as writing the table while it
/// lives.
#[derive(Debug)]
pub(super) struct Writing(Arc<MemoryTable>);

impl std::ops::Deref for Writing {
    type Target = MemoryTable;

    fn deref(&self) -> &MemoryTable {
        &self.0
    }
}

impl Writing {
    pub(super) fn new(table: Arc<MemoryTable>) -> Self {
        table.writers.fetch_add(1, Ordering::SeqCst);
        Writing(table)
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.writers.fetch_sub(1, Ordering::SeqCst);
        self.0.notify();
    }
}

/// A streaming read of a materialized view: its rows when the job starts,
/// then each change its job applies, until that job ends (see the module
/// docs). An updating view is read as a changelog (its rows as `+I`, then
/// updates as `-U`/`+U` of whole rows, deletes as `-D`).
#[derive(Debug)]
pub struct FollowSource {
    table: Arc<MemoryTable>,
    scan: ScanColumns,
}

impl FollowSource {
    /// A follower of `table` making batches of `scan`.
    pub fn new(table: Arc<MemoryTable>, scan: ScanColumns) -> Self {
        FollowSource { table, scan }
    }

    /// A stored batch or change as the source makes it.
    fn made(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let made = self.scan.made();
        if changelog::is_changelog(made) && changelog::ops(&batch).is_none() {
            return changelog::as_inserts(&batch, made);
        }
        Ok(batch)
    }
}

/// How often a follower waiting for changes checks that its query still
/// listens.
const LISTENING: Duration = Duration::from_millis(200);

#[async_trait]
impl Source for FollowSource {
    fn name(&self) -> &'static str {
        "FollowView"
    }

    fn describe(&self) -> String {
        format!(
            "FollowView: {} (its rows, then its changes)",
            self.table.name
        )
    }

    fn output_schema(&self) -> SchemaRef {
        self.scan.emitted()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let (rows, mut follower) = self.table.follow()?;
        for batch in rows {
            if !ctx
                .send_with_watermark(self.made(batch)?, &self.scan)
                .await?
            {
                return Ok(());
            }
        }
        loop {
            let change = tokio::select! {
                c = follower.next() => c?,
                () = tokio::time::sleep(LISTENING) => {
                    if !ctx.is_open() {
                        return Ok(());
                    }
                    continue;
                }
            };
            let Some(change) = change else { break };
            if !ctx
                .send_with_watermark(self.made(change)?, &self.scan)
                .await?
            {
                return Ok(());
            }
        }
        ctx.finish().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use sluice_common::changelog::ChangelogMode;

    fn table() -> Arc<MemoryTable> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let t = MemoryTable::try_new("t", schema, None).expect("table");
        t.set_view(ChangelogMode::AppendOnly);
        Arc::new(t)
    }

    fn rows(t: &MemoryTable, v: i64) -> RecordBatch {
        let col = Arc::new(Int64Array::from(vec![v]));
        RecordBatch::try_new(Arc::clone(t.schema()), vec![col]).expect("batch")
    }

    fn value(b: &RecordBatch) -> i64 {
        let col = b.column(0).as_any().downcast_ref::<Int64Array>();
        col.expect("i64").value(0)
    }

    /// A follower starts from the rows there are, reads each later change
    /// once, holds a writer back when it is [`FEED_BATCHES`] behind, and
    /// ends when the last writer is gone and it has read all.
    #[tokio::test]
    async fn a_follower_reads_every_change_once_and_holds_writers_back() {
        let t = table();
        let writing = Writing::new(Arc::clone(&t));
        assert!(t.followed().is_some());
        t.write(rows(&t, -1)).expect("writes");
        let (start, mut f) = t.follow().expect("follows");
        assert_eq!(start.iter().map(value).collect::<Vec<_>>(), vec![-1]);
        for v in 0..FEED_BATCHES as i64 {
            t.wait_room().await.expect("room");
            t.write(rows(&t, v)).expect("writes");
        }
        let waited = tokio::time::timeout(Duration::from_millis(100), t.wait_room()).await;
        assert!(waited.is_err(), "a full feed holds the writer");
        assert_eq!(f.next().await.expect("reads").map(|b| value(&b)), Some(0));
        t.wait_room().await.expect("room after a read");
        drop(writing);
        assert!(t.followed().is_none());
        let mut rest = Vec::new();
        while let Some(b) = f.next().await.expect("reads") {
            rest.push(value(&b));
        }
        assert_eq!(rest, (1..FEED_BATCHES as i64).collect::<Vec<_>>());
        drop(f);
        assert_eq!(
            t.lock().expect("lock").feed.len(),
            0,
            "read changes dropped"
        );
    }
}
