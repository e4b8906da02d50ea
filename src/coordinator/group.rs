//! One consumer group as the classic group coordinator sees it: its state, generation,
//! members and committed offsets.
//!
//! Group states, what each request does in them, and where they lead (Kafka's
//! `ClassicGroupState`):
//!
//! | state | JoinGroup | SyncGroup | Heartbeat | LeaveGroup / expiry | next |
//! |---|---|---|---|---|---|
//! | **Empty**: no members (offsets may exist) | adds the member, starts a rebalance | UNKNOWN_MEMBER_ID | UNKNOWN_MEMBER_ID | — | PreparingRebalance; Dead when deleted |
//! | **PreparingRebalance**: waiting for every member to (re)join | parks the member until the join completes | REBALANCE_IN_PROGRESS | REBALANCE_IN_PROGRESS (rejoin) | removes the member, may complete the join | CompletingRebalance when all joined or the rebalance timeout expired (stragglers are removed); Empty if nobody is left |
//! | **CompletingRebalance**: join answered, waiting for the leader's assignment | same metadata: current generation again; else a new rebalance | followers park; the leader's assignment completes everyone | NONE | removes the member and starts a new rebalance | Stable; PreparingRebalance |
//! | **Stable**: assignment handed out | leader or changed metadata: new rebalance; else current generation | returns the member's assignment | NONE | removes the member and starts a new rebalance | PreparingRebalance |
//! | **Dead**: deleted | COORDINATOR_NOT_AVAILABLE | COORDINATOR_NOT_AVAILABLE | COORDINATOR_NOT_AVAILABLE | — | — |
//!
//! Synchronisation: groups live in the coordinator's mutex and are only touched under it;
//! parked requests hold the receiving end of a oneshot channel and wait outside the lock.

use std::collections::{BTreeMap, HashMap};

use bytes::{Buf, Bytes};

use super::CoordinatorError;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Decodable, Message};
use tokio::sync::oneshot;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka reports (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a parked JoinGroup is answered with.
#[derive(Debug, Clone)]
pub struct JoinResult {
    pub error: Option<CoordinatorError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: String,
    pub member_id: String,
    pub skip_assignment: bool,
    /// For the leader: every member (id, instance id, metadata for the chosen protocol).
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// What a parked SyncGroup is answered with.
#[derive(Debug, Clone)]
pub struct SyncResult {
    pub error: Option<CoordinatorError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (protocol name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub awaiting_join: Option<oneshot::Sender<JoinResult>>,
    pub awaiting_sync: Option<oneshot::Sender<SyncResult>>,
    /// Set when the member sent SyncGroup for the current generation.
    pub synced: bool,
    pub session_deadline: Instant,
    /// Order of joining: the first member becomes leader.
    pub join_order: u64,
}

impl Member {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn same_protocols(&self, other: &[(String, Bytes)]) -> bool {
        self.protocols == other
    }
}

/// A committed offset (OffsetCommit), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

#[derive(Debug)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or time out.
    pub pending_members: HashMap<String, Instant>,
    /// group.instance.id -> member id, for static members.
    pub static_members: HashMap<String, String>,
    /// When PreparingRebalance gives up on members that have not rejoined.
    pub rebalance_deadline: Option<Instant>,
    /// The first join of an empty group completes no earlier than this
    /// (`group.initial.rebalance.delay.ms`).
    pub initial_delay_until: Option<Instant>,
    /// When CompletingRebalance gives up on members that have not synced.
    pub sync_deadline: Option<Instant>,
    pub offsets: HashMap<(String, i32), CommittedOffset>,
    /// Offsets committed inside open transactions (TxnOffsetCommit), by producer id: they
    /// take effect when the transaction commits.
    pub pending_txn_offsets: HashMap<i64, HashMap<(String, i32), CommittedOffset>>,
    pub next_join_order: u64,
    /// Set while the group is a consumer group (KIP-848); its classic fields are unused.
    pub consumer: Option<super::consumer::ConsumerGroup>,
    /// Set while the group is a share group (KIP-932); its classic fields are unused.
    pub share: Option<super::share::ShareGroup>,
}

impl Group {
    pub fn new(group_id: &str) -> Group {
        Group {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            sync_deadline: None,
            offsets: HashMap::new(),
            pending_txn_offsets: HashMap::new(),
            next_join_order: 0,
            consumer: None,
            share: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether the group has members of any protocol.
    pub fn has_members(&self) -> bool {
        !self.members.is_empty()
            || self
                .consumer
                .as_ref()
                .is_some_and(|c| !c.members.is_empty())
            || self.share.as_ref().is_some_and(|s| !s.members.is_empty())
    }

    /// Protocols every member (and `candidate`, if given) supports.
    pub fn common_protocols(&self, candidate: Option<&[(String, Bytes)]>) -> Vec<String> {
        let mut lists: Vec<Vec<&str>> = self
            .members
            .values()
            .map(|m| m.protocols.iter().map(|(n, _)| n.as_str()).collect())
            .collect();
        if let Some(c) = candidate {
            lists.push(c.iter().map(|(n, _)| n.as_str()).collect());
        }
        let Some(first) = lists.first() else {
            return Vec::new();
        };
        first
            .iter()
            .filter(|p| lists.iter().all(|l| l.contains(p)))
            .map(std::string::ToString::to_string)
            .collect()
    }

    /// Kafka's vote: each member votes for its most preferred common protocol; most votes
    /// wins (ties: the first in the first member's preference).
    pub fn select_protocol(&self) -> Option<String> {
        let common = self.common_protocols(None);
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| common.contains(n)) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        common
            .iter()
            .find(|p| votes.get(p.as_str()) == Some(&best))
            .cloned()
    }

    /// The member with the smallest join order.
    pub fn first_member(&self) -> Option<String> {
        self.members
            .values()
            .min_by_key(|m| m.join_order)
            .map(|m| m.member_id.clone())
    }

    /// The largest rebalance timeout of the members: how long a join or sync phase waits.
    pub fn rebalance_timeout(&self) -> std::time::Duration {
        let ms = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms.max(0) as u64)
            .max()
            .unwrap_or(0);
        std::time::Duration::from_millis(ms)
    }

    pub fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// The topics the members of a consumer-protocol group subscribed to (for
    /// OffsetDelete), from each member's `ConsumerProtocolSubscription`.
    pub fn subscribed_topics(&self) -> Vec<String> {
        let Some(protocol) = &self.protocol_name else {
            return Vec::new();
        };
        if self.protocol_type.as_deref() != Some("consumer") {
            return Vec::new();
        }
        self.members
            .values()
            .flat_map(|m| subscription_topics(&m.metadata(protocol)))
            .collect()
    }
}

/// The topics of a `ConsumerProtocolSubscription`: an i16 version, then the body in that
/// version. Versions above the newest known are read as the newest, as Kafka's
/// `ConsumerProtocol` does (later versions only add fields); garbage yields no topics.
fn subscription_topics(metadata: &Bytes) -> Vec<String> {
    let mut body = metadata.clone();
    if body.len() < 2 {
        return Vec::new();
    }
    let version = body.get_i16();
    let newest = ConsumerProtocolSubscription::VERSIONS.max;
    ConsumerProtocolSubscription::decode(&mut body, version.clamp(0, newest))
        .map(|s| s.topics.iter().map(ToString::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn subscription(version: i16, topics: &[&'static str]) -> Bytes {
        let s = ConsumerProtocolSubscription::default().with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_static_str(t))
                .collect(),
        );
        let mut b = bytes::BytesMut::new();
        b.put_i16(version);
        s.encode(
            &mut b,
            version.min(ConsumerProtocolSubscription::VERSIONS.max),
        )
        .unwrap();
        b.freeze()
    }

    #[test]
    fn subscribed_topics_come_from_the_consumer_protocol_subscription() {
        assert_eq!(
            subscription_topics(&subscription(0, &["a", "b"])),
            ["a", "b"]
        );
        assert_eq!(subscription_topics(&subscription(3, &["c"])), ["c"]);
        // A newer client's version is read as the newest known one.
        assert_eq!(subscription_topics(&subscription(9, &["d"])), ["d"]);
        assert!(subscription_topics(&Bytes::from_static(b"\x00\x00\x7f\xff\xff\xff")).is_empty());
        assert!(subscription_topics(&Bytes::new()).is_empty());
    }
}
