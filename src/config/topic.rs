//! Per-topic log configuration: the broker's `log.*` defaults with a topic's overrides
//! (Kafka's topic-level names: `segment.bytes`, `flush.messages`, ...) applied on top.

use std::collections::BTreeMap;

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
}

impl LogConfig {
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
                    config.index_interval_bytes = int(0, i32::MAX as i64)? as u64
                }
                "flush.messages" => config.flush_messages = int(1, i64::MAX)? as u64,
                "flush.ms" => config.flush_ms = Some(int(0, i64::MAX)?),
                "max.message.bytes" => config.max_message_bytes = int(0, i32::MAX as i64)? as usize,
                "message.timestamp.type" => {
                    config.message_timestamp_type = TimestampType::parse(key, value)?
                }
                _ => {}
            }
        }
        Ok(config)
    }
}

/// The kind of value a topic config takes, for validation.
enum Kind {
    Int { min: i64, max: i64 },
    Bool,
    Ratio,
    OneOf(&'static [&'static str]),
    CleanupPolicy,
    Text,
}

/// Topic configs Kafka defines, with their value kind. Gregor acts on the ones `LogConfig`
/// has fields for; the rest are validated, stored and reported (see the README).
const TOPIC_CONFIGS: &[(&str, Kind)] = &[
    (
        "segment.bytes",
        Kind::Int {
            min: 14,
            max: i32::MAX as i64,
        },
    ),
    (
        "segment.ms",
        Kind::Int {
            min: 1,
            max: i64::MAX,
        },
    ),
    (
        "segment.jitter.ms",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
    ),
    (
        "segment.index.bytes",
        Kind::Int {
            min: 4,
            max: i32::MAX as i64,
        },
    ),
    (
        "index.interval.bytes",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
    ),
    (
        "flush.messages",
        Kind::Int {
            min: 1,
            max: i64::MAX,
        },
    ),
    (
        "flush.ms",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
    ),
    (
        "max.message.bytes",
        Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
    ),
    (
        "message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
    ),
    (
        "message.timestamp.before.max.ms",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
    ),
    (
        "message.timestamp.after.max.ms",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
    ),
    (
        "retention.ms",
        Kind::Int {
            min: -1,
            max: i64::MAX,
        },
    ),
    (
        "retention.bytes",
        Kind::Int {
            min: -1,
            max: i64::MAX,
        },
    ),
    (
        "local.retention.ms",
        Kind::Int {
            min: -2,
            max: i64::MAX,
        },
    ),
    (
        "local.retention.bytes",
        Kind::Int {
            min: -2,
            max: i64::MAX,
        },
    ),
    (
        "delete.retention.ms",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
    ),
    (
        "file.delete.delay.ms",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
    ),
    (
        "min.compaction.lag.ms",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
    ),
    (
        "max.compaction.lag.ms",
        Kind::Int {
            min: 1,
            max: i64::MAX,
        },
    ),
    ("min.cleanable.dirty.ratio", Kind::Ratio),
    ("cleanup.policy", Kind::CleanupPolicy),
    (
        "compression.type",
        Kind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    ),
    ("compression.gzip.level", Kind::Int { min: -1, max: 9 }),
    ("compression.lz4.level", Kind::Int { min: 1, max: 17 }),
    (
        "compression.zstd.level",
        Kind::Int {
            min: -131072,
            max: 22,
        },
    ),
    (
        "min.insync.replicas",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    ("unclean.leader.election.enable", Kind::Bool),
    ("preallocate", Kind::Bool),
    ("remote.storage.enable", Kind::Bool),
    ("leader.replication.throttled.replicas", Kind::Text),
    ("follower.replication.throttled.replicas", Kind::Text),
];

/// Every topic config with its effective value for a topic: `(name, value, overridden)`.
/// Values Gregor acts on come from `defaults` (the broker's `log.*` settings); the others
/// are Kafka's defaults.
pub fn effective_topic_configs(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Vec<(&'static str, String, bool)> {
    TOPIC_CONFIGS
        .iter()
        .map(|(name, _)| {
            let value = match overrides.get(*name) {
                Some(v) => return (*name, v.clone(), true),
                None => default_value(defaults, name),
            };
            (*name, value, false)
        })
        .collect()
}

fn default_value(d: &LogConfig, name: &str) -> String {
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
        "segment.jitter.ms" | "min.compaction.lag.ms" => "0".into(),
        "segment.index.bytes" => "10485760".into(),
        "message.timestamp.before.max.ms" | "max.compaction.lag.ms" => i64::MAX.to_string(),
        "message.timestamp.after.max.ms" => "3600000".into(),
        "retention.ms" => "604800000".into(),
        "retention.bytes" => "-1".into(),
        "local.retention.ms" | "local.retention.bytes" => "-2".into(),
        "delete.retention.ms" => "86400000".into(),
        "file.delete.delay.ms" => "60000".into(),
        "min.cleanable.dirty.ratio" => "0.5".into(),
        "cleanup.policy" => "delete".into(),
        "compression.type" => "producer".into(),
        "compression.gzip.level" => "-1".into(),
        "compression.lz4.level" => "9".into(),
        "compression.zstd.level" => "3".into(),
        "min.insync.replicas" => "1".into(),
        "unclean.leader.election.enable" | "preallocate" | "remote.storage.enable" => {
            "false".into()
        }
        _ => String::new(),
    }
}

/// Checks that `key` is a Kafka topic config and `value` fits it.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), ConfigError> {
    let kind = TOPIC_CONFIGS
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, kind)| kind)
        .ok_or_else(|| ConfigError::new(key, "unknown topic configuration"))?;
    let value = value.trim();
    match kind {
        Kind::Int { min, max } => parse_int(key, value, *min, *max).map(|_| ()),
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
