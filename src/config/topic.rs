//! Per-topic log configuration: the broker's `log.*` defaults with a topic's overrides
//! (Kafka's topic-level names: `segment.bytes`, `flush.messages`, ...) applied on top.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::log::page_cache::PageCache;

use super::raw::parse_int;
use super::ConfigError;

/// Which timestamp a stored batch carries (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    pub fn parse(key: &str, value: &str) -> Result<TimestampType, ConfigError> {
        match value.trim() {
            "CreateTime" => Ok(TimestampType::CreateTime),
            "LogAppendTime" => Ok(TimestampType::LogAppendTime),
            other => Err(ConfigError::new(
                key,
                format!("`{other}` is not CreateTime or LogAppendTime"),
            )),
        }
    }
}

/// How one partition's log behaves. Built from broker defaults plus topic overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub index_interval_bytes: u64,
    /// 1 = fsync before acknowledging; more = acknowledge first, fsync every N messages.
    pub flush_messages: u64,
    pub flush_ms: Option<i64>,
    pub max_message_bytes: usize,
    pub message_timestamp_type: TimestampType,
    /// Segments whose newest record is older than this are deleted (-1: never).
    pub retention_ms: i64,
    /// Oldest segments are deleted while the partition is larger than this (-1: no limit).
    pub retention_bytes: i64,
    /// `cleanup.policy` includes `delete` (retention applies).
    pub cleanup_delete: bool,
    /// `cleanup.policy` includes `compact` (the log cleaner keeps the latest record per key).
    pub cleanup_compact: bool,
    /// How the log cleaner treats this log, when it is compacted.
    pub compaction: CompactionConfig,
    /// The broker's page-cache budget (`log.cache.hot.bytes`), shared by every log.
    pub page_cache: Arc<PageCache>,
}

/// The topic configs of compaction (`delete.retention.ms`, `min.cleanable.dirty.ratio`,
/// `min.compaction.lag.ms`, `max.compaction.lag.ms`); the defaults are Kafka's.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionConfig {
    /// How long a tombstone or transaction marker survives after the cleaner passed it.
    pub delete_retention_ms: i64,
    /// Share of dirty bytes (written since the last cleaning) that makes a log cleanable.
    pub min_cleanable_dirty_ratio: f64,
    /// Records younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// Records older than this are cleaned whatever the dirty ratio (and the active
    /// segment of a compacted log is rolled after this long).
    pub max_compaction_lag_ms: i64,
}

impl Default for CompactionConfig {
    fn default() -> CompactionConfig {
        CompactionConfig {
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }
}

/// Parses `cleanup.policy`: (delete, compact).
pub fn cleanup_policy(value: &str) -> (bool, bool) {
    let has = |name: &str| value.split(',').any(|p| p.trim() == name);
    (has("delete"), has("compact"))
}

impl LogConfig {
    /// Kafka's `maxSegmentMs`: a compacted log also rolls its active segment once it is
    /// `max.compaction.lag.ms` old, so the cleaner can reach its records.
    pub fn roll_ms(&self) -> i64 {
        if self.cleanup_compact {
            self.segment_ms.min(self.compaction.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }

    /// Whether producers wait for the fsync of their data (and consumers see only fsynced data).
    pub fn is_durable(&self) -> bool {
        self.flush_messages <= 1
    }

    /// `self` with a topic's configs applied; an unknown key or bad value is an error naming it.
    pub fn with_overrides(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        let mut config = self.clone();
        for (key, value) in overrides {
            validate_topic_config(key, value)?;
            let int = |min, max| parse_int(key, value, min, max);
            match key.as_str() {
                "segment.bytes" => config.segment_bytes = int(14, i32::MAX as i64)? as u64,
                "segment.ms" => config.segment_ms = int(1, i64::MAX)?,
                "index.interval.bytes" => {
                    config.index_interval_bytes = int(0, i32::MAX as i64)? as u64;
                }
                "flush.messages" => config.flush_messages = int(1, i64::MAX)? as u64,
                "flush.ms" => config.flush_ms = Some(int(0, i64::MAX)?),
                "max.message.bytes" => config.max_message_bytes = int(0, i32::MAX as i64)? as usize,
                "message.timestamp.type" => {
                    config.message_timestamp_type = TimestampType::parse(key, value)?;
                }
                "retention.ms" => config.retention_ms = int(-1, i64::MAX)?,
                "retention.bytes" => config.retention_bytes = int(-1, i64::MAX)?,
                "cleanup.policy" => {
                    (config.cleanup_delete, config.cleanup_compact) = cleanup_policy(value);
                }
                "delete.retention.ms" => config.compaction.delete_retention_ms = int(0, i64::MAX)?,
                "min.cleanable.dirty.ratio" => {
                    config.compaction.min_cleanable_dirty_ratio =
                        value.trim().parse().unwrap_or(0.5);
                }
                "min.compaction.lag.ms" => {
                    config.compaction.min_compaction_lag_ms = int(0, i64::MAX)?;
                }
                "max.compaction.lag.ms" => {
                    config.compaction.max_compaction_lag_ms = int(1, i64::MAX)?;
                }
                _ => {}
            }
        }
        Ok(config)
    }
}

/// The kind of value a topic config takes, for validation.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int { min: i64, max: i64 },
    Bool,
    Ratio,
    OneOf(&'static [&'static str]),
    CleanupPolicy,
    Text,
}

/// Kafka's `ConfigDef.Type` codes, as DescribeConfigs v3+ reports them.
pub mod config_type {
    pub const BOOLEAN: i8 = 1;
    pub const STRING: i8 = 2;
    pub const INT: i8 = 3;
    pub const LONG: i8 = 5;
    pub const DOUBLE: i8 = 6;
    pub const LIST: i8 = 7;
}

/// A Kafka topic config: its value kind and type, the broker settings it defaults to (in
/// Kafka's order of precedence, `ServerTopicConfigSynonyms`; empty when there is none), and
/// its documentation.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    kind: Kind,
    pub config_type: i8,
    pub synonyms: &'static [&'static str],
    pub doc: &'static str,
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

const I32: i64 = i32::MAX as i64;
const I64: i64 = i64::MAX;

macro_rules! def {
    ($name:expr, $kind:expr, $ty:ident, [$($synonym:expr),*], $doc:expr) => {
        TopicConfigDef {
            name: $name,
            kind: $kind,
            config_type: config_type::$ty,
            synonyms: &[$($synonym),*],
            doc: $doc,
        }
    };
}

/// The topic configs of Kafka 4.1. Gregor acts on the ones `LogConfig` has fields for; the
/// rest are validated, stored and reported (see the README).
#[rustfmt::skip]
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def!("cleanup.policy", Kind::CleanupPolicy, LIST, ["log.cleanup.policy"], "The retention policy of old log segments: delete (retention deletes old segments) and/or compact (the log cleaner keeps the latest record of each key)."),
    def!("compression.gzip.level", int(-1, 9), INT, ["compression.gzip.level"], "Compression level for gzip."),
    def!("compression.lz4.level", int(1, 17), INT, ["compression.lz4.level"], "Compression level for lz4."),
    def!("compression.type", Kind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), STRING, ["compression.type"], "Final compression of the topic's data; producer keeps the producer's codec (Gregor always stores batches as produced)."),
    def!("compression.zstd.level", int(-131_072, 22), INT, ["compression.zstd.level"], "Compression level for zstd."),
    def!("delete.retention.ms", int(0, I64), LONG, ["log.cleaner.delete.retention.ms"], "How long tombstones and transaction markers of a compacted topic survive after the cleaner has passed them."),
    def!("file.delete.delay.ms", int(0, I64), LONG, ["log.segment.delete.delay.ms"], "Time to wait before deleting a file from the filesystem (stored only)."),
    def!("flush.messages", int(1, I64), LONG, ["log.flush.interval.messages"], "Messages written before an fsync; 1 means every produce is fsynced before it is acknowledged."),
    def!("flush.ms", int(0, I64), LONG, ["log.flush.interval.ms", "log.flush.scheduler.interval.ms"], "Longest time unflushed data may wait for an fsync."),
    def!("follower.replication.throttled.replicas", Kind::Text, LIST, [], "Replicas to throttle on the follower side (no replication here; stored only)."),
    def!("index.interval.bytes", int(0, I32), INT, ["log.index.interval.bytes"], "Bytes of log between two offset index entries."),
    def!("leader.replication.throttled.replicas", Kind::Text, LIST, [], "Replicas to throttle on the leader side (no replication here; stored only)."),
    def!("local.retention.bytes", int(-2, I64), LONG, ["log.local.retention.bytes"], "Local retention size with tiered storage (stored only)."),
    def!("local.retention.ms", int(-2, I64), LONG, ["log.local.retention.ms"], "Local retention time with tiered storage (stored only)."),
    def!("max.compaction.lag.ms", int(1, I64), LONG, ["log.cleaner.max.compaction.lag.ms"], "Longest time a record stays uncompacted: older dirty records make the log cleanable whatever its dirty ratio."),
    def!("max.message.bytes", int(0, I32), INT, ["message.max.bytes"], "Largest record batch size allowed in this topic."),
    def!("message.timestamp.after.max.ms", int(0, I64), LONG, ["log.message.timestamp.after.max.ms"], "Largest allowed difference of a message timestamp ahead of the broker's clock (stored only)."),
    def!("message.timestamp.before.max.ms", int(0, I64), LONG, ["log.message.timestamp.before.max.ms"], "Largest allowed difference of a message timestamp behind the broker's clock (stored only)."),
    def!("message.timestamp.type", Kind::OneOf(&["CreateTime", "LogAppendTime"]), STRING, ["log.message.timestamp.type"], "Whether stored timestamps are the producer's (CreateTime) or the broker's (LogAppendTime)."),
    def!("min.cleanable.dirty.ratio", Kind::Ratio, DOUBLE, ["log.cleaner.min.cleanable.ratio"], "Share of a compacted log written since its last cleaning that makes it eligible for cleaning."),
    def!("min.compaction.lag.ms", int(0, I64), LONG, ["log.cleaner.min.compaction.lag.ms"], "Shortest time a record stays uncompacted."),
    def!("min.insync.replicas", int(1, I32), INT, ["min.insync.replicas"], "Replicas that must acknowledge an acks=all write (one node: always satisfied)."),
    def!("preallocate", Kind::Bool, BOOLEAN, ["log.preallocate"], "Preallocate segment files (stored only)."),
    def!("remote.log.copy.disable", Kind::Bool, BOOLEAN, [], "Stop copying segments to tiered storage (no tiered storage here; stored only)."),
    def!("remote.log.delete.on.disable", Kind::Bool, BOOLEAN, [], "Delete tiered data when tiered storage is disabled (no tiered storage here; stored only)."),
    def!("remote.storage.enable", Kind::Bool, BOOLEAN, [], "Tiered storage for this topic (not supported; stored only)."),
    def!("retention.bytes", int(-1, I64), LONG, ["log.retention.bytes"], "Largest size a partition may grow to before its oldest segments are deleted."),
    def!("retention.ms", int(-1, I64), LONG, ["log.retention.ms", "log.retention.minutes", "log.retention.hours"], "How long a segment is kept (after its newest record) before it is deleted."),
    def!("segment.bytes", int(14, I32), INT, ["log.segment.bytes"], "Size at which a segment file is rolled."),
    def!("segment.index.bytes", int(4, I32), INT, ["log.index.size.max.bytes"], "Largest offset index size (stored only; Gregor's indexes grow as needed)."),
    def!("segment.jitter.ms", int(0, I64), LONG, ["log.roll.jitter.ms", "log.roll.jitter.hours"], "Random jitter subtracted from segment.ms (stored only)."),
    def!("segment.ms", int(1, I64), LONG, ["log.roll.ms", "log.roll.hours"], "Age at which a non-empty segment is rolled."),
    def!("unclean.leader.election.enable", Kind::Bool, BOOLEAN, ["unclean.leader.election.enable"], "Allow out-of-sync replicas to become leader (one node: no effect)."),
];

/// Topic configs Kafka 4 removed (KIP-724 and the end of message formats v0/v1): stored
/// values from older Gregor versions are dropped when a topic is loaded.
pub const REMOVED_TOPIC_CONFIGS: &[&str] = &[
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.difference.max.ms",
];

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The value a topic gets without an override: the broker's setting for what Gregor acts
/// on, Kafka's default for the rest.
pub fn default_value(d: &LogConfig, name: &str) -> String {
    match name {
        "segment.bytes" => d.segment_bytes.to_string(),
        "segment.ms" => d.segment_ms.to_string(),
        "index.interval.bytes" => d.index_interval_bytes.to_string(),
        "flush.messages" => d.flush_messages.to_string(),
        "flush.ms" => d.flush_ms.unwrap_or(i64::MAX).to_string(),
        "max.message.bytes" => d.max_message_bytes.to_string(),
        "message.timestamp.type" => match d.message_timestamp_type {
            TimestampType::CreateTime => "CreateTime".into(),
            TimestampType::LogAppendTime => "LogAppendTime".into(),
        },
        "segment.jitter.ms" => "0".into(),
        "min.compaction.lag.ms" => d.compaction.min_compaction_lag_ms.to_string(),
        "max.compaction.lag.ms" => d.compaction.max_compaction_lag_ms.to_string(),
        "segment.index.bytes" => "10485760".into(),
        "message.timestamp.before.max.ms" => i64::MAX.to_string(),
        "message.timestamp.after.max.ms" => "3600000".into(),
        "retention.ms" => d.retention_ms.to_string(),
        "retention.bytes" => d.retention_bytes.to_string(),
        "local.retention.ms" | "local.retention.bytes" => "-2".into(),
        "delete.retention.ms" => d.compaction.delete_retention_ms.to_string(),
        "file.delete.delay.ms" => "60000".into(),
        "min.cleanable.dirty.ratio" => d.compaction.min_cleanable_dirty_ratio.to_string(),
        "cleanup.policy" => match (d.cleanup_delete, d.cleanup_compact) {
            (true, true) => "compact,delete".into(),
            (false, true) => "compact".into(),
            _ => "delete".into(),
        },
        "compression.type" => "producer".into(),
        "compression.gzip.level" => "-1".into(),
        "compression.lz4.level" => "9".into(),
        "compression.zstd.level" => "3".into(),
        "min.insync.replicas" => "1".into(),
        "unclean.leader.election.enable"
        | "preallocate"
        | "remote.storage.enable"
        | "remote.log.copy.disable"
        | "remote.log.delete.on.disable" => "false".into(),
        _ => String::new(),
    }
}

/// Checks that `key` is a Kafka topic config and `value` fits it.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), ConfigError> {
    let kind = topic_config_def(key)
        .map(|d| d.kind)
        .ok_or_else(|| ConfigError::new(key, "unknown topic configuration"))?;
    let value = value.trim();
    match kind {
        Kind::Int { min, max } => parse_int(key, value, min, max).map(|_| ()),
        Kind::Bool => match value {
            "true" | "false" => Ok(()),
            _ => Err(ConfigError::new(
                key,
                format!("`{value}` is not true or false"),
            )),
        },
        Kind::Ratio => match value.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(()),
            _ => Err(ConfigError::new(
                key,
                format!("`{value}` is not a number in [0, 1]"),
            )),
        },
        Kind::OneOf(allowed) => {
            if allowed.contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::new(
                    key,
                    format!("`{value}` is not one of {}", allowed.join(", ")),
                ))
            }
        }
        Kind::CleanupPolicy => {
            let ok = !value.is_empty()
                && value
                    .split(',')
                    .all(|p| matches!(p.trim(), "delete" | "compact"));
            if ok {
                Ok(())
            } else {
                Err(ConfigError::new(
                    key,
                    format!("`{value}` is not a list of delete and compact"),
                ))
            }
        }
        Kind::Text => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 1000,
            index_interval_bytes: 4096,
            flush_messages: 1,
            flush_ms: None,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            cleanup_delete: true,
            cleanup_compact: false,
            compaction: CompactionConfig::default(),
            page_cache: PageCache::new(None),
        }
    }

    #[test]
    fn overrides_apply_and_validate() {
        let mut o = BTreeMap::new();
        o.insert("segment.bytes".to_string(), "1024".to_string());
        o.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        o.insert("retention.ms".to_string(), "-1".to_string());
        let c = defaults().with_overrides(&o).unwrap();
        assert_eq!(c.segment_bytes, 1024);
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);

        o.insert("retention.mz".to_string(), "1".to_string());
        assert_eq!(
            defaults().with_overrides(&o).unwrap_err().key,
            "retention.mz"
        );
        let mut bad = BTreeMap::new();
        bad.insert("cleanup.policy".to_string(), "forever".to_string());
        assert_eq!(
            defaults().with_overrides(&bad).unwrap_err().key,
            "cleanup.policy"
        );
    }
}
