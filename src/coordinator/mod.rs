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

pub mod group;
pub mod offsets;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::internal_topic::{append_durably, partition_log};
use crate::log::record_batch::{check_batch, encode_batch, RawRecord};
use crate::log::{now_ms, Log};
use crate::log_manager::LogManager;
use group::{CommittedOffset, Group, GroupState, JoinResult, Member, SyncResult};
use offsets::OFFSETS_TOPIC;

/// The `group.*` and `offsets.*` broker settings the coordinator obeys.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
    pub offsets_retention: Duration,
    pub offsets_topic_partitions: i32,
    pub offset_metadata_max_bytes: usize,
}

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

/// Validated commit entries: codes per entry, records to write, accepted values.
type OffsetRecords = (
    Vec<i16>,
    Vec<(Vec<u8>, Option<Vec<u8>>)>,
    Vec<(usize, String, i32, CommittedOffset)>,
);

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

fn join_error(error: ResponseError, member_id: &str) -> JoinResult {
    JoinResult {
        error: error.code(),
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader_id: String::new(),
        member_id: member_id.to_string(),
        skip_assignment: false,
        members: Vec::new(),
    }
}

fn sync_error(error: ResponseError) -> SyncResult {
    SyncResult {
        error: error.code(),
        protocol_type: None,
        protocol_name: None,
        assignment: Bytes::new(),
    }
}

pub struct GroupCoordinator {
    config: CoordinatorConfig,
    logs: Arc<LogManager>,
    groups: Mutex<HashMap<String, Group>>,
}

impl GroupCoordinator {
    /// Builds the coordinator and replays committed offsets from `__consumer_offsets`.
    pub fn load(config: CoordinatorConfig, logs: Arc<LogManager>) -> GroupCoordinator {
        let mut groups: HashMap<String, Group> = HashMap::new();
        if let Some(topic) = logs.topic(OFFSETS_TOPIC) {
            for log in &topic.partitions {
                let (records, pending) = offsets::replay(log);
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
        GroupCoordinator {
            config,
            logs,
            groups: Mutex::new(groups),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- JoinGroup ------------------------------------------------------------------

    pub fn join(&self, req: JoinRequest) -> Outcome<JoinResult> {
        let now = Instant::now();
        if req.group_id.is_empty() {
            return Outcome::Now(join_error(ResponseError::InvalidGroupId, &req.member_id));
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Outcome::Now(join_error(
                ResponseError::InvalidSessionTimeout,
                &req.member_id,
            ));
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Outcome::Now(join_error(
                ResponseError::InconsistentGroupProtocol,
                &req.member_id,
            ));
        }
        let mut groups = self.lock();
        if !groups.contains_key(&req.group_id) {
            if !req.member_id.is_empty() {
                return Outcome::Now(join_error(ResponseError::UnknownMemberId, &req.member_id));
            }
            groups.insert(req.group_id.clone(), Group::new(&req.group_id));
        }
        let group = groups.get_mut(&req.group_id).expect("inserted above");
        if group.state == GroupState::Dead {
            return Outcome::Now(join_error(
                ResponseError::CoordinatorNotAvailable,
                &req.member_id,
            ));
        }
        let compatible = group.is_empty()
            || (group.protocol_type.as_deref() == Some(req.protocol_type.as_str())
                && !group.common_protocols(Some(&req.protocols)).is_empty());
        if !compatible {
            return Outcome::Now(join_error(
                ResponseError::InconsistentGroupProtocol,
                &req.member_id,
            ));
        }

        if req.member_id.is_empty() {
            let new_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
            if let Some(instance) = &req.group_instance_id {
                if let Some(old_id) = group.static_members.get(instance).cloned() {
                    if group.members.contains_key(&old_id) {
                        return self.static_rejoin(group, &old_id, &new_id, &req, now);
                    }
                }
            } else if req.require_known_member_id {
                let deadline = now + Duration::from_millis(req.session_timeout_ms as u64);
                group.pending_members.insert(new_id.clone(), deadline);
                return Outcome::Now(join_error(ResponseError::MemberIdRequired, &new_id));
            }
            if group.members.len() >= self.config.max_size {
                return Outcome::Now(join_error(ResponseError::GroupMaxSizeReached, &new_id));
            }
            return self.add_member(group, &new_id, &req, now);
        }

        if group.pending_members.remove(&req.member_id).is_some() {
            if group.members.len() >= self.config.max_size {
                return Outcome::Now(join_error(
                    ResponseError::GroupMaxSizeReached,
                    &req.member_id,
                ));
            }
            return self.add_member(group, &req.member_id, &req, now);
        }
        if let Some(instance) = &req.group_instance_id {
            if let Some(known) = group.static_members.get(instance) {
                if *known != req.member_id {
                    return Outcome::Now(join_error(
                        ResponseError::FencedInstanceId,
                        &req.member_id,
                    ));
                }
            }
        }
        let Some(member) = group.members.get(&req.member_id) else {
            return Outcome::Now(join_error(ResponseError::UnknownMemberId, &req.member_id));
        };
        if member.group_instance_id != req.group_instance_id {
            return Outcome::Now(join_error(ResponseError::FencedInstanceId, &req.member_id));
        }
        let same = member.same_protocols(&req.protocols);
        let is_leader = group.leader_id.as_deref() == Some(req.member_id.as_str());
        match group.state {
            GroupState::PreparingRebalance => self.park_join(group, &req, now),
            GroupState::CompletingRebalance | GroupState::Stable
                if same && !(group.state == GroupState::Stable && is_leader) =>
            {
                if let Some(m) = group.members.get_mut(&req.member_id) {
                    m.session_deadline = now + Duration::from_millis(m.session_timeout_ms as u64);
                }
                Outcome::Now(current_generation(group, &req.member_id, false))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.prepare_rebalance(group, now);
                self.park_join(group, &req, now)
            }
            GroupState::Empty | GroupState::Dead => {
                Outcome::Now(join_error(ResponseError::UnknownMemberId, &req.member_id))
            }
        }
    }

    fn add_member(
        &self,
        group: &mut Group,
        member_id: &str,
        req: &JoinRequest,
        now: Instant,
    ) -> Outcome<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let member = Member {
            member_id: member_id.to_string(),
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            synced: false,
            session_deadline: now + Duration::from_millis(req.session_timeout_ms as u64),
            join_order: group.next_join_order,
        };
        group.next_join_order += 1;
        if let Some(instance) = &req.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), member_id.to_string());
        }
        if group.protocol_type.is_none() || group.is_empty() {
            group.protocol_type = Some(req.protocol_type.clone());
        }
        group.members.insert(member_id.to_string(), member);
        if group.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(group, now);
        }
        self.maybe_complete_join(group, now);
        Outcome::Wait(rx)
    }

    /// Updates an existing member's join data and parks its JoinGroup.
    fn park_join(&self, group: &mut Group, req: &JoinRequest, now: Instant) -> Outcome<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = group.members.get_mut(&req.member_id) {
            m.protocols = req.protocols.clone();
            m.session_timeout_ms = req.session_timeout_ms;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.client_id = req.client_id.clone();
            m.client_host = req.client_host.clone();
            m.session_deadline = now + Duration::from_millis(req.session_timeout_ms as u64);
            m.awaiting_join = Some(tx);
        }
        self.maybe_complete_join(group, now);
        Outcome::Wait(rx)
    }

    /// A static member rejoining with a new member id (e.g. after a restart): it takes
    /// over its old identity; in a Stable group it gets its assignment back without a
    /// rebalance.
    fn static_rejoin(
        &self,
        group: &mut Group,
        old_id: &str,
        new_id: &str,
        req: &JoinRequest,
        now: Instant,
    ) -> Outcome<JoinResult> {
        let Some(mut member) = group.members.remove(old_id) else {
            return Outcome::Now(join_error(ResponseError::UnknownMemberId, new_id));
        };
        if let Some(tx) = member.awaiting_join.take() {
            let _ = tx.send(join_error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(tx) = member.awaiting_sync.take() {
            let _ = tx.send(sync_error(ResponseError::FencedInstanceId));
        }
        member.member_id = new_id.to_string();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_deadline = now + Duration::from_millis(req.session_timeout_ms as u64);
        let protocols_changed = !member.same_protocols(&req.protocols);
        member.protocols = req.protocols.clone();
        group.members.insert(new_id.to_string(), member);
        if let Some(instance) = &req.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), new_id.to_string());
        }
        if group.leader_id.as_deref() == Some(old_id) {
            group.leader_id = Some(new_id.to_string());
        }
        match group.state {
            GroupState::Stable
                if !protocols_changed && group.select_protocol() == group.protocol_name =>
            {
                let is_leader = group.leader_id.as_deref() == Some(new_id);
                Outcome::Now(current_generation(group, new_id, is_leader))
            }
            GroupState::PreparingRebalance => self.park_join(group, req, now),
            _ => {
                self.prepare_rebalance(group, now);
                self.park_join(group, req, now)
            }
        }
    }

    fn prepare_rebalance(&self, group: &mut Group, now: Instant) {
        if group.state == GroupState::CompletingRebalance {
            for m in group.members.values_mut() {
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(sync_error(ResponseError::RebalanceInProgress));
                }
            }
        }
        if group.state == GroupState::Empty && !self.config.initial_rebalance_delay.is_zero() {
            group.initial_delay_until = Some(now + self.config.initial_rebalance_delay);
        }
        group.rebalance_deadline = Some(now + group.rebalance_timeout());
        group.sync_deadline = None;
        group.state = GroupState::PreparingRebalance;
        for m in group.members.values_mut() {
            m.synced = false;
        }
    }

    /// Completes the join phase when every member has rejoined, or when the rebalance
    /// timeout expired (members that did not rejoin are removed).
    fn maybe_complete_join(&self, group: &mut Group, now: Instant) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        if group.initial_delay_until.is_some_and(|t| now < t) {
            return;
        }
        let expired = group.rebalance_deadline.is_some_and(|d| now >= d);
        if !group.all_joined() {
            if !expired {
                return;
            }
            let stragglers: Vec<String> = group
                .members
                .values()
                .filter(|m| m.awaiting_join.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            for id in stragglers {
                remove_member(group, &id);
            }
            group.pending_members.clear();
        }
        self.complete_join(group, now);
    }

    fn complete_join(&self, group: &mut Group, now: Instant) {
        group.initial_delay_until = None;
        group.rebalance_deadline = None;
        group.generation_id += 1;
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.protocol_name = None;
            group.leader_id = None;
            return;
        }
        group.protocol_name = group.select_protocol();
        let leader_still_here = group
            .leader_id
            .as_ref()
            .is_some_and(|l| group.members.contains_key(l));
        if !leader_still_here {
            group.leader_id = group.first_member();
        }
        group.state = GroupState::CompletingRebalance;
        group.sync_deadline = Some(now + group.rebalance_timeout());
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let all = member_list(group, &protocol);
        let leader = group.leader_id.clone().unwrap_or_default();
        let generation = group.generation_id;
        let protocol_type = group.protocol_type.clone();
        for m in group.members.values_mut() {
            m.synced = false;
            m.assignment = Bytes::new();
            m.session_deadline = now + Duration::from_millis(m.session_timeout_ms as u64);
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(JoinResult {
                    error: 0,
                    generation_id: generation,
                    protocol_type: protocol_type.clone(),
                    protocol_name: Some(protocol.clone()),
                    leader_id: leader.clone(),
                    member_id: m.member_id.clone(),
                    skip_assignment: false,
                    members: if m.member_id == leader {
                        all.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }

    // ---- SyncGroup, Heartbeat, LeaveGroup --------------------------------------------

    /// Common checks of SyncGroup, Heartbeat and OffsetCommit for a member of a live group.
    fn check_member(
        group: &Group,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if group.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if let Some(instance) = instance {
            if let Some(known) = group.static_members.get(instance) {
                if known != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
            }
        }
        let Some(member) = group.members.get(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if instance.is_some() && member.group_instance_id.as_deref() != instance {
            return Err(ResponseError::FencedInstanceId);
        }
        if generation != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    pub fn sync(&self, req: SyncRequest<'_>) -> Outcome<SyncResult> {
        let SyncRequest {
            group_id,
            member_id,
            group_instance_id: instance,
            generation_id: generation,
            protocol_type,
            protocol_name,
            assignments,
        } = req;
        let now = Instant::now();
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Outcome::Now(sync_error(ResponseError::UnknownMemberId));
        };
        if let Err(e) = Self::check_member(group, member_id, instance, generation) {
            return Outcome::Now(sync_error(e));
        }
        if protocol_type.is_some_and(|t| Some(t) != group.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != group.protocol_name.as_deref())
        {
            return Outcome::Now(sync_error(ResponseError::InconsistentGroupProtocol));
        }
        let result = |group: &Group, assignment: Bytes| SyncResult {
            error: 0,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            assignment,
        };
        match group.state {
            GroupState::Empty | GroupState::Dead => {
                Outcome::Now(sync_error(ResponseError::UnknownMemberId))
            }
            GroupState::PreparingRebalance => {
                Outcome::Now(sync_error(ResponseError::RebalanceInProgress))
            }
            GroupState::Stable => {
                let assignment = group.members[member_id].assignment.clone();
                Outcome::Now(result(group, assignment))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = group.members.get_mut(member_id) {
                    m.synced = true;
                    m.awaiting_sync = Some(tx);
                    m.session_deadline = now + Duration::from_millis(m.session_timeout_ms as u64);
                }
                if group.leader_id.as_deref() == Some(member_id) {
                    // The leader's assignment completes the rebalance for everyone.
                    let (ptype, pname) = (group.protocol_type.clone(), group.protocol_name.clone());
                    for m in group.members.values_mut() {
                        m.assignment = assignments.get(&m.member_id).cloned().unwrap_or_default();
                        if let Some(tx) = m.awaiting_sync.take() {
                            let _ = tx.send(SyncResult {
                                error: 0,
                                protocol_type: ptype.clone(),
                                protocol_name: pname.clone(),
                                assignment: m.assignment.clone(),
                            });
                        }
                    }
                    group.state = GroupState::Stable;
                    group.sync_deadline = None;
                }
                Outcome::Wait(rx)
            }
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let now = Instant::now();
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if group.state == GroupState::Empty {
            return Err(ResponseError::UnknownMemberId);
        }
        Self::check_member(group, member_id, instance, generation)?;
        if let Some(m) = group.members.get_mut(member_id) {
            m.session_deadline = now + Duration::from_millis(m.session_timeout_ms as u64);
        }
        if group.state == GroupState::PreparingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Removes members; returns one error code per leaving member (0 for success), or a
    /// group-level error.
    pub fn leave(&self, group_id: &str, leaving: &[Leaving]) -> Result<Vec<i16>, ResponseError> {
        let now = Instant::now();
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if group.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let mut codes = Vec::with_capacity(leaving.len());
        let mut removed = false;
        for l in leaving {
            let code = match &l.group_instance_id {
                Some(instance) => match group.static_members.get(instance).cloned() {
                    None => ResponseError::UnknownMemberId.code(),
                    Some(known) if !l.member_id.is_empty() && known != l.member_id => {
                        ResponseError::FencedInstanceId.code()
                    }
                    Some(known) => {
                        remove_member(group, &known);
                        removed = true;
                        0
                    }
                },
                None => {
                    if group.pending_members.remove(&l.member_id).is_some() {
                        removed = true;
                        0
                    } else if group.members.contains_key(&l.member_id) {
                        remove_member(group, &l.member_id);
                        removed = true;
                        0
                    } else {
                        ResponseError::UnknownMemberId.code()
                    }
                }
            };
            codes.push(code);
        }
        if removed {
            self.after_removal(group, now);
        }
        Ok(codes)
    }

    fn after_removal(&self, group: &mut Group, now: Instant) {
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if group.members.is_empty() {
                    self.prepare_rebalance(group, now);
                    self.complete_join(group, now);
                } else {
                    self.prepare_rebalance(group, now);
                    self.maybe_complete_join(group, now);
                }
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(group, now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Session, rebalance and sync timeouts, and offset retention. Called periodically.
    pub fn tick(&self, now: Instant) {
        let mut expired_offsets: Vec<(String, Vec<(String, i32)>)> = Vec::new();
        let retention_ms = self.config.offsets_retention.as_millis() as i64;
        let wall = now_ms();
        {
            let mut groups = self.lock();
            for group in groups.values_mut() {
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
                if group.state == GroupState::Empty && retention_ms > 0 {
                    let old: Vec<(String, i32)> = group
                        .offsets
                        .iter()
                        .filter(|(_, o)| wall.saturating_sub(o.commit_timestamp) > retention_ms)
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
            groups.retain(|_, g| {
                !(g.state == GroupState::Empty
                    && g.members.is_empty()
                    && g.offsets.is_empty()
                    && g.pending_members.is_empty())
            });
        }
        for (group, partitions) in expired_offsets {
            self.write_tombstones(&group, &partitions);
        }
    }

    // ---- Offsets ----------------------------------------------------------------------

    /// The `__consumer_offsets` partition of a group, creating the topic on first use.
    fn offsets_log(&self, group_id: &str) -> Result<Arc<Log>, ResponseError> {
        partition_log(
            &self.logs,
            OFFSETS_TOPIC,
            self.config.offsets_topic_partitions,
            group_id,
        )
    }

    /// Makes sure `__consumer_offsets` exists (FindCoordinator does this, as Kafka does).
    pub fn ensure_offsets_topic(&self, group_id: &str) -> Result<(), ResponseError> {
        self.offsets_log(group_id).map(|_| ())
    }

    /// Appends records to the group's offsets partition and waits until they are durable.
    /// With a producer (id, epoch) they are written as a transactional batch (no sequence),
    /// pending until that transaction's marker.
    async fn persist(
        &self,
        group_id: &str,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        producer: Option<(i64, i16)>,
    ) -> Result<(), ResponseError> {
        if records.is_empty() {
            return Ok(());
        }
        let log = self.offsets_log(group_id)?;
        let refs: Vec<RawRecord<'_>> = records
            .iter()
            .map(|(k, v)| (Some(k.as_slice()), v.as_deref()))
            .collect();
        append_durably(&log, &refs, |batch| {
            if let Some((producer_id, producer_epoch)) = producer {
                mark_transactional(batch, producer_id, producer_epoch)
            }
        })
        .await
    }

    fn write_tombstones(&self, group_id: &str, partitions: &[(String, i32)]) {
        let Ok(log) = self.offsets_log(group_id) else {
            return;
        };
        let records: Vec<Vec<u8>> = partitions
            .iter()
            .map(|(t, p)| offsets::encode_key(group_id, t, *p))
            .collect();
        if records.is_empty() {
            return;
        }
        let refs: Vec<RawRecord<'_>> = records.iter().map(|k| (Some(k.as_slice()), None)).collect();
        let batch = encode_batch(&refs, now_ms());
        if let Ok(header) = check_batch(&batch) {
            if let Err(e) = log.append(&batch, &[header]) {
                tracing::error!(error = %e, "writing offset tombstones failed");
            }
        }
    }

    /// Checks whether a member may commit (Kafka's rules, including simple consumers that
    /// commit with generation -1 to a group without members).
    fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let now = Instant::now();
        let mut groups = self.lock();
        let group = match groups.get_mut(group_id) {
            Some(g) => g,
            None if generation < 0 => {
                groups.insert(group_id.to_string(), Group::new(group_id));
                return Ok(());
            }
            None => return Err(ResponseError::UnknownMemberId),
        };
        if group.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Self::check_member(group, member_id, instance, generation)?;
        if let Some(m) = group.members.get_mut(member_id) {
            m.session_deadline = now + Duration::from_millis(m.session_timeout_ms as u64);
        }
        Ok(())
    }

    /// Validates commit entries (known partition, metadata size) and encodes the valid
    /// ones: error codes per entry, records to write, and (index, topic, partition, value)
    /// of what will be committed.
    fn offset_records(&self, group_id: &str, entries: &[OffsetCommitEntry]) -> OffsetRecords {
        let timestamp = now_ms();
        let mut codes = vec![0i16; entries.len()];
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let known = self
                .logs
                .topic(&e.topic)
                .is_some_and(|t| t.partition(e.partition).is_some());
            let metadata = e.metadata.clone().unwrap_or_default();
            if !known {
                codes[i] = ResponseError::UnknownTopicOrPartition.code();
            } else if metadata.len() > self.config.offset_metadata_max_bytes {
                codes[i] = ResponseError::OffsetMetadataTooLarge.code();
            } else {
                let value = CommittedOffset {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata,
                    commit_timestamp: timestamp,
                };
                records.push((
                    offsets::encode_key(group_id, &e.topic, e.partition),
                    Some(offsets::encode_value(&value)),
                ));
                accepted.push((i, e.topic.clone(), e.partition, value));
            }
        }
        (codes, records, accepted)
    }

    /// OffsetCommit: returns one error code per entry.
    pub async fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        entries: Vec<OffsetCommitEntry>,
    ) -> Vec<i16> {
        if let Err(e) = self.check_commit(group_id, member_id, instance, generation) {
            return vec![e.code(); entries.len()];
        }
        let (mut codes, records, accepted) = self.offset_records(group_id, &entries);
        if let Err(err) = self.persist(group_id, records, None).await {
            for (i, ..) in &accepted {
                codes[*i] = err.code();
            }
            return codes;
        }
        let mut groups = self.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        for (_, topic, partition, value) in accepted {
            group.offsets.insert((topic, partition), value);
        }
        codes
    }

    /// TxnOffsetCommit: offsets written as part of a producer's transaction, pending until
    /// its commit marker. Member and generation are checked when given (v3+).
    pub async fn txn_commit(
        &self,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        member: Option<(&str, Option<&str>, i32)>,
        entries: Vec<OffsetCommitEntry>,
    ) -> Vec<i16> {
        if group_id.is_empty() {
            return vec![ResponseError::InvalidGroupId.code(); entries.len()];
        }
        if let Some((member_id, instance, generation)) = member {
            let groups = self.lock();
            if let Some(group) = groups.get(group_id) {
                if !group.members.is_empty() {
                    if let Err(e) = Self::check_member(group, member_id, instance, generation) {
                        return vec![e.code(); entries.len()];
                    }
                }
            }
        }
        let (codes, records, accepted) = self.offset_records(group_id, &entries);
        if let Err(err) = self
            .persist(group_id, records, Some((producer_id, producer_epoch)))
            .await
        {
            return vec![err.code(); entries.len()];
        }
        let mut groups = self.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        let pending = group.pending_txn_offsets.entry(producer_id).or_default();
        for (_, topic, partition, value) in accepted {
            pending.insert((topic, partition), value);
        }
        codes
    }

    /// A transaction ended (its marker is on the offsets partition): its pending offsets
    /// become committed offsets, or are dropped.
    pub fn complete_transaction(&self, producer_id: i64, commit: bool) {
        let mut groups = self.lock();
        for group in groups.values_mut() {
            if let Some(pending) = group.pending_txn_offsets.remove(&producer_id) {
                if commit {
                    group.offsets.extend(pending);
                }
            }
        }
    }

    /// Whether any partition in `partitions` has offsets waiting for a transaction
    /// (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending_offsets(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let groups = self.lock();
        groups.get(group_id).is_some_and(|g| {
            g.pending_txn_offsets
                .values()
                .any(|p| p.contains_key(&(topic.to_string(), partition)))
        })
    }

    /// OffsetFetch for one group: `None` topics means every committed offset.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Vec<TopicOffsets> {
        let groups = self.lock();
        let group = groups.get(group_id);
        match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(t, parts)| {
                    let entries = parts
                        .into_iter()
                        .map(|p| {
                            (
                                p,
                                group.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned()),
                            )
                        })
                        .collect();
                    (t, entries)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> =
                    BTreeMap::new();
                if let Some(g) = group {
                    for ((t, p), o) in &g.offsets {
                        by_topic
                            .entry(t.clone())
                            .or_default()
                            .push((*p, Some(o.clone())));
                    }
                }
                for v in by_topic.values_mut() {
                    v.sort_by_key(|(p, _)| *p);
                }
                by_topic.into_iter().collect()
            }
        }
    }

    /// DeleteGroups for one group.
    pub fn delete_group(&self, group_id: &str) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let partitions = {
            let mut groups = self.lock();
            let Some(group) = groups.get(group_id) else {
                return Err(ResponseError::GroupIdNotFound);
            };
            if group.state != GroupState::Empty || !group.members.is_empty() {
                return Err(ResponseError::NonEmptyGroup);
            }
            let partitions: Vec<(String, i32)> = group.offsets.keys().cloned().collect();
            if let Some(mut g) = groups.remove(group_id) {
                g.state = GroupState::Dead;
            }
            partitions
        };
        self.write_tombstones(group_id, &partitions);
        Ok(())
    }

    /// OffsetDelete: a group-level error, or per-partition codes.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, ResponseError> {
        let (codes, deleted) = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(group_id) else {
                return Err(ResponseError::GroupIdNotFound);
            };
            if group.state != GroupState::Empty
                && group.protocol_type.as_deref() != Some("consumer")
            {
                return Err(ResponseError::NonEmptyGroup);
            }
            let subscribed = if group.state == GroupState::Empty {
                Vec::new()
            } else {
                group.subscribed_topics()
            };
            let mut codes = Vec::new();
            let mut deleted = Vec::new();
            for (t, p) in partitions {
                if subscribed.contains(t) {
                    codes.push(ResponseError::GroupSubscribedToTopic.code());
                } else {
                    if group.offsets.remove(&(t.clone(), *p)).is_some() {
                        deleted.push((t.clone(), *p));
                    }
                    codes.push(0);
                }
            }
            (codes, deleted)
        };
        self.write_tombstones(group_id, &deleted);
        Ok(codes)
    }

    /// Removes the committed offsets of a deleted topic from every group.
    pub fn on_topic_deleted(&self, topic: &str) {
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
            self.write_tombstones(&group, &keys);
        }
    }

    /// ListGroups: (group id, protocol type, state).
    pub fn list_groups(&self) -> Vec<(String, String, GroupState)> {
        let groups = self.lock();
        let mut out: Vec<_> = groups
            .values()
            .map(|g| {
                (
                    g.group_id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.lock();
        let g = groups.get(group_id)?;
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

    /// Runs `tick` every 100 ms until shutdown.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = interval.tick() => self.tick(Instant::now()),
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Sets the producer id, epoch and transactional bit of a freshly encoded batch (the
/// sequence stays -1: the coordinator's own writes are not sequenced), and its CRC.
fn mark_transactional(batch: &mut [u8], producer_id: i64, producer_epoch: i16) {
    let attributes = i16::from_be_bytes([batch[21], batch[22]]) | (1 << 4);
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Removes a member (left, expired, or replaced); parked requests are dropped.
fn remove_member(group: &mut Group, member_id: &str) {
    if let Some(m) = group.members.remove(member_id) {
        if let Some(instance) = &m.group_instance_id {
            if group.static_members.get(instance).map(String::as_str) == Some(member_id) {
                group.static_members.remove(instance);
            }
        }
        if let Some(tx) = m.awaiting_join {
            let _ = tx.send(join_error(ResponseError::UnknownMemberId, member_id));
        }
        if let Some(tx) = m.awaiting_sync {
            let _ = tx.send(sync_error(ResponseError::UnknownMemberId));
        }
    }
    if group.leader_id.as_deref() == Some(member_id) {
        group.leader_id = None;
    }
}

/// Every member in join order: (member id, instance id, metadata for `protocol`), as the
/// leader's JoinGroup answer lists them.
fn member_list(group: &Group, protocol: &str) -> Vec<(String, Option<String>, Bytes)> {
    let mut ms: Vec<&Member> = group.members.values().collect();
    ms.sort_by_key(|m| m.join_order);
    ms.iter()
        .map(|m| {
            (
                m.member_id.clone(),
                m.group_instance_id.clone(),
                m.metadata(protocol),
            )
        })
        .collect()
}

/// A JoinGroup answer with the group's current generation (no rebalance).
fn current_generation(group: &Group, member_id: &str, with_members: bool) -> JoinResult {
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let members = if with_members {
        member_list(group, &protocol)
    } else {
        Vec::new()
    };
    JoinResult {
        error: 0,
        generation_id: group.generation_id,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        leader_id: group.leader_id.clone().unwrap_or_default(),
        member_id: member_id.to_string(),
        skip_assignment: with_members,
        members,
    }
}

#[cfg(test)]
mod tests;
