//! OffsetForLeaderEpoch v0-v1, asked as v2: the old partitions carry no current leader
//! epoch (-1: unchecked); the answers drop v2's throttle time, and v0 also each partition's
//! leader epoch.
//!
//! ```text
//! request v0-v1:  [topic string | [partition i32 | leader_epoch i32]]
//! response v0:    [topic string | [error_code i16 | partition i32 | end_offset i64]]
//! response v1:    [topic string | [error_code i16 | partition i32 | leader_epoch i32 | end_offset i64]]
//! ```

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::wire::{put_array_len, put_string, Reader};
use super::{bridge, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;

/// The oldest OffsetForLeaderEpoch version Kafka 4 serves.
const FLOOR: i16 = 2;

pub fn route(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Dispatched, RequestError> {
    let version = ctx.version;
    let mut r = Reader::new(body, "OffsetForLeaderEpoch v0-v1");
    let mut topics = Vec::new();
    for _ in 0..r.array_len()? {
        let name = r.string()?;
        let mut partitions = Vec::new();
        for _ in 0..r.array_len()? {
            partitions.push(
                OffsetForLeaderPartition::default()
                    .with_partition(r.i32()?)
                    .with_current_leader_epoch(-1)
                    .with_leader_epoch(r.i32()?),
            );
        }
        topics.push(
            OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions),
        );
    }
    let request = OffsetForLeaderEpochRequest::default().with_topics(topics);
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        move |response: OffsetForLeaderEpochResponse| {
            let mut out = BytesMut::new();
            put_array_len(&mut out, response.topics.len());
            for t in &response.topics {
                put_string(&mut out, &t.topic);
                put_array_len(&mut out, t.partitions.len());
                for p in &t.partitions {
                    out.put_i16(p.error_code);
                    out.put_i32(p.partition);
                    if version >= 1 {
                        out.put_i32(p.leader_epoch);
                    }
                    out.put_i64(p.end_offset);
                }
            }
            out
        },
    )
}
