//! Broker configuration: the YAML file (or the embedded default) merged with command-line
//! overrides, then validated into a typed [`BrokerConfig`]. Keys are Kafka's broker property
//! names; every error names the key it is about.

mod authorizer;
mod cleaner;
mod cluster;
mod coordinators;
pub mod environment;
mod http;
mod keys;
pub mod listeners;
mod raw;
mod socket_server;
pub mod source;
pub mod topic;

use crate::log::page_cache::PageCache;
use std::path::PathBuf;
use std::time::Duration;

pub use raw::RawConfig;

pub use cleaner::CleanerConfig;
pub use cluster::{ClusterConfig, StorageMode};
pub use coordinators::{
    ConsumerGroupConfig, CoordinatorConfig, MigrationPolicy, ShareGroupConfig, TransactionConfig,
};
pub use http::HttpConfig;
use keys::is_default;
pub use keys::{is_known_key, BrokerConfigDef, BROKER_CONFIGS};
pub use listeners::{Listener, SecurityProtocol};
pub use socket_server::SocketServerConfig;
pub use topic::{CompactionConfig, LogConfig, TimestampType};

/// The default configuration, as shipped in `config/gregor.yaml`.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("../../config/gregor.yaml");

/// A configuration error: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid value for `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The validated broker configuration. Immutable once built; shared as `Arc<BrokerConfig>`.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// `listeners` with their security (`listeners.rs`); the first is the one `--listen`
    /// sets and tools read.
    pub listeners: Vec<Listener>,
    /// `connections.max.reauth.ms`: SASL sessions last this long, then the client must
    /// re-authenticate (KIP-368; 0: forever).
    pub connections_max_reauth_ms: i64,
    /// `connection.failed.authentication.delay.ms`: a failed authentication is answered
    /// (and the connection closed) this much later, to slow down guessing.
    pub failed_authentication_delay: Duration,
    /// `authorizer.class.name` and its settings: `None` when requests are not authorized.
    pub authorizer: Option<crate::security::acl::AuthorizerSettings>,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    /// `legacy.protocol.enable`: serve the protocol versions Kafka 4 removed (KIP-896) to
    /// old clients, converting their message formats (api/legacy/); off: Kafka 4's versions.
    pub legacy_protocol_enable: bool,
    /// `replica.selector.class` is Kafka's `RackAwareReplicaSelector`: in cluster mode a
    /// Fetch from a client in another rack than this broker's names a live broker in the
    /// client's rack as its preferred read replica (KIP-392).
    pub rack_aware_fetch: bool,
    /// `socket.*`, `max.connections*`, `connections.max.idle.ms`, `queued.max.request.bytes`.
    pub socket_server: SocketServerConfig,
    /// `http.listen`, `console.enable`: the HTTP listener (metrics, health, console).
    pub http: HttpConfig,
    /// `gregor.storage` and, in cluster mode, the object store and PostgreSQL settings.
    pub storage: StorageMode,
    /// Most partitions in one DescribeTopicPartitions answer.
    pub max_request_partition_size_limit: i32,
    pub log_flush_offset_checkpoint_interval: Duration,
    /// How often retention is applied (`log.retention.check.interval.ms`).
    pub log_retention_check_interval: Duration,
    /// Idle time after which an idempotent producer's state is forgotten.
    pub producer_id_expiration_ms: i64,
    /// The keys the user set (a config file or the command line; from the embedded default
    /// file only those that differ from the built-in default), as given: DescribeConfigs
    /// reports them as STATIC_BROKER_CONFIG, as Kafka does for its server.properties.
    pub explicit: std::collections::BTreeMap<String, String>,
    /// `transaction.*`: the transaction coordinator's settings.
    pub transactions: TransactionConfig,
    /// `group.*` and `offsets.*`: the group coordinator's settings.
    pub coordinator: CoordinatorConfig,
    /// `log.cleaner.*`: the log cleaner's threads, memory and pace.
    pub cleaner: CleanerConfig,
    /// Defaults for every topic's log, overridable per topic.
    pub log: LogConfig,
}

impl BrokerConfig {
    /// Validates every key of `raw`; the first bad or unknown key is the error.
    pub fn from_raw(raw: &RawConfig) -> Result<BrokerConfig, ConfigError> {
        for key in raw.keys() {
            if !is_known_key(key) {
                return Err(ConfigError::new(key, "unknown configuration key"));
            }
        }
        let listeners = listeners::parse(raw)?;
        let log_dirs: Vec<PathBuf> = raw
            .string("log.dirs", "./data")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            return Err(ConfigError::new(
                "log.dirs",
                "at least one directory is needed",
            ));
        }
        let default_replication_factor = raw.int("default.replication.factor", 1, 1, 1)? as i16;
        let policy = {
            let policy = raw.string("log.cleanup.policy", "delete");
            crate::config::topic::validate_topic_config("cleanup.policy", &policy)
                .map_err(|e| ConfigError::new("log.cleanup.policy", e.message))?;
            topic::cleanup_policy(&policy)
        };
        let log_defaults = LogConfig {
            segment_bytes: raw.int("log.segment.bytes", 1 << 30, 14, i32::MAX as i64)? as u64,
            segment_ms: match raw.optional_int("log.roll.ms", 1, i64::MAX)? {
                Some(ms) => ms,
                None => HOUR_MS * raw.int("log.roll.hours", 168, 1, i32::MAX as i64)?,
            },
            index_interval_bytes: raw.int("log.index.interval.bytes", 4096, 0, i32::MAX as i64)?
                as u64,
            flush_messages: raw.int("log.flush.interval.messages", 1, 1, i64::MAX)? as u64,
            flush_ms: raw.optional_int("log.flush.interval.ms", 0, i64::MAX)?,
            max_message_bytes: raw.int("message.max.bytes", 1_048_588, 0, i32::MAX as i64)?
                as usize,
            message_timestamp_type: TimestampType::parse(
                "log.message.timestamp.type",
                &raw.string("log.message.timestamp.type", "CreateTime"),
            )?,
            retention_ms: retention_ms(raw)?,
            retention_bytes: raw.int("log.retention.bytes", -1, -1, i64::MAX)?,
            cleanup_delete: policy.0,
            cleanup_compact: policy.1,
            compaction: cleaner::compaction_defaults(raw)?,
            page_cache: PageCache::new(
                match raw.int("log.cache.hot.bytes", 2 << 30, -1, i64::MAX)? {
                    -1 => None,
                    n => Some(n as u64),
                },
            ),
        };
        let storage = StorageMode::from_raw(raw)?;
        let clustered = matches!(storage, StorageMode::Cluster(_));
        Ok(BrokerConfig {
            node_id: raw.int("node.id", 1, 0, i32::MAX as i64)? as i32,
            listeners,
            connections_max_reauth_ms: raw.int("connections.max.reauth.ms", 0, 0, i64::MAX)?,
            failed_authentication_delay: Duration::from_millis(raw.int(
                "connection.failed.authentication.delay.ms",
                100,
                0,
                i32::MAX as i64,
            )? as u64),
            authorizer: authorizer::parse(raw)?,
            log_dirs,
            num_partitions: raw.int("num.partitions", 1, 1, 100_000)? as i32,
            default_replication_factor,
            auto_create_topics_enable: raw.bool("auto.create.topics.enable", true)?,
            legacy_protocol_enable: raw.bool("legacy.protocol.enable", true)?,
            rack_aware_fetch: match raw.string("replica.selector.class", "").trim() {
                "" | "org.apache.kafka.common.replica.LeaderSelector" => false,
                "org.apache.kafka.common.replica.RackAwareReplicaSelector" => true,
                other => {
                    return Err(ConfigError::new(
                        "replica.selector.class",
                        format!("`{other}` is neither Kafka's LeaderSelector nor its RackAwareReplicaSelector"),
                    ))
                }
            },
            socket_server: SocketServerConfig::from_raw(raw)?,
            http: HttpConfig::from_raw(raw)?,
            storage,
            cleaner: CleanerConfig::from_raw(raw)?,
            max_request_partition_size_limit: raw.int(
                "max.request.partition.size.limit",
                2000,
                1,
                i32::MAX as i64,
            )? as i32,
            log_flush_offset_checkpoint_interval: Duration::from_millis(raw.int(
                "log.flush.offset.checkpoint.interval.ms",
                60_000,
                1,
                i32::MAX as i64,
            )? as u64),
            log_retention_check_interval: Duration::from_millis(raw.int(
                "log.retention.check.interval.ms",
                300_000,
                1,
                i64::MAX,
            )? as u64),
            producer_id_expiration_ms: raw.int(
                "producer.id.expiration.ms",
                86_400_000,
                1,
                i64::MAX,
            )?,
            explicit: raw
                .entries()
                .iter()
                .filter(|(key, value)| !raw.is_shipped(key) || !is_default(key, value))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            transactions: TransactionConfig {
                max_timeout_ms: raw.int(
                    "transaction.max.timeout.ms",
                    900_000,
                    1,
                    i32::MAX as i64,
                )? as i32,
                state_partitions: raw.int("transaction.state.log.num.partitions", 50, 1, 1000)?
                    as i32,
                state_segment_bytes: raw.int(
                    "transaction.state.log.segment.bytes",
                    104_857_600,
                    14,
                    i32::MAX as i64,
                )? as i32,
            },
            coordinator: CoordinatorConfig {
                initial_rebalance_delay: Duration::from_millis(raw.int(
                    "group.initial.rebalance.delay.ms",
                    3000,
                    0,
                    i32::MAX as i64,
                )? as u64),
                min_session_timeout_ms: raw.int(
                    "group.min.session.timeout.ms",
                    6000,
                    0,
                    i32::MAX as i64,
                )? as i32,
                max_session_timeout_ms: raw.int(
                    "group.max.session.timeout.ms",
                    1_800_000,
                    0,
                    i32::MAX as i64,
                )? as i32,
                max_size: raw.int("group.max.size", i32::MAX as i64, 1, i32::MAX as i64)? as usize,
                offsets_retention: Duration::from_secs(
                    60 * raw.int("offsets.retention.minutes", 10080, 1, i32::MAX as i64)? as u64,
                ),
                offsets_retention_check_interval: Duration::from_millis(raw.int(
                    "offsets.retention.check.interval.ms",
                    600_000,
                    1,
                    i64::MAX,
                )? as u64),
                offsets_topic_partitions: raw.int("offsets.topic.num.partitions", 50, 1, 1000)?
                    as i32,
                offsets_topic_segment_bytes: raw.int(
                    "offsets.topic.segment.bytes",
                    104_857_600,
                    14,
                    i32::MAX as i64,
                )? as i32,
                consumer: coordinators::consumer_group_config(raw)?,
                share: coordinators::share_group_config(raw, clustered)?,
                offset_metadata_max_bytes: raw.int(
                    "offset.metadata.max.bytes",
                    4096,
                    0,
                    i32::MAX as i64,
                )? as usize,
            },
            log: log_defaults,
        })
    }
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// Kafka's `log.retention.ms`, else `log.retention.minutes`, else `log.retention.hours`;
/// any negative value means forever (-1).
fn retention_ms(raw: &RawConfig) -> Result<i64, ConfigError> {
    let ms = match raw.optional_int("log.retention.ms", i64::MIN, i64::MAX)? {
        Some(ms) => ms,
        None => {
            match raw.optional_int("log.retention.minutes", i32::MIN as i64, i32::MAX as i64)? {
                Some(minutes) => MINUTE_MS * minutes,
                None => {
                    HOUR_MS
                        * raw.int("log.retention.hours", 168, i32::MIN as i64, i32::MAX as i64)?
                }
            }
        }
    };
    Ok(ms.max(-1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).unwrap();
        let config = BrokerConfig::from_raw(&raw).unwrap();
        assert_eq!(config.listeners[0].port, 9092);
        assert_eq!(config.listeners[0].host, "127.0.0.1");
        assert_eq!(config.log_dirs, vec![PathBuf::from("./data")]);
        assert_eq!(config.log.flush_messages, 1);
        assert!(config.auto_create_topics_enable);
    }

    #[test]
    fn share_groups_are_off_in_cluster_mode_and_asking_for_them_there_is_an_error() {
        let cluster = "gregor.storage: cluster\ngregor.object.store.url: s3://b/p\ngregor.metadata.url: host=h\n";
        let parse = |yaml: &str| BrokerConfig::from_raw(&RawConfig::from_yaml(yaml).unwrap());
        assert!(parse("").unwrap().coordinator.share.enable);
        assert!(!parse(cluster).unwrap().coordinator.share.enable);
        assert!(
            !parse(&format!("{cluster}group.share.enable: false"))
                .unwrap()
                .coordinator
                .share
                .enable
        );
        let e = parse(&format!("{cluster}group.share.enable: true")).unwrap_err();
        assert_eq!(e.key, "group.share.enable");
    }

    /// Regression: `advertised.listeners: ","` parsed to no listener and the first Metadata
    /// request panicked on `advertised_listeners[0]`.
    #[test]
    fn a_listener_list_without_a_listener_is_an_error_naming_the_key() {
        for key in ["listeners", "advertised.listeners"] {
            let mut raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).unwrap();
            raw.set(key, ",");
            let e = BrokerConfig::from_raw(&raw).unwrap_err();
            assert_eq!(e.key, key);
        }
    }

    #[test]
    fn the_table_of_defaults_matches_what_from_raw_applies() {
        let empty = BrokerConfig::from_raw(&RawConfig::from_yaml("").unwrap()).unwrap();
        let mut raw = RawConfig::from_yaml("").unwrap();
        for d in BROKER_CONFIGS {
            if let Some(default) = d.default {
                raw.set(d.name, default);
            }
        }
        let explicit = BrokerConfig::from_raw(&raw).unwrap();
        let strip = |c: &BrokerConfig| {
            format!(
                "{:?}",
                BrokerConfig {
                    explicit: std::collections::BTreeMap::new(),
                    ..c.clone()
                }
            )
        };
        assert_eq!(strip(&empty), strip(&explicit));
    }

    #[test]
    fn retention_and_roll_take_kafkas_units_in_kafkas_order() {
        let of = |yaml: &str| BrokerConfig::from_raw(&RawConfig::from_yaml(yaml).unwrap()).unwrap();
        assert_eq!(of("").log.retention_ms, 168 * HOUR_MS);
        assert_eq!(of("log.retention.hours: 1\n").log.retention_ms, HOUR_MS);
        let minutes = of("log.retention.hours: 1\nlog.retention.minutes: 5\n");
        assert_eq!(minutes.log.retention_ms, 5 * MINUTE_MS);
        let ms = of("log.retention.minutes: 5\nlog.retention.ms: 1234\n");
        assert_eq!(ms.log.retention_ms, 1234);
        assert_eq!(of("log.retention.hours: -1\n").log.retention_ms, -1);
        assert_eq!(of("log.roll.hours: 2\n").log.segment_ms, 2 * HOUR_MS);
        assert_eq!(
            of("log.roll.hours: 2\nlog.roll.ms: 99\n").log.segment_ms,
            99
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let raw = RawConfig::from_yaml("log.dirz: /tmp\n").unwrap();
        let err = BrokerConfig::from_raw(&raw).unwrap_err();
        assert_eq!(err.key, "log.dirz");
    }

    #[test]
    fn bad_value_is_named() {
        let raw = RawConfig::from_yaml("num.partitions: lots\n").unwrap();
        assert_eq!(
            BrokerConfig::from_raw(&raw).unwrap_err().key,
            "num.partitions"
        );
        let raw = RawConfig::from_yaml("default.replication.factor: 3\n").unwrap();
        assert_eq!(
            BrokerConfig::from_raw(&raw).unwrap_err().key,
            "default.replication.factor"
        );
        // A TLS listener without a keystore names the keystore setting.
        let raw = RawConfig::from_yaml("listeners: SSL://x:1\n").unwrap();
        assert_eq!(
            BrokerConfig::from_raw(&raw).unwrap_err().key,
            "ssl.keystore.location"
        );
    }

    /// The README's secure example is a configuration Gregor accepts.
    #[test]
    fn the_secure_example_config_is_valid() {
        let raw = RawConfig::from_yaml(include_str!("../../config/secure.example.yaml")).unwrap();
        let config = BrokerConfig::from_raw(&raw).unwrap();
        let protocols: Vec<_> = config.listeners.iter().map(|l| l.protocol).collect();
        assert_eq!(
            protocols,
            [
                SecurityProtocol::Plaintext,
                SecurityProtocol::SaslSsl,
                SecurityProtocol::Ssl
            ]
        );
        assert_eq!(config.listeners[1].advertised_host, "broker.example.com");
        assert_eq!(config.connections_max_reauth_ms, 3_600_000);
    }

    #[test]
    fn overrides_win_over_the_file() {
        let mut raw = RawConfig::from_yaml("num.partitions: 2\n").unwrap();
        raw.set("num.partitions", "4");
        raw.set("listeners", "PLAINTEXT://127.0.0.1:0");
        let config = BrokerConfig::from_raw(&raw).unwrap();
        assert_eq!(config.num_partitions, 4);
        assert_eq!(config.listeners[0].port, 0);
    }
}
