//! ShareGroupHeartbeat in the coordinator: joining (epoch 0), leaving (-1), fencing, the
//! group epoch, the target assignment and the member's new assignment (Kafka's
//! `GroupMetadataManager.shareGroupHeartbeat`).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::assignor;
use super::records::{self, Record};
use super::{ShareGroup, ShareMember};
use crate::coordinator::consumer::{metadata_hash, Assignment, HeartbeatError, TopicsView};
use crate::coordinator::group::{Group, GroupState};
use crate::coordinator::{CoordinatorError, GroupCoordinator};
use crate::share::state_store::SharePartitionKey;

/// A ShareGroupHeartbeat, decoded. `None` fields mean "unchanged".
#[derive(Debug, Clone)]
pub struct ShareHeartbeat {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub client_id: String,
    pub client_host: String,
}

/// A successful heartbeat's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareHeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Set when the member must (re)learn its assignment.
    pub assignment: Option<Assignment>,
}

/// Partitions that may be assigned, by topic name: (topic id, partitions).
pub type Assignable = BTreeMap<String, (Uuid, Vec<i32>)>;

const LEAVE_EPOCH: i32 = -1;

fn invalid(message: &str) -> HeartbeatError {
    (CoordinatorError::InvalidRequest, Some(message.to_string()))
}

/// Kafka's `throwIfShareGroupHeartbeatRequestIsInvalid`.
fn validate(req: &ShareHeartbeat) -> Result<(), HeartbeatError> {
    let blank = |s: &str| s.trim().is_empty();
    if blank(&req.member_id) {
        return Err(invalid("MemberId can't be empty."));
    }
    if blank(&req.group_id) {
        return Err(invalid("GroupId can't be empty."));
    }
    if req.rack_id.as_deref().is_some_and(blank) {
        return Err(invalid("RackId can't be empty."));
    }
    if req.member_epoch == 0
        && req
            .subscribed_topic_names
            .as_ref()
            .is_none_or(Vec::is_empty)
    {
        return Err(invalid(
            "SubscribedTopicNames must be set in first request.",
        ));
    }
    if req.member_epoch < LEAVE_EPOCH {
        return Err(invalid("MemberEpoch is invalid."));
    }
    Ok(())
}

fn not_share_group(id: &str) -> HeartbeatError {
    (
        CoordinatorError::GroupIdNotFound,
        Some(format!("Group {id} is not a share group.")),
    )
}

impl GroupCoordinator {
    /// ShareGroupHeartbeat. `topics` is the broker's topics now. The share-partitions the
    /// group's subscriptions reach are initialised first; what the heartbeat changed is
    /// durable in `__consumer_offsets` before the answer (writes of modern groups are
    /// serialised). A failed write is answered NOT_COORDINATOR and undone in memory.
    pub async fn share_heartbeat(
        &self,
        req: ShareHeartbeat,
        topics: &TopicsView,
    ) -> Result<ShareHeartbeatAnswer, HeartbeatError> {
        validate(&req)?;
        let _serial = self.consumer_writes.lock().await;
        let group_id = req.group_id.clone();
        let assignable = if req.member_epoch == LEAVE_EPOCH {
            Assignable::new()
        } else {
            let (wanted, epoch) = self.share_topics_after(&req);
            self.initialize_share_partitions(&group_id, &wanted, topics, epoch)
                .await
        };
        let (answer, records, before) = self.apply_share_heartbeat(req, &assignable)?;
        if !records.is_empty() {
            if let Err(e) = self.persist(&group_id, records, None).await {
                if let Some(g) = self.lock().get_mut(&group_id) {
                    g.share = before;
                }
                return Err((e, None));
            }
        }
        Ok(answer)
    }

    /// The topics group `req.group_id` subscribes to once `req` is applied, and its epoch.
    fn share_topics_after(&self, req: &ShareHeartbeat) -> (Vec<String>, i32) {
        let groups = self.lock();
        let group = groups.get(&req.group_id).and_then(|g| g.share.as_ref());
        let mut topics: Vec<String> = group
            .map(|g| {
                g.members
                    .values()
                    .filter(|m| {
                        m.member_id != req.member_id || req.subscribed_topic_names.is_none()
                    })
                    .flat_map(|m| m.subscribed_topic_names.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(names) = &req.subscribed_topic_names {
            topics.extend(names.iter().cloned());
        }
        topics.sort();
        topics.dedup();
        (topics, group.map_or(0, |g| g.group_epoch))
    }

    /// Initialises the share-partitions of `wanted` topics that have no state yet (state
    /// epoch `epoch`, start offset left to `share.auto.offset.reset`); returns the
    /// partitions that have state, which are the ones that may be assigned. A partition
    /// whose initialisation fails is left out (and tried again at the next heartbeat).
    async fn initialize_share_partitions(
        &self,
        group: &str,
        wanted: &[String],
        topics: &TopicsView,
        epoch: i32,
    ) -> Assignable {
        let mut out = Assignable::new();
        for name in wanted {
            let Some((topic_id, count)) = topics.get(name) else {
                continue;
            };
            let mut ready = Vec::new();
            for partition in 0..*count {
                let key = SharePartitionKey {
                    group: group.to_string(),
                    topic_id: *topic_id,
                    partition,
                };
                let initialized = match &self.share_store {
                    None => true,
                    Some(store) => {
                        store.read(&key).await.is_some()
                            || match store.initialize(&key, epoch, -1).await {
                                Ok(()) => true,
                                Err(e) => {
                                    tracing::warn!(group, topic = %name, partition, error = %e, "initialising a share-partition failed");
                                    false
                                }
                            }
                    }
                };
                if initialized {
                    ready.push(partition);
                }
            }
            out.insert(name.clone(), (*topic_id, ready));
        }
        out
    }

    /// The heartbeat's effect, under the groups' lock, and the records that say so.
    #[allow(clippy::type_complexity)]
    fn apply_share_heartbeat(
        &self,
        req: ShareHeartbeat,
        assignable: &Assignable,
    ) -> Result<(ShareHeartbeatAnswer, Vec<Record>, Option<ShareGroup>), HeartbeatError> {
        let config = &self.config.share;
        let now = Instant::now();
        let mut groups = self.lock();
        if req.member_epoch == LEAVE_EPOCH {
            let g = groups.get_mut(&req.group_id).ok_or((
                CoordinatorError::GroupIdNotFound,
                Some(format!("Group {} not found.", req.group_id)),
            ))?;
            let sg = g
                .share
                .as_mut()
                .ok_or_else(|| not_share_group(&req.group_id))?;
            if !sg.members.contains_key(&req.member_id) {
                return Err(unknown_member(&req));
            }
            let before = sg.clone();
            sg.remove_member(&req.member_id);
            let records = records::changes(&req.group_id, Some(&before), Some(sg));
            let answer = ShareHeartbeatAnswer {
                member_id: req.member_id,
                member_epoch: LEAVE_EPOCH,
                heartbeat_interval_ms: 0,
                assignment: None,
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
        let before = group.share.clone();
        if group.share.is_none() {
            // Group ids are one namespace: a classic or consumer group is not taken over.
            let other = group.consumer.is_some()
                || group.has_members()
                || group.state != GroupState::Empty
                || !group.offsets.is_empty()
                || !group.pending_txn_offsets.is_empty();
            if other || req.member_epoch != 0 {
                return Err(not_share_group(&req.group_id));
            }
            group.share = Some(ShareGroup::default());
        }
        let sg = group.share.as_mut().expect("set above");
        let mut bump = false;
        match sg.members.get(&req.member_id) {
            None if req.member_epoch != 0 => return Err(unknown_member(&req)),
            None => {
                if sg.members.len() >= config.max_size {
                    return Err((
                        CoordinatorError::GroupMaxSizeReached,
                        Some(format!(
                            "The share group has reached its maximum capacity of {} members.",
                            config.max_size
                        )),
                    ));
                }
                sg.members.insert(
                    req.member_id.clone(),
                    ShareMember::new(req.member_id.clone(), now),
                );
                bump = true;
            }
            Some(m) => {
                let e = req.member_epoch;
                if e != 0 && (e > m.epoch || (e < m.epoch && e != m.previous_epoch)) {
                    return Err((
                        CoordinatorError::FencedMemberEpoch,
                        Some(format!(
                            "The share group member has a smaller member epoch ({e}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                            m.epoch
                        )),
                    ));
                }
            }
        }
        let m = sg.members.get_mut(&req.member_id).expect("found or added");
        if let Some(names) = &req.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            if names != m.subscribed_topic_names {
                m.subscribed_topic_names = names;
                bump = true;
            }
        }
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id.clone();
        }
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        let session_ms = self
            .group_configs
            .share_session_timeout_ms(&req.group_id, &self.config);
        m.session_deadline = now + Duration::from_millis(session_ms.max(0) as u64);
        // What may be assigned now: the subscribed topics' initialised partitions.
        let subscribed = sg.subscribed_topics();
        let reachable: Assignable = subscribed
            .iter()
            .filter_map(|t| assignable.get(t).map(|a| (t.clone(), a.clone())))
            .collect();
        let hash = assignable_hash(&reachable);
        if hash != sg.metadata_hash {
            sg.metadata_hash = hash;
            bump = true;
        }
        if bump {
            sg.group_epoch += 1;
        }
        if sg.group_epoch > sg.assignment_epoch {
            let subscriptions: BTreeMap<String, Vec<String>> = sg
                .members
                .iter()
                .map(|(id, m)| (id.clone(), m.subscribed_topic_names.clone()))
                .collect();
            sg.target = assignor::assign(&subscriptions, &reachable, &sg.target);
            sg.assignment_epoch = sg.group_epoch;
        }
        let target = sg.target.get(&req.member_id).cloned().unwrap_or_default();
        let assignment_epoch = sg.assignment_epoch;
        let m = sg.members.get_mut(&req.member_id).expect("found or added");
        let assigned_before = m.assigned.clone();
        if m.epoch != assignment_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
            m.assigned = target;
        }
        let send_assignment = req.member_epoch == 0
            || req.subscribed_topic_names.is_some()
            || m.assigned != assigned_before;
        let answer = ShareHeartbeatAnswer {
            member_id: req.member_id.clone(),
            member_epoch: m.epoch,
            heartbeat_interval_ms: self
                .group_configs
                .share_heartbeat_interval_ms(&req.group_id, &self.config),
            assignment: send_assignment.then(|| m.assigned.clone()),
        };
        let records = records::changes(&req.group_id, before.as_ref(), Some(sg));
        Ok((answer, records, before))
    }
}

fn unknown_member(req: &ShareHeartbeat) -> HeartbeatError {
    (
        CoordinatorError::UnknownMemberId,
        Some(format!(
            "Member {} is not a member of group {}.",
            req.member_id, req.group_id
        )),
    )
}

/// The hash of what may be assigned: each topic's id with its assignable partitions.
fn assignable_hash(assignable: &Assignable) -> i64 {
    let by_id: BTreeMap<Uuid, i32> = assignable
        .values()
        .map(|(id, parts)| {
            // The partitions' count and which ones: a partition initialised later changes
            // it too.
            let mix = parts.iter().fold(parts.len() as i32, |h, p| {
                h.wrapping_mul(31).wrapping_add(*p)
            });
            (*id, mix)
        })
        .collect();
    metadata_hash(&by_id)
}
