//! Offset checkpoint files (Kafka's `OffsetCheckpointFile`): `recovery-point-offset-checkpoint`
//! and `log-start-offset-checkpoint` in each data directory. Text, as Kafka writes them:
//!
//! ```text
//! 0                      version
//! 2                      number of entries
//! orders 0 1500          topic partition offset
//! orders 1 1432
//! ```
//!
//! Written atomically (temp file, fsync, rename, fsync of the directory).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::LogManager;
use crate::log::file_names::{LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT};
use crate::log::{Log, TopicPartition};
use crate::storage::Storage;

/// A checkpoint that could not be written durably.
#[derive(Debug)]
pub struct CheckpointError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl std::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "writing the checkpoint {} failed: {}",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The entries of one checkpoint file; a missing file or a line that does not parse
/// contributes nothing (recovery then starts from 0, which is safe).
pub fn read(storage: &dyn Storage, path: &Path) -> HashMap<TopicPartition, i64> {
    let mut points = HashMap::new();
    let Ok(text) = storage.read_to_string(path) else {
        return points;
    };
    for line in text.lines().skip(2) {
        let mut parts = line.split(' ');
        let (Some(topic), Some(p), Some(o)) = (parts.next(), parts.next(), parts.next()) else {
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
    points
}

pub(super) fn encode(entries: &[(&TopicPartition, i64)]) -> String {
    let mut text = format!("0\n{}\n", entries.len());
    for (tp, offset) in entries {
        text.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
    }
    text
}

/// Which offset of a log a checkpoint file records.
type OffsetOf = fn(&Log) -> i64;

impl LogManager {
    /// One checkpoint file's entries from every data directory.
    pub(super) fn read_checkpoint(&self, file: &str) -> HashMap<TopicPartition, i64> {
        let mut points = HashMap::new();
        for dir in &self.config.log_dirs {
            points.extend(read(self.storage.as_ref(), &dir.join(file)));
        }
        points
    }

    /// Writes each data directory's recovery-point and log-start-offset checkpoints. Every
    /// file is attempted; the first failure is returned. One writer at a time (they
    /// share the temp file), and the offsets are read under the same lock, so checkpoints
    /// land in the order their offsets were read.
    pub fn checkpoint_recovery_points(&self) -> Result<(), CheckpointError> {
        let _one_writer = self
            .recovery_checkpoint_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let logs = self.all_logs();
        let mut first_error = None;
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
                let entries: Vec<_> = mine
                    .iter()
                    .map(|l| (l.topic_partition(), offset_of(l)))
                    .collect();
                let path = dir.join(file);
                if let Err(source) = self
                    .storage
                    .write_atomically(&path, encode(&entries).as_bytes())
                {
                    tracing::error!(path = %path.display(), error = %source, "writing a checkpoint failed");
                    first_error.get_or_insert(CheckpointError { path, source });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::FileSystem;

    #[test]
    fn a_checkpoint_round_trips_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        let a = TopicPartition {
            topic: "orders".into(),
            partition: 3,
        };
        let text = encode(&[(&a, 1500)]) + "garbage line\n";
        std::fs::write(&path, text).unwrap();
        let read = read(&FileSystem, &path);
        assert_eq!(read.len(), 1);
        assert_eq!(read.get(&a), Some(&1500));
    }
}
