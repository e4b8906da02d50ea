//! What the coordinators share about their internal topics (`__consumer_offsets`,
//! `__transaction_state`): created on first use (compacted, `offsets.topic.segment.bytes` /
//! `transaction.state.log.segment.bytes` segments, 100 MB by default, as Kafka does), a key's partition by Kafka's `abs(String.hashCode) % partitions`, and durable
//! appends of the broker's own record batches.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::coordinator::CoordinatorError;

use crate::log::record_batch::{check_batch, BatchHeader};
use crate::log::records::{encode_batch, RawRecord, TxnProducer};
use crate::log::{now_ms, AppendInfo, Log};
use crate::log_manager::{LogManager, TopicError};

/// Kafka's partitioning of coordinator keys: `abs(key.hashCode) % n`, with Java's
/// `String.hashCode` over UTF-16 code units.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in key.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    // Kafka's Utils.abs maps i32::MIN to 0.
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// The partition of `topic` that holds `key`, creating the topic on first use (compacted,
/// with `partitions` partitions of `segment_bytes` segments).
pub fn partition_log(
    logs: &LogManager,
    topic: &str,
    partitions: i32,
    segment_bytes: i32,
    key: &str,
) -> Result<Arc<Log>, CoordinatorError> {
    partition_log_with(logs, topic, partitions, compacted(segment_bytes), key)
}

/// The config overrides of a coordinator's topic: compacted, `segment_bytes` segments.
pub fn compacted(segment_bytes: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), segment_bytes.to_string()),
    ])
}

/// The partition of `topic` that holds `key`, creating the topic on first use with
/// `partitions` partitions and `configs`.
pub fn partition_log_with(
    logs: &LogManager,
    topic: &str,
    partitions: i32,
    configs: BTreeMap<String, String>,
    key: &str,
) -> Result<Arc<Log>, CoordinatorError> {
    let t = if let Some(t) = logs.topic(topic) {
        t
    } else {
        match logs.create_topic(topic, partitions, 1, configs) {
            Ok(t) => t,
            Err(TopicError::AlreadyExists(_)) => logs
                .topic(topic)
                .ok_or(CoordinatorError::CoordinatorNotAvailable)?,
            Err(e) => {
                tracing::error!(topic, error = %e, "creating an internal topic failed");
                return Err(CoordinatorError::CoordinatorNotAvailable);
            }
        }
    };
    let p = partition_for(key, t.partitions.len() as i32);
    t.partition(p)
        .cloned()
        .ok_or(CoordinatorError::CoordinatorNotAvailable)
}

/// Encodes `records` as one batch (transactional for `txn`), appends it and waits until it
/// is durable.
pub async fn append_durably(
    log: &Arc<Log>,
    records: &[RawRecord<'_>],
    txn: Option<TxnProducer>,
) -> Result<(), CoordinatorError> {
    if records.is_empty() {
        return Ok(());
    }
    append_durably_at(log, records, txn).await.map(|_| ())
}

/// As [`append_durably`] (`records` not empty), returning where the batch went.
pub async fn append_durably_at(
    log: &Arc<Log>,
    records: &[RawRecord<'_>],
    txn: Option<TxnProducer>,
) -> Result<AppendInfo, CoordinatorError> {
    let batch = encode_batch(records, now_ms(), txn);
    let header = check_batch(&batch).map_err(|_| CoordinatorError::UnknownServerError)?;
    let info = log.append(&batch, &[header]).map_err(|e| {
        tracing::error!(partition = %log.topic_partition(), error = %e, "writing an internal record failed");
        CoordinatorError::KafkaStorageError
    })?;
    await_durable(log, &info).await?;
    Ok(info)
}

/// Waits until an append is fsynced, when the log acknowledges only durable data.
pub async fn await_durable(log: &Arc<Log>, info: &AppendInfo) -> Result<(), CoordinatorError> {
    if log.config().is_durable() {
        log.wait_durable(info)
            .await
            .map_err(|_| CoordinatorError::KafkaStorageError)?;
    }
    Ok(())
}

/// Replaying an internal topic partition failed: starting anyway would serve partial state
/// (offsets or transactions that silently went back in time), so the broker does not start.
#[derive(Debug)]
pub struct ReplayError {
    /// The partition's directory.
    pub dir: PathBuf,
    /// Where the replay stopped.
    pub offset: i64,
    pub cause: String,
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "replaying {} failed at offset {}: {}",
            self.dir.display(),
            self.offset,
            self.cause
        )
    }
}

impl std::error::Error for ReplayError {}

/// Calls `f` with every stored batch (header and bytes) of an internal topic partition up
/// to the high watermark, in log order: the coordinators' replay at start-up. A read error,
/// a batch that can't be parsed, or an error from `f` stops it with a [`ReplayError`].
pub fn for_each_batch(
    log: &Log,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<(), String>,
) -> Result<(), ReplayError> {
    let mut offset = log.log_start_offset();
    let end = log.high_watermark();
    let fail = |offset: i64, cause: String| ReplayError {
        dir: log.dir().to_path_buf(),
        offset,
        cause,
    };
    while offset < end {
        let read = log
            .read(offset, 4 << 20, true, false)
            .map_err(|e| fail(offset, e.to_string()))?;
        let bytes = &read.records[..];
        if bytes.is_empty() {
            return Ok(());
        }
        let before = offset;
        let mut at = 0;
        while let Some(h) = BatchHeader::parse(&bytes[at..]) {
            let size = h.size();
            if at + size > bytes.len() {
                break;
            }
            f(&h, &bytes[at..at + size]).map_err(|cause| fail(h.base_offset, cause))?;
            offset = h.next_offset();
            at += size;
        }
        if offset == before {
            return Err(fail(
                offset,
                "no complete record batch where one should be".into(),
            ));
        }
    }
    Ok(())
}

/// Appends a Kafka string: i16 length, then the UTF-8 bytes.
pub fn put_string(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let len = b.len().min(i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(&b[..len]);
}

/// Reads big-endian fields of an internal record; every read is `None` past the end.
pub struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, at: 0 }
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    pub fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    pub fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A Kafka string (a negative length reads as empty).
    pub fn string(&mut self) -> Option<String> {
        let len = self.i16()?.max(0) as usize;
        Some(String::from_utf8_lossy(self.take(len)?).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitioning_matches_java_string_hashcode() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        assert_eq!(partition_for("", 50), 0);
    }
}
