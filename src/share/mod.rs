//! Share groups' records (KIP-932, Kafka's `SharePartitionManager`): which offsets of a
//! topic partition each share group has delivered, to whom, and how each delivery ended.
//! ShareFetch acquires records for a member, ShareAcknowledge (or acknowledgements riding
//! on a ShareFetch) settles them; unsettled records come back when their lock expires or
//! the member's share session ends.
//!
//! - `partition.rs`: one share-partition's states (the rules, no I/O);
//! - `state_store.rs`: their durable state in `__share_group_state` (the share coordinator);
//! - `session.rs`: share sessions;
//! - this file: the share-partitions in memory, loaded on first use, and what ties the
//!   three together (reads from the log, writes before answers, lock expiry).
//!
//! Membership and assignment are the group coordinator's (`coordinator/share/`); as in
//! Kafka, a share fetch is not checked against them (assignment is advice to clients).
//!
//! Synchronisation: the table of share-partitions and the sessions each sit behind a
//! `std::sync::Mutex` held only to look up or insert; each share-partition's state behind a
//! `tokio::sync::Mutex` held across a fetch's acquisition or an acknowledgement and its
//! write, so one share-partition's changes are made and stored one at a time.

pub mod partition;
pub mod session;
pub mod state_store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::ShareGroupConfig;
use crate::coordinator::group_configs::AutoOffsetReset;
use crate::log::record_batch::BatchHeader;
use crate::log::{now_ms, Log, LogError};
use partition::{
    AckError, Acknowledgement, AcquiredRange, Changes, Limits, LogBatch, SharePartition,
};
use session::{ShareSessions, TopicIdPartition};
use state_store::{SharePartitionKey, ShareStateStore, WriteError};

/// What a share group's configs say about its share-partitions.
#[derive(Debug, Clone, Copy)]
pub struct ShareGroupSettings {
    /// `share.record.lock.duration.ms`.
    pub record_lock_duration: Duration,
    /// `share.auto.offset.reset`.
    pub auto_offset_reset: AutoOffsetReset,
    /// `share.isolation.level` is read_committed.
    pub read_committed: bool,
}

/// Why a share-partition could not be read or changed (a partition's error code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionError {
    /// The share-partition has no state: no member of the group was ever assigned it
    /// (UNKNOWN_SERVER_ERROR, as Kafka's share coordinator refuses the read).
    NotInitialized,
    /// Its state was reset (offsets altered or deleted) since it was loaded; it is loaded
    /// again on the next request (NOT_LEADER_OR_FOLLOWER, as Kafka answers).
    Fenced,
    /// Reading the log failed.
    Log(String, kafka_protocol::ResponseError),
    /// Writing its state failed (UNKNOWN_SERVER_ERROR; the change was undone).
    Storage,
    /// An acknowledgement was refused.
    Ack(AckError),
}

/// What a fetch acquired on one share-partition: whole stored batches and the ranges of
/// them that are this member's.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub records: Bytes,
    pub ranges: Vec<AcquiredRange>,
}

/// One share-partition's entry: its log and its state once loaded.
pub struct ShareEntry {
    pub key: SharePartitionKey,
    pub log: Arc<Log>,
    state: tokio::sync::Mutex<Option<SharePartition>>,
    /// Notified when records of it become available again (released, expired) or its
    /// window moves: a waiting share fetch tries again.
    pub changed: Notify,
}

impl std::fmt::Debug for ShareEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareEntry")
            .field("key", &self.key)
            .finish()
    }
}

pub struct ShareManager {
    config: ShareGroupConfig,
    pub store: Arc<ShareStateStore>,
    entries: Mutex<HashMap<SharePartitionKey, Arc<ShareEntry>>>,
    sessions: Mutex<ShareSessions>,
}

impl std::fmt::Debug for ShareManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareManager").finish()
    }
}

impl ShareManager {
    pub fn new(config: ShareGroupConfig, store: Arc<ShareStateStore>) -> ShareManager {
        ShareManager {
            sessions: Mutex::new(ShareSessions::new(config.max_share_sessions)),
            config,
            store,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &ShareGroupConfig {
        &self.config
    }

    pub fn limits(&self) -> Limits {
        Limits {
            delivery_count_limit: self.config.delivery_count_limit,
            max_in_flight: i64::from(self.config.partition_max_record_locks),
        }
    }

    pub fn sessions(&self) -> MutexGuard<'_, ShareSessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<SharePartitionKey, Arc<ShareEntry>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `key` on `log` (a new one if the topic was recreated).
    pub fn entry(&self, key: SharePartitionKey, log: &Arc<Log>) -> Arc<ShareEntry> {
        let mut entries = self.entries();
        if let Some(e) = entries.get(&key).filter(|e| Arc::ptr_eq(&e.log, log)) {
            return e.clone();
        }
        let e = Arc::new(ShareEntry {
            key: key.clone(),
            log: log.clone(),
            state: tokio::sync::Mutex::new(None),
            changed: Notify::new(),
        });
        entries.insert(key, e.clone());
        e
    }

    /// The loaded entry of `key`, if any.
    pub fn existing(&self, key: &SharePartitionKey) -> Option<Arc<ShareEntry>> {
        self.entries().get(key).cloned()
    }

    /// Forgets the share-partitions `which` selects: their state was reset or deleted, so
    /// they are loaded again from the store when next used. Waiting fetches are woken.
    pub fn forget(&self, which: impl Fn(&SharePartitionKey) -> bool) {
        let gone: Vec<Arc<ShareEntry>> = {
            let mut entries = self.entries();
            let keys: Vec<SharePartitionKey> =
                entries.keys().filter(|k| which(k)).cloned().collect();
            keys.iter().filter_map(|k| entries.remove(k)).collect()
        };
        for e in gone {
            e.changed.notify_waiters();
        }
    }

    /// Loads `entry`'s state from the store if it is not loaded: the start offset of a
    /// share-partition that has none comes from `share.auto.offset.reset`.
    async fn loaded<'a>(
        &self,
        entry: &'a ShareEntry,
        settings: &ShareGroupSettings,
    ) -> Result<tokio::sync::MutexGuard<'a, Option<SharePartition>>, PartitionError> {
        let mut guard = entry.state.lock().await;
        if guard.is_none() {
            let state = self
                .store
                .read(&entry.key)
                .await
                .ok_or(PartitionError::NotInitialized)?;
            let start = if state.start_offset >= 0 {
                state.start_offset.max(entry.log.log_start_offset())
            } else {
                resolve_start(&entry.log, settings)?
            };
            *guard = Some(SharePartition::load(&state, start));
        }
        Ok(guard)
    }

    /// Acquires records of `entry` for `member`: at least `max_records` if there are that
    /// many (whole batches; with `record_limit`, at most that many), within about
    /// `max_bytes`. `None` when there is nothing to deliver now.
    #[allow(clippy::too_many_arguments)]
    pub async fn acquire(
        &self,
        entry: &ShareEntry,
        member: &Arc<str>,
        max_records: usize,
        batch_size: usize,
        max_bytes: usize,
        record_limit: bool,
        settings: &ShareGroupSettings,
    ) -> Result<Option<Fetched>, PartitionError> {
        let limits = self.limits();
        let mut guard = self.loaded(entry, settings).await?;
        let sp = guard.as_mut().expect("loaded");
        if !sp.can_acquire(&limits) || max_records == 0 {
            return Ok(None);
        }
        let log = &entry.log;
        if sp.next_fetch_offset() < log.log_start_offset() {
            sp.move_start_to(log.log_start_offset());
        }
        let offset = sp.next_fetch_offset();
        let read = match log.read(offset, max_bytes, true, settings.read_committed) {
            Ok(r) => r,
            Err(LogError::OffsetOutOfRange { start, .. }) => {
                // The log was cut below us (retention, DeleteRecords): move on. (Past its
                // end, after a cut-back, there is just nothing to fetch yet.)
                if offset < start {
                    sp.move_start_to(start);
                }
                return Ok(None);
            }
            Err(e) => {
                return Err(PartitionError::Log(
                    e.to_string(),
                    crate::api::errors::log_error_code(&e),
                ))
            }
        };
        let mut batches: Vec<(LogBatch, std::ops::Range<usize>)> = Vec::new();
        let mut at = 0;
        while let Some(h) = BatchHeader::parse(&read.records[at..]) {
            let size = h.size();
            if at + size > read.records.len() {
                break;
            }
            let aborted = settings.read_committed
                && h.is_transactional()
                && !h.is_control()
                && read.aborted.iter().any(|a| {
                    a.producer_id == h.producer_id
                        && a.first_offset <= h.base_offset
                        && h.base_offset < a.last_offset
                });
            batches.push((
                LogBatch {
                    base_offset: h.base_offset,
                    last_offset: h.last_offset(),
                    deliverable: !aborted,
                },
                at..at + size,
            ));
            at += size;
        }
        if batches.is_empty() {
            return Ok(None);
        }
        let deadline = Instant::now() + settings.record_lock_duration;
        let plain: Vec<LogBatch> = batches.iter().map(|(b, _)| *b).collect();
        let got = sp.acquire(
            member,
            &plain,
            max_records,
            batch_size,
            record_limit,
            deadline,
            &limits,
        );
        let Some((first, last)) = got.batches else {
            return Ok(None);
        };
        let bytes = read
            .records
            .slice(batches[first].1.start..batches[last].1.end);
        Ok(Some(Fetched {
            records: bytes,
            ranges: got.ranges,
        }))
    }

    /// Settles `member`'s acknowledgements on `entry`, durable before it returns; all or
    /// nothing.
    pub async fn acknowledge(
        &self,
        entry: &ShareEntry,
        member: &str,
        acks: &[Acknowledgement],
        settings: &ShareGroupSettings,
    ) -> Result<(), PartitionError> {
        let limits = self.limits();
        let mut guard = self.loaded(entry, settings).await?;
        let sp = guard.as_mut().expect("loaded");
        let renewed_until = Instant::now() + settings.record_lock_duration;
        let changes = sp
            .acknowledge(member, acks, renewed_until, &limits)
            .map_err(PartitionError::Ack)?;
        let result = self.write(entry, sp, changes).await;
        if result == Err(PartitionError::Fenced) {
            *guard = None;
        }
        result
    }

    /// Writes `changes` of `sp` (undoing them if that fails), then moves its start.
    async fn write(
        &self,
        entry: &ShareEntry,
        sp: &mut SharePartition,
        changes: Changes,
    ) -> Result<(), PartitionError> {
        if changes.is_empty() {
            return Ok(());
        }
        let start = sp.next_start_offset();
        let batches = sp.state_batches(&changes, start);
        // Terminal offsets at or after the new start (Kafka's DeliveryCompleteCount).
        let complete = sp.delivery_complete_count() - (start - sp.start_offset()) as i32;
        let written = self
            .store
            .write(&entry.key, sp.state_epoch(), start, complete, &batches)
            .await;
        match written {
            Ok(()) => {
                sp.advance_start();
                entry.changed.notify_waiters();
                Ok(())
            }
            Err(e) => {
                sp.undo(changes);
                tracing::warn!(share_partition = ?entry.key, error = ?e, "writing share-partition state failed");
                Err(match e {
                    WriteError::FencedStateEpoch | WriteError::NotInitialized => {
                        PartitionError::Fenced
                    }
                    WriteError::Storage(_) => PartitionError::Storage,
                })
            }
        }
    }

    /// Releases what `member` holds on `partitions` of `group` (its share session ended).
    pub async fn release(&self, group: &str, member: &str, partitions: &[TopicIdPartition]) {
        let limits = self.limits();
        for (topic_id, partition) in partitions {
            let key = SharePartitionKey {
                group: group.to_string(),
                topic_id: *topic_id,
                partition: *partition,
            };
            let Some(entry) = self.existing(&key) else {
                continue;
            };
            let mut guard = entry.state.lock().await;
            let Some(sp) = guard.as_mut() else {
                continue;
            };
            let changes = sp.release(member, &limits);
            if let Err(e) = self.write(&entry, sp, changes).await {
                // Released in memory anyway: the records come back to other members; after a
                // restart they are available as the store last had them.
                tracing::warn!(share_partition = ?entry.key, error = ?e, "releasing a member's records was not written");
                if e == PartitionError::Fenced {
                    *guard = None;
                } else {
                    let again = sp.release(member, &limits);
                    drop(again);
                }
                entry.changed.notify_waiters();
            }
        }
    }

    /// The sessions `connection` opened end: their members' records are released.
    pub async fn connection_closed(&self, connection: u64) {
        let closed = self.sessions().close_connection(connection);
        for (group, member, session) in closed {
            let partitions: Vec<TopicIdPartition> = session.partitions.into_iter().collect();
            self.release(&group, &member, &partitions).await;
        }
    }

    /// Releases every record held past its lock, in every loaded share-partition.
    pub async fn expire_locks(&self) {
        let now = Instant::now();
        let limits = self.limits();
        let entries: Vec<Arc<ShareEntry>> = self.entries().values().cloned().collect();
        for entry in entries {
            let Ok(mut guard) = entry.state.try_lock() else {
                // Busy with a fetch or an acknowledgement: next tick.
                continue;
            };
            let Some(sp) = guard.as_mut() else { continue };
            if sp.next_deadline().is_none_or(|d| d > now) {
                continue;
            }
            let changes = sp.expire(now, &limits);
            if let Err(e) = self.write(&entry, sp, changes).await {
                tracing::warn!(share_partition = ?entry.key, error = ?e, "expired record locks were not written");
                if e == PartitionError::Fenced {
                    *guard = None;
                } else {
                    // As Kafka: the expiry stands in memory even if its write failed.
                    drop(sp.expire(now, &limits));
                }
                entry.changed.notify_waiters();
            }
        }
    }

    /// Runs lock expiry every 100 ms and the state topic's pruning every
    /// `share.coordinator.state.topic.prune.interval.ms`, until shutdown.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let prune_every = Duration::from_millis(self.config.state_topic_prune_interval_ms as u64);
        let mut next_prune = Instant::now() + prune_every;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.expire_locks().await;
                    if Instant::now() >= next_prune {
                        self.store.prune().await;
                        next_prune = Instant::now() + prune_every;
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// A share-partition's first start offset, by `share.auto.offset.reset`: the log's start
/// (earliest), its high watermark (latest), or the first offset at most the duration old.
fn resolve_start(log: &Log, settings: &ShareGroupSettings) -> Result<i64, PartitionError> {
    Ok(match settings.auto_offset_reset {
        AutoOffsetReset::Earliest => log.log_start_offset(),
        AutoOffsetReset::Latest => log.high_watermark(),
        AutoOffsetReset::ByDuration(d) => {
            let at = now_ms().saturating_sub(d.as_millis() as i64);
            match log.offset_for_timestamp(at) {
                Ok(Some(found)) => found.offset,
                Ok(None) => log.high_watermark(),
                Err(e) => {
                    return Err(PartitionError::Log(
                        e.to_string(),
                        crate::api::errors::log_error_code(&e),
                    ))
                }
            }
        }
    })
}
