//! Consumer groups of the KIP-848 protocol (`group.protocol=consumer`): the broker assigns
//! partitions, members learn theirs from ConsumerGroupHeartbeat and never stop the world.
//!
//! A group has a **group epoch**, bumped whenever what the assignment depends on changes (a
//! member joins, leaves or changes its subscription; a subscribed topic appears, goes or
//! gains partitions), and an **assignment epoch**: the group epoch its target assignment
//! was computed for (`assignor.rs`, on the heartbeat that sees the bump). Each member moves
//! towards its target at its own pace (Kafka's `CurrentAssignmentBuilder`, `reconcile`
//! below): it first gives up what the target takes away, keeping its epoch
//! (UNREVOKED_PARTITIONS); then it gets the target's epoch and the target's partitions that
//! no other member still holds; what another member still holds follows once released
//! (UNRELEASED_PARTITIONS). A partition therefore never has two owners.
//!
//! Group states (ConsumerGroupDescribe, ListGroups): Empty (no members), Assigning (group
//! epoch ahead of the assignment epoch), Reconciling (a member not yet STABLE at the
//! assignment epoch), Stable.
//!
//! A group may hold classic members too (`classic_members.rs`: Kafka's online migration):
//! a live classic group becomes a consumer group when a consumer-protocol member joins, its
//! members go on with JoinGroup/SyncGroup/Heartbeat inside it, and a consumer group left with
//! classic members only becomes a classic group again, as `group.consumer.migration.policy`
//! allows.
//!
//! Durable in `__consumer_offsets` (`records.rs`): after a restart members carry on with their
//! epochs.

pub mod assignor;
mod classic_members;
mod heartbeat;
mod migration;
pub mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio::time::Instant;
use uuid::Uuid;

pub use assignor::Assignment;
pub use classic_members::ClassicMembership;
pub use heartbeat::{
    preferred_assignor, ConsumerHeartbeat, HeartbeatAnswer, HeartbeatError, OwnedPartitions,
    TopicsView,
};

/// A member's reconciliation state (Kafka's `MemberState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    UnrevokedPartitions,
    UnreleasedPartitions,
}

/// A member of a consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    /// The regex as sent, and compiled.
    pub subscribed_topic_regex: Option<(String, regex::Regex)>,
    /// Whether the regex is resolved: as in Kafka, a regex the group has not resolved yet
    /// matches nothing until the coordinator's timer resolves it (and bumps the group
    /// epoch), so a member subscribing to names and a new regex gets the named topics
    /// first and the matched ones on a later heartbeat.
    pub regex_resolved: bool,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    /// What the member owns now (its heartbeat answer's assignment).
    pub assigned: Assignment,
    /// What it must give up before it moves on.
    pub revoking: Assignment,
    pub session_deadline: Instant,
    /// While revoking: when the member is removed if it still has not, and at which epoch.
    pub revocation_deadline: Option<(Instant, i32)>,
    /// Set for a member that speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat).
    pub classic: Option<ClassicMembership>,
}

impl ConsumerMember {
    pub(crate) fn new(member_id: String, now: Instant) -> ConsumerMember {
        ConsumerMember {
            member_id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            regex_resolved: false,
            server_assignor: None,
            rebalance_timeout_ms: 0,
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            session_deadline: now,
            revocation_deadline: None,
            classic: None,
        }
    }

    /// Whether the member subscribes to `topic` (by name or by its regex).
    pub fn subscribes_to(&self, topic: &str) -> bool {
        self.subscribed_topic_names.iter().any(|t| t == topic)
            || (self.regex_resolved
                && self
                    .subscribed_topic_regex
                    .as_ref()
                    .is_some_and(|(_, re)| re.is_match(topic)))
    }
}

/// The consumer-protocol part of a group.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// Each member's target assignment (as of `assignment_epoch`).
    pub target: BTreeMap<String, Assignment>,
    /// The partition counts of the subscribed topics, as of the last heartbeat.
    pub subscribed_partitions: BTreeMap<Uuid, i32>,
    /// A hash of `subscribed_partitions` as of the last group epoch (Kafka's
    /// MetadataHash, persisted with the epoch): a change bumps the epoch, also across a
    /// restart.
    pub metadata_hash: i64,
    /// group.instance.id -> member id.
    pub static_members: HashMap<String, String>,
    /// The assignor the last target assignment used.
    pub assignor: String,
}

impl ConsumerGroup {
    /// The group's state, as Kafka derives it (`ConsumerGroup.maybeUpdateGroupState`).
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.epoch != self.assignment_epoch)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Removes a member (left, fenced or timed out) and bumps the group epoch, so that the
    /// next heartbeat reassigns its partitions.
    pub fn remove_member(&mut self, member_id: &str) {
        if let Some(m) = self.members.remove(member_id) {
            if let Some(instance) = &m.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(instance);
                }
            }
            self.target.remove(member_id);
            self.group_epoch += 1;
        }
    }

    /// Resolves the regexes members subscribed to since the last call; bumps the group
    /// epoch if there were any (their topics are assigned at the next heartbeat).
    pub fn resolve_regexes(&mut self) {
        let mut resolved = false;
        for m in self.members.values_mut() {
            if m.subscribed_topic_regex.is_some() && !m.regex_resolved {
                m.regex_resolved = true;
                resolved = true;
            }
        }
        if resolved {
            self.group_epoch += 1;
        }
    }

    /// Session and revocation timeouts (and a classic member's join and sync timeouts);
    /// returns the members removed.
    pub fn expire_members(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline <= now
                    || m.revocation_deadline
                        .is_some_and(|(at, epoch)| at <= now && m.epoch == epoch)
                    || m.classic.as_ref().is_some_and(|c| c.expired(now))
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id);
        }
        expired
    }

    /// Which member owns each partition now (assigned or still revoking).
    fn owners(&self) -> HashMap<(Uuid, i32), &str> {
        let mut owners = HashMap::new();
        for m in self.members.values() {
            for (topic, parts) in m.assigned.iter().chain(m.revoking.iter()) {
                for p in parts {
                    owners.insert((*topic, *p), m.member_id.as_str());
                }
            }
        }
        owners
    }

    /// Moves member `member_id` towards its target (Kafka's `CurrentAssignmentBuilder`).
    /// `owned` is what the member said it owns (None: not said, so assumed unchanged).
    pub fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>) {
        let target_epoch = self.assignment_epoch;
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let owners: HashMap<(Uuid, i32), String> = self
            .owners()
            .into_iter()
            .filter(|(_, owner)| *owner != member_id)
            .map(|(tp, owner)| (tp, owner.to_string()))
            .collect();
        let Some(m) = self.members.get_mut(member_id) else {
            return;
        };
        let still_owns = |revoking: &Assignment| match owned {
            None => revoking.values().any(|s| !s.is_empty()),
            Some(owned) => revoking
                .iter()
                .any(|(t, parts)| owned.get(t).is_some_and(|o| !o.is_disjoint(parts))),
        };
        let from_epoch = match m.state {
            MemberState::Stable if m.epoch == target_epoch => return,
            MemberState::Stable | MemberState::UnreleasedPartitions => m.epoch,
            MemberState::UnrevokedPartitions => {
                if still_owns(&m.revoking) {
                    return;
                }
                (m.epoch + 1).min(target_epoch)
            }
        };
        let mut keep = Assignment::new();
        let mut revoke = Assignment::new();
        let mut add = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<Uuid> = m.assigned.keys().chain(target.keys()).copied().collect();
        for topic in topics {
            let current = m.assigned.get(&topic).cloned().unwrap_or_default();
            let wanted = target.get(&topic).cloned().unwrap_or_default();
            let kept: BTreeSet<i32> = current.intersection(&wanted).copied().collect();
            let gone: BTreeSet<i32> = current.difference(&wanted).copied().collect();
            for p in wanted.difference(&current) {
                if owners.contains_key(&(topic, *p)) {
                    unreleased = true;
                } else {
                    add.entry(topic).or_default().insert(*p);
                }
            }
            if !kept.is_empty() {
                keep.insert(topic, kept);
            }
            if !gone.is_empty() {
                revoke.insert(topic, gone);
            }
        }
        let previous = m.epoch;
        if !revoke.is_empty() && still_owns(&revoke) {
            m.assigned = keep;
            m.revoking = revoke;
            m.state = MemberState::UnrevokedPartitions;
            m.epoch = from_epoch;
        } else {
            for (topic, parts) in add {
                keep.entry(topic).or_default().extend(parts);
            }
            m.assigned = keep;
            m.revoking = Assignment::new();
            m.state = if unreleased {
                MemberState::UnreleasedPartitions
            } else {
                MemberState::Stable
            };
            m.epoch = target_epoch;
        }
        // Kafka's updateMemberEpoch: every step records the epoch it started from.
        m.previous_epoch = previous;
    }
}

/// The hash of what the subscriptions cover (FNV-1a over topic ids and partition counts;
/// Kafka uses XXH3 over more fields: the value only ever meets values of its own kind).
pub fn metadata_hash(subscribed: &BTreeMap<Uuid, i32>) -> i64 {
    if subscribed.is_empty() {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (topic, count) in subscribed {
        for b in topic.as_bytes().iter().chain(count.to_be_bytes().iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h as i64
}

#[cfg(test)]
mod tests;
