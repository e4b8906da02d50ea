//! DeleteShareGroupOffsets (key 92): removes a share group's state for whole topics (the
//! group must exist and have no members). A member subscribing to such a topic later starts
//! it again from `share.auto.offset.reset`.

use std::sync::Arc;

use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::{DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::coordinator_error;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

fn failed(error: ResponseError) -> DeleteShareGroupOffsetsResponse {
    DeleteShareGroupOffsetsResponse::default().with_error_code(error.code())
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    if !broker.shares.config().enable {
        return failed(ResponseError::UnsupportedVersion);
    }
    let group = request.group_id.to_string();
    if !broker.allows(&ctx, Operation::Delete, ResourceType::Group, &group) {
        return failed(ResponseError::GroupAuthorizationFailed);
    }
    if let Err(e) = broker.groups.empty_share_group(&group, false).await {
        return failed(coordinator_error(e));
    }
    let states = broker.shares.store.group_states(&group).await;
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let topic = broker.logs.topic(&t.topic_name);
        let reply = DeleteShareGroupOffsetsResponseTopic::default()
            .with_topic_name(t.topic_name.clone())
            .with_topic_id(topic.as_ref().map(|t| t.id).unwrap_or_default());
        let (error, message): (Option<ResponseError>, Option<String>) =
            if !broker.allows(&ctx, Operation::Read, ResourceType::Topic, &t.topic_name) {
                (Some(ResponseError::TopicAuthorizationFailed), None)
            } else if let Some(topic) = topic {
                if states.iter().any(|(k, _)| k.topic_id == topic.id) {
                    let deleted = broker
                        .groups
                        .delete_share_state(&group, Some(topic.id))
                        .await;
                    broker
                        .shares
                        .forget(|k| k.group == group && k.topic_id == topic.id);
                    (deleted.err().map(coordinator_error), None)
                } else {
                    (
                        Some(ResponseError::UnknownTopicOrPartition),
                        Some("There is no offset information to delete.".to_string()),
                    )
                }
            } else {
                (Some(ResponseError::UnknownTopicOrPartition), None)
            };
        topics.push(
            reply
                .with_error_code(error.map_or(0, |e| e.code()))
                .with_error_message(message.map(StrBytes::from_string)),
        );
    }
    DeleteShareGroupOffsetsResponse::default().with_responses(topics)
}
