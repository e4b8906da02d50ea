//! The offset store (the offsets half of Kafka's `GroupMetadataManager`): OffsetCommit,
//! TxnOffsetCommit, OffsetFetch and OffsetDelete, written durably to the group's
//! `__consumer_offsets` partition before they are answered; transactional commits stay
//! pending until their transaction's marker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::coordinator::CoordinatorError;
use tokio::time::Instant;

use super::group::{CommittedOffset, Group, GroupState};
use super::offsets::{self, OFFSETS_TOPIC};
use super::{GroupCoordinator, OffsetCommitEntry, TopicOffsets};
use crate::coordinator::internal_topic::{append_durably, partition_log};
use crate::log::records::{RawRecord, TxnProducer};
use crate::log::{now_ms, Log};

impl GroupCoordinator {
    /// The `__consumer_offsets` partition of a group, creating the topic on first use.
    fn offsets_log(&self, group_id: &str) -> Result<Arc<Log>, CoordinatorError> {
        partition_log(
            &self.logs,
            OFFSETS_TOPIC,
            self.config.offsets_topic_partitions,
            self.config.offsets_topic_segment_bytes,
            group_id,
        )
    }

    /// Makes sure `__consumer_offsets` exists (FindCoordinator does this, as Kafka does).
    pub fn ensure_offsets_topic(&self, group_id: &str) -> Result<(), CoordinatorError> {
        self.offsets_log(group_id).map(|_| ())
    }

    /// Appends records to the group's offsets partition and waits until they are durable.
    /// With a producer (id, epoch) they are written as a transactional batch (no sequence),
    /// pending until that transaction's marker.
    pub(super) async fn persist(
        &self,
        group_id: &str,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        producer: Option<(i64, i16)>,
    ) -> Result<(), CoordinatorError> {
        if records.is_empty() {
            return Ok(());
        }
        let log = self.offsets_log(group_id)?;
        let refs: Vec<RawRecord<'_>> = records
            .iter()
            .map(|(k, v)| (Some(k.as_slice()), v.as_deref()))
            .collect();
        let txn = producer.map(|(producer_id, producer_epoch)| TxnProducer {
            producer_id,
            producer_epoch,
        });
        match self.append_shared(&log, &refs, txn).await {
            Some(committed) => committed,
            None => append_durably(&log, &refs, txn).await,
        }
    }

    /// Appends a tombstone for each of a group's `partitions` to its offsets partition and
    /// waits until they are durable: OffsetDelete, DeleteGroups and expiry answer (or move
    /// on) only once the deletion survives a crash.
    pub(super) async fn write_tombstones(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), CoordinatorError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let log = self.offsets_log(group_id)?;
        let records: Vec<Vec<u8>> = partitions
            .iter()
            .map(|(t, p)| offsets::encode_key(group_id, t, *p))
            .collect();
        let refs: Vec<RawRecord<'_>> = records.iter().map(|k| (Some(k.as_slice()), None)).collect();
        match self.append_shared(&log, &refs, None).await {
            Some(committed) => committed,
            None => append_durably(&log, &refs, None).await,
        }
    }

    #[cfg(test)]
    pub(crate) fn check_commit_for_test(
        &self,
        group_id: &str,
        member_id: &str,
        generation: i32,
    ) -> Result<(), CoordinatorError> {
        self.check_commit(group_id, member_id, None, generation)
    }

    /// Checks whether a member may commit (Kafka's rules, including simple consumers that
    /// commit with generation -1 to a group without members).
    fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), CoordinatorError> {
        if group_id.is_empty() {
            return Err(CoordinatorError::InvalidGroupId);
        }
        let now = Instant::now();
        let mut groups = self.lock();
        let group = match groups.get_mut(group_id) {
            Some(g) => g,
            None if generation < 0 => {
                groups.insert(group_id.to_string(), Group::new(group_id));
                return Ok(());
            }
            None => return Err(CoordinatorError::UnknownMemberId),
        };
        if group.state == GroupState::Dead {
            return Err(CoordinatorError::CoordinatorNotAvailable);
        }
        if group.share.is_some() {
            return Err(CoordinatorError::GroupIdNotFound);
        }
        if let Some(cg) = &group.consumer {
            // Kafka's ConsumerGroup.validateOffsetCommit: a commit outside the group only
            // while it has no members; a member's with exactly its current epoch.
            if generation < 0 && cg.members.is_empty() {
                return Ok(());
            }
            let member = cg
                .members
                .get(member_id)
                .ok_or(CoordinatorError::UnknownMemberId)?;
            if member.epoch != generation {
                // A classic member speaks of generations (Kafka's validateOffsetCommit).
                return Err(if member.classic.is_some() {
                    CoordinatorError::IllegalGeneration
                } else {
                    CoordinatorError::StaleMemberEpoch
                });
            }
            return Ok(());
        }
        if generation < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        // Member and generation first, as Kafka's ClassicGroup.validateOffsetCommit: a member
        // committing with the previous generation while the group completes a rebalance gets
        // ILLEGAL_GENERATION (clients then drop the commit), not REBALANCE_IN_PROGRESS.
        Self::check_member(group, member_id, instance, generation)?;
        if group.state == GroupState::CompletingRebalance {
            return Err(CoordinatorError::RebalanceInProgress);
        }
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
        let mut codes = vec![Ok(()); entries.len()];
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let known = self
                .logs
                .topic(&e.topic)
                .is_some_and(|t| t.partition(e.partition).is_some());
            let metadata = e.metadata.clone().unwrap_or_default();
            if !known {
                codes[i] = Err(CoordinatorError::UnknownTopicOrPartition);
            } else if metadata.len() > self.config.offset_metadata_max_bytes {
                codes[i] = Err(CoordinatorError::OffsetMetadataTooLarge);
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

    /// OffsetCommit: returns one outcome per entry.
    pub async fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        entries: Vec<OffsetCommitEntry>,
    ) -> Vec<Result<(), CoordinatorError>> {
        if let Err(e) = self.check_commit(group_id, member_id, instance, generation) {
            return vec![Err(e); entries.len()];
        }
        let (mut codes, records, accepted) = self.offset_records(group_id, &entries);
        if let Err(err) = self.persist(group_id, records, None).await {
            for (i, ..) in &accepted {
                codes[*i] = Err(err);
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
    ) -> Vec<Result<(), CoordinatorError>> {
        if group_id.is_empty() {
            return vec![Err(CoordinatorError::InvalidGroupId); entries.len()];
        }
        if let Some((member_id, instance, generation)) = member {
            let groups = self.lock();
            if groups.get(group_id).is_some_and(|g| g.share.is_some()) {
                return vec![Err(CoordinatorError::GroupIdNotFound); entries.len()];
            }
            if let Some(group) = groups.get(group_id) {
                // Kafka's ConsumerGroup.validateOffsetCommit for transactions: a member of
                // a consumer group commits with its current epoch (else ILLEGAL_GENERATION).
                let checked = match &group.consumer {
                    Some(cg) if !cg.members.is_empty() && generation >= 0 => {
                        match cg.members.get(member_id) {
                            None => Err(CoordinatorError::UnknownMemberId),
                            Some(m) if m.epoch != generation => {
                                Err(CoordinatorError::IllegalGeneration)
                            }
                            Some(_) => Ok(()),
                        }
                    }
                    Some(_) => Ok(()),
                    None if !group.members.is_empty() => {
                        Self::check_member(group, member_id, instance, generation)
                    }
                    None => Ok(()),
                };
                if let Err(e) = checked {
                    return vec![Err(e); entries.len()];
                }
            }
        }
        let (codes, records, accepted) = self.offset_records(group_id, &entries);
        if let Err(err) = self
            .persist(group_id, records, Some((producer_id, producer_epoch)))
            .await
        {
            return vec![Err(err); entries.len()];
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
        if let Some(topics) = topics {
            topics
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
                .collect()
        } else {
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

    /// OffsetDelete: a group-level error, or per-partition codes.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), CoordinatorError>>, CoordinatorError> {
        let (codes, deleted) = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(group_id).filter(|g| g.share.is_none()) else {
                return Err(CoordinatorError::GroupIdNotFound);
            };
            if group.state != GroupState::Empty
                && group.protocol_type.as_deref() != Some("consumer")
            {
                return Err(CoordinatorError::NonEmptyGroup);
            }
            let subscribed = if let Some(cg) = &group.consumer {
                // A consumer group: the topics its members subscribe to (by name or regex).
                partitions
                    .iter()
                    .map(|(t, _)| t.clone())
                    .filter(|t| cg.members.values().any(|m| m.subscribes_to(t)))
                    .collect()
            } else if group.state == GroupState::Empty {
                Vec::new()
            } else {
                group.subscribed_topics()
            };
            let mut codes = Vec::new();
            let mut deleted = Vec::new();
            for (t, p) in partitions {
                if subscribed.contains(t) {
                    codes.push(Err(CoordinatorError::GroupSubscribedToTopic));
                } else {
                    if let Some(o) = group.offsets.remove(&(t.clone(), *p)) {
                        deleted.push(((t.clone(), *p), o));
                    }
                    codes.push(Ok(()));
                }
            }
            (codes, deleted)
        };
        let keys: Vec<(String, i32)> = deleted.iter().map(|(k, _)| k.clone()).collect();
        if let Err(e) = self.write_tombstones(group_id, &keys).await {
            // Not deleted after all: the offsets are still on disk, so they stay in memory
            // too (unless a newer commit replaced them meanwhile).
            if let Some(group) = self.lock().get_mut(group_id) {
                for (k, o) in deleted {
                    group.offsets.entry(k).or_insert(o);
                }
            }
            return Err(e);
        }
        Ok(codes)
    }
}

/// Validated commit entries: codes per entry, records to write, accepted values.
type OffsetRecords = (
    Vec<Result<(), CoordinatorError>>,
    Vec<(Vec<u8>, Option<Vec<u8>>)>,
    Vec<(usize, String, i32, CommittedOffset)>,
);
