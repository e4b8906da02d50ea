//! Messages: reading a partition from an offset (Fetch, batches decoded and decompressed
//! here, control records left out) and writing records (Produce, one batch per partition,
//! keys placed by Kafka's default partitioner).

use crate::log::records::plain_record;
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::cluster::TopicLayout;
use super::murmur2::partition_for_key;
use super::{Admin, AdminError, Target};

/// Fetch and Produce are sent at most at these versions, the last to name topics (later
/// ones carry topic ids only).
const FETCH_VERSION: i16 = 12;
const PRODUCE_VERSION: i16 = 12;

/// A record as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    /// `CreateTime` or `LogAppendTime`.
    pub timestamp_type: &'static str,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What one read of a partition returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub messages: Vec<Message>,
    /// The offset to read from next.
    pub next_offset: i64,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// A record to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the epoch; now when `None`.
    pub timestamp: Option<i64>,
}

/// The partition a record goes to when none is named: by key with Kafka's default
/// partitioner, else `round_robin` (the caller's counter) modulo the partition count.
pub fn choose_partition(key: Option<&[u8]>, partitions: i32, round_robin: &mut u32) -> i32 {
    if let Some(key) = key {
        return partition_for_key(key, partitions);
    }
    let p = (*round_robin % partitions.max(1) as u32) as i32;
    *round_robin = round_robin.wrapping_add(1);
    p
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Admin {
    fn leader(layout: &TopicLayout, partition: i32) -> Result<Target, AdminError> {
        let leader = layout
            .partitions
            .iter()
            .find(|p| p.0 == partition)
            .map(|p| p.1)
            .ok_or_else(|| {
                AdminError::NotFound(format!(
                    "topic {} has no partition {partition}",
                    layout.name
                ))
            })?;
        Ok(if leader >= 0 {
            Target::Node(leader)
        } else {
            Target::Any
        })
    }

    /// Reads `partition` from `offset`: up to about `max_bytes` (always at least one whole
    /// batch), waiting up to `max_wait_ms` for data when there is none.
    pub async fn fetch(
        &self,
        layout: &TopicLayout,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait_ms: i32,
    ) -> Result<Fetched, AdminError> {
        self.fetch_many(layout, &[(partition, offset)], max_bytes, max_wait_ms)
            .await?
            .pop()
            .map_or_else(
                || {
                    Err(AdminError::Protocol(
                        "Fetch answered without the partition".into(),
                    ))
                },
                |(_, fetched)| fetched,
            )
    }

    /// Reads several partitions, each from its offset, in one Fetch per leader (each
    /// partition up to `max_bytes`). A partition's own error is its result's; a failed
    /// request fails them all.
    pub async fn fetch_many(
        &self,
        layout: &TopicLayout,
        positions: &[(i32, i64)],
        max_bytes: i32,
        max_wait_ms: i32,
    ) -> Result<Vec<(i32, Result<Fetched, AdminError>)>, AdminError> {
        let version = self.version_of::<FetchRequest>()?.min(FETCH_VERSION);
        let mut by_leader: std::collections::BTreeMap<Target, Vec<(i32, i64)>> =
            std::collections::BTreeMap::new();
        for (partition, offset) in positions {
            by_leader
                .entry(Self::leader(layout, *partition)?)
                .or_default()
                .push((*partition, *offset));
        }
        let mut out = Vec::with_capacity(positions.len());
        for (target, wanted) in by_leader {
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(max_wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(max_bytes.saturating_mul(wanted.len() as i32))
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(layout.name.clone())))
                    .with_partitions(
                        wanted
                            .iter()
                            .map(|(partition, offset)| {
                                FetchPartition::default()
                                    .with_partition(*partition)
                                    .with_fetch_offset(*offset)
                                    .with_current_leader_epoch(-1)
                                    .with_last_fetched_epoch(-1)
                                    .with_log_start_offset(-1)
                                    .with_partition_max_bytes(max_bytes)
                            })
                            .collect(),
                    )]);
            let response = self.send_at(target, &request, version).await?;
            AdminError::check(response.error_code, None, || {
                format!("reading {}", layout.name)
            })?;
            let mut answered: std::collections::HashMap<i32, _> = response
                .responses
                .into_iter()
                .flat_map(|t| t.partitions)
                .map(|p| (p.partition_index, p))
                .collect();
            for (partition, offset) in wanted {
                let result = match answered.remove(&partition) {
                    None => Err(AdminError::Protocol(format!(
                        "Fetch answered without partition {partition}"
                    ))),
                    Some(data) => AdminError::check(data.error_code, None, || {
                        format!("reading {}-{partition} at offset {offset}", layout.name)
                    })
                    .and_then(|()| {
                        let (messages, next_offset) =
                            decode_batches(partition, offset, data.records.unwrap_or_default())?;
                        Ok(Fetched {
                            messages,
                            next_offset,
                            high_watermark: data.high_watermark,
                            log_start_offset: data.log_start_offset,
                        })
                    }),
                };
                out.push((partition, result));
            }
        }
        Ok(out)
    }

    /// Writes `records` to `partition` as one batch (acks -1 or 1); returns the first
    /// record's offset.
    pub async fn produce(
        &self,
        layout: &TopicLayout,
        partition: i32,
        records: &[NewRecord],
        acks: i16,
    ) -> Result<i64, AdminError> {
        if !matches!(acks, -1 | 1) {
            return Err(AdminError::Invalid(format!(
                "acks must be -1 (all) or 1, not {acks}"
            )));
        }
        let now = now_ms();
        let encoded: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let headers = r
                    .headers
                    .iter()
                    .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                    .collect::<IndexMap<_, _>>();
                let timestamp = r.timestamp.unwrap_or(now);
                plain_record(i as i64, timestamp, r.key.clone(), r.value.clone(), headers)
            })
            .collect();
        let mut batch = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut batch,
            &encoded,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| AdminError::Invalid(format!("cannot encode the records: {e}")))?;
        let version = self.version_of::<ProduceRequest>()?.min(PRODUCE_VERSION);
        let request = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(layout.name.clone())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch.freeze()))])]);
        let response = self
            .send_at(Self::leader(layout, partition)?, &request, version)
            .await?;
        let answer = response
            .responses
            .into_iter()
            .flat_map(|t| t.partition_responses)
            .find(|p| p.index == partition)
            .ok_or_else(|| AdminError::Protocol("Produce answered without the partition".into()))?;
        AdminError::check(answer.error_code, answer.error_message.as_ref(), || {
            format!("writing to {}-{partition}", layout.name)
        })?;
        Ok(answer.base_offset)
    }
}

/// The records at or after `from` in the complete batches of `records` (a Fetch answer may
/// end in part of a batch), control records left out; and the offset after the last whole
/// batch (by its header, so records removed by compaction do not hold the reader back).
pub fn decode_batches(
    partition: i32,
    from: i64,
    mut records: Bytes,
) -> Result<(Vec<Message>, i64), AdminError> {
    let mut messages = Vec::new();
    let mut next = from;
    while records.len() >= 27 {
        let base_offset = i64::from_be_bytes(records[0..8].try_into().unwrap_or_default());
        let length = i32::from_be_bytes(records[8..12].try_into().unwrap_or_default());
        let total = 12 + length.max(0) as usize;
        if length < 0 || records.len() < total {
            break;
        }
        let last_offset_delta = i32::from_be_bytes(records[23..27].try_into().unwrap_or_default());
        let batch = records.split_to(total);
        next = next.max(base_offset + i64::from(last_offset_delta) + 1);
        // The broker's own checked decoder: bounded decompression, record layout checked
        // first (the console decodes stored batches inside the broker).
        let (_, records) = crate::log::records::decode(&batch).ok_or_else(|| {
            AdminError::Protocol(format!("a batch at offset {base_offset} does not decode"))
        })?;
        for r in records {
            if r.control || r.offset < from {
                continue;
            }
            messages.push(Message {
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                timestamp_type: match r.timestamp_type {
                    TimestampType::Creation => "CreateTime",
                    TimestampType::LogAppend => "LogAppendTime",
                },
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
    }
    Ok((messages, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base: i64, values: &[&str]) -> Bytes {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base + i as i64,
                sequence: -1,
                timestamp: 1000,
                key: None,
                value: Some(Bytes::from(v.to_string())),
                headers: IndexMap::new(),
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        out.freeze()
    }

    #[test]
    fn a_partial_last_batch_is_left_for_the_next_read() {
        let mut both = BytesMut::new();
        both.extend_from_slice(&batch(0, &["a", "b"]));
        let second = batch(2, &["c"]);
        both.extend_from_slice(&second[..second.len() - 3]);
        let (messages, next) = decode_batches(0, 1, both.freeze()).unwrap();
        assert_eq!(messages.len(), 1, "offset 0 is before the read's start");
        assert_eq!(messages[0].value.as_deref(), Some(&b"b"[..]));
        assert_eq!(next, 2);
    }

    #[test]
    fn keyless_records_take_turns_and_keyed_ones_hash() {
        let mut rr = 0;
        let turns: Vec<i32> = (0..4).map(|_| choose_partition(None, 3, &mut rr)).collect();
        assert_eq!(turns, vec![0, 1, 2, 0]);
        assert_eq!(choose_partition(Some(b"foobar"), 50, &mut rr), 16);
    }
}
