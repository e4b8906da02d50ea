//! Committed offsets on disk: records in the internal `__consumer_offsets` topic, in Kafka's
//! own key/value schema, so that they live in the same segment store (and its recovery)
//! as everything else, and are replayed at start-up.
//!
//! ```text
//! key   (version 1): i16 version | string group | string topic | i32 partition
//! value (version 3): i16 version | i64 offset | i32 leader_epoch | string metadata | i64 commit_timestamp
//! string: i16 length + UTF-8 bytes. A null value (tombstone) deletes the offset.
//! ```

use super::group::CommittedOffset;
use crate::coordinator::internal_topic::{put_string, Reader, ReplayError};
use std::collections::HashMap;

use crate::log::records::{control_marker, decode_key_values};
use crate::log::Log;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub fn encode_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1i16.to_be_bytes());
    put_string(&mut out, group);
    put_string(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

pub fn encode_value(o: &CommittedOffset) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&3i16.to_be_bytes());
    out.extend_from_slice(&o.offset.to_be_bytes());
    out.extend_from_slice(&o.leader_epoch.to_be_bytes());
    put_string(&mut out, &o.metadata);
    out.extend_from_slice(&o.commit_timestamp.to_be_bytes());
    out
}

/// One replayed record: an offset commit (or its deletion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRecord {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub value: Option<CommittedOffset>,
}

/// Decodes an offset commit record; `None` for other record kinds (group metadata).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<OffsetRecord> {
    let mut k = Reader::new(key);
    let version = k.i16()?;
    if !(0..=1).contains(&version) {
        return None;
    }
    let group = k.string()?;
    let topic = k.string()?;
    let partition = k.i32()?;
    let value = match value {
        None => None,
        Some(v) => {
            let mut r = Reader::new(v);
            let version = r.i16()?;
            let offset = r.i64()?;
            let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
            let metadata = r.string()?;
            let commit_timestamp = r.i64()?;
            Some(CommittedOffset {
                offset,
                leader_epoch,
                metadata,
                commit_timestamp,
            })
        }
    };
    Some(OffsetRecord {
        group,
        topic,
        partition,
        value,
    })
}

/// Offset records that took effect, and transactional ones still waiting, by producer id.
pub type OffsetReplay = (Vec<OffsetRecord>, HashMap<i64, Vec<OffsetRecord>>);

/// The offset records of one `__consumer_offsets` partition that took effect, in log
/// order: transactional commits count only once their commit marker follows.
/// Also returns, by producer id, the transactional records still waiting for a marker.
pub fn replay(log: &Log) -> Result<OffsetReplay, ReplayError> {
    let mut out = Vec::new();
    let mut pending: HashMap<i64, Vec<OffsetRecord>> = HashMap::new();
    crate::coordinator::internal_topic::for_each_batch(log, |h, batch| {
        if h.is_control() {
            let records = pending.remove(&h.producer_id).unwrap_or_default();
            if control_marker(batch) == Some(true) {
                out.extend(records);
            }
            return Ok(());
        }
        for kv in decode_key_values(batch).ok_or("a batch's records do not decode")? {
            let Some(key) = &kv.key else { continue };
            let Some(record) = decode(key, kv.value.as_deref()) else {
                continue;
            };
            if h.is_transactional() {
                pending.entry(h.producer_id).or_default().push(record);
            } else {
                out.push(record);
            }
        }
        Ok(())
    })?;
    Ok((out, pending))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let o = CommittedOffset {
            offset: 42,
            leader_epoch: 0,
            metadata: "meta".into(),
            commit_timestamp: 1234,
        };
        let key = encode_key("g", "t", 3);
        let value = encode_value(&o);
        let r = decode(&key, Some(&value)).unwrap();
        assert_eq!(
            (r.group.as_str(), r.topic.as_str(), r.partition),
            ("g", "t", 3)
        );
        assert_eq!(r.value, Some(o));
        assert_eq!(decode(&key, None).unwrap().value, None);
    }
}
