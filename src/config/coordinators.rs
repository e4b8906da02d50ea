//! The settings of the two coordinators, resolved from broker config keys by
//! `BrokerConfig::from_raw`. They live here, not next to the coordinators, so that `config`
//! depends on nothing else in the crate.

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
