//! OffsetForLeaderEpoch (key 23): the end offset of a leader epoch, which clients use to
//! detect log truncation. A single-node broker has one epoch (0), covering the whole log.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use super::fetch::check_leader_epoch;
use super::RequestContext;
use crate::broker::Broker;
use crate::log::LEADER_EPOCH;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // Replicas (CLUSTER_ACTION on the cluster) may ask about every topic.
    let replica = broker.allows_on_cluster(&ctx, Operation::ClusterAction);
    let mut topics = Vec::new();
    for t in request.topics {
        let topic = broker.logs.topic(t.topic.as_str());
        let denied =
            !replica && !broker.allows(&ctx, Operation::Describe, ResourceType::Topic, &t.topic);
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let response = EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_leader_epoch(-1)
                    .with_end_offset(-1);
                if denied {
                    return response
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                }
                let Some(log) = topic.as_ref().and_then(|t| t.partition(p.partition)) else {
                    return response.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                };
                if let Err(e) = check_leader_epoch(p.current_leader_epoch, broker.leader_epoch()) {
                    return response.with_error_code(e.code());
                }
                // Epoch 0 exists once the log holds data; it ends at the log end offset.
                let has_epoch = log.log_end_offset() > 0;
                if p.leader_epoch == LEADER_EPOCH && has_epoch {
                    response
                        .with_leader_epoch(LEADER_EPOCH)
                        .with_end_offset(log.log_end_offset())
                } else {
                    response
                }
            })
            .collect();
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
