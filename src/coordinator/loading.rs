//! Loading a coordinator's groups from `__consumer_offsets` (Kafka's
//! `loadGroupsAndOffsets`): at start-up for every partition, in cluster mode for the
//! partitions this broker takes over (`hand_over.rs`).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::internal_topic::{self, ReplayError};
use super::offsets::{self, OFFSETS_TOPIC};
use super::{consumer, group_configs, share, Group};
use crate::config::CoordinatorConfig;
use crate::log_manager::LogManager;

/// Replays the groups kept in the `__consumer_offsets` partitions `wanted` accepts: their
/// committed offsets, pending transactional offsets, and consumer and share groups with
/// their members (each with a fresh session, as after a coordinator failover in Kafka).
pub(super) fn replay_groups(
    config: &CoordinatorConfig,
    logs: &LogManager,
    wanted: impl Fn(i32) -> bool,
) -> Result<HashMap<String, Group>, ReplayError> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    let mut consumer_groups = consumer::records::Replayed::default();
    let mut share_groups = share::records::Replayed::default();
    let now = Instant::now();
    if let Some(topic) = logs.topic(OFFSETS_TOPIC) {
        for log in topic
            .partitions
            .iter()
            .filter(|l| wanted(l.topic_partition().partition))
        {
            replay_modern_groups(log, &mut consumer_groups, &mut share_groups, now)?;
            let (records, pending) = offsets::replay(log)?;
            for (producer_id, records) in pending {
                for r in records {
                    let group = groups
                        .entry(r.group.clone())
                        .or_insert_with(|| Group::new(&r.group));
                    if let Some(v) = r.value {
                        group
                            .pending_txn_offsets
                            .entry(producer_id)
                            .or_default()
                            .insert((r.topic, r.partition), v);
                    }
                }
            }
            for record in records {
                let group = groups
                    .entry(record.group.clone())
                    .or_insert_with(|| Group::new(&record.group));
                let key = (record.topic, record.partition);
                match record.value {
                    Some(v) => {
                        group.offsets.insert(key, v);
                    }
                    None => {
                        group.offsets.remove(&key);
                    }
                }
            }
        }
        groups.retain(|_, g| !g.offsets.is_empty() || !g.pending_txn_offsets.is_empty());
        tracing::info!(groups = groups.len(), "loaded committed offsets");
    }
    // Consumer groups come back with their members, each with a fresh session (as in
    // Kafka after a coordinator failover): members that are gone time out.
    let session = Duration::from_millis(config.consumer.session_timeout_ms as u64);
    for (id, mut cg) in consumer_groups.groups {
        for m in cg.members.values_mut() {
            m.session_deadline = now + session;
        }
        cg.assignor = consumer::preferred_assignor(&cg, &config.consumer.assignors[0]);
        tracing::info!(group = %id, members = cg.members.len(), epoch = cg.group_epoch, "loaded consumer group");
        groups
            .entry(id.clone())
            .or_insert_with(|| Group::new(&id))
            .consumer = Some(cg);
    }
    let share_session = Duration::from_millis(config.share.session_timeout_ms as u64);
    for (id, mut sg) in share_groups.groups {
        for m in sg.members.values_mut() {
            m.session_deadline = now + share_session;
        }
        tracing::info!(group = %id, members = sg.members.len(), epoch = sg.group_epoch, "loaded share group");
        groups
            .entry(id.clone())
            .or_insert_with(|| Group::new(&id))
            .share = Some(sg);
    }
    Ok(groups)
}

/// Gives the loaded members of `groups` a fresh session by their group's configs.
pub(super) fn fresh_sessions<'a>(
    store: &group_configs::GroupConfigs,
    config: &CoordinatorConfig,
    groups: impl Iterator<Item = (&'a String, &'a mut Group)>,
) {
    let now = Instant::now();
    for (id, g) in groups {
        if let Some(cg) = g.consumer.as_mut() {
            let ms = store.session_timeout_ms(id, config);
            for m in cg.members.values_mut() {
                m.session_deadline = now + Duration::from_millis(ms.max(0) as u64);
            }
        }
        if let Some(sg) = g.share.as_mut() {
            let ms = store.share_session_timeout_ms(id, config);
            for m in sg.members.values_mut() {
                m.session_deadline = now + Duration::from_millis(ms.max(0) as u64);
            }
        }
    }
}

/// Replays the consumer and share group records of one `__consumer_offsets` partition
/// (offset commits and transactional batches are the offset replay's), in one pass.
fn replay_modern_groups(
    log: &crate::log::Log,
    consumer_groups: &mut consumer::records::Replayed,
    share_groups: &mut share::records::Replayed,
    now: Instant,
) -> Result<(), ReplayError> {
    internal_topic::for_each_batch(log, |h, batch| {
        if h.is_control() || h.is_transactional() {
            return Ok(());
        }
        let records = crate::log::records::decode_key_values(batch)
            .ok_or("a batch's records do not decode")?;
        for kv in records {
            if let Some(key) = &kv.key {
                if !consumer_groups.apply(key, kv.value.as_deref(), now) {
                    share_groups.apply(key, kv.value.as_deref(), now);
                }
            }
        }
        Ok(())
    })
}
