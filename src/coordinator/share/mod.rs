//! Share groups (KIP-932) in the group coordinator: membership and assignment. Members
//! join with ShareGroupHeartbeat and their topic subscriptions; the `simple` assignor gives
//! every member partitions to fetch from, sharing partitions when members outnumber them.
//! There is no revocation: a member's assignment changes as soon as the target does, since
//! records, not partitions, are what members own (`share/`).
//!
//! A group has a group epoch, bumped whenever the assignment's inputs change (a member
//! joins, leaves or changes its subscription; a subscribed topic's partitions change), and
//! an assignment epoch, the group epoch of its last target assignment. States: Empty (no
//! members) and Stable; Dead once deleted.
//!
//! Before a partition is assigned for the first time, its share-partition state is
//! initialised (`share/state_store.rs`; Kafka's InitializeShareGroupState, with the start
//! offset left for `share.auto.offset.reset` to decide at the first fetch). Kafka does this
//! after answering, so a new member's first heartbeat gets no partitions; Gregor does it
//! before, so it gets them at once.

pub mod assignor;
mod heartbeat;
pub mod records;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use tokio::time::Instant;

use crate::coordinator::consumer::Assignment;
pub use heartbeat::{ShareHeartbeat, ShareHeartbeatAnswer};

/// A member of a share group.
#[derive(Debug, Clone)]
pub struct ShareMember {
    pub member_id: String,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Sorted, without duplicates.
    pub subscribed_topic_names: Vec<String>,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub assigned: Assignment,
    pub session_deadline: Instant,
}

impl ShareMember {
    pub(crate) fn new(member_id: String, now: Instant) -> ShareMember {
        ShareMember {
            member_id,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            epoch: 0,
            previous_epoch: 0,
            assigned: Assignment::new(),
            session_deadline: now,
        }
    }
}

/// The share-protocol part of a group.
#[derive(Debug, Clone, Default)]
pub struct ShareGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ShareMember>,
    /// Each member's target assignment (as of `assignment_epoch`).
    pub target: BTreeMap<String, Assignment>,
    /// A hash of the subscribed topics' assignable partitions as of the last group epoch.
    pub metadata_hash: i64,
}

impl ShareGroup {
    /// "Empty" or "Stable", as Kafka names them.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    /// Removes a member (left or timed out) and bumps the group epoch: the next heartbeat
    /// reassigns its partitions.
    pub fn remove_member(&mut self, member_id: &str) {
        if self.members.remove(member_id).is_some() {
            self.target.remove(member_id);
            self.group_epoch += 1;
        }
    }

    /// Removes the members whose session expired; returns them.
    pub fn expire_members(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now)
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id);
        }
        expired
    }

    /// Every topic some member subscribes to.
    pub fn subscribed_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }
}
