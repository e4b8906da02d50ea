//! ListOffsets v0 ("Offsets" in the old guide): asked as ListOffsets v1, answered with
//! v0's array of offsets. Latest (-1) and earliest (-2) answer what v1 answers; Gregor
//! gives one offset whatever `max_num_offsets` asks beyond one (Kafka 3.9 listed segment
//! base offsets after it), and for a timestamp the first offset at or after it (v1's rule,
//! where Kafka 3.9 looked at segment times).
//!
//! ```text
//! request v0:   replica_id i32 | [topic string | [partition i32 | timestamp i64 | max_num_offsets i32]]
//! response v0:  [topic string | [partition i32 | error_code i16 | [offset i64]]]
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::wire::{put_array_len, put_string, Reader};
use super::{bridge, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;

/// The oldest ListOffsets version Kafka 4 serves.
const FLOOR: i16 = 1;

pub fn route(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Dispatched, RequestError> {
    let mut r = Reader::new(body, "ListOffsets v0");
    let replica_id = r.i32()?;
    let mut order: Vec<(String, Vec<(i32, i32)>)> = Vec::new();
    let mut topics = Vec::new();
    for _ in 0..r.array_len()? {
        let name = r.string()?;
        let mut wanted = Vec::new();
        let mut partitions = Vec::new();
        for _ in 0..r.array_len()? {
            let partition = r.i32()?;
            let timestamp = r.i64()?;
            let max_num_offsets = r.i32()?;
            partitions.push(
                ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp),
            );
            wanted.push((partition, max_num_offsets));
        }
        topics.push(
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.clone())))
                .with_partitions(partitions),
        );
        order.push((name, wanted));
    }
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_topics(topics);
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        move |response: ListOffsetsResponse| answer(&order, &response),
    )
}

fn answer(order: &[(String, Vec<(i32, i32)>)], response: &ListOffsetsResponse) -> BytesMut {
    let mut found = HashMap::new();
    for t in &response.topics {
        for p in &t.partitions {
            found.insert(
                (t.name.as_str(), p.partition_index),
                (p.error_code, p.offset),
            );
        }
    }
    let mut out = BytesMut::new();
    put_array_len(&mut out, order.len());
    for (name, wanted) in order {
        put_string(&mut out, name);
        put_array_len(&mut out, wanted.len());
        for (partition, max_num_offsets) in wanted {
            let (error, offset) = found
                .get(&(name.as_str(), *partition))
                .copied()
                .unwrap_or((kafka_protocol::ResponseError::UnknownServerError.code(), -1));
            out.put_i32(*partition);
            out.put_i16(error);
            if error == 0 && offset >= 0 && *max_num_offsets > 0 {
                put_array_len(&mut out, 1);
                out.put_i64(offset);
            } else {
                put_array_len(&mut out, 0);
            }
        }
    }
    out
}
