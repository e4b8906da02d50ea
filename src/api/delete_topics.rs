//! DeleteTopics (key 20): deletes topics by name (v0-v5) or by name or topic id (v6+).
//! Data and metadata are gone, also after a restart.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::errors::topic_error_code;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let targets: Vec<(Option<TopicName>, Uuid)> = if ctx.version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .collect()
    };
    // As Kafka's controller: DELETE on the cluster deletes any topic; a topic named that the
    // principal may not DESCRIBE is refused before its existence is checked.
    let delete_any = broker.allows_on_cluster(&ctx, Operation::Delete);
    let describable = |t: &str| broker.allows(&ctx, Operation::Describe, ResourceType::Topic, t);
    let deletable =
        |t: &str| delete_any || broker.allows(&ctx, Operation::Delete, ResourceType::Topic, t);
    let refused = |result: DeletableTopicResult| {
        result
            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Topic authorization failed.",
            )))
    };
    let mut responses = Vec::new();
    for (name, id) in targets {
        // The answer names the topic as the request did (null for a lookup by id).
        let result = DeletableTopicResult::default()
            .with_topic_id(id)
            .with_name(name.clone());
        let result = match (name, id.is_nil()) {
            (Some(_), false) | (None, true) => {
                result.with_error_code(ResponseError::InvalidRequest.code())
            }
            (Some(name), true) if !describable(&name) => refused(result),
            (Some(name), true) if broker.logs.topic(&name).is_some() && !deletable(&name) => {
                refused(result)
            }
            (Some(name), true) => match broker.delete_topic(name.as_str()).await {
                Ok(topic) => {
                    broker.groups.on_topic_deleted(&topic.name, topic.id).await;
                    broker.shares.forget(|k| k.topic_id == topic.id);
                    result.with_name(Some(name)).with_topic_id(topic.id)
                }
                Err(e) => result
                    .with_name(Some(name))
                    .with_error_code(topic_error_code(&e).code())
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            },
            (None, false) => match broker.logs.topic_by_id(id) {
                // By id the name is told only to a principal that may DESCRIBE the topic.
                Some(topic) if !deletable(&topic.name) => refused(if describable(&topic.name) {
                    result.with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
                } else {
                    result
                }),
                Some(topic) => match broker.delete_topic(&topic.name).await {
                    Ok(_) => {
                        broker.groups.on_topic_deleted(&topic.name, topic.id).await;
                        broker.shares.forget(|k| k.topic_id == topic.id);
                        result.with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
                    }
                    Err(e) => result
                        .with_error_code(topic_error_code(&e).code())
                        .with_error_message(Some(StrBytes::from_string(e.to_string()))),
                },
                None => result.with_error_code(ResponseError::UnknownTopicId.code()),
            },
        };
        responses.push(result);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
