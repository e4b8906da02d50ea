//! The log manager (Kafka's `LogManager`): the data directories, every topic and its
//! partition logs, topic metadata files, recovery-point checkpoints and the clean-shutdown
//! marker, plus the background flush and checkpoint timers.
//!
//! Synchronisation: the topic table is a `std::sync::RwLock` read on every request and
//! written only by topic creation and deletion; those two are additionally serialised by
//! `admin` so their multi-file updates don't interleave. No lock is held across an await.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::topic::{validate_topic_config, REMOVED_TOPIC_CONFIGS};
use crate::config::{BrokerConfig, ConfigError, LogConfig};
use crate::log::file_names::{
    self, CLEAN_SHUTDOWN_FILE, DELETE_DIR_SUFFIX, LOG_START_OFFSET_CHECKPOINT, METADATA_DIR,
    META_PROPERTIES, PARTITION_METADATA, RECOVERY_POINT_CHECKPOINT,
};
use crate::log::loader::{load_log, RecoveryStart};
use crate::log::{Log, LogError, TopicPartition};
use crate::storage::Storage;

/// Errors of topic administration, converted to Kafka codes in `api/`.
#[derive(Debug)]
pub enum TopicError {
    AlreadyExists(String),
    InvalidName(String),
    InvalidPartitions(String),
    InvalidReplicationFactor(String),
    InvalidConfig(ConfigError),
    UnknownTopic,
    Log(LogError),
    Io { path: PathBuf, source: io::Error },
}

impl std::fmt::Display for TopicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicError::AlreadyExists(name) => write!(f, "Topic '{name}' already exists."),
            TopicError::InvalidName(m)
            | TopicError::InvalidPartitions(m)
            | TopicError::InvalidReplicationFactor(m) => f.write_str(m),
            TopicError::InvalidConfig(e) => write!(f, "{e}"),
            TopicError::UnknownTopic => f.write_str("This server does not host this topic."),
            TopicError::Log(e) => write!(f, "{e}"),
            TopicError::Io { path, source } => {
                write!(f, "I/O error on {}: {source}", path.display())
            }
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TopicError + '_ {
    move |source| TopicError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A topic: its id, configs and one log per partition. Immutable once created (a config or
/// partition change replaces the `Arc<Topic>` in the table).
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<Arc<Log>>,
}

/// Kafka's internal topics (`Topic.INTERNAL_TOPICS`): Metadata flags them, and clients
/// leave them out of topic listings. Other names starting with `__` are ordinary topics.
pub const INTERNAL_TOPICS: [&str; 3] = [
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

impl Topic {
    pub fn is_internal(&self) -> bool {
        INTERNAL_TOPICS.contains(&self.name.as_str())
    }

    pub fn partition(&self, index: i32) -> Option<&Arc<Log>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// The on-disk description of a topic: `<log dir>/__gregor_metadata/topics/<name>.yaml`.
#[derive(Debug, Serialize, Deserialize)]
struct TopicFile {
    name: String,
    topic_id: String,
    partitions: i32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

#[derive(Default)]
struct TopicTable {
    by_name: BTreeMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, String>,
}

pub struct LogManager {
    config: Arc<BrokerConfig>,
    storage: Arc<dyn Storage>,
    cluster_id: String,
    topics: RwLock<TopicTable>,
    admin: Mutex<()>,
}

/// Kafka's topic name rule: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::InvalidName(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(TopicError::InvalidName(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > 249 {
        return Err(TopicError::InvalidName(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(TopicError::InvalidName(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Which offset of a log a checkpoint file records.
type OffsetOf = fn(&Log) -> i64;

/// Writes `partition.metadata` (Kafka's format) into a partition directory.
fn write_partition_metadata(storage: &dyn Storage, dir: &Path, id: Uuid) -> Result<(), TopicError> {
    let path = dir.join(PARTITION_METADATA);
    let text = format!("version: 0\ntopic_id: {}\n", base64url(id.as_bytes()));
    storage
        .write_atomically(&path, text.as_bytes())
        .map_err(io_err(&path))
}

/// The topic id in a partition directory's `partition.metadata`, if it has one.
fn read_partition_metadata(storage: &dyn Storage, dir: &Path) -> Option<Uuid> {
    let text = storage.read_to_string(&dir.join(PARTITION_METADATA)).ok()?;
    let encoded = text
        .lines()
        .find_map(|l| l.strip_prefix("topic_id: "))?
        .trim();
    Uuid::from_slice(&base64url_decode(encoded)?).ok()
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32;
        bits = bits << 6 | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// Base64url without padding, as Kafka prints cluster ids and topic ids.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

impl LogManager {
    /// Opens every data directory: identity, topic metadata, and every partition's log
    /// (recovering after a crash).
    pub fn open(
        config: Arc<BrokerConfig>,
        storage: Arc<dyn Storage>,
    ) -> Result<LogManager, TopicError> {
        let mut cluster_id = None;
        let mut clean = Vec::new();
        for dir in &config.log_dirs {
            storage.create_dir_durably(dir).map_err(io_err(dir))?;
            let id = Self::read_or_write_meta_properties(
                storage.as_ref(),
                dir,
                config.node_id,
                cluster_id.clone(),
            )?;
            if let Some(known) = cluster_id.as_ref().filter(|known| **known != id) {
                return Err(TopicError::Io {
                    path: dir.join(META_PROPERTIES),
                    source: io::Error::other(format!(
                        "cluster.id {id} differs from {known} in another log dir: these directories belong to different clusters"
                    )),
                });
            }
            cluster_id = Some(id);
            clean.push(storage.exists(&dir.join(CLEAN_SHUTDOWN_FILE)));
            // Leftovers of deletions interrupted by a crash.
            for path in storage.list(dir).map_err(io_err(dir))? {
                if path.to_string_lossy().ends_with(DELETE_DIR_SUFFIX) {
                    storage.remove_dir_all(&path).map_err(io_err(&path))?;
                }
            }
        }
        let manager = LogManager {
            cluster_id: cluster_id.unwrap_or_default(),
            topics: RwLock::new(TopicTable::default()),
            admin: Mutex::new(()),
            config: config.clone(),
            storage: storage.clone(),
        };
        let metadata_dir = manager.topics_dir();
        storage
            .create_dir_durably(&manager.metadata_dir())
            .map_err(io_err(&metadata_dir))?;
        storage
            .create_dir_durably(&metadata_dir)
            .map_err(io_err(&metadata_dir))?;
        let recovery_points = manager.read_checkpoint(RECOVERY_POINT_CHECKPOINT);
        let log_start_offsets = manager.read_checkpoint(LOG_START_OFFSET_CHECKPOINT);
        let mut table = TopicTable::default();
        for path in storage.list(&metadata_dir).map_err(io_err(&metadata_dir))? {
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text = storage.read_to_string(&path).map_err(io_err(&path))?;
            let mut file: TopicFile = serde_yaml::from_str(&text).map_err(|e| TopicError::Io {
                path: path.clone(),
                source: io::Error::other(e.to_string()),
            })?;
            file.configs.retain(|key, _| {
                let removed = REMOVED_TOPIC_CONFIGS.contains(&key.as_str());
                if removed {
                    tracing::warn!(topic = %file.name, config = %key, "ignoring a topic config Kafka 4 removed");
                }
                !removed
            });
            let id = Uuid::parse_str(&file.topic_id).map_err(|e| TopicError::Io {
                path: path.clone(),
                source: io::Error::other(e.to_string()),
            })?;
            let log_config = config
                .log
                .with_overrides(&file.configs)
                .map_err(TopicError::InvalidConfig)?;
            let mut partitions = Vec::new();
            for p in 0..file.partitions {
                let tp = TopicPartition {
                    topic: file.name.clone(),
                    partition: p,
                };
                let (dir_index, dir) = manager.partition_dir(&tp);
                let recovery = if clean[dir_index] {
                    RecoveryStart::CleanShutdown
                } else {
                    RecoveryStart::From(*recovery_points.get(&tp).unwrap_or(&0))
                };
                let log_start = *log_start_offsets.get(&tp).unwrap_or(&0);
                let (log, report) = load_log(
                    &storage,
                    tp.clone(),
                    dir.clone(),
                    log_config.clone(),
                    recovery,
                    log_start,
                )
                .map_err(TopicError::Log)?;
                if read_partition_metadata(storage.as_ref(), &dir) != Some(id) {
                    write_partition_metadata(storage.as_ref(), &dir, id)?;
                }
                if report.recovered_segments > 0 {
                    tracing::info!(
                        partition = %tp,
                        recovered_segments = report.recovered_segments,
                        truncated_bytes = report.truncated_bytes,
                        end_offset = log.log_end_offset(),
                        "recovered log"
                    );
                }
                partitions.push(Arc::new(log));
            }
            table.by_id.insert(id, file.name.clone());
            table.by_name.insert(
                file.name.clone(),
                Arc::new(Topic {
                    name: file.name,
                    id,
                    configs: file.configs,
                    partitions,
                }),
            );
        }
        // Partition directories whose `partition.metadata` names a topic id that no longer
        // exists: a deletion interrupted after its metadata file was removed. Directories
        // without that file are not Gregor's and are left alone.
        for dir in &config.log_dirs {
            for path in storage.list(dir).map_err(io_err(dir))? {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if file_names::parse_partition_dir_name(&name).is_none() || !storage.is_dir(&path) {
                    continue;
                }
                match read_partition_metadata(storage.as_ref(), &path) {
                    Some(id) if !table.by_id.contains_key(&id) => {
                        tracing::warn!(dir = %path.display(), "removing the data of a deleted topic");
                        storage.remove_dir_all(&path).map_err(io_err(&path))?;
                    }
                    Some(_) => {}
                    None if !table
                        .by_name
                        .values()
                        .any(|t| t.partitions.iter().any(|l| l.dir() == path)) =>
                    {
                        tracing::warn!(dir = %path.display(), "ignoring a directory that is not a Gregor partition");
                    }
                    None => {}
                }
            }
        }
        // Leftovers of atomic writes interrupted by a crash.
        for path in storage.list(&metadata_dir).map_err(io_err(&metadata_dir))? {
            if path.extension().and_then(|e| e.to_str()) == Some("tmp") {
                storage.remove_file(&path).map_err(io_err(&path))?;
            }
        }
        *manager.topics.write().unwrap_or_else(|e| e.into_inner()) = table;
        // From now on a crash is an unclean shutdown again.
        for dir in &config.log_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            if storage.exists(&marker) {
                storage.remove_file(&marker).map_err(io_err(&marker))?;
                storage.sync_dir(dir).map_err(io_err(dir))?;
            }
        }
        manager.checkpoint_recovery_points();
        Ok(manager)
    }

    fn read_or_write_meta_properties(
        storage: &dyn Storage,
        dir: &Path,
        node_id: i32,
        known_cluster: Option<String>,
    ) -> Result<String, TopicError> {
        let path = dir.join(META_PROPERTIES);
        if let Ok(text) = storage.read_to_string(&path) {
            let stored_node = text
                .lines()
                .find_map(|l| l.strip_prefix("node.id="))
                .and_then(|s| s.trim().parse::<i32>().ok());
            if stored_node.is_some_and(|n| n != node_id) {
                return Err(TopicError::Io {
                    path,
                    source: io::Error::other(format!(
                        "node.id {} in meta.properties does not match the configured node.id {node_id}",
                        stored_node.unwrap_or_default()
                    )),
                });
            }
            if let Some(id) = text
                .lines()
                .find_map(|l| l.strip_prefix("cluster.id="))
                .map(|s| s.trim().to_string())
            {
                return Ok(id);
            }
        }
        let cluster_id = known_cluster.unwrap_or_else(|| base64url(Uuid::new_v4().as_bytes()));
        let directory_id = base64url(Uuid::new_v4().as_bytes());
        let text = format!(
            "#\n#Written by Gregor\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\ndirectory.id={directory_id}\n"
        );
        storage
            .write_atomically(&path, text.as_bytes())
            .map_err(io_err(&path))?;
        Ok(cluster_id)
    }

    /// Where broker-wide metadata files live (`<first log dir>/__gregor_metadata`).
    /// The storage every log and metadata file goes through.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn metadata_dir(&self) -> PathBuf {
        self.config.log_dirs[0].join(METADATA_DIR)
    }

    fn topics_dir(&self) -> PathBuf {
        self.config.log_dirs[0].join(METADATA_DIR).join("topics")
    }

    /// The directory of a partition: where it exists already, else in the data directory
    /// holding the fewest partitions.
    fn partition_dir(&self, tp: &TopicPartition) -> (usize, PathBuf) {
        let name = file_names::partition_dir_name(&tp.topic, tp.partition);
        for (i, dir) in self.config.log_dirs.iter().enumerate() {
            let candidate = dir.join(&name);
            if self.storage.is_dir(&candidate) {
                return (i, candidate);
            }
        }
        let (i, dir) = self
            .config
            .log_dirs
            .iter()
            .enumerate()
            .min_by_key(|(_, d)| {
                self.storage
                    .list(d)
                    .map(|entries| entries.iter().filter(|e| self.storage.is_dir(e)).count())
                    .unwrap_or(0)
            })
            .unwrap_or((0, &self.config.log_dirs[0]));
        (i, dir.join(name))
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .get(name)
            .cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        let table = self.topics.read().unwrap_or_else(|e| e.into_inner());
        table
            .by_id
            .get(&id)
            .and_then(|n| table.by_name.get(n))
            .cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .values()
            .cloned()
            .collect()
    }

    fn all_logs(&self) -> Vec<Arc<Log>> {
        self.topics()
            .iter()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// Checks a CreateTopics request without creating anything. Returns the resolved
    /// partition count and log config.
    pub fn validate_new_topic(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(i32, LogConfig), TopicError> {
        validate_topic_name(name)?;
        if self.topic(name).is_some() {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let partitions = match num_partitions {
            -1 => self.config.num_partitions,
            n if n >= 1 => n,
            n => {
                return Err(TopicError::InvalidPartitions(format!(
                    "Number of partitions was set to an invalid non-positive value ({n})."
                )))
            }
        };
        if partitions > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions {partitions} is larger than this broker supports (100000)."
            )));
        }
        let replication_factor = match replication_factor {
            -1 => self.config.default_replication_factor,
            n => n,
        };
        match replication_factor {
            1 => {}
            n => {
                return Err(TopicError::InvalidReplicationFactor(format!(
                    "Unable to replicate the partition {n} time(s): The target replication factor of {n} cannot be reached because only 1 broker(s) are registered."
                )))
            }
        }
        for (key, value) in configs {
            validate_topic_config(key, value).map_err(TopicError::InvalidConfig)?;
        }
        let log_config = self
            .config
            .log
            .with_overrides(configs)
            .map_err(TopicError::InvalidConfig)?;
        Ok((partitions, log_config))
    }

    /// Creates a topic: metadata file first (atomically), then one log per partition.
    pub fn create_topic(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let (partitions, log_config) =
            self.validate_new_topic(name, num_partitions, replication_factor, &configs)?;
        let id = loop {
            let id = Uuid::new_v4();
            if self.topic_by_id(id).is_none() {
                break id;
            }
        };
        self.write_topic_file(name, id, partitions, &configs)?;
        let mut logs = Vec::new();
        for p in 0..partitions {
            logs.push(self.create_partition_log(name, p, id, &log_config)?);
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            configs,
            partitions: logs,
        });
        let mut table = self.topics.write().unwrap_or_else(|e| e.into_inner());
        table.by_id.insert(id, name.to_string());
        table.by_name.insert(name.to_string(), topic.clone());
        drop(table);
        // A re-created name must not inherit the old topic's recovery point.
        self.checkpoint_recovery_points();
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Writes `__gregor_metadata/topics/<name>.yaml` atomically.
    fn write_topic_file(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let file = TopicFile {
            name: name.to_string(),
            topic_id: id.to_string(),
            partitions,
            configs: configs.clone(),
        };
        let text = serde_yaml::to_string(&file).map_err(|e| TopicError::Io {
            path: self.topics_dir(),
            source: io::Error::other(e.to_string()),
        })?;
        let path = self.topics_dir().join(format!("{name}.yaml"));
        self.storage
            .write_atomically(&path, text.as_bytes())
            .map_err(io_err(&path))
    }

    /// Creates one new partition's directory (with its `partition.metadata`) and log.
    fn create_partition_log(
        &self,
        topic: &str,
        partition: i32,
        id: Uuid,
        log_config: &LogConfig,
    ) -> Result<Arc<Log>, TopicError> {
        let tp = TopicPartition {
            topic: topic.to_string(),
            partition,
        };
        let (_, dir) = self.partition_dir(&tp);
        let storage = self.storage.as_ref();
        if storage.exists(&dir) {
            // Left by a deletion interrupted by a crash (a different topic id), or not ours.
            if read_partition_metadata(storage, &dir).is_some() {
                storage.remove_dir_all(&dir).map_err(io_err(&dir))?;
            } else {
                return Err(TopicError::Io {
                    path: dir.clone(),
                    source: io::Error::other(
                        "a directory that is not a Gregor partition is in the way",
                    ),
                });
            }
        }
        storage.create_dir_durably(&dir).map_err(io_err(&dir))?;
        write_partition_metadata(storage, &dir, id)?;
        let (log, _) = load_log(
            &self.storage,
            tp,
            dir.clone(),
            log_config.clone(),
            RecoveryStart::From(0),
            0,
        )
        .map_err(TopicError::Log)?;
        Ok(Arc::new(log))
    }

    fn replace_topic(&self, topic: Topic) -> Arc<Topic> {
        let topic = Arc::new(topic);
        let mut table = self.topics.write().unwrap_or_else(|e| e.into_inner());
        table.by_name.insert(topic.name.clone(), topic.clone());
        topic
    }

    /// Replaces a topic's config overrides (AlterConfigs semantics; IncrementalAlterConfigs
    /// computes the full set first). Validated, written durably, applied to every log.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let topic = self.topic(name).ok_or(TopicError::UnknownTopic)?;
        for (key, value) in &configs {
            validate_topic_config(key, value).map_err(TopicError::InvalidConfig)?;
        }
        let log_config = self
            .config
            .log
            .with_overrides(&configs)
            .map_err(TopicError::InvalidConfig)?;
        if validate_only {
            return Ok(());
        }
        self.write_topic_file(name, topic.id, topic.partitions.len() as i32, &configs)?;
        for log in &topic.partitions {
            log.set_config(log_config.clone());
        }
        self.replace_topic(Topic {
            name: topic.name.clone(),
            id: topic.id,
            configs,
            partitions: topic.partitions.clone(),
        });
        tracing::info!(topic = name, "altered topic configs");
        Ok(())
    }

    /// Grows a topic to `count` partitions (CreatePartitions); shrinking is refused.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let topic = self.topic(name).ok_or(TopicError::UnknownTopic)?;
        let current = topic.partitions.len() as i32;
        if count < current {
            return Err(TopicError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        if count == current {
            return Err(TopicError::InvalidPartitions(format!(
                "Topic already has {current} partitions."
            )));
        }
        if count > 100_000 {
            return Err(TopicError::InvalidPartitions(format!(
                "Number of partitions {count} is larger than this broker supports (100000)."
            )));
        }
        if validate_only {
            return Ok(());
        }
        let log_config = self
            .config
            .log
            .with_overrides(&topic.configs)
            .map_err(TopicError::InvalidConfig)?;
        self.write_topic_file(name, topic.id, count, &topic.configs)?;
        let mut partitions = topic.partitions.clone();
        for p in current..count {
            partitions.push(self.create_partition_log(name, p, topic.id, &log_config)?);
        }
        self.replace_topic(Topic {
            name: topic.name.clone(),
            id: topic.id,
            configs: topic.configs.clone(),
            partitions,
        });
        self.checkpoint_recovery_points();
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        Ok(())
    }

    /// Applies retention to every log; checkpoints the new log start offsets if it deleted anything.
    pub fn apply_retention(&self) {
        let now = crate::log::now_ms();
        let deleted: usize = self.all_logs().iter().map(|l| l.apply_retention(now)).sum();
        if deleted > 0 {
            self.checkpoint_recovery_points();
        }
    }

    /// DeleteRecords: advances a partition's log_start_offset (durably, before returning).
    pub fn delete_records(&self, log: &Arc<Log>, offset: i64) -> Result<i64, LogError> {
        let low = log.delete_records_before(offset)?;
        self.checkpoint_recovery_points();
        Ok(low)
    }

    /// Deletes a topic: the metadata file goes first (so a crash can't bring it back), then
    /// each partition directory is renamed to `*-delete` and removed.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let topic = self.topic(name).ok_or(TopicError::UnknownTopic)?;
        let path = self.topics_dir().join(format!("{name}.yaml"));
        self.storage.remove_file(&path).map_err(io_err(&path))?;
        self.storage
            .sync_dir(&self.topics_dir())
            .map_err(io_err(&self.topics_dir()))?;
        {
            let mut table = self.topics.write().unwrap_or_else(|e| e.into_inner());
            table.by_name.remove(name);
            table.by_id.remove(&topic.id);
        }
        for log in &topic.partitions {
            if let Err(e) = log.close() {
                tracing::warn!(partition = %log.topic_partition(), error = %e, "flush before delete failed");
            }
            let dir = log.dir().to_path_buf();
            let doomed = dir.with_file_name(format!(
                "{}.{}{DELETE_DIR_SUFFIX}",
                dir.file_name().unwrap_or_default().to_string_lossy(),
                topic.id.simple()
            ));
            self.storage.rename(&dir, &doomed).map_err(io_err(&dir))?;
            self.storage
                .remove_dir_all(&doomed)
                .map_err(io_err(&doomed))?;
        }
        self.checkpoint_recovery_points();
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    fn read_checkpoint(&self, file: &str) -> HashMap<TopicPartition, i64> {
        let mut points = HashMap::new();
        for dir in &self.config.log_dirs {
            let Ok(text) = self.storage.read_to_string(&dir.join(file)) else {
                continue;
            };
            for line in text.lines().skip(2) {
                let mut parts = line.split(' ');
                let (Some(topic), Some(p), Some(o)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                if let (Ok(partition), Ok(offset)) = (p.parse(), o.parse()) {
                    points.insert(
                        TopicPartition {
                            topic: topic.to_string(),
                            partition,
                        },
                        offset,
                    );
                }
            }
        }
        points
    }

    /// Writes each data directory's `recovery-point-offset-checkpoint` and
    /// `log-start-offset-checkpoint` (Kafka's format: version, count, then
    /// `topic partition offset` lines).
    pub fn checkpoint_recovery_points(&self) {
        let logs = self.all_logs();
        for dir in &self.config.log_dirs {
            let mine: Vec<_> = logs
                .iter()
                .filter(|l| l.dir().parent() == Some(dir.as_path()))
                .collect();
            let checkpoints: [(&str, OffsetOf); 2] = [
                (RECOVERY_POINT_CHECKPOINT, Log::recovery_point),
                (LOG_START_OFFSET_CHECKPOINT, Log::log_start_offset),
            ];
            for (file, offset_of) in checkpoints {
                let mut text = format!("0\n{}\n", mine.len());
                for log in &mine {
                    let tp = log.topic_partition();
                    text.push_str(&format!(
                        "{} {} {}\n",
                        tp.topic,
                        tp.partition,
                        offset_of(log)
                    ));
                }
                let path = dir.join(file);
                if let Err(e) = self.storage.write_atomically(&path, text.as_bytes()) {
                    tracing::error!(path = %path.display(), error = %e, "writing a checkpoint failed");
                }
            }
        }
    }

    /// Background duties until `shutdown` fires: time-based flushes (`flush.ms`) and the
    /// recovery-point checkpoint.
    pub async fn run_background(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut flush_tick = tokio::time::interval(Duration::from_millis(100));
        let mut checkpoint_tick =
            tokio::time::interval(self.config.log_flush_offset_checkpoint_interval);
        let mut retention_tick = tokio::time::interval(self.config.log_retention_check_interval);
        loop {
            tokio::select! {
                _ = flush_tick.tick() => {
                    for log in self.all_logs() {
                        if log.flush_due_by_time() {
                            log.request_flush();
                        }
                    }
                }
                _ = checkpoint_tick.tick() => {
                    let cutoff = crate::log::now_ms() - self.config.producer_id_expiration_ms;
                    for log in self.all_logs() {
                        log.expire_producers(cutoff);
                    }
                    let manager = self.clone();
                    let _ = tokio::task::spawn_blocking(move || manager.checkpoint_recovery_points()).await;
                }
                _ = retention_tick.tick() => {
                    let manager = self.clone();
                    let _ = tokio::task::spawn_blocking(move || manager.apply_retention()).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Clean shutdown: flush and close every log, checkpoint, then mark each directory clean.
    pub fn shutdown(&self) {
        let mut clean = true;
        for log in self.all_logs() {
            if let Err(e) = log.close() {
                clean = false;
                tracing::error!(partition = %log.topic_partition(), error = %e, "final flush failed");
            }
        }
        self.checkpoint_recovery_points();
        if !clean {
            return;
        }
        for dir in &self.config.log_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            if let Err(e) = self.storage.write_atomically(&marker, b"") {
                tracing::error!(path = %marker.display(), error = %e, "writing the clean shutdown marker failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RawConfig, DEFAULT_CONFIG_YAML};
    use std::fs;

    fn manager(dir: &Path) -> LogManager {
        let mut raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).unwrap();
        raw.set("log.dirs", dir.to_str().unwrap());
        LogManager::open(
            Arc::new(BrokerConfig::from_raw(&raw).unwrap()),
            crate::storage::file_system(),
        )
        .unwrap()
    }

    #[test]
    fn topics_survive_restart_and_deletion_is_permanent() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let m = manager(dir.path());
            let mut configs = BTreeMap::new();
            configs.insert("retention.ms".to_string(), "1000".to_string());
            let t = m.create_topic("orders", 3, -1, configs).unwrap();
            m.create_topic("doomed", 2, 1, BTreeMap::new()).unwrap();
            assert!(matches!(
                m.create_topic("orders", 1, 1, BTreeMap::new()),
                Err(TopicError::AlreadyExists(_))
            ));
            m.delete_topic("doomed").unwrap();
            m.shutdown();
            t.id
        };
        let m = manager(dir.path());
        let t = m.topic("orders").unwrap();
        assert_eq!(t.id, id);
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(
            t.configs.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        assert!(m.topic("doomed").is_none());
        assert!(!dir.path().join("doomed-0").exists());
        assert_eq!(m.topic_by_id(id).unwrap().name, "orders");
    }

    #[test]
    fn invalid_topics_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path());
        let none = BTreeMap::new();
        assert!(matches!(
            m.create_topic("bad/name", 1, 1, none.clone()),
            Err(TopicError::InvalidName(_))
        ));
        assert!(matches!(
            m.create_topic("t", 0, 1, none.clone()),
            Err(TopicError::InvalidPartitions(_))
        ));
        assert!(matches!(
            m.create_topic("t", 1, 3, none),
            Err(TopicError::InvalidReplicationFactor(_))
        ));
        let mut bad = BTreeMap::new();
        bad.insert("no.such.config".to_string(), "1".to_string());
        assert!(matches!(
            m.create_topic("t", 1, 1, bad),
            Err(TopicError::InvalidConfig(_))
        ));
    }

    #[test]
    fn only_directories_of_deleted_topics_are_removed_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        {
            let m = manager(dir.path());
            m.create_topic("kept", 1, 1, BTreeMap::new()).unwrap();
            m.shutdown();
        }
        // Not Gregor's: no partition.metadata.
        fs::create_dir_all(dir.path().join("backup-2024")).unwrap();
        fs::write(dir.path().join("backup-2024/file"), b"precious").unwrap();
        // A deletion interrupted after its metadata file went: a known-format orphan.
        fs::create_dir_all(dir.path().join("gone-0")).unwrap();
        write_partition_metadata(
            &crate::storage::FileSystem,
            &dir.path().join("gone-0"),
            Uuid::new_v4(),
        )
        .unwrap();
        let m = manager(dir.path());
        assert!(dir.path().join("backup-2024/file").exists());
        assert!(!dir.path().join("gone-0").exists());
        let id = m.topic("kept").unwrap().id;
        assert_eq!(
            read_partition_metadata(&crate::storage::FileSystem, &dir.path().join("kept-0")),
            Some(id)
        );
    }

    #[test]
    fn cluster_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = manager(dir.path()).cluster_id().to_string();
        assert_eq!(a.len(), 22);
        assert_eq!(manager(dir.path()).cluster_id(), a);
    }
}
