//! DescribeShareGroupOffsets (key 90): each share-partition's start offset as last written
//! (the offset from which records are not yet all delivered), for the topics asked, or for
//! every share-partition the group has. v1 (Kafka 4.2, KIP-1226) adds each partition's lag:
//! the high watermark minus the start offset minus the records after it already settled
//! (-1 when not known); the protocol crate has only v0's schema, so v1 is decoded as v0 (the
//! same request) and its response encoded here.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{encode_response, Dispatched, IntoResponse, RequestContext, RequestError, Response};
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::share::state_store::SharePartitionKey;

fn partition(index: i32, start_offset: i64) -> DescribeShareGroupOffsetsResponsePartition {
    DescribeShareGroupOffsetsResponsePartition::default()
        .with_partition_index(index)
        .with_start_offset(start_offset)
        .with_leader_epoch(0)
}

/// The answer, with each partition's lag in the order of its partitions (v1).
pub struct Described {
    pub response: DescribeShareGroupOffsetsResponse,
    pub lags: Vec<i64>,
}

impl IntoResponse for Described {
    fn into_response(self, ctx: &RequestContext) -> Response {
        if ctx.version == 0 {
            return encode_response(ctx, &self.response);
        }
        super::count_errors(ctx, &self.response);
        Response::Frame(encode_v1(ctx.correlation_id, &self.response, &self.lags))
    }
}

/// Decodes v0 and v1 alike (v1 only adds to the response).
pub fn route(
    broker: &Arc<Broker>,
    ctx: RequestContext,
    body: &mut Bytes,
) -> Result<Dispatched, RequestError> {
    let as_v0 = RequestContext {
        version: 0,
        ..ctx.clone()
    };
    let request: DescribeShareGroupOffsetsRequest = super::decode(&as_v0, body)?;
    let broker = broker.clone();
    Ok(Dispatched::in_order(Box::pin(async move {
        handle(broker, ctx.clone(), request)
            .await
            .into_response(&ctx)
    })))
}

fn put_uvarint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_string(out: &mut BytesMut, s: &str) {
    put_uvarint(out, s.len() as u64 + 1);
    out.put_slice(s.as_bytes());
}

fn put_nullable(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.put_u8(0),
    }
}

/// The v1 response frame (flexible: compact strings and arrays, no tagged fields set).
fn encode_v1(correlation_id: i32, r: &DescribeShareGroupOffsetsResponse, lags: &[i64]) -> BytesMut {
    let mut lags = lags.iter();
    let mut b = BytesMut::new();
    b.put_i32(0); // the size, set below
    b.put_i32(correlation_id);
    b.put_u8(0); // response header tags
    b.put_i32(r.throttle_time_ms);
    put_uvarint(&mut b, r.groups.len() as u64 + 1);
    for g in &r.groups {
        put_string(&mut b, &g.group_id);
        put_uvarint(&mut b, g.topics.len() as u64 + 1);
        for t in &g.topics {
            put_string(&mut b, &t.topic_name);
            b.put_slice(t.topic_id.as_bytes());
            put_uvarint(&mut b, t.partitions.len() as u64 + 1);
            for p in &t.partitions {
                b.put_i32(p.partition_index);
                b.put_i64(p.start_offset);
                b.put_i32(p.leader_epoch);
                b.put_i64(lags.next().copied().unwrap_or(-1));
                b.put_i16(p.error_code);
                put_nullable(&mut b, p.error_message.as_deref());
                b.put_u8(0);
            }
            b.put_u8(0);
        }
        b.put_i16(g.error_code);
        put_nullable(&mut b, g.error_message.as_deref());
        b.put_u8(0);
    }
    b.put_u8(0);
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    b
}

/// Kafka's lag (KIP-1226): records from the start offset to the high watermark not yet
/// settled; -1 when the start offset is not resolved or the count unknown.
fn lag(broker: &Broker, topic: Uuid, partition: i32, start: i64, complete: i32) -> i64 {
    let hw = broker
        .logs
        .topic_by_id(topic)
        .and_then(|t| t.partition(partition).map(|l| l.high_watermark()));
    match hw {
        Some(hw) if start >= 0 && complete >= 0 => (hw - start - i64::from(complete)).max(0),
        _ => -1,
    }
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeShareGroupOffsetsRequest,
) -> Described {
    let mut lags = Vec::new();
    let store = &broker.shares.store;
    let mut groups = Vec::with_capacity(request.groups.len());
    for g in request.groups {
        let group =
            DescribeShareGroupOffsetsResponseGroup::default().with_group_id(g.group_id.clone());
        if !broker.shares.config().enable {
            groups.push(group.with_error_code(ResponseError::UnsupportedVersion.code()));
            continue;
        }
        if !broker.allows(&ctx, Operation::Describe, ResourceType::Group, &g.group_id) {
            groups.push(group.with_error_code(ResponseError::GroupAuthorizationFailed.code()));
            continue;
        }
        let topics = match g.topics {
            None => {
                // Every share-partition the group has, of topics the caller may describe.
                let mut by_topic: BTreeMap<Uuid, Vec<(i32, i64, i32)>> = BTreeMap::new();
                for (key, state) in store.group_states(&g.group_id).await {
                    by_topic.entry(key.topic_id).or_default().push((
                        key.partition,
                        state.start_offset,
                        state.delivery_complete_count,
                    ));
                }
                by_topic
                    .into_iter()
                    .filter_map(|(id, parts)| {
                        let topic = broker.logs.topic_by_id(id)?;
                        broker
                            .allows(&ctx, Operation::Describe, ResourceType::Topic, &topic.name)
                            .then(|| {
                                lags.extend(
                                    parts.iter().map(|(p, o, c)| lag(&broker, id, *p, *o, *c)),
                                );
                                DescribeShareGroupOffsetsResponseTopic::default()
                                    .with_topic_name(TopicName(StrBytes::from_string(
                                        topic.name.clone(),
                                    )))
                                    .with_topic_id(id)
                                    .with_partitions(
                                        parts
                                            .into_iter()
                                            .map(|(p, o, _)| partition(p, o))
                                            .collect(),
                                    )
                            })
                    })
                    .collect()
            }
            Some(asked) => {
                let mut out = Vec::with_capacity(asked.len());
                for t in asked {
                    let reply = DescribeShareGroupOffsetsResponseTopic::default()
                        .with_topic_name(t.topic_name.clone());
                    if !broker.allows(
                        &ctx,
                        Operation::Describe,
                        ResourceType::Topic,
                        &t.topic_name,
                    ) {
                        out.push(
                            reply.with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        partition(*p, -1).with_error_code(
                                            ResponseError::TopicAuthorizationFailed.code(),
                                        )
                                    })
                                    .collect(),
                            ),
                        );
                        lags.extend(t.partitions.iter().map(|_| -1));
                        continue;
                    }
                    let Some(topic) = broker.logs.topic(&t.topic_name) else {
                        lags.extend(t.partitions.iter().map(|_| -1));
                        out.push(reply.with_partitions(
                            t.partitions.iter().map(|p| partition(*p, -1)).collect(),
                        ));
                        continue;
                    };
                    let mut parts = Vec::with_capacity(t.partitions.len());
                    for p in &t.partitions {
                        let key = SharePartitionKey {
                            group: g.group_id.to_string(),
                            topic_id: topic.id,
                            partition: *p,
                        };
                        let state = store.read(&key).await;
                        let start = state.as_ref().map_or(-1, |s| s.start_offset);
                        let complete = state.map_or(-1, |s| s.delivery_complete_count);
                        lags.push(lag(&broker, topic.id, *p, start, complete));
                        parts.push(partition(*p, start));
                    }
                    out.push(reply.with_topic_id(topic.id).with_partitions(parts));
                }
                out
            }
        };
        groups.push(group.with_topics(topics));
    }
    Described {
        response: DescribeShareGroupOffsetsResponse::default().with_groups(groups),
        lags,
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{ApiKey, GroupId};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    /// v1 is v0 with an i64 lag after each partition's leader epoch: the protocol crate's
    /// v0 encoding with those 8 bytes inserted.
    #[test]
    fn v1_is_the_crates_v0_with_the_lag_inserted() {
        let response = DescribeShareGroupOffsetsResponse::default().with_groups(vec![
            DescribeShareGroupOffsetsResponseGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_topics(vec![DescribeShareGroupOffsetsResponseTopic::default()
                    .with_topic_name(TopicName(StrBytes::from_static_str("t")))
                    .with_topic_id(Uuid::from_u128(5))
                    .with_partitions(vec![
                        partition(0, 7),
                        partition(1, -1)
                            .with_error_code(29)
                            .with_error_message(Some(StrBytes::from_static_str("no"))),
                    ])]),
        ]);
        let ctx = RequestContext {
            api_key: ApiKey::DescribeShareGroupOffsets,
            version: 0,
            correlation_id: 3,
            client_id: None,
            client_host: String::new(),
            listener: 0,
            principal: String::new(),
            connection: 0,
        };
        let Response::Frame(v0) = encode_response(&ctx, &response) else {
            panic!("v0 encodes");
        };
        let v1 = encode_v1(3, &response, &[11, -1]);
        assert_eq!(v1.len(), v0.len() + 16);
        // Header (9), throttle (4), 1 group, "g", 1 topic, "t", topic id, 2 partitions:
        // the first partition's index, start offset and epoch end at 9+4+1+2+1+2+16+1+16.
        let at = 9 + 4 + 1 + 2 + 1 + 2 + 16 + 1 + 16;
        assert_eq!(&v1[4..at], &v0[4..at]);
        assert_eq!(&v1[at..at + 8], &11i64.to_be_bytes());
    }
}
