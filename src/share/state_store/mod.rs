//! The share coordinator (Kafka's `ShareCoordinatorShard` behind its persister): the
//! durable state of every share-partition, that is of one share group on one topic
//! partition: its state epoch, its start offset (SPSO) and the delivery state and count of
//! the offsets after it that are not simply available. Kept in `__share_group_state` as
//! Kafka's records, byte for byte:
//!
//! ```text
//! key:   i16 record type | string group id | uuid topic id | i32 partition    (v0)
//!   0 ShareSnapshot  value: snapshot epoch, state epoch, leader epoch, start offset,
//!                    create and write timestamps, state batches; tag 0: the count of
//!                    offsets at or after the start offset whose delivery is complete
//!   1 ShareUpdate    value: snapshot epoch, leader epoch, start offset (-1: unchanged),
//!                    the state batches that changed; tag 0 as above
//!   state batch:     first offset i64, last offset i64, state i8 (0 available,
//!                    2 acknowledged, 4 archived), delivery count i16
//! ```
//!
//! A write is an update (only the ranges that changed); every
//! `share.coordinator.snapshot.update.records.per.snapshot` updates, a whole snapshot
//! instead. A snapshot with a null value deletes the share-partition's state. The topic is
//! not compacted (an update means nothing without the snapshot before it): `prune` writes a
//! fresh snapshot of share-partitions whose snapshot is old and deletes the records below
//! the oldest snapshot still needed (DeleteRecords), as Kafka's coordinator does.
//!
//! Synchronisation: one async mutex per `__share_group_state` partition, held across the
//! append, its fsync and the change to memory, so that memory always equals what is durable
//! and a share-partition's writes reach the log in the order they were made.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::Mutex;
use uuid::Uuid;

use crate::config::ShareGroupConfig;
use crate::coordinator::internal_topic::{
    append_durably_at, for_each_batch, partition_for, partition_log_with, put_string, ReplayError,
};
use crate::coordinator::CoordinatorError;
use crate::log::now_ms;
use crate::log::records::{decode_key_values, RawRecord};
use crate::log_manager::{base64url, LogManager};

mod records;

use records::{apply, snapshot_value, update_value};

pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

const SNAPSHOT: i16 = 0;
const UPDATE: i16 = 1;

/// Persisted delivery states (Kafka's `RecordState` ids; ACQUIRED, 1, is never written).
pub const AVAILABLE: i8 = 0;
pub const ACKNOWLEDGED: i8 = 2;
pub const ARCHIVED: i8 = 4;

/// A share-partition: one share group on one topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SharePartitionKey {
    pub group: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

impl SharePartitionKey {
    /// Kafka's `SharePartitionKey.asCoordinatorKey`: what places it in the topic.
    fn coordinator_key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.group,
            base64url(self.topic_id.as_bytes()),
            self.partition
        )
    }

    fn record_key(&self, kind: i16) -> Vec<u8> {
        let mut out = kind.to_be_bytes().to_vec();
        put_string(&mut out, &self.group);
        out.extend_from_slice(self.topic_id.as_bytes());
        out.extend_from_slice(&self.partition.to_be_bytes());
        out
    }
}

/// Offsets `first_offset..=last_offset` in one delivery state with one delivery count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_state: i8,
    pub delivery_count: i16,
}

/// A share-partition's durable state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareState {
    /// Bumped when the state is reset (initialised again, or its offsets altered): writes
    /// of a share-partition loaded at an older epoch are refused.
    pub state_epoch: i32,
    pub leader_epoch: i32,
    /// The share-partition start offset; -1 until the first share fetch resolves it from
    /// `share.auto.offset.reset`.
    pub start_offset: i64,
    /// Offsets at or after `start_offset` whose delivery is complete (-1: unknown).
    pub delivery_complete_count: i32,
    /// Non-overlapping ranges, by first offset: (last offset, state, delivery count).
    pub batches: BTreeMap<i64, (i64, i8, i16)>,
}

impl ShareState {
    /// The state batches in offset order.
    pub fn state_batches(&self) -> Vec<StateBatch> {
        self.batches
            .iter()
            .map(|(&first, &(last, state, count))| StateBatch {
                first_offset: first,
                last_offset: last,
                delivery_state: state,
                delivery_count: count,
            })
            .collect()
    }

    /// Sets `batch`'s range to its state, cutting back what it overlaps (the newer write
    /// wins: a share-partition's writes are made and stored in order), then merges
    /// neighbours that agree.
    fn put(&mut self, batch: &StateBatch) {
        let (first, last) = (batch.first_offset, batch.last_offset);
        if last < first {
            return;
        }
        let overlapping: Vec<i64> = self
            .batches
            .range(..=last)
            .filter(|(_, (l, _, _))| *l >= first)
            .map(|(f, _)| *f)
            .collect();
        for f in overlapping {
            let (l, s, c) = self.batches.remove(&f).expect("listed above");
            if f < first {
                self.batches.insert(f, (first - 1, s, c));
            }
            if l > last {
                self.batches.insert(last + 1, (l, s, c));
            }
        }
        self.batches
            .insert(first, (last, batch.delivery_state, batch.delivery_count));
        self.coalesce_around(first);
    }

    fn coalesce_around(&mut self, first: i64) {
        // With the one before.
        let mut at = first;
        if let Some((&pf, &(pl, ps, pc))) = self.batches.range(..first).next_back() {
            let (l, s, c) = self.batches[&first];
            if pl + 1 == first && ps == s && pc == c {
                self.batches.remove(&first);
                self.batches.insert(pf, (l, s, c));
                at = pf;
            }
        }
        // With the one after.
        let (l, s, c) = self.batches[&at];
        if let Some(&(nl, ns, nc)) = self.batches.get(&(l + 1)) {
            if ns == s && nc == c {
                self.batches.remove(&(l + 1));
                self.batches.insert(at, (nl, s, c));
            }
        }
    }

    /// Drops what lies below the start offset.
    fn prune_below_start(&mut self) {
        let start = self.start_offset;
        if start < 0 {
            return;
        }
        let below: Vec<i64> = self.batches.range(..start).map(|(f, _)| *f).collect();
        for f in below {
            let (l, s, c) = self.batches.remove(&f).expect("listed above");
            if l >= start {
                self.batches.insert(start, (l, s, c));
            }
        }
    }
}

/// A share-partition's state with the bookkeeping of its records.
#[derive(Debug, Clone)]
struct Stored {
    state: ShareState,
    snapshot_epoch: i32,
    create_timestamp: i64,
    updates_since_snapshot: u32,
    /// Where its latest snapshot is in the log: everything before is no longer needed.
    snapshot_offset: i64,
}

/// One `__share_group_state` partition's share-partitions.
#[derive(Debug, Default)]
struct StorePartition {
    states: HashMap<SharePartitionKey, Stored>,
    /// The high watermark at the last prune: snapshots older than it are rewritten at the
    /// next.
    pruned_at: i64,
}

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// The share-partition has no state (never initialised, or deleted): INVALID_REQUEST.
    NotInitialized,
    /// The state was reset since the writer loaded it: FENCED_STATE_EPOCH.
    FencedStateEpoch,
    /// The append or its fsync failed.
    Storage(CoordinatorError),
}

pub struct ShareStateStore {
    logs: Arc<LogManager>,
    config: ShareGroupConfig,
    partitions: Vec<Mutex<StorePartition>>,
}

impl std::fmt::Debug for ShareStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareStateStore")
            .field("partitions", &self.partitions.len())
            .finish()
    }
}

impl ShareStateStore {
    /// Replays `__share_group_state` (if it exists) into memory.
    pub fn load(
        logs: Arc<LogManager>,
        config: ShareGroupConfig,
    ) -> Result<ShareStateStore, ReplayError> {
        let topic = logs.topic(SHARE_STATE_TOPIC);
        let count = topic
            .as_ref()
            .map_or(config.state_topic_partitions, |t| t.partitions.len() as i32)
            .max(1);
        let mut partitions: Vec<StorePartition> =
            (0..count).map(|_| StorePartition::default()).collect();
        if let Some(topic) = &topic {
            for (log, into) in topic.partitions.iter().zip(partitions.iter_mut()) {
                replay(log, into)?;
                into.pruned_at = log.high_watermark();
            }
            let states: usize = partitions.iter().map(|p| p.states.len()).sum();
            tracing::info!(share_partitions = states, "loaded share-partition state");
        }
        Ok(ShareStateStore {
            logs,
            config,
            partitions: partitions.into_iter().map(Mutex::new).collect(),
        })
    }

    fn slot(&self, key: &SharePartitionKey) -> &Mutex<StorePartition> {
        let index = partition_for(&key.coordinator_key(), self.partitions.len() as i32);
        &self.partitions[index as usize]
    }

    fn log_of(&self, key: &SharePartitionKey) -> Result<Arc<crate::log::Log>, CoordinatorError> {
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "delete".to_string()),
            ("retention.ms".to_string(), "-1".to_string()),
            (
                "segment.bytes".to_string(),
                self.config.state_topic_segment_bytes.to_string(),
            ),
        ]);
        partition_log_with(
            &self.logs,
            SHARE_STATE_TOPIC,
            self.partitions.len() as i32,
            configs,
            &key.coordinator_key(),
        )
    }

    /// The durable state of `key`, if it has any.
    pub async fn read(&self, key: &SharePartitionKey) -> Option<ShareState> {
        self.slot(key)
            .lock()
            .await
            .states
            .get(key)
            .map(|s| s.state.clone())
    }

    /// The share-partitions `which` selects.
    pub async fn states_where(
        &self,
        which: impl Fn(&SharePartitionKey) -> bool,
    ) -> Vec<SharePartitionKey> {
        let mut out = Vec::new();
        for p in &self.partitions {
            out.extend(p.lock().await.states.keys().filter(|k| which(k)).cloned());
        }
        out.sort();
        out
    }

    /// Every share-partition of `group` with its state.
    pub async fn group_states(&self, group: &str) -> Vec<(SharePartitionKey, ShareState)> {
        let mut out = Vec::new();
        for p in &self.partitions {
            let p = p.lock().await;
            out.extend(
                p.states
                    .iter()
                    .filter(|(k, _)| k.group == group)
                    .map(|(k, s)| (k.clone(), s.state.clone())),
            );
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Kafka's InitializeShareGroupState: a fresh snapshot with no batches, replacing what
    /// was there (the heartbeat that first assigns a partition, AlterShareGroupOffsets).
    /// The state epoch is `state_epoch`, and above the replaced state's, so that a writer
    /// that loaded the old state is fenced.
    pub async fn initialize(
        &self,
        key: &SharePartitionKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> Result<(), CoordinatorError> {
        let mut slot = self.slot(key).lock().await;
        let now = now_ms();
        let previous = slot.states.get(key);
        let state_epoch =
            previous.map_or(state_epoch, |p| state_epoch.max(p.state.state_epoch + 1));
        let stored = Stored {
            state: ShareState {
                state_epoch,
                leader_epoch: 0,
                start_offset,
                delivery_complete_count: if start_offset < 0 { -1 } else { 0 },
                batches: BTreeMap::new(),
            },
            snapshot_epoch: previous.map_or(0, |p| p.snapshot_epoch + 1),
            create_timestamp: now,
            updates_since_snapshot: 0,
            snapshot_offset: 0,
        };
        let value = snapshot_value(&stored, now);
        let log = self.log_of(key)?;
        let info = append_durably_at(
            &log,
            &[(Some(&key.record_key(SNAPSHOT)), Some(&value))],
            None,
        )
        .await?;
        slot.states.insert(
            key.clone(),
            Stored {
                snapshot_offset: info.base_offset,
                ..stored
            },
        );
        Ok(())
    }

    /// Kafka's WriteShareGroupState: the new start offset and the ranges that changed,
    /// durable before it returns. `state_epoch` is the epoch the writer loaded.
    pub async fn write(
        &self,
        key: &SharePartitionKey,
        state_epoch: i32,
        start_offset: i64,
        delivery_complete_count: i32,
        batches: &[StateBatch],
    ) -> Result<(), WriteError> {
        let mut slot = self.slot(key).lock().await;
        let Some(stored) = slot.states.get(key) else {
            return Err(WriteError::NotInitialized);
        };
        if state_epoch < stored.state.state_epoch {
            return Err(WriteError::FencedStateEpoch);
        }
        let mut next = stored.clone();
        next.state.start_offset = start_offset;
        next.state.delivery_complete_count = delivery_complete_count;
        for b in batches {
            next.state.put(b);
        }
        next.state.prune_below_start();
        let now = now_ms();
        let snapshot =
            next.updates_since_snapshot >= self.config.snapshot_update_records_per_snapshot;
        let (record_key, value) = if snapshot {
            next.snapshot_epoch += 1;
            next.updates_since_snapshot = 0;
            (key.record_key(SNAPSHOT), snapshot_value(&next, now))
        } else {
            next.updates_since_snapshot += 1;
            (
                key.record_key(UPDATE),
                update_value(
                    next.snapshot_epoch,
                    start_offset,
                    delivery_complete_count,
                    batches,
                ),
            )
        };
        let log = self.log_of(key).map_err(WriteError::Storage)?;
        let info = append_durably_at(&log, &[(Some(&record_key), Some(&value))], None)
            .await
            .map_err(WriteError::Storage)?;
        if snapshot {
            next.snapshot_offset = info.base_offset;
        }
        slot.states.insert(key.clone(), next);
        Ok(())
    }

    /// Kafka's DeleteShareGroupState: tombstones for `keys` (DeleteGroups, a deleted topic,
    /// DeleteShareGroupOffsets). Keys without state are skipped.
    pub async fn delete(&self, keys: &[SharePartitionKey]) -> Result<(), CoordinatorError> {
        for key in keys {
            let mut slot = self.slot(key).lock().await;
            if !slot.states.contains_key(key) {
                continue;
            }
            let log = self.log_of(key)?;
            append_durably_at(&log, &[(Some(&key.record_key(SNAPSHOT)), None)], None).await?;
            slot.states.remove(key);
        }
        Ok(())
    }

    /// Rewrites the snapshots written before the previous prune, then deletes the records
    /// below the oldest snapshot each `__share_group_state` partition still needs.
    pub async fn prune(&self) {
        let Some(topic) = self.logs.topic(SHARE_STATE_TOPIC) else {
            return;
        };
        for (index, slot) in self.partitions.iter().enumerate() {
            let Some(log) = topic.partition(index as i32).cloned() else {
                continue;
            };
            let mut slot = slot.lock().await;
            let hw = log.high_watermark();
            let old: Vec<SharePartitionKey> = slot
                .states
                .iter()
                .filter(|(_, s)| s.snapshot_offset < slot.pruned_at)
                .map(|(k, _)| k.clone())
                .collect();
            if !old.is_empty() {
                let now = now_ms();
                let mut rewritten: Vec<(SharePartitionKey, Stored)> = old
                    .iter()
                    .map(|k| {
                        let mut s = slot.states[k].clone();
                        s.snapshot_epoch += 1;
                        s.updates_since_snapshot = 0;
                        (k.clone(), s)
                    })
                    .collect();
                let encoded: Vec<(Vec<u8>, Vec<u8>)> = rewritten
                    .iter()
                    .map(|(k, s)| (k.record_key(SNAPSHOT), snapshot_value(s, now)))
                    .collect();
                let refs: Vec<RawRecord<'_>> = encoded
                    .iter()
                    .map(|(k, v)| (Some(k.as_slice()), Some(v.as_slice())))
                    .collect();
                match append_durably_at(&log, &refs, None).await {
                    Ok(info) => {
                        for (i, (k, mut s)) in rewritten.drain(..).enumerate() {
                            s.snapshot_offset = info.base_offset + i as i64;
                            slot.states.insert(k, s);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(partition = index, error = %e, "rewriting share-partition snapshots failed; pruning later");
                        continue;
                    }
                }
            }
            slot.pruned_at = hw;
            let keep_from = slot
                .states
                .values()
                .map(|s| s.snapshot_offset)
                .min()
                .unwrap_or_else(|| log.high_watermark());
            if keep_from > log.log_start_offset() {
                let (logs, log) = (self.logs.clone(), log.clone());
                let result =
                    tokio::task::spawn_blocking(move || logs.delete_records(&log, keep_from)).await;
                match result {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(partition = index, error = %e, "pruning __share_group_state failed");
                    }
                    Err(e) => {
                        tracing::warn!(partition = index, error = %e, "pruning __share_group_state failed");
                    }
                }
            }
        }
    }
}

/// Replays one `__share_group_state` partition.
fn replay(log: &crate::log::Log, into: &mut StorePartition) -> Result<(), ReplayError> {
    for_each_batch(log, |h, batch| {
        if h.is_control() || h.is_transactional() {
            return Ok(());
        }
        let records = decode_key_values(batch).ok_or("a batch's records do not decode")?;
        for kv in records {
            if let Some(key) = &kv.key {
                apply(into, kv.offset, key, kv.value.as_deref());
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests;
