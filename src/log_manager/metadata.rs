//! The metadata files of the store, apart from the logs themselves:
//!
//! - `meta.properties` in each data directory (Kafka's: version, cluster.id, node.id,
//!   directory.id), written once; a node.id that differs from the config stops start-up.
//! - `partition.metadata` in each partition directory (Kafka's: version 0 and the topic id in
//!   base64url), which tells a live partition from the leftovers of a deleted topic.
//! - `__gregor_metadata/topics/<name>.yaml` in the first data directory: a topic's name, id,
//!   partition count and config overrides (Gregor's own; Kafka keeps this in KRaft).
//!
//! Every file is written atomically (temp file, fsync, rename, fsync of the directory).

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{io_err, TopicError};
use crate::config::topic::REMOVED_TOPIC_CONFIGS;
use crate::log::file_names::{META_PROPERTIES, PARTITION_METADATA};
use crate::storage::Storage;

/// The on-disk description of a topic.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TopicFile {
    pub name: String,
    pub topic_id: String,
    pub partitions: i32,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> TopicError {
    TopicError::Metadata {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Reads a topic file and its id; configs that Kafka 4 removed are dropped with a warning.
pub(super) fn read_topic_file(
    storage: &dyn Storage,
    path: &Path,
) -> Result<(TopicFile, Uuid), TopicError> {
    let text = storage.read_to_string(path).map_err(io_err(path))?;
    let mut file: TopicFile = serde_yaml::from_str(&text).map_err(|e| corrupt(path, e))?;
    file.configs.retain(|key, _| {
        let removed = REMOVED_TOPIC_CONFIGS.contains(&key.as_str());
        if removed {
            tracing::warn!(topic = %file.name, config = %key, "ignoring a topic config Kafka 4 removed");
        }
        !removed
    });
    let id = Uuid::parse_str(&file.topic_id).map_err(|e| corrupt(path, e))?;
    Ok((file, id))
}

/// Writes a topic file atomically.
pub(super) fn write_topic_file(
    storage: &dyn Storage,
    path: &Path,
    file: &TopicFile,
) -> Result<(), TopicError> {
    let text = serde_yaml::to_string(file).map_err(|e| corrupt(path, e))?;
    storage
        .write_atomically(path, text.as_bytes())
        .map_err(io_err(path))
}

/// Writes `partition.metadata` into a partition directory.
pub(super) fn write_partition_metadata(
    storage: &dyn Storage,
    dir: &Path,
    id: Uuid,
) -> Result<(), TopicError> {
    let path = dir.join(PARTITION_METADATA);
    let text = format!("version: 0\ntopic_id: {}\n", base64url(id.as_bytes()));
    storage
        .write_atomically(&path, text.as_bytes())
        .map_err(io_err(&path))
}

/// The topic id in a partition directory's `partition.metadata`, if it has a readable one.
pub(super) fn read_partition_metadata(storage: &dyn Storage, dir: &Path) -> Option<Uuid> {
    let text = storage.read_to_string(&dir.join(PARTITION_METADATA)).ok()?;
    let encoded = text
        .lines()
        .find_map(|l| l.strip_prefix("topic_id: "))?
        .trim();
    Uuid::from_slice(&URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()
}

/// The cluster id in `dir`'s `meta.properties`, writing the file first if there is none
/// (with `known_cluster` from another data directory, or a new id).
pub(super) fn read_or_write_meta_properties(
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
        if let Some(stored) = stored_node.filter(|n| *n != node_id) {
            return Err(corrupt(
                &path,
                format!("node.id {stored} in it does not match the configured node.id {node_id}"),
            ));
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

/// Base64url without padding, as Kafka prints cluster ids and topic ids.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FileSystem;

    #[test]
    fn partition_metadata_round_trips_the_topic_id_in_kafkas_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        write_partition_metadata(&FileSystem, dir.path(), id).unwrap();
        let text = std::fs::read_to_string(dir.path().join(PARTITION_METADATA)).unwrap();
        // Kafka's Uuid.toString: 22 characters of base64url, no padding.
        assert_eq!(text, "version: 0\ntopic_id: ASNFZ4mrze8BI0VniavN7w\n");
        assert_eq!(read_partition_metadata(&FileSystem, dir.path()), Some(id));
    }
}
