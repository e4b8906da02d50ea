//! OffsetDelete (key 47): deletes committed offsets of a group, except for topics its
//! active members are subscribed to (GROUP_SUBSCRIBED_TO_TOPIC).

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;

use super::errors::{coordinator_code, CoordinatorCode};
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    if !broker.allows(
        &ctx,
        Operation::Delete,
        ResourceType::Group,
        &request.group_id,
    ) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if let Err(e) = broker.groups.check_coordinator(&request.group_id) {
        return OffsetDeleteResponse::default().with_error_code(e.code());
    }
    // READ on each topic: the partitions of the others are answered without a deletion.
    let denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| !broker.allows(&ctx, Operation::Read, ResourceType::Topic, &t.name))
        .collect();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .zip(&denied)
        .filter(|(_, denied)| !**denied)
        .flat_map(|(t, _)| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    match broker
        .groups
        .delete_offsets(request.group_id.as_str(), &partitions)
        .await
    {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
        Ok(codes) => {
            let mut codes = codes.into_iter();
            let topics = request
                .topics
                .into_iter()
                .zip(denied)
                .map(|(t, denied)| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(if denied {
                                    ResponseError::TopicAuthorizationFailed.code()
                                } else {
                                    codes.next().map_or(0, coordinator_code)
                                })
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(partitions)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    }
}
