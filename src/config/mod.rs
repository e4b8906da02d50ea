//! Broker configuration: the YAML file (or the embedded default) merged with command-line
//! overrides, then validated into a typed [`BrokerConfig`]. Keys are Kafka's broker property
//! names; every error names the key it is about.

mod authorizer;
mod cleaner;
mod cluster;
mod coordinators;
pub mod environment;
mod http;
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
                consumer: consumer_group_config(raw)?,
                share: share_group_config(raw, clustered)?,
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

/// The `group.consumer.*` settings, checked against their bounds as Kafka's
/// `GroupCoordinatorConfig` does.
fn consumer_group_config(raw: &RawConfig) -> Result<ConsumerGroupConfig, ConfigError> {
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
fn share_group_config(raw: &RawConfig, clustered: bool) -> Result<ShareGroupConfig, ConfigError> {
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

/// Whether `value` is what `key` is without being set (a null default matches an empty value).
fn is_default(key: &str, value: &str) -> bool {
    BROKER_CONFIGS
        .iter()
        .find(|d| d.name == key)
        .is_some_and(|d| d.default.unwrap_or("") == value.trim())
}

/// A broker setting: name, default as Kafka prints it (`None`: no default, reported as
/// null), Kafka `ConfigDef.Type` code (see `topic::config_type`), documentation.
pub struct BrokerConfigDef {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub config_type: i8,
    pub doc: &'static str,
}

const fn broker(
    name: &'static str,
    default: &'static str,
    config_type: i8,
    doc: &'static str,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        default: Some(default),
        config_type,
        doc,
    }
}

/// A broker setting that has no default value in Kafka (null until set).
const fn broker_unset(name: &'static str, config_type: i8, doc: &'static str) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        default: None,
        config_type,
        doc,
    }
}

/// Every broker key this version understands, with the defaults `from_raw` applies.
#[rustfmt::skip]
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    broker("node.id", "1", 3, "The node id of this broker."),
    broker("listeners", "PLAINTEXT://127.0.0.1:9092", 7, "The listeners: NAME://HOST:PORT, comma-separated; each name's security protocol comes from listener.security.protocol.map."),
    broker("http.listen", "127.0.0.1:9644", 2, "Gregor only: HOST:PORT of the HTTP listener (/metrics, /health, the web console and its JSON API under /api/); empty turns it off."),
    broker("gregor.storage", "local", 2, "Gregor only: where partition data lives: local (this broker's log.dirs) or cluster (an object store and PostgreSQL shared by every broker; docs/cluster.md)."),
    broker("gregor.object.store.url", "", 2, "Gregor only, cluster mode: s3://bucket/prefix (or file:///dir) where produced batches are uploaded."),
    broker("gregor.object.store.endpoint", "", 2, "Gregor only, cluster mode: the URL of an S3-compatible server; empty = AWS."),
    broker("gregor.object.store.region", "", 2, "Gregor only, cluster mode: the bucket's region; empty = AWS_REGION, else us-east-1."),
    broker("gregor.object.store.access.key.id", "", 2, "Gregor only, cluster mode: the access key; empty = AWS_ACCESS_KEY_ID."),
    broker("gregor.object.store.secret.access.key", "", 9, "Gregor only, cluster mode: the secret key; empty = AWS_SECRET_ACCESS_KEY."),
    broker("gregor.metadata.url", "", 9, "Gregor only, cluster mode: the PostgreSQL connection string of the batch coordinator and metadata."),
    broker("gregor.produce.buffer.ms", "250", 5, "Gregor only, cluster mode: the longest produced data waits to share an object with other produces."),
    broker("gregor.produce.buffer.bytes", "4194304", 3, "Gregor only, cluster mode: an object is uploaded once this many bytes are buffered."),
    broker("gregor.metadata.poll.ms", "100", 5, "Gregor only, cluster mode: how often a broker looks in PostgreSQL for what other brokers committed."),
    broker("gregor.object.consolidation.bytes", "8388608", 3, "Gregor only, cluster mode: objects under half this size are merged into objects of up to this size, each partition's batches together (0: never)."),
    broker("broker.session.timeout.ms", "9000", 3, "Cluster mode: a broker that has not heartbeated for this long leaves Metadata."),
    broker("broker.heartbeat.interval.ms", "2000", 3, "Cluster mode: how often a broker heartbeats in PostgreSQL."),
    broker("broker.rack", "", 2, "Rack of the broker, reported in Metadata."),
    broker("console.enable", "true", 1, "Gregor only: serve the web console at / and its JSON API under /api/ on the HTTP listener."),
    broker("advertised.listeners", "", 7, "The addresses clients are told to use, per listener name; a listener not named here advertises itself."),
    broker("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", 7, "Listener name to security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)."),
    broker_unset("ssl.keystore.type", 2, "PEM (the only type supported)."),
    broker_unset("ssl.keystore.location", 2, "A PEM file with the listener's private key (unencrypted PKCS#8, PKCS#1 or SEC1) and certificate chain; re-read when it changes."),
    broker_unset("ssl.keystore.key", 9, "The private key as PEM text (with ssl.keystore.certificate.chain)."),
    broker_unset("ssl.keystore.certificate.chain", 9, "The certificate chain as PEM text (with ssl.keystore.key)."),
    broker_unset("ssl.key.password", 9, "Not supported: give the key unencrypted."),
    broker_unset("ssl.keystore.password", 9, "Not supported: PEM keystores have no password."),
    broker_unset("ssl.truststore.type", 2, "PEM (the only type supported)."),
    broker_unset("ssl.truststore.location", 2, "A PEM file of CA certificates that client certificates must chain to; re-read when it changes."),
    broker_unset("ssl.truststore.certificates", 9, "CA certificates as PEM text."),
    broker_unset("ssl.truststore.password", 9, "Not supported: PEM truststores have no password."),
    broker("ssl.client.auth", "none", 2, "Client certificates: none, requested or required (mutual TLS)."),
    broker("ssl.enabled.protocols", "TLSv1.2,TLSv1.3", 7, "TLS versions offered."),
    broker("ssl.protocol", "TLSv1.3", 2, "Accepted for compatibility; ssl.enabled.protocols decides."),
    broker_unset("ssl.cipher.suites", 7, "Cipher suites offered (IANA names, e.g. TLS_AES_128_GCM_SHA256); unset: rustls's defaults."),
    broker("ssl.principal.mapping.rules", "DEFAULT", 2, "A client certificate's subject to its principal name: DEFAULT (the subject) and RULE:pattern/replacement/[L|U] rules, comma-separated; the first that applies wins, and a subject none applies to is refused."),
    broker("ssl.endpoint.identification.algorithm", "https", 2, "Accepted for compatibility (a broker does not verify client host names)."),
    broker("sasl.enabled.mechanisms", "GSSAPI", 7, "SASL mechanisms of SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (GSSAPI and OAUTHBEARER are not supported)."),
    broker("connections.max.reauth.ms", "0", 5, "SASL sessions expire after this long and must re-authenticate (KIP-368); 0: never."),
    broker("connection.failed.authentication.delay.ms", "100", 3, "Delay before a failed authentication is answered and the connection closed."),
    broker("authorizer.class.name", "", 2, "org.apache.kafka.metadata.authorizer.StandardAuthorizer: authorize every request against the ACLs (CreateAcls); empty: allow everything."),
    broker_unset("super.users", 2, "Principals that skip ACLs, separated by `;` (User:admin;User:CN=ops)."),
    broker("allow.everyone.if.no.acl.found", "false", 1, "Allow a request on a resource no ACL names."),
    broker("log.dirs", "./data", 2, "Comma-separated data directories."),
    broker("num.partitions", "1", 3, "Partitions of a topic created without a count."),
    broker("default.replication.factor", "1", 3, "Replication factor of new topics (only 1)."),
    broker("auto.create.topics.enable", "true", 1, "Create unknown topics requested through Metadata."),
    broker("replica.selector.class", "", 3, "Kafka's RackAwareReplicaSelector: in cluster mode a Fetch from a client (client.rack) in another rack than the broker's is pointed at a live broker in its rack (KIP-392). Empty: clients read from the leader."),
    broker("legacy.protocol.enable", "true", 1, "Gregor only: serve the protocol versions Kafka 4 removed (Produce v0-v2, Fetch v0-v3 and the others of KIP-896) to old clients, converting message formats v0 and v1; false: Kafka 4's versions only."),
    broker("message.max.bytes", "1048588", 3, "Largest record batch a producer may send."),
    broker("socket.request.max.bytes", "104857600", 3, "Largest request the broker reads."),
    broker("max.connections", "2147483647", 3, "Most client connections at once."),
    broker("max.connections.per.ip", "2147483647", 3, "Most connections from one client address."),
    broker("max.connections.per.ip.overrides", "", 2, "Per-address exceptions: host:count,host:count."),
    broker("connections.max.idle.ms", "600000", 5, "A connection that completes no request for this long is closed."),
    broker("socket.sendfile.enable", "false", 1, "Gregor only: send Fetch records from the segment file to plain TCP sockets with sendfile (on loopback it measured slower, so off by default)."),
    broker("queued.max.request.bytes", "-1", 5, "Request bytes read but not yet answered, over all connections, before reading pauses (-1: no cap)."),
    broker("max.request.partition.size.limit", "2000", 3, "Most partitions in one DescribeTopicPartitions answer."),
    broker("log.segment.bytes", "1073741824", 3, "Size at which a segment is rolled."),
    broker_unset("log.roll.ms", 5, "Age (ms) at which a non-empty segment is rolled; when unset, log.roll.hours applies."),
    broker("log.roll.hours", "168", 3, "Age (hours) at which a non-empty segment is rolled."),
    broker("log.index.interval.bytes", "4096", 3, "Bytes between two offset index entries."),
    broker("log.flush.interval.messages", "1", 5, "Messages written before an fsync; 1 fsyncs before every acknowledgement."),
    broker_unset("log.flush.interval.ms", 5, "Longest time unflushed data waits for an fsync; unset: no time-based flush."),
    broker("log.flush.offset.checkpoint.interval.ms", "60000", 3, "How often recovery points are checkpointed."),
    broker("log.message.timestamp.type", "CreateTime", 2, "CreateTime or LogAppendTime."),
    broker_unset("log.retention.ms", 5, "Segments whose newest record is older than this (ms) are deleted (-1: never); when unset, log.retention.minutes and then log.retention.hours apply."),
    broker_unset("log.retention.minutes", 3, "Retention in minutes, used when log.retention.ms is unset."),
    broker("log.retention.hours", "168", 3, "Retention in hours, used when log.retention.ms and log.retention.minutes are unset."),
    broker("log.retention.bytes", "-1", 5, "Partitions larger than this lose their oldest segments (-1: no limit)."),
    broker("log.retention.check.interval.ms", "300000", 5, "How often retention is applied."),
    broker("log.cleanup.policy", "delete", 7, "Default cleanup.policy of topics: delete and/or compact."),
    broker("log.cleaner.enable", "true", 1, "Run the log cleaner, which compacts topics whose cleanup.policy includes compact."),
    broker("log.cleaner.threads", "1", 3, "Logs cleaned at once."),
    broker("log.cleaner.dedupe.buffer.size", "134217728", 5, "Memory of the cleaners' offset maps (key hash to offset), over all threads."),
    broker("log.cleaner.io.max.bytes.per.second", "1.7976931348623157E308", 6, "Cleaner I/O (read plus written) allowed per second, over all threads."),
    broker("log.cleaner.backoff.ms", "15000", 5, "Pause of a cleaner thread when no log needs cleaning."),
    broker("log.cleaner.io.buffer.size", "524288", 3, "Memory of the cleaners' read and write buffers, over all threads."),
    broker("log.cleaner.io.buffer.load.factor", "0.9", 6, "How full a cleaner's offset map may get."),
    broker("log.cleaner.delete.retention.ms", "86400000", 5, "Default delete.retention.ms of topics."),
    broker("log.cleaner.min.cleanable.ratio", "0.5", 6, "Default min.cleanable.dirty.ratio of topics."),
    broker("log.cleaner.min.compaction.lag.ms", "0", 5, "Default min.compaction.lag.ms of topics."),
    broker("log.cleaner.max.compaction.lag.ms", "9223372036854775807", 5, "Default max.compaction.lag.ms of topics."),
    broker("log.cache.hot.bytes", "2147483648", 5, "Gregor only: page cache kept for fsynced log data, over all partitions; the oldest beyond it is dropped (-1: never, as Kafka)."),
    broker("group.initial.rebalance.delay.ms", "3000", 3, "Delay of the first rebalance of an empty group."),
    broker("group.min.session.timeout.ms", "6000", 3, "Smallest session timeout a member may ask for."),
    broker("group.max.session.timeout.ms", "1800000", 3, "Largest session timeout a member may ask for."),
    broker("group.max.size", "2147483647", 3, "Most members in a group."),
    broker("group.consumer.session.timeout.ms", "45000", 3, "Session timeout of consumer-protocol (KIP-848) group members."),
    broker("group.consumer.min.session.timeout.ms", "45000", 3, "Smallest group.consumer.session.timeout.ms allowed."),
    broker("group.consumer.max.session.timeout.ms", "60000", 3, "Largest group.consumer.session.timeout.ms allowed."),
    broker("group.consumer.heartbeat.interval.ms", "5000", 3, "How often consumer-protocol group members heartbeat."),
    broker("group.consumer.min.heartbeat.interval.ms", "5000", 3, "Smallest group.consumer.heartbeat.interval.ms allowed."),
    broker("group.consumer.max.heartbeat.interval.ms", "15000", 3, "Largest group.consumer.heartbeat.interval.ms allowed."),
    broker("group.consumer.max.size", "2147483647", 3, "Most members in a consumer-protocol group."),
    broker("group.consumer.assignors", "uniform,range", 7, "Server-side assignors of consumer-protocol groups; the first is the default."),
    broker("group.consumer.migration.policy", "bidirectional", 2, "Whether groups with members move between the classic and the consumer protocol: bidirectional, upgrade (classic to consumer), downgrade (consumer to classic) or disabled."),
    broker("group.share.enable", "true", 1, "Serve share groups (KIP-932); Kafka's switch behind its share.version feature, on by default as in Kafka 4.2 (off in cluster mode, docs/cluster.md)."),
    broker("group.share.session.timeout.ms", "45000", 3, "Session timeout of share group members."),
    broker("group.share.min.session.timeout.ms", "45000", 3, "Smallest group.share.session.timeout.ms allowed."),
    broker("group.share.max.session.timeout.ms", "60000", 3, "Largest group.share.session.timeout.ms allowed."),
    broker("group.share.heartbeat.interval.ms", "5000", 3, "How often share group members heartbeat."),
    broker("group.share.min.heartbeat.interval.ms", "5000", 3, "Smallest group.share.heartbeat.interval.ms allowed."),
    broker("group.share.max.heartbeat.interval.ms", "15000", 3, "Largest group.share.heartbeat.interval.ms allowed."),
    broker("group.share.max.size", "200", 3, "Most members in a share group."),
    broker("group.share.assignors", "simple", 7, "The share group assignor (only simple)."),
    broker("group.share.record.lock.duration.ms", "30000", 3, "How long a share consumer holds the records it acquired before they become available again."),
    broker("group.share.min.record.lock.duration.ms", "15000", 3, "Smallest share.record.lock.duration.ms a group may set."),
    broker("group.share.max.record.lock.duration.ms", "60000", 3, "Largest share.record.lock.duration.ms a group may set."),
    broker("group.share.delivery.count.limit", "5", 3, "Deliveries of a record to a share group before it is archived."),
    broker("group.share.partition.max.record.locks", "2000", 3, "Most offsets in flight (acquired or waiting behind one) per share-partition."),
    broker("group.share.max.share.sessions", "2000", 3, "Most share sessions on the broker."),
    broker("share.coordinator.state.topic.num.partitions", "50", 3, "Partitions of __share_group_state."),
    broker("share.coordinator.state.topic.segment.bytes", "104857600", 3, "Segment size of __share_group_state."),
    broker("share.coordinator.snapshot.update.records.per.snapshot", "500", 3, "Updates of a share-partition's state written before a whole snapshot."),
    broker("share.coordinator.state.topic.prune.interval.ms", "300000", 5, "How often __share_group_state is pruned below the oldest snapshot still needed."),
    broker("offsets.retention.minutes", "10080", 3, "Committed offsets of groups without members expire after this."),
    broker("offsets.retention.check.interval.ms", "600000", 5, "How often expired offsets and groups left with neither members nor offsets are removed."),
    broker("offsets.topic.num.partitions", "50", 3, "Partitions of __consumer_offsets."),
    broker("offsets.topic.segment.bytes", "104857600", 3, "Segment size of __consumer_offsets (compacted: only sealed segments are cleaned)."),
    broker("offset.metadata.max.bytes", "4096", 3, "Longest metadata of an offset commit."),
    broker("transaction.max.timeout.ms", "900000", 3, "Longest transaction timeout a producer may ask for."),
    broker("transaction.state.log.num.partitions", "50", 3, "Partitions of __transaction_state."),
    broker("transaction.state.log.segment.bytes", "104857600", 3, "Segment size of __transaction_state (compacted: only sealed segments are cleaned)."),
    broker("producer.id.expiration.ms", "86400000", 3, "Idle time after which an idempotent producer's state is forgotten."),
];

/// Whether `key` is a broker setting this version understands.
pub fn is_known_key(key: &str) -> bool {
    BROKER_CONFIGS.iter().any(|d| d.name == key) || listeners::is_listener_scoped_key(key)
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
