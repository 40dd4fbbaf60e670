//! How rows travel between the parallel instances of two nodes.
//!
//! Every instance of a node has an [`Outbox`] holding one bounded channel
//! per instance of the consumer it feeds. Batches are routed — by the key
//! group of the consumer's group key (a fixed hash range, see
//! [`crate::checkpoint::keys`]) to the instance owning it, or round robin —
//! while watermarks, barriers and end of stream go to every instance, so
//! each consumer instance sees every producer's progress and combines the
//! watermarks by minimum (see [`crate::runtime`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;
use sluice_common::{Message, Result};
use tokio::sync::mpsc::Sender;

/// How a node's input is distributed over the node's instances.
#[derive(Debug, Clone)]
pub enum Exchange {
    /// Instance `i` feeds instance `i` when both sides have as many
    /// instances; a single consumer gathers everything; otherwise batches
    /// go round robin.
    Forward,
    /// Rows with equal values of these expressions (over the input's
    /// schema) go to the same instance.
    Hash(Vec<Arc<dyn PhysicalExpr>>),
    /// Every batch to every instance (a lookup join's table; batches share
    /// their buffers, so this copies no rows).
    Broadcast,
    /// Every row to the node's one instance in the whole job: a global
    /// aggregate, ORDER BY, LIMIT. In one process it is [`Exchange::Forward`];
    /// across workers ([`crate::workers`]) the instance is worker 0's.
    Global,
}

impl Exchange {
    /// Whether rows cross workers on this edge (every edge but a forward
    /// one: a worker's forward edges stay in the process).
    pub fn crosses_workers(&self) -> bool {
        !matches!(self, Exchange::Forward)
    }
}

#[derive(Clone)]
enum Route {
    /// One consumer channel (also used when hashing to one instance).
    Single,
    Hash(Arc<[Arc<dyn PhysicalExpr>]>),
    /// Hashing into one worker's share of the job's instances: instance
    /// `first + i` of `total` is channel `i`.
    HashWithin {
        keys: Arc<[Arc<dyn PhysicalExpr>]>,
        first: usize,
        total: usize,
    },
    RoundRobin(Arc<AtomicUsize>),
    Broadcast,
}

/// The sending side of one producer instance.
#[derive(Clone)]
pub struct Outbox {
    outs: Vec<Sender<Message>>,
    route: Route,
}

impl Outbox {
    /// Everything to one channel.
    pub fn single(out: Sender<Message>) -> Self {
        Outbox {
            outs: vec![out],
            route: Route::Single,
        }
    }

    /// Rows routed by the hash of `keys` over `outs`.
    pub fn hash(outs: Vec<Sender<Message>>, keys: Vec<Arc<dyn PhysicalExpr>>) -> Self {
        let route = if outs.len() == 1 {
            Route::Single
        } else {
            Route::Hash(keys.into())
        };
        Outbox { outs, route }
    }

    /// Rows routed by the hash of `keys` to the instance owning their key
    /// group among `outs.len() * workers` instances, of which `outs` are
    /// worker `worker`'s (see [`crate::workers`]): the rows a worker reads
    /// back from other workers are all its own.
    pub fn hash_within(
        outs: Vec<Sender<Message>>,
        keys: Vec<Arc<dyn PhysicalExpr>>,
        worker: usize,
        workers: usize,
    ) -> Self {
        let route = if outs.len() == 1 {
            Route::Single
        } else {
            Route::HashWithin {
                keys: keys.into(),
                first: worker * outs.len(),
                total: workers * outs.len(),
            }
        };
        Outbox { outs, route }
    }

    /// Batches dealt to `outs` in turn.
    pub fn round_robin(outs: Vec<Sender<Message>>) -> Self {
        let route = if outs.len() == 1 {
            Route::Single
        } else {
            Route::RoundRobin(Arc::default())
        };
        Outbox { outs, route }
    }

    /// Every batch to every one of `outs`.
    pub fn broadcast_all(outs: Vec<Sender<Message>>) -> Self {
        let route = if outs.len() == 1 {
            Route::Single
        } else {
            Route::Broadcast
        };
        Outbox { outs, route }
    }

    /// Split `batch` by destination instance. Pure, so it can run on the
    /// thread that made the batch.
    pub fn partition(&self, batch: RecordBatch) -> Result<Vec<(usize, RecordBatch)>> {
        if batch.num_rows() == 0 {
            return Ok(vec![]);
        }
        match &self.route {
            Route::Single => Ok(vec![(0, batch)]),
            Route::RoundRobin(next) => {
                let i = next.fetch_add(1, Ordering::Relaxed) % self.outs.len();
                Ok(vec![(i, batch)])
            }
            Route::Hash(keys) => hash_partition(batch, keys, self.outs.len(), |h| {
                crate::checkpoint::keys::instance_of(h, self.outs.len())
            }),
            Route::HashWithin { keys, first, total } => {
                let last = self.outs.len() - 1;
                hash_partition(batch, keys, self.outs.len(), |h| {
                    (crate::checkpoint::keys::instance_of(h, *total).saturating_sub(*first))
                        .min(last)
                })
            }
            Route::Broadcast => Ok((0..self.outs.len()).map(|i| (i, batch.clone())).collect()),
        }
    }

    /// Send parts made by [`Outbox::partition`]. `false` once a consumer is
    /// gone (the query was cancelled or is complete).
    pub async fn send_parts(&self, parts: Vec<(usize, RecordBatch)>) -> bool {
        for (i, batch) in parts {
            if self.outs[i].send(Message::Batch(batch)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Route and send one batch.
    pub async fn send_batch(&self, batch: RecordBatch) -> Result<bool> {
        let parts = self.partition(batch)?;
        Ok(self.send_parts(parts).await)
    }

    /// Send a watermark, barrier or end of stream to every consumer.
    pub async fn broadcast(&self, msg: Message) -> bool {
        for out in &self.outs {
            if out.send(msg.clone()).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Whether a consumer is gone.
    pub fn is_closed(&self) -> bool {
        self.outs.iter().any(Sender::is_closed)
    }
}

/// Split `batch` over `n` destinations by the one `dest` gives each row's
/// key hash (below `n`).
pub(crate) fn hash_partition(
    batch: RecordBatch,
    keys: &[Arc<dyn PhysicalExpr>],
    n: usize,
    dest: impl Fn(u64) -> usize,
) -> Result<Vec<(usize, RecordBatch)>> {
    let rows = batch.num_rows();
    let arrays = keys
        .iter()
        .map(|k| k.evaluate(&batch).and_then(|v| v.into_array(rows)))
        .collect::<datafusion::error::Result<Vec<ArrayRef>>>()?;
    let hashes = crate::checkpoint::keys::hash_keys(&arrays, rows)?;
    let mut indices: Vec<Vec<u32>> = vec![Vec::with_capacity(rows / n + 1); n];
    for (row, h) in hashes.iter().enumerate() {
        indices[dest(*h)].push(row as u32);
    }
    let mut parts = Vec::with_capacity(n);
    for (i, idx) in indices.into_iter().enumerate() {
        if idx.len() == rows {
            return Ok(vec![(i, batch)]);
        }
        if !idx.is_empty() {
            parts.push((i, take_record_batch(&batch, &UInt32Array::from(idx))?));
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::test_util::batch_i64;
    use datafusion::physical_expr::expressions::col;
    use tokio::sync::mpsc::channel;

    /// Equal keys land on the same instance; every row lands somewhere once.
    #[test]
    fn hash_routes_equal_keys_together() {
        let batch = batch_i64(&[("k", &[1, 2, 3, 1, 2, 3, 7]), ("v", &[0, 1, 2, 3, 4, 5, 6])]);
        let k = col("k", &batch.schema()).expect("column");
        let (tx0, _rx0) = channel(1);
        let (tx1, _rx1) = channel(1);
        let outbox = Outbox::hash(vec![tx0, tx1], vec![k]);
        let parts = outbox.partition(batch).expect("partitions");
        let mut seen = 0;
        let mut home = std::collections::HashMap::new();
        for (i, part) in &parts {
            let keys = part
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>();
            for key in keys.expect("int64").values() {
                assert_eq!(*home.entry(*key).or_insert(*i), *i, "key {key} split");
                seen += 1;
            }
        }
        assert_eq!(seen, 7);
    }
}
