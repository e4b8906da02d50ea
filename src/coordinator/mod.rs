//! The classic group coordinator (Kafka's `GroupCoordinator`): this broker coordinates
//! every group. It runs the JoinGroup/SyncGroup rebalance protocol, tracks member sessions,
//! and keeps committed offsets durably in `__consumer_offsets`.
//!
//! Synchronisation: all groups are in one `std::sync::Mutex<HashMap>`; every operation does
//! its bookkeeping under it and returns either an answer or a oneshot receiver that the
//! request awaits outside the lock (a parked JoinGroup or SyncGroup). Writes to
//! `__consumer_offsets` and their fsync happen outside the lock too. Timers (sessions,
//! rebalance and sync timeouts, offset retention) are driven by [`GroupCoordinator::tick`],
//! called periodically with `tokio::time::Instant` (so tests can pause time).
//!
//! Layout: this file has the request types, loading, timers and group administration
//! (list, describe, delete); `rebalance.rs` the JoinGroup/SyncGroup/Heartbeat/LeaveGroup
//! state machine; `offset_store.rs` committing and fetching offsets; `offsets.rs` their
//! record format in `__consumer_offsets`; `group.rs` the group and member types.

pub mod consumer;
mod error;
pub mod flexible;
pub mod group;
pub mod group_configs;
mod hand_over;
pub mod internal_topic;
pub mod leadership;
mod offset_store;
pub mod offsets;
mod rebalance;
pub mod share;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::CoordinatorConfig;
use crate::coordinator::internal_topic::ReplayError;
use crate::log::now_ms;
use crate::log_manager::LogManager;
use crate::share::state_store::{SharePartitionKey, ShareStateStore};
pub use error::CoordinatorError;
use group::{CommittedOffset, Group, GroupState, Member};
use offsets::OFFSETS_TOPIC;
use rebalance::remove_member;

/// A JoinGroup request, decoded.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new member first gets MEMBER_ID_REQUIRED and a member id.
    pub require_known_member_id: bool,
}

pub enum Outcome<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// Consumer group records waiting for `run_timers`. `gone`: the tombstones of a group that
/// stopped being a consumer group, dropped if it is one again by the time they are written
/// (its newer records are already on disk).
struct PendingRecords {
    group: String,
    records: Vec<consumer::records::Record>,
    gone: bool,
}

/// A member to remove with LeaveGroup.
#[derive(Debug, Clone)]
pub struct Leaving {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// One partition's commit in an OffsetCommit.
#[derive(Debug, Clone)]
pub struct OffsetCommitEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// One topic's committed offsets: (topic, [(partition, offset if committed)]).
pub type TopicOffsets = (String, Vec<(i32, Option<CommittedOffset>)>);

/// A SyncGroup request, decoded.
#[derive(Debug, Clone)]
pub struct SyncRequest<'a> {
    pub group_id: &'a str,
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
    pub generation_id: i32,
    pub protocol_type: Option<&'a str>,
    pub protocol_name: Option<&'a str>,
    pub assignments: HashMap<String, Bytes>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

pub struct GroupCoordinator {
    config: CoordinatorConfig,
    logs: Arc<LogManager>,
    groups: Mutex<HashMap<String, Group>>,
    /// When offset retention and the removal of empty groups run next
    /// (`offsets.retention.check.interval.ms`, as Kafka's periodic group metadata cleanup).
    next_cleanup: Mutex<Instant>,
    /// Held while a consumer group changes and its records are written, so that they reach
    /// `__consumer_offsets` in the order the changes happened.
    consumer_writes: tokio::sync::Mutex<()>,
    /// Group configs (`consumer.session.timeout.ms`, `consumer.heartbeat.interval.ms`).
    pub group_configs: group_configs::GroupConfigs,
    /// Records of consumer group changes made outside `consumer_writes` (`tick`, a
    /// JoinGroup that turns an empty consumer group into a classic one), for `run_timers`
    /// to write under it.
    timer_records: Mutex<Vec<PendingRecords>>,
    /// The share-partitions' state (the share coordinator), which share group heartbeats
    /// initialise and deleting a share group removes; None in tests without share groups.
    share_store: Option<Arc<ShareStateStore>>,
    /// Cluster mode: where this coordinator's records are committed (`leadership.rs`).
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// Cluster mode: the `__consumer_offsets` partitions this broker leads; None on a
    /// single broker, which coordinates every group.
    leadership: Mutex<Option<leadership::Leadership>>,
    /// Cluster mode: transaction markers applied to partitions being loaded (partition,
    /// producer id, commit), settled once their groups are installed (`hand_over.rs`).
    loading_markers: Mutex<Vec<(i32, i64, bool)>>,
}

impl GroupCoordinator {
    /// Builds the coordinator and replays committed offsets from `__consumer_offsets`.
    pub fn load(
        config: CoordinatorConfig,
        logs: Arc<LogManager>,
    ) -> Result<GroupCoordinator, ReplayError> {
        let groups = replay_groups(&config, &logs, |_| true)?;
        Ok(GroupCoordinator {
            next_cleanup: Mutex::new(Instant::now() + config.offsets_retention_check_interval),
            config,
            groups: Mutex::new(groups),
            consumer_writes: tokio::sync::Mutex::new(()),
            timer_records: Mutex::new(Vec::new()),
            group_configs: group_configs::GroupConfigs::none(logs.storage().clone()),
            logs,
            share_store: None,
            cluster: std::sync::OnceLock::new(),
            leadership: Mutex::new(None),
            loading_markers: Mutex::new(Vec::new()),
        })
    }

    /// The coordinator with the share-partitions' state store.
    pub fn with_share_store(mut self, store: Arc<ShareStateStore>) -> GroupCoordinator {
        self.share_store = Some(store);
        self
    }

    /// The coordinator with the group configs of `store`, whose consumer groups' members
    /// get their session by them.
    pub fn with_group_configs(mut self, store: group_configs::GroupConfigs) -> GroupCoordinator {
        let groups = self
            .groups
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        fresh_sessions(&store, &self.config, groups.iter_mut());
        self.group_configs = store;
        self
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ---- JoinGroup ------------------------------------------------------------------

    /// Session, rebalance and sync timeouts; every `offsets.retention.check.interval.ms`
    /// also offset retention and the removal of groups left with neither members nor
    /// offsets (until then such a group is still Empty, as in Kafka). Called periodically.
    /// Returns the offsets it expired, per group, for the caller to tombstone.
    pub fn tick(&self, now: Instant) -> Vec<(String, Vec<(String, i32)>)> {
        self.tick_groups(now, true)
    }

    /// `tick`; consumer groups only with `consumer` (the caller holds `consumer_writes`),
    /// so that a slow fsync of a consumer group's records does not hold up classic timers.
    fn tick_groups(&self, now: Instant, consumer: bool) -> Vec<(String, Vec<(String, i32)>)> {
        let mut expired_offsets: Vec<(String, Vec<(String, i32)>)> = Vec::new();
        let retention_ms = self.config.offsets_retention.as_millis() as i64;
        let wall = now_ms();
        let cleanup = {
            let mut next = self
                .next_cleanup
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = now >= *next;
            if due {
                *next = now + self.config.offsets_retention_check_interval;
            }
            due
        };
        {
            let mut groups = self.lock();
            for group in groups.values_mut() {
                if let Some(cg) = group.consumer.as_mut().filter(|cg| {
                    consumer
                        && cg.members.values().any(|m| {
                            m.session_deadline <= now
                                || m.revocation_deadline.is_some_and(|(at, _)| at <= now)
                                || m.classic.as_ref().is_some_and(|c| c.expired(now))
                                || (m.subscribed_topic_regex.is_some() && !m.regex_resolved)
                        })
                }) {
                    let before = cg.clone();
                    cg.resolve_regexes();
                    for id in cg.expire_members(now) {
                        tracing::info!(group = %group.group_id, member = %id, "consumer group member session or revocation timed out");
                    }
                    // Only classic members left: the group may become classic again.
                    if let Some(tombstones) = self.maybe_downgrade(group, before.group_epoch, now) {
                        self.queue_records(&group.group_id, tombstones, true);
                    } else if let Some(cg) = &group.consumer {
                        let records =
                            consumer::records::changes(&group.group_id, Some(&before), Some(cg));
                        if !records.is_empty() {
                            self.queue_records(&group.group_id, records, false);
                        }
                    }
                }
                if let Some(sg) = group
                    .share
                    .as_mut()
                    .filter(|sg| consumer && sg.members.values().any(|m| m.session_deadline <= now))
                {
                    let before = sg.clone();
                    for id in sg.expire_members(now) {
                        tracing::info!(group = %group.group_id, member = %id, "share group member session timed out");
                    }
                    let records = share::records::changes(&group.group_id, Some(&before), Some(sg));
                    self.queue_records(&group.group_id, records, false);
                }
                group.pending_members.retain(|_, deadline| *deadline > now);
                let in_join = group.state == GroupState::PreparingRebalance;
                let dead: Vec<String> = group
                    .members
                    .values()
                    .filter(|m| {
                        m.session_deadline <= now && !(in_join && m.awaiting_join.is_some())
                    })
                    .map(|m| m.member_id.clone())
                    .collect();
                let mut removed = !dead.is_empty();
                for id in dead {
                    tracing::info!(group = %group.group_id, member = %id, "member session expired");
                    remove_member(group, &id);
                }
                if group.state == GroupState::CompletingRebalance
                    && group.sync_deadline.is_some_and(|d| now >= d)
                {
                    let unsynced: Vec<String> = group
                        .members
                        .values()
                        .filter(|m| !m.synced)
                        .map(|m| m.member_id.clone())
                        .collect();
                    for id in unsynced {
                        remove_member(group, &id);
                        removed = true;
                    }
                }
                if removed {
                    self.after_removal(group, now);
                }
                self.maybe_complete_join(group, now);
                // Expired: every offset of a group without members; of a consumer group
                // with members, those of topics no member subscribes to (Kafka's
                // cleanupExpiredOffsets with isSubscribedToTopic).
                let consumer_members = group.consumer.as_ref().filter(|cg| !cg.members.is_empty());
                let expires = consumer_members.is_some()
                    || (group.state == GroupState::Empty && !group.has_members());
                if cleanup && expires && retention_ms > 0 {
                    let old: Vec<(String, i32)> = group
                        .offsets
                        .iter()
                        .filter(|(_, o)| wall.saturating_sub(o.commit_timestamp) > retention_ms)
                        .filter(|((topic, _), _)| {
                            consumer_members.is_none_or(|cg| {
                                !cg.members.values().any(|m| m.subscribes_to(topic))
                            })
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    if !old.is_empty() {
                        for k in &old {
                            group.offsets.remove(k);
                        }
                        expired_offsets.push((group.group_id.clone(), old));
                    }
                }
            }
            if cleanup {
                groups.retain(|id, g| {
                    // A consumer group goes only with `consumer`, and with its tombstones.
                    if g.consumer.is_some() && !consumer {
                        return true;
                    }
                    // A share group stays until it is deleted (its share-partitions' state
                    // is its progress).
                    if g.share.is_some() {
                        return true;
                    }
                    let gone = g.state == GroupState::Empty
                        && !g.has_members()
                        && g.offsets.is_empty()
                        && g.pending_members.is_empty();
                    if let (true, Some(cg)) = (gone, &g.consumer) {
                        self.queue_records(
                            id,
                            consumer::records::changes(id, Some(cg), None),
                            false,
                        );
                    }
                    !(g.state == GroupState::Empty
                        && !g.has_members()
                        && g.offsets.is_empty()
                        && g.pending_members.is_empty())
                });
            }
        }
        expired_offsets
    }

    /// Tombstones offsets that `tick` expired. A failure is logged: the offsets are gone
    /// from memory but not from disk, so after a restart they are loaded and expire again.
    async fn tombstone_expired(&self, expired: Vec<(String, Vec<(String, i32)>)>) {
        for (group, partitions) in expired {
            if let Err(e) = self.write_tombstones(&group, &partitions).await {
                tracing::error!(group = %group, error = %e, "writing tombstones for expired offsets failed");
            }
        }
    }

    /// Queues consumer group records for `run_timers`.
    fn queue_records(&self, group: &str, records: Vec<consumer::records::Record>, gone: bool) {
        if !records.is_empty() {
            self.timer_records
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(PendingRecords {
                    group: group.to_string(),
                    records,
                    gone,
                });
        }
    }

    /// Writes the queued consumer group records (the caller holds `consumer_writes`); a
    /// failure is logged (memory is then ahead of the disk: after a restart those members
    /// come back, and time out or rejoin).
    async fn write_timer_records(&self) {
        let pending = std::mem::take(
            &mut *self
                .timer_records
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for p in pending {
            let again = p.gone
                && self
                    .lock()
                    .get(&p.group)
                    .is_some_and(|g| g.consumer.is_some());
            if again {
                continue;
            }
            if let Err(e) = self.persist(&p.group, p.records, None).await {
                tracing::error!(group = %p.group, error = %e, "writing a consumer group's records failed");
            }
        }
    }

    /// A JoinGroup made group `id`, an empty consumer group, a classic one: its consumer
    /// group records get tombstones.
    fn consumer_group_gone(&self, id: &str, cg: &consumer::ConsumerGroup) {
        self.queue_records(id, consumer::records::changes(id, Some(cg), None), true);
    }

    // ---- Offsets ----------------------------------------------------------------------

    /// DeleteGroups for one group.
    /// The answer waits until the tombstones of its offsets are durable; if they can't be
    /// written the group is put back and the error returned.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), CoordinatorError> {
        if group_id.is_empty() {
            return Err(CoordinatorError::InvalidGroupId);
        }
        // A consumer group's tombstones must not land after a heartbeat recreated it.
        let _serial = self.consumer_writes.lock().await;
        let (removed, partitions) = {
            let mut groups = self.lock();
            let Some(group) = groups.get(group_id) else {
                return Err(CoordinatorError::GroupIdNotFound);
            };
            if group.state != GroupState::Empty || group.has_members() {
                return Err(CoordinatorError::NonEmptyGroup);
            }
            let partitions: Vec<(String, i32)> = group.offsets.keys().cloned().collect();
            (groups.remove(group_id), partitions)
        };
        // Offsets and the consumer group's records go in one batch: all or nothing.
        let mut records: Vec<consumer::records::Record> = partitions
            .iter()
            .map(|(t, p)| (offsets::encode_key(group_id, t, *p), None))
            .collect();
        if let Some(cg) = removed.as_ref().and_then(|g| g.consumer.as_ref()) {
            records.extend(consumer::records::changes(group_id, Some(cg), None));
        }
        if let Some(sg) = removed.as_ref().and_then(|g| g.share.as_ref()) {
            records.extend(share::records::changes(group_id, Some(sg), None));
            // Its share-partitions' state goes first: a share group that is gone holds
            // nothing, while state without a group would come back to a new one.
            if let Err(e) = self.delete_share_state(group_id, None).await {
                if let Some(group) = removed {
                    self.lock().entry(group_id.to_string()).or_insert(group);
                }
                return Err(e);
            }
        }
        if let Err(e) = self.persist(group_id, records, None).await {
            // Still on disk, so still a group: back it goes, unless one of that id was
            // created meanwhile.
            if let Some(group) = removed {
                self.lock().entry(group_id.to_string()).or_insert(group);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Removes the committed offsets of a deleted topic from every group, and its
    /// share-partitions' state from every share group.
    pub async fn on_topic_deleted(&self, topic: &str, topic_id: uuid::Uuid) {
        if let Some(store) = &self.share_store {
            let keys = store.states_where(|k| k.topic_id == topic_id).await;
            if let Err(e) = store.delete(&keys).await {
                // Logged only: a topic id is never reused, so the state is inert.
                tracing::error!(topic, error = %e, "deleting a deleted topic's share-partition state failed");
            }
        }
        let affected: Vec<(String, Vec<(String, i32)>)> = {
            let mut groups = self.lock();
            groups
                .values_mut()
                .filter_map(|g| {
                    let keys: Vec<(String, i32)> = g
                        .offsets
                        .keys()
                        .filter(|(t, _)| t == topic)
                        .cloned()
                        .collect();
                    for k in &keys {
                        g.offsets.remove(k);
                    }
                    (!keys.is_empty()).then(|| (g.group_id.clone(), keys))
                })
                .collect()
        };
        for (group, keys) in affected {
            // Logged only: the topic is gone either way, and offsets of a topic that does
            // not exist are dropped again when they are loaded.
            if let Err(e) = self.write_tombstones(&group, &keys).await {
                tracing::error!(group = %group, topic, error = %e, "writing tombstones for a deleted topic's offsets failed");
            }
        }
    }

    /// ListGroups: (group id, protocol type, state, group type), as Kafka names them.
    pub fn list_groups(&self) -> Vec<(String, String, &'static str, &'static str)> {
        let groups = self.lock();
        let mut out: Vec<_> = groups
            .values()
            .map(|g| match (&g.consumer, &g.share) {
                (Some(cg), _) => (
                    g.group_id.clone(),
                    "consumer".to_string(),
                    cg.state(),
                    "consumer",
                ),
                (None, Some(sg)) => (g.group_id.clone(), "share".to_string(), sg.state(), "share"),
                (None, None) => (
                    g.group_id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.name(),
                    "classic",
                ),
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Whether `member_id` is a member of consumer group `group_id`.
    /// Whether `member_id` is a consumer-protocol member of consumer group `group_id` (not a
    /// classic member of it).
    pub fn is_consumer_group_member(&self, group_id: &str, member_id: &str) -> bool {
        self.lock()
            .get(group_id)
            .and_then(|g| g.consumer.as_ref())
            .and_then(|cg| cg.members.get(member_id))
            .is_some_and(|m| m.classic.is_none())
    }

    /// ConsumerGroupDescribe: a copy of the consumer group `group_id`, if it is one.
    pub fn describe_consumer_group(&self, group_id: &str) -> Option<consumer::ConsumerGroup> {
        self.lock().get(group_id).and_then(|g| g.consumer.clone())
    }

    /// DescribeGroups: a classic group (a consumer group is not one: None, as Kafka's
    /// "Dead").
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.lock();
        let g = groups
            .get(group_id)
            .filter(|g| g.consumer.is_none() && g.share.is_none())?;
        let with_data = matches!(
            g.state,
            GroupState::Stable | GroupState::CompletingRebalance
        );
        let protocol = g.protocol_name.clone().unwrap_or_default();
        let mut members: Vec<&Member> = g.members.values().collect();
        members.sort_by_key(|m| m.join_order);
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if with_data {
                protocol.clone()
            } else {
                String::new()
            },
            members: members
                .into_iter()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        m.group_instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        if with_data {
                            m.metadata(&protocol)
                        } else {
                            Bytes::new()
                        },
                        if g.state == GroupState::Stable {
                            m.assignment.clone()
                        } else {
                            Bytes::new()
                        },
                    )
                })
                .collect(),
        })
    }

    /// ShareGroupDescribe: a copy of the share group `group_id`, if it is one.
    pub fn describe_share_group(&self, group_id: &str) -> Option<share::ShareGroup> {
        self.lock().get(group_id).and_then(|g| g.share.clone())
    }

    /// Whether `group_id` is a share group (the classic and consumer APIs answer
    /// GROUP_ID_NOT_FOUND for it, as Kafka does).
    pub fn is_share_group(&self, group_id: &str) -> bool {
        self.lock().get(group_id).is_some_and(|g| g.share.is_some())
    }

    /// For the share group offset APIs: the share group `group_id` exists and has no
    /// members. With `create`, a group that does not exist is created (empty, durable), as
    /// AlterShareGroupOffsets does. Returns its group epoch.
    pub async fn empty_share_group(
        &self,
        group_id: &str,
        create: bool,
    ) -> Result<i32, CoordinatorError> {
        let _serial = self.consumer_writes.lock().await;
        let created = {
            let mut groups = self.lock();
            match groups.get(group_id) {
                Some(g) => match &g.share {
                    Some(sg) if sg.members.is_empty() => return Ok(sg.group_epoch),
                    Some(_) => return Err(CoordinatorError::NonEmptyGroup),
                    None => return Err(CoordinatorError::GroupIdNotFound),
                },
                None if !create => return Err(CoordinatorError::GroupIdNotFound),
                None => {
                    let mut g = Group::new(group_id);
                    g.share = Some(share::ShareGroup::default());
                    groups.insert(group_id.to_string(), g);
                    share::records::changes(group_id, None, Some(&share::ShareGroup::default()))
                }
            }
        };
        if let Err(e) = self.persist(group_id, created, None).await {
            self.lock().remove(group_id);
            return Err(e);
        }
        Ok(0)
    }

    /// Deletes the share-partition state of group `group_id` (of `topic` only, if given).
    pub async fn delete_share_state(
        &self,
        group_id: &str,
        topic: Option<uuid::Uuid>,
    ) -> Result<(), CoordinatorError> {
        let Some(store) = &self.share_store else {
            return Ok(());
        };
        let keys: Vec<SharePartitionKey> = store
            .states_where(|k| k.group == group_id && topic.is_none_or(|t| k.topic_id == t))
            .await;
        store.delete(&keys).await
    }

    /// Runs `tick` every 100 ms until shutdown.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    // Consumer groups when no heartbeat is writing; classic ones always.
                    let serial = self.consumer_writes.try_lock().ok();
                    let expired = self.tick_groups(Instant::now(), serial.is_some());
                    if serial.is_some() {
                        self.write_timer_records().await;
                    }
                    drop(serial);
                    self.tombstone_expired(expired).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Replays the groups kept in the `__consumer_offsets` partitions `wanted` accepts: their
/// committed offsets, pending transactional offsets, and consumer and share groups with
/// their members (each with a fresh session, as after a coordinator failover in Kafka).
fn replay_groups(
    config: &CoordinatorConfig,
    logs: &LogManager,
    wanted: impl Fn(i32) -> bool,
) -> Result<HashMap<String, Group>, ReplayError> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    let mut consumer_groups = consumer::records::Replayed::default();
    let mut share_groups = share::records::Replayed::default();
    let now = Instant::now();
    if let Some(topic) = logs.topic(OFFSETS_TOPIC) {
        for log in topic
            .partitions
            .iter()
            .filter(|l| wanted(l.topic_partition().partition))
        {
            replay_modern_groups(log, &mut consumer_groups, &mut share_groups, now)?;
            let (records, pending) = offsets::replay(log)?;
            for (producer_id, records) in pending {
                for r in records {
                    let group = groups
                        .entry(r.group.clone())
                        .or_insert_with(|| Group::new(&r.group));
                    if let Some(v) = r.value {
                        group
                            .pending_txn_offsets
                            .entry(producer_id)
                            .or_default()
                            .insert((r.topic, r.partition), v);
                    }
                }
            }
            for record in records {
                let group = groups
                    .entry(record.group.clone())
                    .or_insert_with(|| Group::new(&record.group));
                let key = (record.topic, record.partition);
                match record.value {
                    Some(v) => {
                        group.offsets.insert(key, v);
                    }
                    None => {
                        group.offsets.remove(&key);
                    }
                }
            }
        }
        groups.retain(|_, g| !g.offsets.is_empty() || !g.pending_txn_offsets.is_empty());
        tracing::info!(groups = groups.len(), "loaded committed offsets");
    }
    // Consumer groups come back with their members, each with a fresh session (as in
    // Kafka after a coordinator failover): members that are gone time out.
    let session = Duration::from_millis(config.consumer.session_timeout_ms as u64);
    for (id, mut cg) in consumer_groups.groups {
        for m in cg.members.values_mut() {
            m.session_deadline = now + session;
        }
        cg.assignor = consumer::preferred_assignor(&cg, &config.consumer.assignors[0]);
        tracing::info!(group = %id, members = cg.members.len(), epoch = cg.group_epoch, "loaded consumer group");
        groups
            .entry(id.clone())
            .or_insert_with(|| Group::new(&id))
            .consumer = Some(cg);
    }
    let share_session = Duration::from_millis(config.share.session_timeout_ms as u64);
    for (id, mut sg) in share_groups.groups {
        for m in sg.members.values_mut() {
            m.session_deadline = now + share_session;
        }
        tracing::info!(group = %id, members = sg.members.len(), epoch = sg.group_epoch, "loaded share group");
        groups
            .entry(id.clone())
            .or_insert_with(|| Group::new(&id))
            .share = Some(sg);
    }
    Ok(groups)
}

/// Gives the loaded members of `groups` a fresh session by their group's configs.
fn fresh_sessions<'a>(
    store: &group_configs::GroupConfigs,
    config: &CoordinatorConfig,
    groups: impl Iterator<Item = (&'a String, &'a mut Group)>,
) {
    let now = Instant::now();
    for (id, g) in groups {
        if let Some(cg) = g.consumer.as_mut() {
            let ms = store.session_timeout_ms(id, config);
            for m in cg.members.values_mut() {
                m.session_deadline = now + Duration::from_millis(ms.max(0) as u64);
            }
        }
        if let Some(sg) = g.share.as_mut() {
            let ms = store.share_session_timeout_ms(id, config);
            for m in sg.members.values_mut() {
                m.session_deadline = now + Duration::from_millis(ms.max(0) as u64);
            }
        }
    }
}

/// Replays the consumer and share group records of one `__consumer_offsets` partition
/// (offset commits and transactional batches are the offset replay's), in one pass.
fn replay_modern_groups(
    log: &crate::log::Log,
    consumer_groups: &mut consumer::records::Replayed,
    share_groups: &mut share::records::Replayed,
    now: Instant,
) -> Result<(), ReplayError> {
    internal_topic::for_each_batch(log, |h, batch| {
        if h.is_control() || h.is_transactional() {
            return Ok(());
        }
        let records = crate::log::records::decode_key_values(batch)
            .ok_or("a batch's records do not decode")?;
        for kv in records {
            if let Some(key) = &kv.key {
                if !consumer_groups.apply(key, kv.value.as_deref(), now) {
                    share_groups.apply(key, kv.value.as_deref(), now);
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests;
