//! Classic members of a consumer group: Kafka's online migration between the classic and
//! the KIP-848 protocol (`GroupMetadataManager.classicGroup*ToConsumerGroup`,
//! `convertToConsumerGroup`, `convertToClassicGroup`), as `group.consumer.migration.policy`
//! allows. This file serves classic members' requests inside a consumer group; the two
//! conversions are in `migration.rs`.
//!
//! - **Upgrade**: a ConsumerGroupHeartbeat joining (epoch 0) a classic group with members
//!   turns it into a consumer group. Its members become consumer group members at epoch =
//!   the classic generation, with the subscription of the chosen protocol and their last
//!   synced assignment; parked JoinGroups and SyncGroups are answered REBALANCE_IN_PROGRESS.
//!   The group must use the `consumer` protocol type, fit `group.consumer.max.size`, and
//!   carry no assignor user data (else GROUP_ID_NOT_FOUND, as Kafka).
//! - **Classic members inside**: JoinGroup reconciles the member against the target
//!   assignment with the partitions its subscription says it owns (eager clients own none
//!   when they rejoin, cooperative ones revoke first) and answers generation = member epoch,
//!   its own first protocol, no leader; SyncGroup returns the member's current assignment;
//!   Heartbeat answers REBALANCE_IN_PROGRESS when the member must rejoin. Their session,
//!   join and sync timeouts are the classic ones.
//! - **Downgrade**: when members leave or time out and only classic members remain, the
//!   group becomes a classic group at generation = group epoch, with each member's target
//!   assignment, and starts a rebalance (its members rejoin).
//!
//! Everything runs under the coordinator's locks: `consumer_writes` for what writes records,
//! the groups' mutex for the change itself.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};
use tokio::time::Instant;
use uuid::Uuid;

use super::records;
use super::{Assignment, ConsumerGroup, ConsumerMember, MemberState, TopicsView};
use crate::coordinator::group::{Group, GroupState, JoinResult, SyncResult};
use crate::coordinator::{CoordinatorError, GroupCoordinator, JoinRequest, Leaving};

/// What makes a consumer group member a classic one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMembership {
    pub session_timeout_ms: i32,
    /// (protocol name, metadata) as its last JoinGroup listed them; the first is "its"
    /// protocol.
    pub protocols: Vec<(String, Bytes)>,
    /// Set when it was told to rejoin: removed if it has not by then.
    pub join_deadline: Option<Instant>,
    /// Set when its JoinGroup was answered: removed if it does not sync by then.
    pub sync_deadline: Option<Instant>,
}

impl ClassicMembership {
    pub fn new(session_timeout_ms: i32, protocols: Vec<(String, Bytes)>) -> ClassicMembership {
        ClassicMembership {
            session_timeout_ms,
            protocols,
            join_deadline: None,
            sync_deadline: None,
        }
    }

    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.join_deadline.is_some_and(|d| d <= now) || self.sync_deadline.is_some_and(|d| d <= now)
    }

    fn protocol_name(&self) -> &str {
        self.protocols.first().map_or("", |(n, _)| n.as_str())
    }

    /// The version its assignment is written in: its subscription's, as Kafka does.
    pub(super) fn assignment_version(&self) -> i16 {
        let newest = ConsumerProtocolAssignment::VERSIONS.max;
        self.protocols
            .first()
            .filter(|(_, m)| m.len() >= 2)
            .map_or(0, |(_, m)| {
                i16::from_be_bytes([m[0], m[1]]).clamp(0, newest)
            })
    }
}

/// A `ConsumerProtocolSubscription`, decoded (an i16 version, then that version's body;
/// versions above the newest known are read as the newest, as Kafka's `ConsumerProtocol`).
pub(super) fn subscription(metadata: &Bytes) -> Option<ConsumerProtocolSubscription> {
    let mut body = metadata.clone();
    if body.len() < 2 {
        return None;
    }
    let version = body.get_i16();
    let newest = ConsumerProtocolSubscription::VERSIONS.max;
    ConsumerProtocolSubscription::decode(&mut body, version.clamp(0, newest)).ok()
}

/// A classic member's last synced assignment: partitions by topic name, or Err(message)
/// for bytes that do not decode or carry an assignor's user data.
pub(super) fn synced_assignment(bytes: &Bytes) -> Result<Vec<(String, Vec<i32>)>, &'static str> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut body = bytes.clone();
    if body.len() < 2 {
        return Err("embedded consumer protocol is malformed");
    }
    let version = body.get_i16();
    let newest = ConsumerProtocolAssignment::VERSIONS.max;
    let a = ConsumerProtocolAssignment::decode(&mut body, version.clamp(0, newest))
        .map_err(|_| "embedded consumer protocol is malformed")?;
    if a.user_data.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err("an unsupported custom assignor is in use");
    }
    Ok(a.assigned_partitions
        .into_iter()
        .map(|t| (t.topic.to_string(), t.partitions))
        .collect())
}

/// `assignment` as a `ConsumerProtocolAssignment` of `version` (topics by name; ids the
/// broker no longer knows are left out).
pub(super) fn encode_assignment(
    assignment: &Assignment,
    names: &BTreeMap<Uuid, String>,
    version: i16,
) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assignment
            .iter()
            .filter_map(|(id, parts)| {
                let name = names.get(id)?;
                Some(
                    AssignedPartitions::default()
                        .with_topic(TopicName(StrBytes::from_string(name.clone())))
                        .with_partitions(parts.iter().copied().collect()),
                )
            })
            .collect(),
    );
    let mut out = BytesMut::new();
    out.put_i16(version);
    if a.encode(&mut out, version).is_err() {
        return Bytes::new();
    }
    out.freeze()
}

/// Partitions by topic name to partitions by topic id (unknown names are left out).
pub(super) fn by_id(partitions: &[(String, Vec<i32>)], topics: &TopicsView) -> Assignment {
    let mut out = Assignment::new();
    for (name, parts) in partitions {
        if let Some((id, _)) = topics.get(name) {
            out.entry(*id).or_default().extend(parts.iter().copied());
        }
    }
    out
}

pub(super) fn not_found(message: String) -> (CoordinatorError, Option<String>) {
    (CoordinatorError::GroupIdNotFound, Some(message))
}

/// A JoinGroup answer of a classic member in a consumer group.
fn join_answer(member_id: &str, epoch: i32, protocol: &str) -> JoinResult {
    JoinResult {
        error: None,
        generation_id: epoch,
        protocol_type: Some("consumer".into()),
        protocol_name: Some(protocol.to_string()),
        leader_id: String::new(),
        member_id: member_id.to_string(),
        skip_assignment: false,
        members: Vec::new(),
    }
}

pub(super) fn join_refused(error: CoordinatorError, member_id: &str) -> JoinResult {
    JoinResult {
        error: Some(error),
        generation_id: -1,
        protocol_type: None,
        protocol_name: None,
        leader_id: String::new(),
        member_id: member_id.to_string(),
        skip_assignment: false,
        members: Vec::new(),
    }
}

pub(super) fn sync_refused(error: CoordinatorError) -> SyncResult {
    SyncResult {
        error: Some(error),
        protocol_type: None,
        protocol_name: None,
        assignment: Bytes::new(),
    }
}

impl ConsumerGroup {
    /// Kafka's `waitingOnUnreleasedPartition`: whether a partition of `member_id`'s target it
    /// does not have yet is still held by another member.
    fn waiting_on_unreleased(&self, member_id: &str) -> bool {
        let Some(m) = self.members.get(member_id) else {
            return false;
        };
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let owners = self.owners();
        target.iter().any(|(topic, parts)| {
            parts.iter().any(|p| {
                !m.assigned.get(topic).is_some_and(|a| a.contains(p))
                    && owners.get(&(*topic, *p)).is_some_and(|o| *o != member_id)
            })
        })
    }

    /// Classic member `member_id` of this group, checked as Kafka's `validateConsumerGroupMember`
    /// (static ids) and `throwIfMemberDoesNotUseClassicProtocol`.
    fn classic_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<&ConsumerMember, CoordinatorError> {
        if let Some(instance) = instance {
            match self.static_members.get(instance) {
                None => return Err(CoordinatorError::UnknownMemberId),
                Some(id) if id != member_id => return Err(CoordinatorError::FencedInstanceId),
                Some(_) => {}
            }
        }
        let m = self
            .members
            .get(member_id)
            .ok_or(CoordinatorError::UnknownMemberId)?;
        if m.classic.is_none() {
            return Err(CoordinatorError::UnknownMemberId);
        }
        Ok(m)
    }
}

impl GroupCoordinator {
    /// Whether `group_id` is a consumer group with members: classic requests to it are
    /// served by the functions below.
    pub fn is_live_consumer_group(&self, group_id: &str) -> bool {
        self.lock()
            .get(group_id)
            .and_then(|g| g.consumer.as_ref())
            .is_some_and(|cg| !cg.members.is_empty())
    }

    /// JoinGroup to a consumer group with members (Kafka's `classicGroupJoinToConsumerGroup`);
    /// None if `req.group_id` is not one (any more): the classic JoinGroup serves it.
    pub async fn join_consumer_group(
        &self,
        req: &JoinRequest,
        topics: &TopicsView,
    ) -> Option<JoinResult> {
        let _serial = self.consumer_writes.lock().await;
        let now = Instant::now();
        let (answer, records, before) = {
            let mut groups = self.lock();
            let group = groups.get_mut(&req.group_id)?;
            let cg = group
                .consumer
                .as_mut()
                .filter(|cg| !cg.members.is_empty())?;
            let before = cg.clone();
            match self.classic_join(cg, req, topics, now) {
                Ok(answer) => {
                    let records = records::changes(&req.group_id, Some(&before), Some(cg));
                    (answer, records, before)
                }
                Err(refused) => return Some(refused),
            }
        };
        if !records.is_empty() {
            if let Err(e) = self.persist(&req.group_id, records, None).await {
                if let Some(g) = self.lock().get_mut(&req.group_id) {
                    g.consumer = Some(before);
                }
                return Some(join_refused(e, &req.member_id));
            }
        }
        Some(answer)
    }

    /// The JoinGroup's effect on `cg`: its answer, whether accepted (Ok) or refused (Err).
    #[allow(clippy::result_large_err)]
    fn classic_join(
        &self,
        cg: &mut ConsumerGroup,
        req: &JoinRequest,
        topics: &TopicsView,
        now: Instant,
    ) -> Result<JoinResult, JoinResult> {
        let config = &self.config.consumer;
        let refuse = |e: CoordinatorError| join_refused(e, &req.member_id);
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Err(refuse(CoordinatorError::InvalidSessionTimeout));
        }
        if config.migration == crate::config::MigrationPolicy::Disabled {
            return Err(refuse(CoordinatorError::InconsistentGroupProtocol));
        }
        let member_id = if req.member_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            req.member_id.clone()
        };
        if !cg.members.contains_key(&member_id) && cg.members.len() >= config.max_size {
            return Err(refuse(CoordinatorError::GroupMaxSizeReached));
        }
        // Kafka's supportsClassicProtocols: the consumer protocol type, and a protocol every
        // other classic member supports.
        let others: Vec<&ClassicMembership> = cg
            .members
            .values()
            .filter(|m| m.member_id != member_id)
            .filter_map(|m| m.classic.as_ref())
            .collect();
        let supported = req.protocol_type == "consumer"
            && req.protocols.iter().any(|(name, _)| {
                others
                    .iter()
                    .all(|c| c.protocols.iter().any(|(n, _)| n == name))
            });
        if !supported {
            return Err(refuse(CoordinatorError::InconsistentGroupProtocol));
        }
        if req.require_known_member_id
            && req.group_instance_id.is_none()
            && req.member_id.is_empty()
        {
            // Nothing is kept: the member joins again with this id.
            return Err(join_refused(CoordinatorError::MemberIdRequired, &member_id));
        }
        let Some(sub) = req.protocols.first().and_then(|(_, m)| subscription(m)) else {
            return Err(refuse(CoordinatorError::InconsistentGroupProtocol));
        };
        // Static members: a known instance under a new id replaces its member (whatever its
        // protocol); a known id must match its instance.
        if let Some(instance) = &req.group_instance_id {
            match cg.static_members.get(instance).cloned() {
                Some(old) if old != member_id && !req.member_id.is_empty() => {
                    return Err(refuse(CoordinatorError::FencedInstanceId));
                }
                Some(old) if old != member_id => {
                    if let Some(mut o) = cg.members.remove(&old) {
                        if let Some(t) = cg.target.remove(&old) {
                            cg.target.insert(member_id.clone(), t);
                        }
                        o.member_id = member_id.clone();
                        o.epoch = 0;
                        o.previous_epoch = 0;
                        o.state = MemberState::Stable;
                        o.assigned = Assignment::new();
                        o.revoking = Assignment::new();
                        cg.members.insert(member_id.clone(), o);
                    }
                }
                None if !req.member_id.is_empty() && cg.members.contains_key(&member_id) => {
                    return Err(refuse(CoordinatorError::UnknownMemberId));
                }
                _ => {}
            }
            cg.static_members
                .insert(instance.clone(), member_id.clone());
        }
        // A member id that is not (or no longer) in the group is created, as Kafka does.
        let m = cg
            .members
            .entry(member_id.clone())
            .or_insert_with(|| ConsumerMember::new(member_id.clone(), now));
        let mut names: Vec<String> = sub.topics.iter().map(ToString::to_string).collect();
        names.sort();
        names.dedup();
        let subscription_changed = names != m.subscribed_topic_names;
        m.subscribed_topic_names = names;
        m.subscribed_topic_regex = None;
        m.instance_id = req.group_instance_id.clone();
        if let Some(rack) = &sub.rack_id {
            m.rack_id = Some(rack.to_string());
        }
        if req.rebalance_timeout_ms != -1 {
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        let mut classic = ClassicMembership::new(req.session_timeout_ms, req.protocols.clone());
        // Joined: it has until its rebalance timeout to sync.
        classic.sync_deadline =
            Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
        m.classic = Some(classic);
        m.revocation_deadline = None;
        m.session_deadline = now + Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if subscription_changed {
            cg.group_epoch += 1;
        }
        let subscribed: BTreeMap<Uuid, i32> = topics
            .iter()
            .filter(|(name, _)| cg.members.values().any(|m| m.subscribes_to(name)))
            .map(|(_, (id, n))| (*id, *n))
            .collect();
        let hash = super::metadata_hash(&subscribed);
        if hash != cg.metadata_hash {
            cg.metadata_hash = hash;
            if !subscription_changed {
                cg.group_epoch += 1;
            }
        }
        cg.subscribed_partitions = subscribed;
        if cg.group_epoch > cg.assignment_epoch {
            super::heartbeat::compute_target(cg, topics, &config.assignors[0]);
        }
        // What it owns, in its own words (eager clients rejoin owning nothing).
        let owned: Assignment = by_id(
            &sub.owned_partitions
                .iter()
                .map(|t| (t.topic.to_string(), t.partitions.clone()))
                .collect::<Vec<_>>(),
            topics,
        );
        cg.reconcile(&member_id, Some(&owned));
        let m = &cg.members[&member_id];
        let protocol = m
            .classic
            .as_ref()
            .map(|c| c.protocol_name().to_string())
            .unwrap_or_default();
        Ok(join_answer(&member_id, m.epoch, &protocol))
    }

    /// SyncGroup of a classic member in a consumer group (`classicGroupSyncToConsumerGroup`):
    /// its current assignment. None if the group is not a consumer group.
    pub(crate) fn sync_consumer_group(
        &self,
        group: &mut Group,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
    ) -> Option<SyncResult> {
        let cg = group.consumer.as_mut()?;
        if cg.members.is_empty() {
            return Some(sync_refused(CoordinatorError::UnknownMemberId));
        }
        let now = Instant::now();
        let (epoch, state, classic) = match cg.classic_member(member_id, instance) {
            Ok(m) => (
                m.epoch,
                m.state,
                m.classic.clone().expect("a classic member"),
            ),
            Err(e) => return Some(sync_refused(e)),
        };
        if generation != epoch {
            return Some(sync_refused(CoordinatorError::IllegalGeneration));
        }
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|t| t != "consumer")
            || protocol_name.is_some_and(|n| n != classic.protocol_name())
        {
            return Some(sync_refused(CoordinatorError::InconsistentGroupProtocol));
        }
        let group_epoch = cg.group_epoch;
        let m = cg.members.get_mut(member_id).expect("checked above");
        let c = m.classic.as_mut().expect("a classic member");
        if group_epoch > epoch && state != MemberState::UnrevokedPartitions {
            if c.join_deadline.is_none() {
                c.join_deadline =
                    Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            }
            return Some(sync_refused(CoordinatorError::RebalanceInProgress));
        }
        c.sync_deadline = None;
        m.session_deadline = now + Duration::from_millis(c.session_timeout_ms.max(0) as u64);
        let assignment =
            encode_assignment(&m.assigned, &self.topic_names(), c.assignment_version());
        Some(SyncResult {
            error: None,
            protocol_type: protocol_type.map(ToString::to_string),
            protocol_name: protocol_name.map(ToString::to_string),
            assignment,
        })
    }

    /// Heartbeat of a classic member in a consumer group (`classicGroupHeartbeatToConsumerGroup`):
    /// REBALANCE_IN_PROGRESS when it must rejoin. None if the group is not a consumer group.
    pub(crate) fn heartbeat_consumer_group(
        group: &mut Group,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Option<Result<(), CoordinatorError>> {
        let cg = group.consumer.as_mut()?;
        let now = Instant::now();
        let (epoch, state) = match cg.classic_member(member_id, instance) {
            Ok(m) => (m.epoch, m.state),
            Err(e) => return Some(Err(e)),
        };
        if generation != epoch {
            return Some(Err(CoordinatorError::IllegalGeneration));
        }
        let rejoin = epoch < cg.group_epoch
            || state == MemberState::UnrevokedPartitions
            || (state == MemberState::UnreleasedPartitions && !cg.waiting_on_unreleased(member_id));
        let m = cg.members.get_mut(member_id).expect("checked above");
        let c = m.classic.as_mut().expect("a classic member");
        m.session_deadline = now + Duration::from_millis(c.session_timeout_ms.max(0) as u64);
        if rejoin {
            if c.join_deadline.is_none() {
                c.join_deadline =
                    Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            }
            return Some(Err(CoordinatorError::RebalanceInProgress));
        }
        Some(Ok(()))
    }

    /// LeaveGroup for a consumer group with members (`classicGroupLeaveToConsumerGroup`):
    /// members of either protocol leave; the group may become a classic group. None if the
    /// group is not a consumer group with members.
    #[allow(clippy::type_complexity)]
    pub async fn leave_consumer_group(
        &self,
        group_id: &str,
        leaving: &[Leaving],
    ) -> Option<Result<Vec<Result<(), CoordinatorError>>, CoordinatorError>> {
        let _serial = self.consumer_writes.lock().await;
        let now = Instant::now();
        let (codes, records, before) = {
            let mut groups = self.lock();
            let group = groups.get_mut(group_id)?;
            let cg = group
                .consumer
                .as_mut()
                .filter(|cg| !cg.members.is_empty())?;
            let before = cg.clone();
            let mut codes = Vec::with_capacity(leaving.len());
            let mut gone: BTreeSet<String> = BTreeSet::new();
            for l in leaving {
                let code = match &l.group_instance_id {
                    Some(instance) => match cg.static_members.get(instance).cloned() {
                        None => Err(CoordinatorError::UnknownMemberId),
                        Some(known) if !l.member_id.is_empty() && known != l.member_id => {
                            Err(CoordinatorError::FencedInstanceId)
                        }
                        Some(known) => {
                            gone.insert(known);
                            Ok(())
                        }
                    },
                    None if cg.members.contains_key(&l.member_id) => {
                        gone.insert(l.member_id.clone());
                        Ok(())
                    }
                    None => Err(CoordinatorError::UnknownMemberId),
                };
                codes.push(code);
            }
            if gone.is_empty() {
                return Some(Ok(codes));
            }
            // One epoch bump for all of them, as Kafka's consumerGroupFenceMembers.
            for id in &gone {
                cg.remove_member(id);
            }
            cg.group_epoch = before.group_epoch + 1;
            let records = match self.maybe_downgrade(group, before.group_epoch, now) {
                Some(tombstones) => tombstones,
                None => records::changes(group_id, Some(&before), group.consumer.as_ref()),
            };
            (codes, records, before)
        };
        if let Err(e) = self.persist(group_id, records, None).await {
            if let Some(g) = self.lock().get_mut(group_id) {
                undo_downgrade(g, before);
            }
            return Some(Err(e));
        }
        Some(Ok(codes))
    }
}

/// Puts consumer group `before` back into `group`, undoing a downgrade if there was one.
pub(crate) fn undo_downgrade(group: &mut Group, before: ConsumerGroup) {
    if group.consumer.is_none() {
        group.members.clear();
        group.static_members.clear();
        group.state = GroupState::Empty;
        group.leader_id = None;
        group.protocol_name = None;
        group.rebalance_deadline = None;
    }
    group.consumer = Some(before);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_encode_in_the_members_version_and_decode_back() {
        let topic = Uuid::from_u128(3);
        let names = BTreeMap::from([(topic, "t".to_string())]);
        let a: Assignment = [(topic, [0, 2].into_iter().collect())]
            .into_iter()
            .collect();
        for version in 0..=3 {
            let bytes = encode_assignment(&a, &names, version);
            assert_eq!(i16::from_be_bytes([bytes[0], bytes[1]]), version);
            assert_eq!(
                synced_assignment(&bytes).unwrap(),
                vec![("t".to_string(), vec![0, 2])]
            );
        }
        // An assignor's user data is refused, as Kafka's upgrade does.
        let with_data =
            ConsumerProtocolAssignment::default().with_user_data(Some(Bytes::from_static(b"x")));
        let mut bytes = BytesMut::new();
        bytes.put_i16(0);
        with_data.encode(&mut bytes, 0).unwrap();
        assert!(synced_assignment(&bytes.freeze()).is_err());
        assert_eq!(synced_assignment(&Bytes::new()).unwrap(), vec![]);
    }
}
