//! Every on-disk name of the segment store in one place (Kafka's `LogFileUtils`):
//! partition directories `<topic>-<partition>`, segment files named by their 20-digit
//! zero-padded base offset, and the suffixes of each file kind.

use std::path::{Path, PathBuf};

pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// Suffix of a partition directory renamed for deletion; removed at start-up if left over.
pub const DELETE_DIR_SUFFIX: &str = "-delete";
/// Per-directory checkpoint of each partition's recovery point.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Per-directory checkpoint of each partition's log_start_offset (DeleteRecords).
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Marker written by a clean shutdown, removed at start-up.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// Directory (inside the first log dir) holding topic metadata files.
pub const METADATA_DIR: &str = "__gregor_metadata";
/// Broker identity file, as Kafka's.
pub const META_PROPERTIES: &str = "meta.properties";
/// In each partition directory: the id of the topic it belongs to, as Kafka's.
pub const PARTITION_METADATA: &str = "partition.metadata";

/// `00000000000000000042` for base offset 42.
pub fn offset_prefix(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

pub fn log_file(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}{LOG_SUFFIX}", offset_prefix(base_offset)))
}

pub fn index_file(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}{INDEX_SUFFIX}", offset_prefix(base_offset)))
}

pub fn txn_index_file(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}{TXN_INDEX_SUFFIX}", offset_prefix(base_offset)))
}

pub fn time_index_file(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}{TIME_INDEX_SUFFIX}", offset_prefix(base_offset)))
}

/// Every file of one segment: log, offset index, time index, transaction index.
pub fn segment_files(dir: &Path, base_offset: i64) -> [PathBuf; 4] {
    [
        log_file(dir, base_offset),
        index_file(dir, base_offset),
        time_index_file(dir, base_offset),
        txn_index_file(dir, base_offset),
    ]
}

/// The base offset of a `.log` file name, if it is one.
pub fn parse_log_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(LOG_SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Suffix of a segment file being deleted; leftovers are removed at start-up.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Suffix of a segment file the log cleaner is writing; leftovers are removed at start-up.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment file that is complete and durable and replaces the
/// segments it covers; start-up finishes an interrupted replacement.
pub const SWAP_SUFFIX: &str = ".swap";
/// Per-directory checkpoint of each compacted partition's first dirty offset (where the
/// next cleaning starts building its offset map).
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// `<path>.deleted`.
pub fn deleted(path: &Path) -> PathBuf {
    with_suffix(path, DELETED_SUFFIX)
}

/// `<path><suffix>`, e.g. `00000000000000000042.log.swap`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The base offset of a `.log.swap` file name, if it is one.
pub fn parse_swap_log_file_name(name: &str) -> Option<i64> {
    parse_log_file_name(name.strip_suffix(SWAP_SUFFIX)?)
}

/// `<topic>-<partition>`.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Splits `<topic>-<partition>` at its last dash.
pub fn parse_partition_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic, partition.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let dir = Path::new("/d");
        assert_eq!(
            log_file(dir, 42),
            PathBuf::from("/d/00000000000000000042.log")
        );
        assert_eq!(parse_log_file_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_log_file_name("42.log"), None);
        assert_eq!(
            parse_swap_log_file_name("00000000000000000042.log.swap"),
            Some(42)
        );
        assert_eq!(parse_swap_log_file_name("00000000000000000042.log"), None);
        assert_eq!(
            parse_partition_dir_name("my-topic-3"),
            Some(("my-topic", 3))
        );
        assert_eq!(parse_partition_dir_name("topic-x"), None);
    }
}
