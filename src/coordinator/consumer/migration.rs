//! Online migration of a consumer group between the classic and the KIP-848 protocol
//! (Kafka's `GroupMetadataManager.convertToConsumerGroup` and `convertToClassicGroup`), as
//! `group.consumer.migration.policy` allows: the upgrade when a ConsumerGroupHeartbeat
//! joins a classic group with members, the downgrade when only classic members remain.
//! What classic members do inside a consumer group is in `classic_members.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::classic_members::{
    by_id, encode_assignment, join_refused, not_found, subscription, sync_refused,
    synced_assignment, ClassicMembership,
};
use super::records;
use super::{Assignment, ConsumerGroup, ConsumerMember, TopicsView};
use crate::coordinator::group::{Group, GroupState, Member};
use crate::coordinator::{CoordinatorError, GroupCoordinator};

impl GroupCoordinator {
    /// The names of topic ids, from the broker's topics now.
    pub(super) fn topic_names(&self) -> BTreeMap<Uuid, String> {
        self.logs
            .topics()
            .into_iter()
            .map(|t| (t.id, t.name.clone()))
            .collect()
    }

    /// Kafka's `validateOnlineUpgrade` and `convertToConsumerGroup`: classic group `group`,
    /// which has members, becomes a consumer group (returned; the group's classic fields are
    /// cleared). Parked JoinGroups and SyncGroups are answered REBALANCE_IN_PROGRESS.
    pub(crate) fn upgrade(
        &self,
        group: &mut Group,
        topics: &TopicsView,
        joining: &str,
        now: Instant,
    ) -> Result<ConsumerGroup, (CoordinatorError, Option<String>)> {
        let id = group.group_id.clone();
        let config = &self.config.consumer;
        if !config.migration.upgrades() {
            return Err(not_found(format!(
                "Cannot upgrade classic group {id} to consumer group because online upgrade is disabled."
            )));
        }
        if group.protocol_type.as_deref() != Some("consumer") {
            return Err(not_found(format!(
                "Cannot upgrade classic group {id} to consumer group because it does not use the consumer embedded protocol."
            )));
        }
        if group.members.len() > config.max_size {
            return Err(not_found(format!(
                "Cannot upgrade classic group {id} to consumer group because the group size exceeds the consumer group maximum size."
            )));
        }
        if !group.members.contains_key(joining) && group.members.len() >= config.max_size {
            return Err((
                CoordinatorError::GroupMaxSizeReached,
                Some(format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    config.max_size
                )),
            ));
        }
        let mut cg = ConsumerGroup {
            group_epoch: group.generation_id,
            assignment_epoch: group.generation_id,
            assignor: config.assignors[0].clone(),
            ..ConsumerGroup::default()
        };
        for m in group.members.values() {
            // The subscription of the group's protocol (a group still in its first rebalance
            // has none chosen: the member's first, where Kafka fails the heartbeat).
            let protocol = group
                .protocol_name
                .clone()
                .or_else(|| m.protocols.first().map(|(n, _)| n.clone()))
                .unwrap_or_default();
            let sub = subscription(&m.metadata(&protocol)).ok_or_else(|| {
                not_found(format!(
                    "Cannot upgrade classic group {id} to consumer group because the embedded consumer protocol is malformed."
                ))
            })?;
            let assigned = synced_assignment(&m.assignment).map_err(|why| {
                not_found(format!(
                    "Cannot upgrade classic group {id} to consumer group because {why}."
                ))
            })?;
            let assigned = by_id(&assigned, topics);
            let mut member = ConsumerMember::new(m.member_id.clone(), now);
            member.instance_id = m.group_instance_id.clone();
            member.rack_id = sub.rack_id.as_ref().map(ToString::to_string);
            member.client_id = m.client_id.clone();
            member.client_host = m.client_host.clone();
            let mut names: Vec<String> = sub.topics.iter().map(ToString::to_string).collect();
            names.sort();
            names.dedup();
            member.subscribed_topic_names = names;
            member.rebalance_timeout_ms = m.rebalance_timeout_ms;
            member.epoch = group.generation_id;
            member.previous_epoch = group.generation_id;
            member.assigned = assigned.clone();
            member.session_deadline =
                now + Duration::from_millis(m.session_timeout_ms.max(0) as u64);
            member.classic = Some(ClassicMembership::new(
                m.session_timeout_ms,
                m.protocols.clone(),
            ));
            if let Some(instance) = &m.group_instance_id {
                cg.static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            cg.target.insert(m.member_id.clone(), assigned);
            cg.members.insert(m.member_id.clone(), member);
        }
        cg.subscribed_partitions = topics
            .iter()
            .filter(|(name, _)| cg.members.values().any(|m| m.subscribes_to(name)))
            .map(|(_, (id, n))| (*id, *n))
            .collect();
        cg.metadata_hash = super::metadata_hash(&cg.subscribed_partitions);
        // The classic side is done: its parked requests learn that the group moved on.
        for m in group.members.values_mut() {
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(join_refused(
                    CoordinatorError::RebalanceInProgress,
                    &m.member_id,
                ));
            }
            if let Some(tx) = m.awaiting_sync.take() {
                let _ = tx.send(sync_refused(CoordinatorError::RebalanceInProgress));
            }
        }
        group.members.clear();
        group.pending_members.clear();
        group.static_members.clear();
        group.state = GroupState::Empty;
        group.leader_id = None;
        group.protocol_name = None;
        group.rebalance_deadline = None;
        group.sync_deadline = None;
        tracing::info!(group = %id, members = cg.members.len(), epoch = cg.group_epoch, "classic group upgraded to a consumer group");
        Ok(cg)
    }

    /// Kafka's consumer group downgrade: a consumer group whose members are all classic (at
    /// least one), after the removal of others, becomes a classic group at generation =
    /// `epoch`, its group epoch before that removal (members at that epoch can still commit),
    /// each member with its target assignment, and starts a rebalance. Returns the consumer
    /// group's tombstones, or None if it stays a consumer group.
    pub(crate) fn maybe_downgrade(
        &self,
        group: &mut Group,
        epoch: i32,
        now: Instant,
    ) -> Option<Vec<records::Record>> {
        let cg = group.consumer.as_ref()?;
        if cg.members.is_empty()
            || cg.members.values().any(|m| m.classic.is_none())
            || !self.config.consumer.migration.downgrades()
            || cg.members.len() > self.config.max_size
        {
            return None;
        }
        let cg = group.consumer.take()?;
        let names = self.topic_names();
        group.protocol_type = Some("consumer".into());
        group.generation_id = epoch;
        group.state = GroupState::Stable;
        group.static_members = cg.static_members.clone();
        let empty = Assignment::new();
        for m in cg.members.values() {
            let classic = m.classic.clone().expect("only classic members");
            let version = classic.assignment_version();
            let order = group.next_join_order;
            group.next_join_order += 1;
            group.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: classic.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: classic.protocols.clone(),
                    assignment: encode_assignment(
                        cg.target.get(&m.member_id).unwrap_or(&empty),
                        &names,
                        version,
                    ),
                    awaiting_join: None,
                    awaiting_sync: None,
                    synced: true,
                    session_deadline: now
                        + Duration::from_millis(classic.session_timeout_ms.max(0) as u64),
                    join_order: order,
                },
            );
        }
        group.protocol_name = group.select_protocol();
        group.leader_id = group.first_member();
        tracing::info!(group = %group.group_id, members = group.members.len(), generation = group.generation_id, "consumer group downgraded to a classic group");
        self.prepare_rebalance(group, now);
        Some(records::changes(&group.group_id, Some(&cg), None))
    }
}
