//! The produce buffer: a broker gathers produced batches of every partition for up to
//! `gregor.produce.buffer.ms` or `gregor.produce.buffer.bytes`, uploads them as one object
//! (the client's bytes as they came, no copy: a `PutPayload` of their buffers), commits
//! their coordinates in one PostgreSQL transaction (`batch_coordinator::commit`), waits for
//! its own replica to apply that commit (so a fetch from this broker sees what it
//! acknowledged), and only then answers the producers. A failed upload or commit fails
//! every batch of the object with a retriable error; nothing of it is visible.
//!
//! One object at a time: while one is uploaded and committed, the next one fills. A
//! coordinator's record (a group's or a transaction's) does not wait for the interval.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::PutPayload;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;
use tokio_postgres::Client;
use uuid::Uuid;

use super::batch_coordinator::{self, BatchOutcome, ObjectBatch};
use super::objects::{ObjectCache, Objects};
use super::ClusterError;
use crate::log::record_batch::BatchHeader;

/// How long an acknowledgement waits for this broker's replica before it is sent anyway
/// (the data is committed; only read-your-writes on this broker would wait).
const APPLY_WAIT: Duration = Duration::from_secs(10);

struct Pending {
    topic_id: Uuid,
    partition: i32,
    records: Bytes,
    header: BatchHeader,
    fence_epoch: Option<i32>,
    reply: oneshot::Sender<Result<BatchOutcome, ClusterError>>,
}

/// The handle produce handlers append through.
#[derive(Debug, Clone)]
pub struct ProduceBuffer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("topic_id", &self.topic_id)
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

/// What the buffer task needs.
pub struct Uploader {
    pub node_id: i32,
    pub objects: Objects,
    pub cache: Arc<ObjectCache>,
    pub url: String,
    pub buffer_ms: u64,
    pub buffer_bytes: usize,
    pub applied: watch::Receiver<i64>,
    pub wake_replica: Arc<Notify>,
}

impl ProduceBuffer {
    /// Starts the buffer task on `db`.
    pub fn start(uploader: Uploader, db: Client) -> ProduceBuffer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(uploader.run(db, rx));
        ProduceBuffer { tx }
    }

    /// Queues one validated batch (`records` is exactly the batch `header` describes). The
    /// order of calls is the order of the batches in the object and in their partitions.
    /// With `fence_epoch` the batch is committed only under that membership epoch.
    pub fn append(
        &self,
        topic_id: Uuid,
        partition: i32,
        records: Bytes,
        header: BatchHeader,
        fence_epoch: Option<i32>,
    ) -> oneshot::Receiver<Result<BatchOutcome, ClusterError>> {
        let (reply, rx) = oneshot::channel();
        let pending = Pending {
            topic_id,
            partition,
            records,
            header,
            fence_epoch,
            reply,
        };
        if let Err(mpsc::error::SendError(p)) = self.tx.send(pending) {
            let _ = p.reply.send(Err(ClusterError::Stopped));
        }
        rx
    }
}

impl Uploader {
    async fn run(self, mut db: Client, mut rx: mpsc::UnboundedReceiver<Pending>) {
        while let Some(first) = rx.recv().await {
            let deadline = Instant::now() + Duration::from_millis(self.buffer_ms);
            let mut bytes = first.records.len();
            // A coordinator's record (fenced) goes at once, with what is buffered: group
            // and transaction requests wait for it, and there are few of them.
            let mut urgent = first.fence_epoch.is_some();
            let mut pending = vec![first];
            while bytes < self.buffer_bytes && !urgent {
                tokio::select! {
                    next = rx.recv() => match next {
                        Some(p) => {
                            bytes += p.records.len();
                            urgent = p.fence_epoch.is_some();
                            pending.push(p);
                        }
                        None => break,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            if db.is_closed() {
                match super::connect(&self.url).await {
                    Ok(fresh) => db = fresh,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reconnect to PostgreSQL");
                        fail_all(pending, &ClusterError::Database(e));
                        continue;
                    }
                }
            }
            self.flush(&mut db, pending).await;
        }
    }

    async fn flush(&self, db: &mut Client, pending: Vec<Pending>) {
        let key = self.objects.new_object_key();
        let mut batches = Vec::with_capacity(pending.len());
        let mut at = 0i64;
        for p in &pending {
            batches.push(ObjectBatch {
                topic_id: p.topic_id,
                partition: p.partition,
                byte_offset: at,
                header: p.header,
                fence_epoch: p.fence_epoch,
            });
            at += p.records.len() as i64;
        }
        let payload: PutPayload = pending.iter().map(|p| p.records.clone()).collect();
        if let Err(e) = self.objects.store.put(&Objects::path(&key), payload).await {
            tracing::warn!(object = key, error = %e, "upload failed; the produces are refused");
            fail_all(pending, &ClusterError::ObjectStore(e));
            return;
        }
        let result = match batch_coordinator::commit(db, &key, at, self.node_id, &batches).await {
            Ok(result) => result,
            Err(e) => {
                tracing::warn!(object = key, error = %e, "commit failed; the produces are refused");
                fail_all(pending, &ClusterError::Database(e));
                return;
            }
        };
        if let Some(commit_id) = result.commit_id {
            let mut start = 0u64;
            for p in &pending {
                self.cache.insert(&key, start, p.records.clone());
                start += p.records.len() as u64;
            }
            self.wake_replica.notify_one();
            let mut applied = self.applied.clone();
            let caught_up =
                tokio::time::timeout(APPLY_WAIT, applied.wait_for(|a| *a >= commit_id)).await;
            if caught_up.is_err() {
                tracing::warn!(
                    commit_id,
                    "the local replica is behind; acknowledging anyway"
                );
            }
        }
        for (p, outcome) in pending.into_iter().zip(result.outcomes) {
            let _ = p.reply.send(Ok(outcome));
        }
    }
}

fn fail_all(pending: Vec<Pending>, error: &ClusterError) {
    for p in pending {
        let _ = p.reply.send(Err(error.retriable_copy()));
    }
}
