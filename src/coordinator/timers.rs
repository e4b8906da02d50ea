//! The coordinator's timers, run every 100 ms: member sessions (classic, consumer and
//! share groups), rebalance and sync timeouts, offset retention and the removal of groups
//! left with nothing. Consumer group records the timers produce are queued and written by
//! `run_timers` while it holds `consumer_writes`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::group::GroupState;
use super::rebalance::remove_member;
use super::{consumer, share, GroupCoordinator, PendingRecords};
use crate::log::now_ms;

impl GroupCoordinator {
    /// Session, rebalance and sync timeouts; every `offsets.retention.check.interval.ms`
    /// also offset retention and the removal of groups left with neither members nor
    /// offsets (until then such a group is still Empty, as in Kafka). Called periodically.
    /// Returns the offsets it expired, per group, for the caller to tombstone.
    pub fn tick(&self, now: Instant) -> Vec<(String, Vec<(String, i32)>)> {
        self.tick_groups(now, true)
    }

    /// `tick`; consumer groups only with `consumer` (the caller holds `consumer_writes`),
    /// so that a slow fsync of a consumer group's records does not hold up classic timers.
    fn tick_groups(&self, now: Instant, consumer: bool) -> Vec<(String, Vec<(String, i32)>)> {
        let mut expired_offsets: Vec<(String, Vec<(String, i32)>)> = Vec::new();
        let retention_ms = self.config.offsets_retention.as_millis() as i64;
        let wall = now_ms();
        let cleanup = {
            let mut next = self
                .next_cleanup
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = now >= *next;
            if due {
                *next = now + self.config.offsets_retention_check_interval;
            }
            due
        };
        {
            let mut groups = self.lock();
            for group in groups.values_mut() {
                if let Some(cg) = group.consumer.as_mut().filter(|cg| {
                    consumer
                        && cg.members.values().any(|m| {
                            m.session_deadline <= now
                                || m.revocation_deadline.is_some_and(|(at, _)| at <= now)
                                || m.classic.as_ref().is_some_and(|c| c.expired(now))
                                || (m.subscribed_topic_regex.is_some() && !m.regex_resolved)
                        })
                }) {
                    let before = cg.clone();
                    cg.resolve_regexes();
                    for id in cg.expire_members(now) {
                        tracing::info!(group = %group.group_id, member = %id, "consumer group member session or revocation timed out");
                    }
                    // Only classic members left: the group may become classic again.
                    if let Some(tombstones) = self.maybe_downgrade(group, before.group_epoch, now) {
                        self.queue_records(&group.group_id, tombstones, true);
                    } else if let Some(cg) = &group.consumer {
                        let records =
                            consumer::records::changes(&group.group_id, Some(&before), Some(cg));
                        if !records.is_empty() {
                            self.queue_records(&group.group_id, records, false);
                        }
                    }
                }
                if let Some(sg) = group
                    .share
                    .as_mut()
                    .filter(|sg| consumer && sg.members.values().any(|m| m.session_deadline <= now))
                {
                    let before = sg.clone();
                    for id in sg.expire_members(now) {
                        tracing::info!(group = %group.group_id, member = %id, "share group member session timed out");
                    }
                    let records = share::records::changes(&group.group_id, Some(&before), Some(sg));
                    self.queue_records(&group.group_id, records, false);
                }
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
                // Expired: every offset of a group without members; of a consumer group
                // with members, those of topics no member subscribes to (Kafka's
                // cleanupExpiredOffsets with isSubscribedToTopic).
                let consumer_members = group.consumer.as_ref().filter(|cg| !cg.members.is_empty());
                let expires = consumer_members.is_some()
                    || (group.state == GroupState::Empty && !group.has_members());
                if cleanup && expires && retention_ms > 0 {
                    let old: Vec<(String, i32)> = group
                        .offsets
                        .iter()
                        .filter(|(_, o)| wall.saturating_sub(o.commit_timestamp) > retention_ms)
                        .filter(|((topic, _), _)| {
                            consumer_members.is_none_or(|cg| {
                                !cg.members.values().any(|m| m.subscribes_to(topic))
                            })
                        })
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
            if cleanup {
                groups.retain(|id, g| {
                    // A consumer group goes only with `consumer`, and with its tombstones.
                    if g.consumer.is_some() && !consumer {
                        return true;
                    }
                    // A share group stays until it is deleted (its share-partitions' state
                    // is its progress).
                    if g.share.is_some() {
                        return true;
                    }
                    let gone = g.state == GroupState::Empty
                        && !g.has_members()
                        && g.offsets.is_empty()
                        && g.pending_members.is_empty();
                    if let (true, Some(cg)) = (gone, &g.consumer) {
                        self.queue_records(
                            id,
                            consumer::records::changes(id, Some(cg), None),
                            false,
                        );
                    }
                    !(g.state == GroupState::Empty
                        && !g.has_members()
                        && g.offsets.is_empty()
                        && g.pending_members.is_empty())
                });
            }
        }
        expired_offsets
    }

    /// Tombstones offsets that `tick` expired. A failure is logged: the offsets are gone
    /// from memory but not from disk, so after a restart they are loaded and expire again.
    async fn tombstone_expired(&self, expired: Vec<(String, Vec<(String, i32)>)>) {
        for (group, partitions) in expired {
            if let Err(e) = self.write_tombstones(&group, &partitions).await {
                tracing::error!(group = %group, error = %e, "writing tombstones for expired offsets failed");
            }
        }
    }

    /// Queues consumer group records for `run_timers`.
    fn queue_records(&self, group: &str, records: Vec<consumer::records::Record>, gone: bool) {
        if !records.is_empty() {
            self.timer_records
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(PendingRecords {
                    group: group.to_string(),
                    records,
                    gone,
                });
        }
    }

    /// Writes the queued consumer group records (the caller holds `consumer_writes`); a
    /// failure is logged (memory is then ahead of the disk: after a restart those members
    /// come back, and time out or rejoin).
    async fn write_timer_records(&self) {
        let pending = std::mem::take(
            &mut *self
                .timer_records
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for p in pending {
            let again = p.gone
                && self
                    .lock()
                    .get(&p.group)
                    .is_some_and(|g| g.consumer.is_some());
            if again {
                continue;
            }
            if let Err(e) = self.persist(&p.group, p.records, None).await {
                tracing::error!(group = %p.group, error = %e, "writing a consumer group's records failed");
            }
        }
    }

    /// A JoinGroup made group `id`, an empty consumer group, a classic one: its consumer
    /// group records get tombstones.
    pub(super) fn consumer_group_gone(&self, id: &str, cg: &consumer::ConsumerGroup) {
        self.queue_records(id, consumer::records::changes(id, Some(cg), None), true);
    }

    /// Runs `tick` every 100 ms until shutdown.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    // Consumer groups when no heartbeat is writing; classic ones always.
                    let serial = self.consumer_writes.try_lock().ok();
                    let expired = self.tick_groups(Instant::now(), serial.is_some());
                    if serial.is_some() {
                        self.write_timer_records().await;
                    }
                    drop(serial);
                    self.tombstone_expired(expired).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
