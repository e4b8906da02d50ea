//! The settings of the two coordinators, resolved from broker config keys by
//! `BrokerConfig::from_raw`. They live here, not next to the coordinators, so that `config`
//! depends on nothing else in the crate.

use super::{ConfigError, RawConfig};
use std::time::Duration;

/// The `group.*` and `offsets.*` broker settings the group coordinator obeys.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
    /// `offsets.retention.minutes`.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval: Duration,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_partitions: i32,
    /// `offsets.topic.segment.bytes`: segment size of `__consumer_offsets` (the cleaner
    /// compacts sealed segments only).
    pub offsets_topic_segment_bytes: i32,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// The consumer group protocol (KIP-848).
    pub consumer: ConsumerGroupConfig,
    /// Share groups (KIP-932).
    pub share: ShareGroupConfig,
}

/// The `group.consumer.*` broker settings (KIP-848 consumer groups); Kafka's defaults.
#[derive(Debug, Clone)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.min.session.timeout.ms`, `group.consumer.max.session.timeout.ms`:
    /// the bounds of the group config `consumer.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `group.consumer.min.heartbeat.interval.ms`, `group.consumer.max.heartbeat.interval.ms`.
    pub min_heartbeat_interval_ms: i32,
    pub max_heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`.
    pub max_size: usize,
    /// `group.consumer.assignors`, the first is the default.
    pub assignors: Vec<String>,
    /// `group.consumer.migration.policy`: whether groups with members move between the
    /// classic and the consumer protocol.
    pub migration: MigrationPolicy,
}

/// `group.consumer.migration.policy` (Kafka's `ConsumerGroupMigrationPolicy`). Only groups
/// with members are concerned: an empty group changes protocol whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    Bidirectional,
    Upgrade,
    Downgrade,
    Disabled,
}

impl MigrationPolicy {
    pub fn parse(value: &str) -> Option<MigrationPolicy> {
        match value.trim().to_ascii_lowercase().as_str() {
            "bidirectional" => Some(MigrationPolicy::Bidirectional),
            "upgrade" => Some(MigrationPolicy::Upgrade),
            "downgrade" => Some(MigrationPolicy::Downgrade),
            "disabled" => Some(MigrationPolicy::Disabled),
            _ => None,
        }
    }

    /// A live classic group may become a consumer group.
    pub fn upgrades(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Upgrade
        )
    }

    /// A consumer group left with classic members only may become a classic group.
    pub fn downgrades(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Downgrade
        )
    }
}

/// The `group.share.*` and `share.coordinator.*` broker settings (KIP-932 share groups);
/// Kafka's defaults and bounds.
#[derive(Debug, Clone)]
pub struct ShareGroupConfig {
    /// `group.share.enable`: whether share groups are served (Kafka enables them with the
    /// `share.version` feature, on by default since 4.2; this is its internal switch).
    pub enable: bool,
    /// `group.share.session.timeout.ms`, `group.share.heartbeat.interval.ms` and their
    /// min/max: the bounds of the group configs `share.session.timeout.ms` and
    /// `share.heartbeat.interval.ms`.
    pub session_timeout_ms: i32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    pub min_heartbeat_interval_ms: i32,
    pub max_heartbeat_interval_ms: i32,
    /// `group.share.max.size`.
    pub max_size: usize,
    /// `group.share.assignors` (only `simple`).
    pub assignors: Vec<String>,
    /// `group.share.record.lock.duration.ms` and its min/max (the bounds of the group config
    /// `share.record.lock.duration.ms`).
    pub record_lock_duration_ms: i32,
    pub min_record_lock_duration_ms: i32,
    pub max_record_lock_duration_ms: i32,
    /// `group.share.delivery.count.limit`: deliveries of a record before it is archived.
    pub delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks`: most offsets in flight per share-partition.
    pub partition_max_record_locks: i32,
    /// `group.share.max.share.sessions`: share sessions on this broker.
    pub max_share_sessions: usize,
    /// `share.coordinator.state.topic.num.partitions`.
    pub state_topic_partitions: i32,
    /// `share.coordinator.state.topic.segment.bytes`.
    pub state_topic_segment_bytes: i32,
    /// `share.coordinator.snapshot.update.records.per.snapshot`: updates of a share-partition's
    /// state before a whole snapshot is written instead.
    pub snapshot_update_records_per_snapshot: u32,
    /// `share.coordinator.state.topic.prune.interval.ms`.
    pub state_topic_prune_interval_ms: i64,
}

/// The `transaction.*` broker settings the transaction coordinator obeys.
#[derive(Debug, Clone)]
pub struct TransactionConfig {
    /// `transaction.max.timeout.ms`: the longest timeout a producer may ask for.
    pub max_timeout_ms: i32,
    /// `transaction.state.log.num.partitions`.
    pub state_partitions: i32,
    /// `transaction.state.log.segment.bytes`.
    pub state_segment_bytes: i32,
}

/// The `group.consumer.*` settings, checked against their bounds as Kafka's
/// `GroupCoordinatorConfig` does.
pub(super) fn consumer_group_config(raw: &RawConfig) -> Result<ConsumerGroupConfig, ConfigError> {
    let int = |key: &str, default: i64| -> Result<i32, ConfigError> {
        Ok(raw.int(key, default, 1, i32::MAX as i64)? as i32)
    };
    let min_session = int("group.consumer.min.session.timeout.ms", 45_000)?;
    let max_session = int("group.consumer.max.session.timeout.ms", 60_000)?;
    let min_heartbeat = int("group.consumer.min.heartbeat.interval.ms", 5_000)?;
    let max_heartbeat = int("group.consumer.max.heartbeat.interval.ms", 15_000)?;
    let session = raw.int(
        "group.consumer.session.timeout.ms",
        45_000,
        min_session as i64,
        max_session as i64,
    )? as i32;
    let heartbeat = raw.int(
        "group.consumer.heartbeat.interval.ms",
        5_000,
        min_heartbeat as i64,
        max_heartbeat as i64,
    )? as i32;
    if heartbeat >= session {
        return Err(ConfigError::new(
            "group.consumer.heartbeat.interval.ms",
            "must be less than group.consumer.session.timeout.ms",
        ));
    }
    let assignors: Vec<String> = raw
        .string("group.consumer.assignors", "uniform,range")
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    if let Some(unknown) = assignors
        .iter()
        .find(|a| !crate::coordinator::consumer::assignor::ASSIGNORS.contains(&a.as_str()))
    {
        return Err(ConfigError::new(
            "group.consumer.assignors",
            format!("unknown assignor {unknown} (this broker has uniform and range)"),
        ));
    }
    if assignors.is_empty() {
        return Err(ConfigError::new(
            "group.consumer.assignors",
            "must not be empty",
        ));
    }
    Ok(ConsumerGroupConfig {
        session_timeout_ms: session,
        heartbeat_interval_ms: heartbeat,
        min_session_timeout_ms: min_session,
        max_session_timeout_ms: max_session,
        min_heartbeat_interval_ms: min_heartbeat,
        max_heartbeat_interval_ms: max_heartbeat,
        max_size: raw.int(
            "group.consumer.max.size",
            i32::MAX as i64,
            1,
            i32::MAX as i64,
        )? as usize,
        assignors,
        migration: {
            let value = raw.string("group.consumer.migration.policy", "bidirectional");
            MigrationPolicy::parse(&value).ok_or_else(|| {
                ConfigError::new(
                    "group.consumer.migration.policy",
                    format!("{value} is not one of bidirectional, upgrade, downgrade, disabled"),
                )
            })?
        },
    })
}

/// The `group.share.*` and `share.coordinator.*` settings, checked against their bounds as
/// Kafka's `GroupCoordinatorConfig`, `ShareGroupConfig` and `ShareCoordinatorConfig` do.
/// Share groups; off in cluster mode (`clustered`), where the share-partitions' state is
/// not shared between brokers yet (docs/cluster.md): asking for them there is an error.
pub(super) fn share_group_config(
    raw: &RawConfig,
    clustered: bool,
) -> Result<ShareGroupConfig, ConfigError> {
    let enable = raw.bool("group.share.enable", true)?;
    let asked = raw.get("group.share.enable").is_some() && !raw.is_shipped("group.share.enable");
    if clustered && enable && asked {
        return Err(ConfigError::new(
            "group.share.enable",
            "share groups are not supported in cluster mode yet (docs/cluster.md)",
        ));
    }
    let int = |key: &str, default: i64, min: i64, max: i64| -> Result<i32, ConfigError> {
        Ok(raw.int(key, default, min, max)? as i32)
    };
    let max = i32::MAX as i64;
    let min_session = int("group.share.min.session.timeout.ms", 45_000, 1, max)?;
    let max_session = int("group.share.max.session.timeout.ms", 60_000, 1, max)?;
    let min_heartbeat = int("group.share.min.heartbeat.interval.ms", 5_000, 1, max)?;
    let max_heartbeat = int("group.share.max.heartbeat.interval.ms", 15_000, 1, max)?;
    let session = int(
        "group.share.session.timeout.ms",
        45_000,
        min_session as i64,
        max_session as i64,
    )?;
    let heartbeat = int(
        "group.share.heartbeat.interval.ms",
        5_000,
        min_heartbeat as i64,
        max_heartbeat as i64,
    )?;
    if heartbeat >= session {
        return Err(ConfigError::new(
            "group.share.heartbeat.interval.ms",
            "must be less than group.share.session.timeout.ms",
        ));
    }
    let min_lock = int(
        "group.share.min.record.lock.duration.ms",
        15_000,
        1000,
        30_000,
    )?;
    let max_lock = int(
        "group.share.max.record.lock.duration.ms",
        60_000,
        30_000,
        3_600_000,
    )?;
    let lock = int(
        "group.share.record.lock.duration.ms",
        30_000,
        1000,
        3_600_000,
    )?;
    if lock < min_lock || lock > max_lock {
        return Err(ConfigError::new(
            "group.share.record.lock.duration.ms",
            format!("must be between group.share.min.record.lock.duration.ms ({min_lock}) and group.share.max.record.lock.duration.ms ({max_lock})"),
        ));
    }
    let assignors: Vec<String> = raw
        .string("group.share.assignors", "simple")
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    if assignors != ["simple"] {
        return Err(ConfigError::new(
            "group.share.assignors",
            "must be simple (the one share group assignor)",
        ));
    }
    Ok(ShareGroupConfig {
        enable: enable && !clustered,
        session_timeout_ms: session,
        min_session_timeout_ms: min_session,
        max_session_timeout_ms: max_session,
        heartbeat_interval_ms: heartbeat,
        min_heartbeat_interval_ms: min_heartbeat,
        max_heartbeat_interval_ms: max_heartbeat,
        max_size: int("group.share.max.size", 200, 1, 1000)? as usize,
        assignors,
        record_lock_duration_ms: lock,
        min_record_lock_duration_ms: min_lock,
        max_record_lock_duration_ms: max_lock,
        delivery_count_limit: int("group.share.delivery.count.limit", 5, 2, 10)? as i16,
        partition_max_record_locks: int(
            "group.share.partition.max.record.locks",
            2000,
            100,
            10_000,
        )?,
        max_share_sessions: int("group.share.max.share.sessions", 2000, 1, max)? as usize,
        state_topic_partitions: int("share.coordinator.state.topic.num.partitions", 50, 1, 1000)?,
        state_topic_segment_bytes: int(
            "share.coordinator.state.topic.segment.bytes",
            104_857_600,
            14,
            max,
        )?,
        snapshot_update_records_per_snapshot: int(
            "share.coordinator.snapshot.update.records.per.snapshot",
            500,
            0,
            500,
        )? as u32,
        state_topic_prune_interval_ms: raw.int(
            "share.coordinator.state.topic.prune.interval.ms",
            300_000,
            1,
            i64::MAX,
        )?,
    })
}
