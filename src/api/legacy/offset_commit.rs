//! OffsetCommit v0-v1, asked as OffsetCommit v2. v0 is a simple consumer's commit
//! (generation -1, no member id); v1 adds the group generation and member and a
//! per-partition commit timestamp, which Kafka 3.9 used only to compute an expiry that
//! `offsets.retention.minutes` now decides (KIP-211), so it is read and not kept.
//!
//! ```text
//! request v0:   group_id string | [topic string | [partition i32 | offset i64 | metadata string]]
//! request v1:   group_id string | generation_id i32 | member_id string
//!               | [topic string | [partition i32 | offset i64 | timestamp i64 | metadata string]]
//! response:     [topic string | [partition i32 | error_code i16]]   (v2's layout)
//! ```

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetCommitResponse, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::wire::Reader;
use super::{bridge, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;

/// The oldest OffsetCommit version Kafka 4 serves; its response layout is v0's and v1's.
const FLOOR: i16 = 2;

pub fn route(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Dispatched, RequestError> {
    let v1 = ctx.version >= 1;
    let mut r = Reader::new(body, "OffsetCommit v0-v1");
    let group_id = r.string()?;
    let (generation, member_id) = if v1 {
        (r.i32()?, r.string()?)
    } else {
        (-1, String::new())
    };
    let mut topics = Vec::new();
    for _ in 0..r.array_len()? {
        let name = r.string()?;
        let mut partitions = Vec::new();
        for _ in 0..r.array_len()? {
            let partition = r.i32()?;
            let offset = r.i64()?;
            if v1 {
                r.i64()?; // commit timestamp
            }
            let metadata = r.nullable_string()?;
            partitions.push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(partition)
                    .with_committed_offset(offset)
                    .with_committed_metadata(metadata.map(StrBytes::from_string)),
            );
        }
        topics.push(
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group_id)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member_id))
        .with_retention_time_ms(-1)
        .with_topics(topics);
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        |response: OffsetCommitResponse| {
            let mut out = BytesMut::new();
            // v2 has no throttle time either: the layouts are the same.
            if let Err(e) = response.encode(&mut out, FLOOR) {
                tracing::error!(error = %e, "re-encoding an OffsetCommit answer failed");
            }
            out
        },
    )
}
