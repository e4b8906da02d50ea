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
//! Layout: this file has the request types and group administration (list, describe,
//! delete); `loading.rs` rebuilds the groups from `__consumer_offsets`; `timers.rs` runs
//! sessions, timeouts and offset retention; `rebalance.rs` the JoinGroup/SyncGroup/Heartbeat/LeaveGroup
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
mod loading;
mod offset_store;
pub mod offsets;
mod rebalance;
pub mod share;
mod timers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::CoordinatorConfig;
use crate::coordinator::internal_topic::ReplayError;
use crate::log_manager::LogManager;
use crate::share::state_store::{SharePartitionKey, ShareStateStore};
pub use error::CoordinatorError;
use group::{CommittedOffset, Group, GroupState, Member};
use loading::{fresh_sessions, replay_groups};

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
}

#[cfg(test)]
mod tests;
