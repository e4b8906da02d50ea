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
