//! OffsetFetch (key 9): committed offsets of a group (v8+: of several groups); a partition
//! without a commit answers offset -1. A null topic list means every committed offset.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::group::CommittedOffset;

fn values(o: Option<CommittedOffset>) -> (i64, i32, String) {
    match o {
        Some(o) => (o.offset, o.leader_epoch, o.metadata),
        None => (-1, -1, String::new()),
    }
}

/// With require_stable, a partition whose offset waits for a transaction to finish
/// answers UNSTABLE_OFFSET_COMMIT (the client retries).
fn stability(
    broker: &Broker,
    require_stable: bool,
    group: &str,
    topic: &str,
    partition: i32,
) -> i16 {
    if require_stable && broker.groups.has_pending_offsets(group, topic, partition) {
        ResponseError::UnstableOffsetCommit.code()
    } else {
        0
    }
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let require_stable = request.require_stable;
    if ctx.version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                let wanted = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes))
                        .collect()
                });
                let topics = broker
                    .groups
                    .fetch_offsets(g.group_id.as_str(), wanted)
                    .into_iter()
                    .map(|(topic, parts)| {
                        let partitions = parts
                            .into_iter()
                            .map(|(p, o)| {
                                let (offset, epoch, metadata) = values(o);
                                OffsetFetchResponsePartitions::default()
                                    .with_error_code(stability(
                                        &broker,
                                        require_stable,
                                        g.group_id.as_str(),
                                        &topic,
                                        p,
                                    ))
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(StrBytes::from_string(metadata)))
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_string(topic)))
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let topics = broker
        .groups
        .fetch_offsets(request.group_id.as_str(), wanted)
        .into_iter()
        .map(|(topic, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(p, o)| {
                    let (offset, epoch, metadata) = values(o);
                    OffsetFetchResponsePartition::default()
                        .with_error_code(stability(
                            &broker,
                            require_stable,
                            request.group_id.as_str(),
                            &topic,
                            p,
                        ))
                        .with_partition_index(p)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(if ctx.version >= 5 { epoch } else { -1 })
                        .with_metadata(Some(StrBytes::from_string(metadata)))
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
