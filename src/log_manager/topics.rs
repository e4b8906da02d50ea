//! Topic administration on the store: CreateTopics (validation first), CreatePartitions,
//! config changes and DeleteTopics. Each change is made durable in a fixed order (partition
//! directories, then the topic file, then checkpoints) so a crash leaves either the old or
//! the new topic, and leftovers the next start-up recognises.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::metadata::{self, read_partition_metadata, write_partition_metadata, TopicFile};
use super::{io_err, LogManager, Topic, TopicError};
use crate::config::topic::validate_topic_config;
use crate::config::LogConfig;
use crate::log::file_names::DELETE_DIR_SUFFIX;
use crate::log::loader::{load_log, RecoveryStart};
use crate::log::{Log, TopicPartition};

impl LogManager {
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
        self.create_topic_with_id(name, num_partitions, replication_factor, configs, None)
    }

    /// Creates a topic under a given id (cluster mode: the id PostgreSQL has), or a new one.
    pub fn create_topic_with_id(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        given_id: Option<Uuid>,
    ) -> Result<Arc<Topic>, TopicError> {
        let _admin = self
            .admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (partitions, log_config) =
            self.validate_new_topic(name, num_partitions, replication_factor, &configs)?;
        let id = match given_id {
            Some(id) => id,
            None => loop {
                let id = Uuid::new_v4();
                if self.topic_by_id(id).is_none() {
                    break id;
                }
            },
        };
        self.write_topic_file(name, id, partitions, &configs)?;
        let mut logs = Vec::new();
        for p in 0..partitions {
            match self.create_partition_log(name, p, id, &log_config) {
                Ok(log) => logs.push(log),
                Err(e) => {
                    // Out of descriptors or space halfway: no half-made topic stays behind
                    // to be loaded at the next start.
                    self.undo_create_topic(name, id, p, &logs);
                    return Err(e);
                }
            }
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            configs,
            partitions: logs,
        });
        let mut table = self
            .topics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.by_id.insert(id, name.to_string());
        table.by_name.insert(name.to_string(), topic.clone());
        drop(table);
        // A re-created name must not inherit the old topic's recovery point: without this
        // checkpoint a crash could skip recovery of the new partitions' first segment.
        self.checkpoint_recovery_points()
            .map_err(TopicError::Checkpoint)?;
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Removes what a failed `create_topic` made: the partitions it created (the one that
    /// failed too, if it got as far as its `partition.metadata`) and the topic file. Best
    /// effort, each failure logged: a partition directory left without its topic is removed
    /// at the next start, like one of a deleted topic.
    fn undo_create_topic(&self, name: &str, id: Uuid, failed: i32, logs: &[Arc<Log>]) {
        let mut dirs: Vec<_> = logs.iter().map(|l| l.dir().to_path_buf()).collect();
        for log in logs {
            let _closed = log.close();
        }
        let (_, dir) = self.partition_dir(&TopicPartition {
            topic: name.to_string(),
            partition: failed,
        });
        if read_partition_metadata(self.storage.as_ref(), &dir) == Some(id) {
            dirs.push(dir);
        }
        for dir in dirs {
            if let Err(e) = self.storage.remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "undoing a failed topic creation");
            }
        }
        let path = self.topics_dir().join(format!("{name}.yaml"));
        let removed = self
            .storage
            .remove_file(&path)
            .and_then(|()| self.storage.sync_dir(&self.topics_dir()));
        if let Err(e) = removed {
            tracing::warn!(path = %path.display(), error = %e, "undoing a failed topic creation");
        }
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
        let path = self.topics_dir().join(format!("{name}.yaml"));
        metadata::write_topic_file(self.storage.as_ref(), &path, &file)
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
                return Err(TopicError::Metadata {
                    path: dir.clone(),
                    reason: "a directory that is not a Gregor partition is in the way".into(),
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
        let mut table = self
            .topics
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let _admin = self
            .admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let _admin = self
            .admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        // As for a new topic: new partitions must not inherit a deleted one's recovery point.
        self.checkpoint_recovery_points()
            .map_err(TopicError::Checkpoint)?;
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        Ok(())
    }

    /// Deletes a topic: the metadata file goes first (so a crash can't bring it back), then
    /// each partition directory is renamed to `*-delete` and removed.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let _admin = self
            .admin
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let topic = self.topic(name).ok_or(TopicError::UnknownTopic)?;
        let path = self.topics_dir().join(format!("{name}.yaml"));
        self.storage.remove_file(&path).map_err(io_err(&path))?;
        self.storage
            .sync_dir(&self.topics_dir())
            .map_err(io_err(&self.topics_dir()))?;
        {
            let mut table = self
                .topics
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            table.by_name.remove(name);
            table.by_id.remove(&topic.id);
        }
        crate::metrics::global().forget_topic(name);
        for log in &topic.partitions {
            if let Err(e) = log.close() {
                tracing::warn!(partition = %log.topic_partition(), error = %e, "flush before delete failed");
            }
            // No cleaner may write into the directory once it is renamed (or reused by a
            // topic created under the same name).
            self.wait_for_cleaning(log.topic_partition());
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
        // The deleted topic's entries linger in the checkpoint files if this fails; the
        // next create of that name checkpoints (or fails) before it is used.
        if self.checkpoint_recovery_points().is_err() {
            tracing::warn!(topic = name, "checkpoint after deleting a topic failed");
        }
        // Else a topic created under this name would start, after a restart, from the
        // deleted one's first dirty offset (and never clean what lies before it).
        if let Err(e) = self.checkpoint_cleaner_offsets() {
            tracing::warn!(topic = name, error = %e, "cleaner checkpoint after deleting a topic failed");
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }
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
