//! ConsumerGroupHeartbeat, in the coordinator: joining, leaving, fencing, the group epoch
//! bumps, the target assignment and the member's reconciliation (Kafka's
//! `GroupMetadataManager.consumerGroupHeartbeat`, with KAFKA-19233's rejoin at epoch 0).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::assignor::{self, AssignorMember};
use super::records::{self, Record};
use super::{Assignment, ConsumerGroup, ConsumerMember, MemberState};
use crate::coordinator::group::{Group, GroupState};
use crate::coordinator::{CoordinatorError, GroupCoordinator};

/// A ConsumerGroupHeartbeat, decoded. `None` fields mean "unchanged".
#[derive(Debug, Clone)]
pub struct ConsumerHeartbeat {
    pub version: i16,
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<OwnedPartitions>,
    pub client_id: String,
    pub client_host: String,
}

/// The partitions a member says it owns, by topic id.
pub type OwnedPartitions = Assignment;

/// A successful heartbeat's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Set when the member must (re)learn its assignment.
    pub assignment: Option<Assignment>,
}

/// A refusal, with Kafka's message where it gives one.
pub type HeartbeatError = (CoordinatorError, Option<String>);

/// The topics a heartbeat resolves subscriptions against: name -> (id, partitions).
pub type TopicsView = BTreeMap<String, (Uuid, i32)>;

const LEAVE_EPOCH: i32 = -1;
const STATIC_LEAVE_EPOCH: i32 = -2;

fn invalid(message: &str) -> HeartbeatError {
    (CoordinatorError::InvalidRequest, Some(message.to_string()))
}

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`.
fn validate(req: &ConsumerHeartbeat, assignors: &[String]) -> Result<(), HeartbeatError> {
    let blank = |s: &str| s.trim().is_empty();
    if req.group_id.is_empty() {
        return Err((CoordinatorError::InvalidGroupId, None));
    }
    if blank(&req.group_id) {
        return Err(invalid("GroupId can't be empty."));
    }
    if blank(&req.member_id)
        && (req.version >= 1 || req.member_epoch > 0 || req.member_epoch == LEAVE_EPOCH)
    {
        return Err(invalid("MemberId can't be empty."));
    }
    if req.instance_id.as_deref().is_some_and(blank) {
        return Err(invalid("InstanceId can't be empty."));
    }
    if req.rack_id.as_deref().is_some_and(blank) {
        return Err(invalid("RackId can't be empty."));
    }
    match req.member_epoch {
        0 => {
            if req.rebalance_timeout_ms == -1 {
                return Err(invalid(
                    "RebalanceTimeoutMs must be provided in first request.",
                ));
            }
            if req
                .owned
                .as_ref()
                .is_none_or(|o| o.values().any(|p| !p.is_empty()))
            {
                return Err(invalid("TopicPartitions must be empty when (re-)joining."));
            }
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return Err(invalid(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                ));
            }
        }
        STATIC_LEAVE_EPOCH if req.instance_id.is_none() => {
            return Err(invalid("InstanceId can't be null."));
        }
        e if e < STATIC_LEAVE_EPOCH => return Err(invalid("MemberEpoch is invalid.")),
        _ => {}
    }
    if let Some(a) = &req.server_assignor {
        if !assignors.iter().any(|known| known == a) {
            return Err((
                CoordinatorError::UnsupportedAssignor,
                Some(format!(
                    "ServerAssignor {a} is not supported. Supported assignors: {}.",
                    assignors.join(", ")
                )),
            ));
        }
    }
    Ok(())
}

impl GroupCoordinator {
    /// ConsumerGroupHeartbeat. `topics` is the broker's topics now (resolved by the caller,
    /// outside the groups' lock). What the heartbeat changed is written to
    /// `__consumer_offsets` (Kafka's records, `records.rs`) and durable before the answer;
    /// writes of consumer groups are serialised, so the log holds them in the order they
    /// happened. A failed write is answered NOT_COORDINATOR (the client retries; memory is
    /// then ahead of the disk, which a restart turns into members rejoining).
    pub async fn consumer_heartbeat(
        &self,
        req: ConsumerHeartbeat,
        topics: &TopicsView,
    ) -> Result<HeartbeatAnswer, HeartbeatError> {
        let _serial = self.consumer_writes.lock().await;
        let group_id = req.group_id.clone();
        let (answer, records, before) = self.apply_heartbeat(req, topics)?;
        if !records.is_empty() {
            if let Err(e) = self.persist(&group_id, records, None).await {
                // As if the heartbeat never came: memory goes back to what the disk has,
                // so the client's retry meets the state it knew. (A group upgraded from
                // classic by this heartbeat loses its classic members: they rejoin.)
                if let Some(g) = self.lock().get_mut(&group_id) {
                    match before {
                        Some(cg) => super::classic_members::undo_downgrade(g, cg),
                        None => g.consumer = None,
                    }
                }
                return Err((e, None));
            }
        }
        Ok(answer)
    }

    /// The heartbeat's effect on the group, under the groups' lock, and the records that
    /// say so.
    fn apply_heartbeat(
        &self,
        req: ConsumerHeartbeat,
        topics: &TopicsView,
    ) -> Result<(HeartbeatAnswer, Vec<Record>, Option<ConsumerGroup>), HeartbeatError> {
        let config = &self.config.consumer;
        validate(&req, &config.assignors)?;
        let regex = match &req.subscribed_topic_regex {
            Some(r) if !r.is_empty() => Some((
                r.clone(),
                regex::Regex::new(&format!("^(?:{r})$")).map_err(|e| {
                    (
                        CoordinatorError::InvalidRegularExpression,
                        Some(e.to_string()),
                    )
                })?,
            )),
            _ => None,
        };
        let now = Instant::now();
        let mut groups = self.lock();
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            let group = groups
                .get_mut(&req.group_id)
                .and_then(|g| g.consumer.as_mut())
                .ok_or((CoordinatorError::GroupIdNotFound, None))?;
            let before = group.clone();
            let answer = leave(group, &req)?;
            let g = groups.get_mut(&req.group_id).expect("found above");
            // Only classic members left: the group may become classic again.
            let records = match self.maybe_downgrade(g, before.group_epoch, now) {
                Some(tombstones) => tombstones,
                None => records::changes(&req.group_id, Some(&before), g.consumer.as_ref()),
            };
            return Ok((answer, records, Some(before)));
        }
        let group = match groups.get_mut(&req.group_id) {
            Some(g) => g,
            None if req.member_epoch == 0 => groups
                .entry(req.group_id.clone())
                .or_insert_with(|| Group::new(&req.group_id)),
            None => {
                return Err((
                    CoordinatorError::GroupIdNotFound,
                    Some(format!("Group {} not found.", req.group_id)),
                ))
            }
        };
        let before = group.consumer.clone();
        if group.share.is_some() {
            return Err((
                CoordinatorError::GroupIdNotFound,
                Some(format!("Group {} is not a consumer group.", req.group_id)),
            ));
        }
        if group.consumer.is_none() {
            if req.member_epoch != 0 {
                return Err((
                    CoordinatorError::GroupIdNotFound,
                    Some(format!("Group {} is not a consumer group.", req.group_id)),
                ));
            }
            // An empty classic group (offsets only) becomes a consumer group; a live one
            // is upgraded with its members (`classic_members.rs`).
            let live = !group.members.is_empty() || group.state != GroupState::Empty;
            group.consumer = Some(if live {
                self.upgrade(group, topics, &req.member_id, now)?
            } else {
                ConsumerGroup {
                    assignor: config.assignors[0].clone(),
                    ..ConsumerGroup::default()
                }
            });
        }
        let cg = group.consumer.as_mut().expect("set above");
        let member_id = join_or_find(cg, &req, config.max_size, now)?;
        // A regex another member already has resolved is resolved for this one too.
        let regex_known = regex.as_ref().is_some_and(|(r, _)| {
            cg.members.values().any(|o| {
                o.member_id != member_id
                    && o.regex_resolved
                    && o.subscribed_topic_regex
                        .as_ref()
                        .is_some_and(|(s, _)| s == r)
            })
        });
        let m = cg.members.get_mut(&member_id).expect("found or added");
        // The request's fields that are set replace the member's.
        let mut subscription_changed = false;
        if let Some(names) = &req.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            if names != m.subscribed_topic_names {
                m.subscribed_topic_names = names;
                subscription_changed = true;
            }
        }
        if let Some(r) = &req.subscribed_topic_regex {
            let now_regex = m.subscribed_topic_regex.as_ref().map(|(s, _)| s.as_str());
            let wanted = (!r.is_empty()).then_some(r.as_str());
            if now_regex != wanted {
                m.subscribed_topic_regex = regex.clone();
                m.regex_resolved = regex_known;
                subscription_changed = true;
            }
        }
        if req.instance_id.is_some() {
            m.instance_id = req.instance_id.clone();
        }
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id.clone();
        }
        if req.rebalance_timeout_ms != -1 {
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if req.server_assignor.is_some() {
            m.server_assignor = req.server_assignor.clone();
        }
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        let session_ms = self
            .group_configs
            .session_timeout_ms(&req.group_id, &self.config);
        m.session_deadline = now + Duration::from_millis(session_ms.max(0) as u64);
        let assigned_before = m.assigned.clone();
        if subscription_changed {
            cg.group_epoch += 1;
        }
        // What the subscriptions cover now: a topic created, deleted or grown changes it.
        let subscribed = subscribed_partitions(cg, topics);
        let hash = super::metadata_hash(&subscribed);
        if hash != cg.metadata_hash {
            cg.metadata_hash = hash;
            if !subscription_changed {
                cg.group_epoch += 1;
            }
        }
        cg.subscribed_partitions = subscribed;
        if cg.group_epoch > cg.assignment_epoch {
            compute_target(cg, topics, &config.assignors[0]);
        }
        cg.reconcile(&member_id, req.owned.as_ref());
        let m = cg.members.get_mut(&member_id).expect("still there");
        if m.state == MemberState::UnrevokedPartitions {
            if m.revocation_deadline
                .is_none_or(|(_, epoch)| epoch != m.epoch)
            {
                let timeout = Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64);
                m.revocation_deadline = Some((now + timeout, m.epoch));
            }
        } else {
            m.revocation_deadline = None;
        }
        let full = req.rebalance_timeout_ms != -1
            && (req.subscribed_topic_names.is_some() || req.subscribed_topic_regex.is_some())
            && req.owned.is_some();
        let send_assignment = req.member_epoch == 0 || full || m.assigned != assigned_before;
        let answer = HeartbeatAnswer {
            member_id: member_id.clone(),
            member_epoch: m.epoch,
            heartbeat_interval_ms: self
                .group_configs
                .heartbeat_interval_ms(&req.group_id, &self.config),
            assignment: send_assignment.then(|| m.assigned.clone()),
        };
        let records = records::changes(&req.group_id, before.as_ref(), Some(cg));
        Ok((answer, records, before))
    }
}

/// A member leaving (-1) or a static member leaving for now (-2: it keeps its partitions
/// until its session ends or it rejoins under its instance id).
fn leave(
    cg: &mut ConsumerGroup,
    req: &ConsumerHeartbeat,
) -> Result<HeartbeatAnswer, HeartbeatError> {
    let member_id = if let Some(instance) = &req.instance_id {
        let Some(id) = cg.static_members.get(instance).cloned() else {
            return Err((CoordinatorError::UnknownMemberId, None));
        };
        if id != req.member_id {
            return Err((CoordinatorError::FencedInstanceId, None));
        }
        id
    } else {
        if !cg.members.contains_key(&req.member_id) {
            return Err((CoordinatorError::UnknownMemberId, None));
        }
        req.member_id.clone()
    };
    if req.member_epoch == STATIC_LEAVE_EPOCH {
        if let Some(m) = cg.members.get_mut(&member_id) {
            m.epoch = STATIC_LEAVE_EPOCH;
            m.revoking = Assignment::new();
        }
    } else {
        cg.remove_member(&member_id);
    }
    Ok(HeartbeatAnswer {
        member_id,
        member_epoch: req.member_epoch,
        heartbeat_interval_ms: 0,
        assignment: None,
    })
}

/// Finds the heartbeat's member, or adds it when it joins (epoch 0); returns its id.
fn join_or_find(
    cg: &mut ConsumerGroup,
    req: &ConsumerHeartbeat,
    max_size: usize,
    now: Instant,
) -> Result<String, HeartbeatError> {
    let known = cg.members.contains_key(&req.member_id);
    if req.member_epoch == 0 {
        if !known && cg.members.len() >= max_size {
            return Err((
                CoordinatorError::GroupMaxSizeReached,
                Some(format!(
                    "The consumer group has reached its maximum capacity of {max_size} members."
                )),
            ));
        }
        let member_id = if req.member_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            req.member_id.clone()
        };
        if let Some(instance) = &req.instance_id {
            if let Some(old) = cg.static_members.get(instance).cloned() {
                let old_member = cg.members.get(&old).cloned();
                match old_member {
                    Some(o) if o.epoch != STATIC_LEAVE_EPOCH && old != member_id => {
                        return Err((
                            CoordinatorError::UnreleasedInstanceId,
                            Some(format!("Static member {old} with instance id {instance} is not released yet.")),
                        ));
                    }
                    Some(mut o) => {
                        // The instance comes back: the new id takes over the old member's
                        // subscription and assignments.
                        cg.members.remove(&old);
                        if let Some(t) = cg.target.remove(&old) {
                            cg.target.insert(member_id.clone(), t);
                        }
                        o.member_id = member_id.clone();
                        o.epoch = 0;
                        o.previous_epoch = 0;
                        o.state = MemberState::Stable;
                        o.revoking = Assignment::new();
                        o.assigned = Assignment::new();
                        cg.members.insert(member_id.clone(), o);
                        cg.static_members
                            .insert(instance.clone(), member_id.clone());
                        return Ok(member_id);
                    }
                    None => {}
                }
            }
            cg.static_members
                .insert(instance.clone(), member_id.clone());
        }
        // A known member rejoining starts over: it owns nothing (it said so).
        let m = cg
            .members
            .entry(member_id.clone())
            .or_insert_with(|| ConsumerMember::new(member_id.clone(), now));
        m.epoch = 0;
        m.previous_epoch = 0;
        m.state = MemberState::Stable;
        m.assigned = Assignment::new();
        m.revoking = Assignment::new();
        return Ok(member_id);
    }
    if let Some(instance) = &req.instance_id {
        match cg.static_members.get(instance) {
            None => return Err((CoordinatorError::UnknownMemberId, None)),
            Some(id) if *id != req.member_id => {
                return Err((CoordinatorError::FencedInstanceId, None))
            }
            Some(_) => {}
        }
    }
    let Some(m) = cg.members.get(&req.member_id) else {
        return Err((
            CoordinatorError::UnknownMemberId,
            Some(format!(
                "Member {} is not a member of group.",
                req.member_id
            )),
        ));
    };
    // Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`: the previous epoch is accepted
    // when the member owns no more than it is assigned (it missed the answer that moved it).
    let fenced = req.member_epoch > m.epoch
        || (req.member_epoch < m.epoch
            && !(req.member_epoch == m.previous_epoch
                && req
                    .owned
                    .as_ref()
                    .is_some_and(|o| is_subset(o, &m.assigned))));
    if fenced {
        return Err((
            CoordinatorError::FencedMemberEpoch,
            Some(format!(
                "The consumer group member has a {} member epoch ({}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                if req.member_epoch > m.epoch { "greater" } else { "smaller" },
                req.member_epoch,
                m.epoch
            )),
        ));
    }
    Ok(req.member_id.clone())
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .all(|(t, parts)| parts.is_empty() || b.get(t).is_some_and(|bp| parts.is_subset(bp)))
}

/// The topics the members subscribe to that exist, with their partition counts.
fn subscribed_partitions(cg: &ConsumerGroup, topics: &TopicsView) -> BTreeMap<Uuid, i32> {
    topics
        .iter()
        .filter(|(name, _)| cg.members.values().any(|m| m.subscribes_to(name)))
        .map(|(_, (id, partitions))| (*id, *partitions))
        .collect()
}

/// A new target assignment for the current group epoch.
/// The assignor most members ask for, else the broker's first (Kafka's preferred
/// server assignor).
pub fn preferred_assignor(cg: &ConsumerGroup, default_assignor: &str) -> String {
    let mut votes: HashMap<&str, usize> = HashMap::new();
    for m in cg.members.values() {
        if let Some(a) = &m.server_assignor {
            *votes.entry(a.as_str()).or_default() += 1;
        }
    }
    votes
        .iter()
        .max_by_key(|(name, n)| (**n, std::cmp::Reverse(**name)))
        .map_or(default_assignor, |(name, _)| name)
        .to_string()
}

pub(super) fn compute_target(cg: &mut ConsumerGroup, topics: &TopicsView, default_assignor: &str) {
    let assignor = preferred_assignor(cg, default_assignor);
    let empty = Assignment::new();
    let members: Vec<AssignorMember<'_>> = cg
        .members
        .values()
        .map(|m| AssignorMember {
            member_id: m.member_id.as_str(),
            topics: topics
                .iter()
                .filter(|(name, _)| m.subscribes_to(name))
                .map(|(_, (id, _))| *id)
                .collect::<BTreeSet<Uuid>>(),
            previous: cg.target.get(&m.member_id).unwrap_or(&empty),
        })
        .collect();
    let target = assignor::assign(&assignor, &members, &cg.subscribed_partitions);
    cg.target = target;
    cg.assignor = assignor;
    cg.assignment_epoch = cg.group_epoch;
}
