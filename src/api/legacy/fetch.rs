//! Fetch v0-v3, as Kafka 3.9 served them: the request runs as Fetch v4 (read_uncommitted,
//! which is what these versions saw), and each partition's stored v2 batches are
//! down-converted to messages of format v0 (Fetch v0-v1) or v1 (Fetch v2-v3), headers
//! dropped, control batches skipped and records before the fetch offset left out
//! (`log::legacy_record`). The v4 path itself never
//! decodes a batch; only these answers pay for the conversion.
//!
//! Sizes follow the old rules. Messages are only whole within `partition_max_bytes` (and,
//! in v3, the request's `max_bytes`), except that v3 returns the first message even when it
//! is larger (KIP-74), while v0-v2 return the first `partition_max_bytes` of it: the
//! partial message tells an old consumer to fetch with a larger size, as Kafka 0.10 did.
//!
//! ```text
//! request:      replica_id i32 | max_wait_ms i32 | min_bytes i32 | max_bytes i32 (v3)
//!               | [topic string | [partition i32 | fetch_offset i64 | partition_max_bytes i32]]
//! response v0:  [topic string | [partition i32 | error_code i16 | high_watermark i64 | message_set bytes]]
//! response v1+: throttle_time_ms i32 | v0
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::wire::{put_array_len, put_string, Reader};
use super::{bridge, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;
use crate::log::legacy_record::down_convert;

/// The oldest Fetch version Kafka 4 serves.
const FLOOR: i16 = 4;

struct Wanted {
    partition: i32,
    fetch_offset: i64,
    max_bytes: i32,
}

pub fn route(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Dispatched, RequestError> {
    let version = ctx.version;
    let mut r = Reader::new(body, "Fetch v0-v3");
    let replica_id = r.i32()?;
    let max_wait_ms = r.i32()?;
    let min_bytes = r.i32()?;
    let max_bytes = if version >= 3 { r.i32()? } else { i32::MAX };
    let mut order: Vec<(String, Vec<Wanted>)> = Vec::new();
    let mut topics = Vec::new();
    for _ in 0..r.array_len()? {
        let name = r.string()?;
        let mut wanted = Vec::new();
        let mut partitions = Vec::new();
        for _ in 0..r.array_len()? {
            let partition = r.i32()?;
            let fetch_offset = r.i64()?;
            let partition_max_bytes = r.i32()?;
            partitions.push(
                FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(fetch_offset)
                    .with_partition_max_bytes(partition_max_bytes),
            );
            wanted.push(Wanted {
                partition,
                fetch_offset,
                max_bytes: partition_max_bytes,
            });
        }
        topics.push(
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(name.clone())))
                .with_partitions(partitions),
        );
        order.push((name, wanted));
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_isolation_level(0)
        .with_topics(topics);
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        move |response: FetchResponse| answer(version, max_bytes, &order, &response),
    )
}

fn answer(
    version: i16,
    max_bytes: i32,
    order: &[(String, Vec<Wanted>)],
    response: &FetchResponse,
) -> BytesMut {
    let mut found = HashMap::new();
    for t in &response.responses {
        for p in &t.partitions {
            found.insert((t.topic.as_str(), p.partition_index), p);
        }
    }
    // Fetch v0-v1 carry message format v0, v2-v3 format v1.
    let magic = i8::from(version >= 2);
    let mut budget = usize::try_from(max_bytes).unwrap_or(0);
    let mut first_message_sent = false;
    let mut out = BytesMut::new();
    if version >= 1 {
        out.put_i32(response.throttle_time_ms);
    }
    put_array_len(&mut out, order.len());
    for (name, wanted) in order {
        put_string(&mut out, name);
        put_array_len(&mut out, wanted.len());
        for w in wanted {
            let modern = found.get(&(name.as_str(), w.partition));
            let (error, high_watermark, stored) = modern.map_or((0, -1, None), |p| {
                (p.error_code, p.high_watermark, p.records.as_ref())
            });
            let limit = usize::try_from(w.max_bytes).unwrap_or(0);
            let messages = stored
                .map(|s| down_convert(s, magic, w.fetch_offset))
                .unwrap_or_default();
            let set = if version >= 3 {
                let limit = limit.min(budget);
                let set = whole_messages(&messages, limit, !first_message_sent);
                budget = budget.saturating_sub(set.len());
                set
            } else {
                whole_or_partial(&messages, limit)
            };
            first_message_sent |= !set.is_empty();
            out.put_i32(w.partition);
            out.put_i16(error);
            out.put_i64(high_watermark);
            out.put_i32(set.len() as i32);
            out.put_slice(&set);
        }
    }
    out
}

/// The messages that fit in `limit` bytes, whole; with `first_anyway` the first message
/// even if it alone is larger (KIP-74).
fn whole_messages(messages: &[Bytes], limit: usize, first_anyway: bool) -> BytesMut {
    let mut set = BytesMut::new();
    for (i, m) in messages.iter().enumerate() {
        if set.len() + m.len() > limit && !(i == 0 && first_anyway) {
            break;
        }
        set.put_slice(m);
    }
    set
}

/// v0-v2: whole messages within `limit`, or the first `limit` bytes of the first message
/// when it alone is larger.
fn whole_or_partial(messages: &[Bytes], limit: usize) -> BytesMut {
    let set = whole_messages(messages, limit, false);
    if set.is_empty() {
        if let Some(first) = messages.first() {
            return BytesMut::from(&first[..limit.min(first.len())]);
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages() -> Vec<Bytes> {
        vec![
            Bytes::from(vec![1u8; 40]),
            Bytes::from(vec![2u8; 40]),
            Bytes::from(vec![3u8; 40]),
        ]
    }

    #[test]
    fn only_whole_messages_fit_in_the_limit() {
        assert_eq!(whole_messages(&messages(), 100, false).len(), 80);
        assert_eq!(whole_messages(&messages(), 120, false).len(), 120);
        assert_eq!(whole_messages(&messages(), 39, false).len(), 0);
    }

    #[test]
    fn v3_returns_a_first_message_larger_than_the_limit() {
        assert_eq!(whole_messages(&messages(), 10, true).len(), 40);
        assert_eq!(whole_messages(&messages(), 50, true).len(), 40);
    }

    #[test]
    fn v0_to_v2_return_a_partial_first_message_when_it_does_not_fit() {
        let set = whole_or_partial(&messages(), 10);
        assert_eq!(&set[..], &[1u8; 10][..]);
        assert_eq!(whole_or_partial(&messages(), 85).len(), 80);
        assert!(whole_or_partial(&[], 10).is_empty());
    }
}
