//! AlterShareGroupOffsets (key 91): sets the start offset of a share group's
//! share-partitions (as `kafka-share-groups.sh --reset-offsets` does). The group must have
//! no members; a group that does not exist is created. Each share-partition's state starts
//! afresh at the new offset, at a higher state epoch.

use std::sync::Arc;

use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::{AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse};
use kafka_protocol::ResponseError;

use super::errors::coordinator_error;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::share::state_store::SharePartitionKey;

fn failed(error: ResponseError) -> AlterShareGroupOffsetsResponse {
    AlterShareGroupOffsetsResponse::default().with_error_code(error.code())
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    if !broker.shares.config().enable {
        return failed(ResponseError::UnsupportedVersion);
    }
    let group = request.group_id.to_string();
    if !broker.allows(&ctx, Operation::Read, ResourceType::Group, &group) {
        return failed(ResponseError::GroupAuthorizationFailed);
    }
    if group.is_empty() {
        return failed(ResponseError::InvalidGroupId);
    }
    let epoch = match broker.groups.empty_share_group(&group, true).await {
        Ok(epoch) => epoch,
        Err(e) => return failed(coordinator_error(e)),
    };
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let topic = broker.logs.topic(&t.topic_name);
        let refused = if !broker.allows(&ctx, Operation::Read, ResourceType::Topic, &t.topic_name) {
            Some(ResponseError::TopicAuthorizationFailed)
        } else if topic.is_none() {
            Some(ResponseError::UnknownTopicOrPartition)
        } else {
            None
        };
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let reply = AlterShareGroupOffsetsResponsePartition::default()
                .with_partition_index(p.partition_index);
            let error = match (&topic, refused) {
                (_, Some(e)) => Some(e),
                (Some(topic), None) if topic.partition(p.partition_index).is_none() => {
                    Some(ResponseError::UnknownTopicOrPartition)
                }
                (Some(topic), None) => {
                    let key = SharePartitionKey {
                        group: group.clone(),
                        topic_id: topic.id,
                        partition: p.partition_index,
                    };
                    let written = broker
                        .shares
                        .store
                        .initialize(&key, epoch, p.start_offset)
                        .await;
                    // Loaded copies of the old state are dropped (and fenced by the epoch).
                    broker.shares.forget(|k| *k == key);
                    written.err().map(coordinator_error)
                }
                (None, None) => Some(ResponseError::UnknownTopicOrPartition),
            };
            partitions.push(reply.with_error_code(error.map_or(0, |e| e.code())));
        }
        topics.push(
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name.clone())
                .with_topic_id(topic.map(|t| t.id).unwrap_or_default())
                .with_partitions(partitions),
        );
    }
    AlterShareGroupOffsetsResponse::default().with_responses(topics)
}
