//! OffsetCommit (key 8): stores committed offsets durably in `__consumer_offsets`. Members
//! commit with their generation; simple consumers (no group membership) commit with
//! generation -1 to a group that has no members, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::errors::{coordinator_code, CoordinatorCode};
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::OffsetCommitEntry;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    if !broker.allows(
        &ctx,
        Operation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return every_partition(request, ResponseError::GroupAuthorizationFailed.code());
    }
    if let Err(e) = broker.groups.check_coordinator(&request.group_id) {
        return every_partition(request, e.code());
    }
    // READ on each topic: the partitions of the others are answered without a commit.
    let denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| !broker.allows(&ctx, Operation::Read, ResourceType::Topic, &t.name))
        .collect();
    let mut entries = Vec::new();
    for (t, _) in request.topics.iter().zip(&denied).filter(|(_, d)| !**d) {
        for p in &t.partitions {
            entries.push(OffsetCommitEntry {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if ctx.version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(std::string::ToString::to_string),
            });
        }
    }
    // Every topic refused: Kafka answers without touching the group.
    if entries.is_empty() && denied.contains(&true) {
        return every_partition(request, ResponseError::TopicAuthorizationFailed.code());
    }
    // As Kafka: members of a consumer group (KIP-848) commit with v9+.
    if ctx.version < 9
        && broker
            .groups
            .is_consumer_group_member(request.group_id.as_str(), request.member_id.as_str())
    {
        return every_partition(request, ResponseError::UnsupportedVersion.code());
    }
    let codes = broker
        .groups
        .commit(
            request.group_id.as_str(),
            request.member_id.as_str(),
            request
                .group_instance_id
                .as_ref()
                .map(kafka_protocol::protocol::StrBytes::as_str),
            request.generation_id_or_member_epoch,
            entries,
        )
        .await;
    tracing::debug!(group = %request.group_id.as_str(), member = %request.member_id.as_str(), generation = request.generation_id_or_member_epoch, ?codes, "OffsetCommit");
    let mut codes = codes.into_iter();
    respond(request, |topic| {
        if denied[topic] {
            ResponseError::TopicAuthorizationFailed.code()
        } else {
            codes.next().map_or(0, coordinator_code)
        }
    })
}

/// The same error for every partition of the request.
fn every_partition(request: OffsetCommitRequest, error_code: i16) -> OffsetCommitResponse {
    respond(request, |_| error_code)
}

/// The answer with `code(index of the partition's topic)` for each partition, in order.
fn respond(
    request: OffsetCommitRequest,
    mut code: impl FnMut(usize) -> i16,
) -> OffsetCommitResponse {
    let topics = request
        .topics
        .into_iter()
        .enumerate()
        .map(|(topic, t)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code(topic))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
