//! OffsetFetch (key 9): committed offsets of a group (v8+: of several groups); a partition
//! without a commit answers offset -1. A null topic list means every committed offset the
//! principal may DESCRIBE.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::coordinator_error;
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::group::CommittedOffset;
use crate::security::acl::{Operation, ResourceType};

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

/// One topic's answer: per partition its error code and committed offset.
type TopicOffsets = (String, Vec<(i32, i16, (i64, i32, String))>);

/// The offsets of `group` the request may see: DESCRIBE on the group, or the error; of the
/// named topics, those it may not DESCRIBE answer TOPIC_AUTHORIZATION_FAILED (after the
/// others, as Kafka orders them); of all topics, those are left out.
fn group_offsets(
    broker: &Broker,
    ctx: &RequestContext,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Vec<TopicOffsets>, ResponseError> {
    if !broker.allows(ctx, Operation::Describe, ResourceType::Group, group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    broker
        .groups
        .check_coordinator(group)
        .map_err(coordinator_error)?;
    // A share group has no committed offsets: "not a consumer group", as Kafka answers.
    if broker.groups.is_share_group(group) {
        return Err(ResponseError::GroupIdNotFound);
    }
    let may_describe =
        |topic: &str| broker.allows(ctx, Operation::Describe, ResourceType::Topic, topic);
    let mut denied = Vec::new();
    let wanted = wanted.map(|topics| {
        let (allowed, refused): (Vec<_>, Vec<_>) =
            topics.into_iter().partition(|(t, _)| may_describe(t));
        denied = refused;
        allowed
    });
    let all = wanted.is_none();
    let mut topics: Vec<TopicOffsets> = broker
        .groups
        .fetch_offsets(group, wanted)
        .into_iter()
        .filter(|(topic, _)| !all || may_describe(topic))
        .map(|(topic, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(p, o)| {
                    let code = stability(broker, require_stable, group, &topic, p);
                    (p, code, values(o))
                })
                .collect();
            (topic, partitions)
        })
        .collect();
    let refused = ResponseError::TopicAuthorizationFailed.code();
    topics.extend(denied.into_iter().map(|(topic, parts)| {
        let partitions = parts
            .into_iter()
            .map(|p| (p, refused, values(None)))
            .collect();
        (topic, partitions)
    }));
    Ok(topics)
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
                let response =
                    OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match group_offsets(&broker, &ctx, g.group_id.as_str(), wanted, require_stable) {
                    Err(e) => response.with_error_code(e.code()),
                    Ok(topics) => response.with_topics(
                        topics
                            .into_iter()
                            .map(|(topic, parts)| {
                                let partitions = parts
                                    .into_iter()
                                    .map(|(p, code, (offset, epoch, metadata))| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_error_code(code)
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
                            .collect(),
                    ),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let topics = match group_offsets(
        &broker,
        &ctx,
        request.group_id.as_str(),
        wanted.clone(),
        require_stable,
    ) {
        Ok(topics) => topics,
        // v2+ has a top-level error; v1 reports it in every requested partition.
        Err(e) if ctx.version >= 2 => {
            return OffsetFetchResponse::default().with_error_code(e.code())
        }
        Err(e) => wanted
            .unwrap_or_default()
            .into_iter()
            .map(|(topic, parts)| {
                let partitions = parts
                    .into_iter()
                    .map(|p| (p, e.code(), values(None)))
                    .collect();
                (topic, partitions)
            })
            .collect(),
    };
    let topics = topics
        .into_iter()
        .map(|(topic, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(p, code, (offset, epoch, metadata))| {
                    OffsetFetchResponsePartition::default()
                        .with_error_code(code)
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
