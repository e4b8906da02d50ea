//! The log manager (Kafka's `LogManager`): the data directories, every topic and its
//! partition logs, topic metadata files, recovery-point checkpoints and the clean-shutdown
//! marker, plus the background flush and checkpoint timers.
//!
//! Synchronisation: the topic table is a `std::sync::RwLock` read on every request and
//! written only by topic creation and deletion; those two are additionally serialised by
//! `admin` so their multi-file updates don't interleave. No lock is held across an await.
//!
//! Layout: this file opens the store (start-up, recovery, leftovers of crashes), holds the
//! topic table and the background timers, and shuts down cleanly; `topics.rs` creates,
//! alters and deletes topics; `metadata.rs` reads and writes the metadata files;
//! `checkpoint.rs` the offset checkpoints.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use uuid::Uuid;

use crate::config::{BrokerConfig, ConfigError};
use crate::log::cleaner::Throttler;
use crate::log::file_names::{
    self, CLEANER_OFFSET_CHECKPOINT, CLEAN_SHUTDOWN_FILE, DELETE_DIR_SUFFIX,
    LOG_START_OFFSET_CHECKPOINT, METADATA_DIR, META_PROPERTIES, RECOVERY_POINT_CHECKPOINT,
};
use crate::log::loader::{load_log, RecoveryStart};
use crate::log::{Log, LogError, TopicPartition};
use crate::storage::Storage;
use checkpoint::CheckpointError;
use metadata::{read_partition_metadata, write_partition_metadata};

mod checkpoint;
mod cleaning;
mod metadata;
mod topics;

pub use metadata::base64url;
pub use topics::validate_topic_name;

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
    /// The disk said no; the path says where.
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// A metadata file (or directory) is not what it must be: unreadable contents, a
    /// mismatched node.id or cluster.id, a foreign directory in a partition's place.
    Metadata {
        path: PathBuf,
        reason: String,
    },
    /// A checkpoint that an operation depends on could not be written.
    Checkpoint(CheckpointError),
    /// Cluster mode: PostgreSQL or the replica failed (retriable).
    Cluster(String),
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
            TopicError::Metadata { path, reason } => write!(f, "{}: {reason}", path.display()),
            TopicError::Checkpoint(e) => write!(f, "{e}"),
            TopicError::Cluster(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TopicError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TopicError::InvalidConfig(e) => Some(e),
            TopicError::Log(e) => Some(e),
            TopicError::Io { source, .. } => Some(source),
            TopicError::Checkpoint(e) => Some(e),
            _ => None,
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TopicError + '_ {
    move |source| TopicError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Why a shutdown was not clean.
#[derive(Debug)]
pub enum ShutdownError {
    /// The final flush of this many partitions failed (each is logged).
    Flush { partitions: usize },
    /// The final checkpoint could not be written.
    Checkpoint(CheckpointError),
    /// The clean-shutdown marker could not be written.
    Marker { path: PathBuf, source: io::Error },
}

impl std::fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShutdownError::Flush { partitions } => {
                write!(f, "the final flush of {partitions} partition(s) failed")
            }
            ShutdownError::Checkpoint(e) => write!(f, "{e}"),
            ShutdownError::Marker { path, source } => write!(
                f,
                "writing the clean-shutdown marker {} failed: {source}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ShutdownError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShutdownError::Flush { .. } => None,
            ShutdownError::Checkpoint(e) => Some(e),
            ShutdownError::Marker { source, .. } => Some(source),
        }
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
    /// Partitions the cleaner threads are working on.
    cleaning: cleaning::InProgress,
    /// Set at shutdown: running cleanings stop at their next batch.
    stopping: AtomicBool,
    /// `log.cleaner.io.max.bytes.per.second`, shared by the cleaner threads.
    throttler: Throttler,
    /// Serialises writes of `cleaner-offset-checkpoint`.
    cleaner_checkpoint_lock: Mutex<()>,
    /// Serialises writes of `recovery-point-offset-checkpoint` and
    /// `log-start-offset-checkpoint`: the periodic checkpoint, topic creation and deletion,
    /// DeleteRecords and shutdown all write them, through the same temp file.
    recovery_checkpoint_lock: Mutex<()>,
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
            let id = metadata::read_or_write_meta_properties(
                storage.as_ref(),
                dir,
                config.node_id,
                cluster_id.clone(),
            )?;
            if let Some(known) = cluster_id.as_ref().filter(|known| **known != id) {
                return Err(TopicError::Metadata {
                    path: dir.join(META_PROPERTIES),
                    reason: format!(
                        "cluster.id {id} differs from {known} in another log dir: these directories belong to different clusters"
                    ),
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
            cleaning: Mutex::default(),
            stopping: AtomicBool::new(false),
            throttler: Throttler::new(config.cleaner.io_max_bytes_per_second),
            cleaner_checkpoint_lock: Mutex::new(()),
            recovery_checkpoint_lock: Mutex::new(()),
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
        let cleaner_offsets = manager.read_checkpoint(CLEANER_OFFSET_CHECKPOINT);
        let mut table = TopicTable::default();
        for path in storage.list(&metadata_dir).map_err(io_err(&metadata_dir))? {
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let (file, id) = metadata::read_topic_file(storage.as_ref(), &path)?;
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
                if let Some(first_dirty) = cleaner_offsets.get(&tp) {
                    log.restore_cleaner_checkpoint(*first_dirty);
                }
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
        *manager
            .topics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = table;
        // From now on a crash is an unclean shutdown again.
        for dir in &config.log_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            if storage.exists(&marker) {
                storage.remove_file(&marker).map_err(io_err(&marker))?;
                storage.sync_dir(dir).map_err(io_err(dir))?;
            }
        }
        manager
            .checkpoint_recovery_points()
            .map_err(TopicError::Checkpoint)?;
        Ok(manager)
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
        if let [only] = self.config.log_dirs.as_slice() {
            // Counting what each directory holds costs a stat of every partition: with one
            // directory there is nothing to choose (10,000 new partitions made it 50 M stats).
            return (0, only.join(name));
        }
        let (i, dir) = self
            .config
            .log_dirs
            .iter()
            .enumerate()
            .min_by_key(|(_, d)| {
                self.storage.list(d).map_or(0, |entries| {
                    entries.iter().filter(|e| self.storage.is_dir(e)).count()
                })
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_name
            .get(name)
            .cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        let table = self
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table
            .by_id
            .get(&id)
            .and_then(|n| table.by_name.get(n))
            .cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

    /// Applies retention to every log; checkpoints the new log start offsets if it deleted anything.
    pub fn apply_retention(&self) {
        let now = crate::log::now_ms();
        let deleted: usize = self.all_logs().iter().map(|l| l.apply_retention(now)).sum();
        // Retention deletes whole segments, so after a crash the first remaining segment's
        // base is the same log start: a failed checkpoint (logged) is retried by the timer.
        if deleted > 0 && self.checkpoint_recovery_points().is_err() {
            tracing::warn!("log start offsets after retention will be checkpointed later");
        }
    }

    /// DeleteRecords: advances a partition's log_start_offset (durably, before returning).
    pub fn delete_records(&self, log: &Arc<Log>, offset: i64) -> Result<i64, LogError> {
        let low = log.delete_records_before(offset)?;
        // The new log start is acknowledged only once it is checkpointed.
        self.checkpoint_recovery_points()
            .map_err(|e| LogError::Io {
                path: e.path,
                source: e.source,
            })?;
        Ok(low)
    }

    /// Background duties until `shutdown` fires: time-based flushes (`flush.ms`), the
    /// recovery-point checkpoint, retention and the log cleaner's threads.
    pub async fn run_background(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut cleaners = tokio::task::JoinSet::new();
        if self.config.cleaner.enable {
            for _ in 0..self.config.cleaner.threads {
                cleaners.spawn(self.clone().run_cleaner_thread(shutdown.clone()));
            }
        }
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
                    // A failure is logged where it happens and retried at the next tick.
                    let result = tokio::task::spawn_blocking(move || manager.checkpoint_recovery_points()).await;
                    if let Err(e) = result {
                        tracing::error!(error = %e, "the checkpoint task failed");
                    }
                }
                // In cluster mode retention is the cluster's (`cluster/retention.rs`): the
                // replicas delete what the controller's commits say.
                _ = retention_tick.tick(), if !matches!(self.config.storage, crate::config::StorageMode::Cluster(_)) => {
                    let manager = self.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || manager.apply_retention()).await {
                        tracing::error!(error = %e, "the retention task failed");
                    }
                }
                _ = shutdown.changed() => {
                    self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
                    while cleaners.join_next().await.is_some() {}
                    return;
                }
            }
        }
    }

    /// Clean shutdown: flush and close every log, checkpoint, then mark each directory clean.
    /// An error means the directories were not all marked clean: the next start recovers
    /// from the last good recovery points (nothing acknowledged is lost by that).
    pub fn shutdown(&self) -> Result<(), ShutdownError> {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let mut failed_flushes = 0;
        for log in self.all_logs() {
            if let Err(e) = log.close() {
                failed_flushes += 1;
                tracing::error!(partition = %log.topic_partition(), error = %e, "final flush failed");
            }
        }
        // Without fresh checkpoints the directories are not marked clean.
        let checkpoint = self.checkpoint_recovery_points();
        if failed_flushes > 0 {
            return Err(ShutdownError::Flush {
                partitions: failed_flushes,
            });
        }
        checkpoint.map_err(ShutdownError::Checkpoint)?;
        for dir in &self.config.log_dirs {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            self.storage
                .write_atomically(&marker, b"")
                .map_err(|source| ShutdownError::Marker {
                    path: marker.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
