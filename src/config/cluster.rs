//! Cluster mode's settings (`gregor.storage: cluster`): where the object store and the
//! PostgreSQL database are, how long a broker buffers produce data before it uploads, and
//! Kafka's broker liveness settings. Resolved by `BrokerConfig::from_raw`; docs/cluster.md
//! explains them.

use super::raw::RawConfig;
use super::ConfigError;

/// `gregor.storage`: where partition data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageMode {
    /// This broker's own segment files (`log.dirs`): one broker, the default.
    Local,
    /// Batches in an object store, their coordinates in PostgreSQL: any number of brokers.
    Cluster(Box<ClusterConfig>),
}

#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `gregor.object.store.url`: `s3://bucket/prefix` (or `file:///dir` for a local
    /// directory standing in for the bucket).
    pub object_store_url: String,
    /// `gregor.object.store.endpoint`: an S3-compatible server's URL; empty = AWS.
    pub object_store_endpoint: Option<String>,
    /// `gregor.object.store.region`, else `AWS_REGION`, else `us-east-1`.
    pub object_store_region: Option<String>,
    /// `gregor.object.store.access.key.id`, else `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `gregor.object.store.secret.access.key`, else `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `gregor.metadata.url`: a PostgreSQL connection string.
    pub metadata_url: String,
    /// `gregor.produce.buffer.ms`: the longest a produced batch waits for others to share
    /// its object.
    pub produce_buffer_ms: u64,
    /// `gregor.produce.buffer.bytes`: an object is uploaded as soon as this much is buffered.
    pub produce_buffer_bytes: usize,
    /// `gregor.metadata.poll.ms`: how often a broker asks PostgreSQL for what other brokers
    /// committed.
    pub metadata_poll_ms: u64,
    /// `gregor.object.consolidation.bytes`: objects under half this size are merged into
    /// objects of up to this size, each partition's batches together (0: never).
    pub consolidation_bytes: u64,
    /// `gregor.object.orphan.age.ms`: an object in the store that no commit names is
    /// deleted once it is this old (an upload whose commit failed).
    pub orphan_age_ms: u64,
    /// `broker.session.timeout.ms` (Kafka's name): a broker that has not heartbeated for
    /// this long is left out of Metadata.
    pub session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms` (Kafka's name).
    pub heartbeat_interval_ms: u64,
    /// `broker.rack` (Kafka's name), reported in Metadata.
    pub rack: Option<String>,
}

impl std::fmt::Debug for ClusterConfig {
    // The connection string and the secret key may carry passwords: not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("object_store_url", &self.object_store_url)
            .field("object_store_endpoint", &self.object_store_endpoint)
            .field("produce_buffer_ms", &self.produce_buffer_ms)
            .field("produce_buffer_bytes", &self.produce_buffer_bytes)
            .field("rack", &self.rack)
            .finish_non_exhaustive()
    }
}

fn non_empty(raw: &RawConfig, key: &str) -> Option<String> {
    let value = raw.string(key, "");
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

impl StorageMode {
    pub(super) fn from_raw(raw: &RawConfig) -> Result<StorageMode, ConfigError> {
        match raw.string("gregor.storage", "local").trim() {
            "local" => Ok(StorageMode::Local),
            "cluster" => {
                let required = |key: &str| {
                    non_empty(raw, key).ok_or_else(|| {
                        ConfigError::new(key, "is required with gregor.storage: cluster")
                    })
                };
                let object_store_url = required("gregor.object.store.url")?;
                if !(object_store_url.starts_with("s3://")
                    || object_store_url.starts_with("file://"))
                {
                    return Err(ConfigError::new(
                        "gregor.object.store.url",
                        format!(
                            "`{object_store_url}` is neither s3://bucket[/prefix] nor file:///dir"
                        ),
                    ));
                }
                let session_timeout_ms =
                    raw.int("broker.session.timeout.ms", 9000, 1, i32::MAX as i64)? as u64;
                let heartbeat_interval_ms =
                    raw.int("broker.heartbeat.interval.ms", 2000, 1, i32::MAX as i64)? as u64;
                if heartbeat_interval_ms >= session_timeout_ms {
                    return Err(ConfigError::new(
                        "broker.heartbeat.interval.ms",
                        "must be less than broker.session.timeout.ms",
                    ));
                }
                Ok(StorageMode::Cluster(Box::new(ClusterConfig {
                    object_store_url,
                    object_store_endpoint: non_empty(raw, "gregor.object.store.endpoint"),
                    object_store_region: non_empty(raw, "gregor.object.store.region"),
                    access_key_id: non_empty(raw, "gregor.object.store.access.key.id"),
                    secret_access_key: non_empty(raw, "gregor.object.store.secret.access.key"),
                    metadata_url: required("gregor.metadata.url")?,
                    produce_buffer_ms: raw.int("gregor.produce.buffer.ms", 250, 0, 60_000)? as u64,
                    produce_buffer_bytes: raw.int(
                        "gregor.produce.buffer.bytes",
                        4 << 20,
                        1,
                        1 << 30,
                    )? as usize,
                    metadata_poll_ms: raw.int("gregor.metadata.poll.ms", 100, 1, 60_000)? as u64,
                    consolidation_bytes: raw.int(
                        "gregor.object.consolidation.bytes",
                        8 << 20,
                        0,
                        1 << 30,
                    )? as u64,
                    orphan_age_ms: raw.int(
                        "gregor.object.orphan.age.ms",
                        3_600_000,
                        1_000,
                        i64::MAX / 2,
                    )? as u64,
                    session_timeout_ms,
                    heartbeat_interval_ms,
                    rack: non_empty(raw, "broker.rack"),
                })))
            }
            other => Err(ConfigError::new(
                "gregor.storage",
                format!("`{other}` is neither local nor cluster"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<StorageMode, ConfigError> {
        StorageMode::from_raw(&RawConfig::from_yaml(yaml).unwrap())
    }

    #[test]
    fn local_is_the_default_and_cluster_needs_both_engines() {
        assert_eq!(parse("").unwrap(), StorageMode::Local);
        let e = parse("gregor.storage: cluster").unwrap_err();
        assert_eq!(e.key, "gregor.object.store.url");
        let e = parse("gregor.storage: cluster\ngregor.object.store.url: s3://b").unwrap_err();
        assert_eq!(e.key, "gregor.metadata.url");
        let e = parse("gregor.storage: cluster\ngregor.object.store.url: http://b").unwrap_err();
        assert_eq!(e.key, "gregor.object.store.url");
        assert_eq!(
            parse("gregor.storage: remote").unwrap_err().key,
            "gregor.storage"
        );
    }

    #[test]
    fn cluster_settings_take_kafka_defaults() {
        let StorageMode::Cluster(c) = parse(
            "gregor.storage: cluster\ngregor.object.store.url: s3://b/p\ngregor.metadata.url: host=h",
        )
        .unwrap() else {
            panic!("cluster mode expected");
        };
        assert_eq!(c.produce_buffer_ms, 250);
        assert_eq!(c.produce_buffer_bytes, 4 << 20);
        assert_eq!(c.consolidation_bytes, 8 << 20);
        assert_eq!(c.orphan_age_ms, 3_600_000);
        assert_eq!(c.session_timeout_ms, 9000);
        assert_eq!(c.heartbeat_interval_ms, 2000);
        assert!(
            !format!("{c:?}").contains("host=h"),
            "the connection string is not printed"
        );
    }
}
