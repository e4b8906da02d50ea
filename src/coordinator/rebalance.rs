//! The classic rebalance protocol (Kafka's `ClassicGroup` transitions in
//! `GroupCoordinator`/`GroupMetadataManager`): JoinGroup, SyncGroup, Heartbeat and LeaveGroup.
//! Each group moves Empty → PreparingRebalance → CompletingRebalance → Stable (see
//! `group.rs` for the states); a JoinGroup or SyncGroup that must wait is parked as a oneshot
//! sender on its member and answered when the rebalance moves on.

use std::time::Duration;

use crate::coordinator::CoordinatorError;
use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::group::{Group, GroupState, JoinResult, Member, SyncResult};
use super::{GroupCoordinator, JoinRequest, Leaving, Outcome, SyncRequest};

impl GroupCoordinator {
    pub fn join(&self, req: JoinRequest) -> Outcome<JoinResult> {
        let now = Instant::now();
        if req.group_id.is_empty() {
            return Outcome::Now(join_error(CoordinatorError::InvalidGroupId, &req.member_id));
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Outcome::Now(join_error(
                CoordinatorError::InvalidSessionTimeout,
                &req.member_id,
            ));
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Outcome::Now(join_error(
                CoordinatorError::InconsistentGroupProtocol,
                &req.member_id,
            ));
        }
        let mut groups = self.lock();
        if !groups.contains_key(&req.group_id) {
            if !req.member_id.is_empty() {
                return Outcome::Now(join_error(
                    CoordinatorError::UnknownMemberId,
                    &req.member_id,
                ));
            }
            groups.insert(req.group_id.clone(), Group::new(&req.group_id));
        }
        let group = groups.get_mut(&req.group_id).expect("inserted above");
        // A share group's id is not a classic group's (Kafka's classicGroupJoin).
        if group.share.is_some() {
            return Outcome::Now(join_error(
                CoordinatorError::InconsistentGroupProtocol,
                &req.member_id,
            ));
        }
        // A consumer group (KIP-848) with members serves classic members itself
        // (`consumer/classic_members.rs`, reached before this); only a race gets here: the
        // member is told to rejoin. An empty one becomes a classic group.
        if let Some(cg) = &group.consumer {
            if !cg.members.is_empty() {
                return Outcome::Now(join_error(
                    CoordinatorError::InconsistentGroupProtocol,
                    &req.member_id,
                ));
            }
            if let Some(cg) = group.consumer.take() {
                self.consumer_group_gone(&req.group_id, &cg);
            }
        }
        if group.state == GroupState::Dead {
            return Outcome::Now(join_error(
                CoordinatorError::CoordinatorNotAvailable,
                &req.member_id,
            ));
        }
        let compatible = group.is_empty()
            || (group.protocol_type.as_deref() == Some(req.protocol_type.as_str())
                && !group.common_protocols(Some(&req.protocols)).is_empty());
        if !compatible {
            return Outcome::Now(join_error(
                CoordinatorError::InconsistentGroupProtocol,
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
                return Outcome::Now(join_error(CoordinatorError::MemberIdRequired, &new_id));
            }
            if group.members.len() >= self.config.max_size {
                return Outcome::Now(join_error(CoordinatorError::GroupMaxSizeReached, &new_id));
            }
            return self.add_member(group, &new_id, &req, now);
        }

        if group.pending_members.remove(&req.member_id).is_some() {
            if group.members.len() >= self.config.max_size {
                return Outcome::Now(join_error(
                    CoordinatorError::GroupMaxSizeReached,
                    &req.member_id,
                ));
            }
            return self.add_member(group, &req.member_id, &req, now);
        }
        if let Some(instance) = &req.group_instance_id {
            if let Some(known) = group.static_members.get(instance) {
                if *known != req.member_id {
                    return Outcome::Now(join_error(
                        CoordinatorError::FencedInstanceId,
                        &req.member_id,
                    ));
                }
            }
        }
        let Some(member) = group.members.get(&req.member_id) else {
            return Outcome::Now(join_error(
                CoordinatorError::UnknownMemberId,
                &req.member_id,
            ));
        };
        if member.group_instance_id != req.group_instance_id {
            return Outcome::Now(join_error(
                CoordinatorError::FencedInstanceId,
                &req.member_id,
            ));
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
            GroupState::Empty | GroupState::Dead => Outcome::Now(join_error(
                CoordinatorError::UnknownMemberId,
                &req.member_id,
            )),
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
            return Outcome::Now(join_error(CoordinatorError::UnknownMemberId, new_id));
        };
        if let Some(tx) = member.awaiting_join.take() {
            let _ = tx.send(join_error(CoordinatorError::FencedInstanceId, old_id));
        }
        if let Some(tx) = member.awaiting_sync.take() {
            let _ = tx.send(sync_error(CoordinatorError::FencedInstanceId));
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

    pub(super) fn prepare_rebalance(&self, group: &mut Group, now: Instant) {
        if group.state == GroupState::CompletingRebalance {
            for m in group.members.values_mut() {
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(sync_error(CoordinatorError::RebalanceInProgress));
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
    pub(super) fn maybe_complete_join(&self, group: &mut Group, now: Instant) {
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
                    error: None,
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
    pub(super) fn check_member(
        group: &Group,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), CoordinatorError> {
        if group.state == GroupState::Dead {
            return Err(CoordinatorError::CoordinatorNotAvailable);
        }
        if let Some(instance) = instance {
            if let Some(known) = group.static_members.get(instance) {
                if known != member_id {
                    return Err(CoordinatorError::FencedInstanceId);
                }
            }
        }
        let Some(member) = group.members.get(member_id) else {
            return Err(CoordinatorError::UnknownMemberId);
        };
        if instance.is_some() && member.group_instance_id.as_deref() != instance {
            return Err(CoordinatorError::FencedInstanceId);
        }
        if generation != group.generation_id {
            return Err(CoordinatorError::IllegalGeneration);
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
            return Outcome::Now(sync_error(CoordinatorError::UnknownMemberId));
        };
        if let Some(answer) = self.sync_consumer_group(
            group,
            member_id,
            instance,
            generation,
            (protocol_type, protocol_name),
        ) {
            return Outcome::Now(answer);
        }
        if let Err(e) = Self::check_member(group, member_id, instance, generation) {
            return Outcome::Now(sync_error(e));
        }
        if protocol_type.is_some_and(|t| Some(t) != group.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != group.protocol_name.as_deref())
        {
            return Outcome::Now(sync_error(CoordinatorError::InconsistentGroupProtocol));
        }
        let result = |group: &Group, assignment: Bytes| SyncResult {
            error: None,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            assignment,
        };
        match group.state {
            GroupState::Empty | GroupState::Dead => {
                Outcome::Now(sync_error(CoordinatorError::UnknownMemberId))
            }
            GroupState::PreparingRebalance => {
                Outcome::Now(sync_error(CoordinatorError::RebalanceInProgress))
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
                                error: None,
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
    ) -> Result<(), CoordinatorError> {
        let now = Instant::now();
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(CoordinatorError::UnknownMemberId);
        };
        if let Some(answer) = Self::heartbeat_consumer_group(group, member_id, instance, generation)
        {
            return answer;
        }
        if group.state == GroupState::Empty {
            return Err(CoordinatorError::UnknownMemberId);
        }
        Self::check_member(group, member_id, instance, generation)?;
        if let Some(m) = group.members.get_mut(member_id) {
            m.session_deadline = now + Duration::from_millis(m.session_timeout_ms as u64);
        }
        if group.state == GroupState::PreparingRebalance {
            return Err(CoordinatorError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Removes members; returns one error code per leaving member (0 for success), or a
    /// group-level error.
    pub fn leave(
        &self,
        group_id: &str,
        leaving: &[Leaving],
    ) -> Result<Vec<Result<(), CoordinatorError>>, CoordinatorError> {
        let now = Instant::now();
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(CoordinatorError::UnknownMemberId);
        };
        if group.state == GroupState::Dead {
            return Err(CoordinatorError::CoordinatorNotAvailable);
        }
        let mut codes = Vec::with_capacity(leaving.len());
        let mut removed = false;
        for l in leaving {
            let code = match &l.group_instance_id {
                Some(instance) => match group.static_members.get(instance).cloned() {
                    None => Err(CoordinatorError::UnknownMemberId),
                    Some(known) if !l.member_id.is_empty() && known != l.member_id => {
                        Err(CoordinatorError::FencedInstanceId)
                    }
                    Some(known) => {
                        remove_member(group, &known);
                        removed = true;
                        Ok(())
                    }
                },
                None => {
                    if group.pending_members.remove(&l.member_id).is_some() {
                        removed = true;
                        Ok(())
                    } else if group.members.contains_key(&l.member_id) {
                        remove_member(group, &l.member_id);
                        removed = true;
                        Ok(())
                    } else {
                        Err(CoordinatorError::UnknownMemberId)
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

    pub(super) fn after_removal(&self, group: &mut Group, now: Instant) {
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
}

fn join_error(error: CoordinatorError, member_id: &str) -> JoinResult {
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

fn sync_error(error: CoordinatorError) -> SyncResult {
    SyncResult {
        error: Some(error),
        protocol_type: None,
        protocol_name: None,
        assignment: Bytes::new(),
    }
}

/// Removes a member (left, expired, or replaced); parked requests are dropped.
pub(super) fn remove_member(group: &mut Group, member_id: &str) {
    if let Some(m) = group.members.remove(member_id) {
        if let Some(instance) = &m.group_instance_id {
            if group.static_members.get(instance).map(String::as_str) == Some(member_id) {
                group.static_members.remove(instance);
            }
        }
        if let Some(tx) = m.awaiting_join {
            let _ = tx.send(join_error(CoordinatorError::UnknownMemberId, member_id));
        }
        if let Some(tx) = m.awaiting_sync {
            let _ = tx.send(sync_error(CoordinatorError::UnknownMemberId));
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
        error: None,
        generation_id: group.generation_id,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        leader_id: group.leader_id.clone().unwrap_or_default(),
        member_id: member_id.to_string(),
        skip_assignment: with_members,
        members,
    }
}
