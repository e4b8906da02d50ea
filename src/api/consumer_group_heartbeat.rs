//! ConsumerGroupHeartbeat (key 68): the KIP-848 consumer group protocol. A member joins
//! with epoch 0 and its subscription, heartbeats with its epoch and the partitions it
//! owns, and learns its assignment from the answers; -1 leaves, -2 leaves for now (static
//! members). The group logic is `coordinator/consumer/`.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::coordinator_error;
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::consumer::{self, ConsumerHeartbeat, OwnedPartitions};
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let failed = |error: ResponseError, message: Option<String>| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(error.code())
            .with_error_message(message.map(StrBytes::from_string))
            .with_member_epoch(-1)
    };
    if !broker.allows(
        &ctx,
        Operation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return failed(ResponseError::GroupAuthorizationFailed, None);
    }
    if let Err(e) = broker.groups.check_coordinator(&request.group_id) {
        return failed(coordinator_error(e), None);
    }
    // DESCRIBE on every topic subscribed by name, as Kafka checks.
    if let Some(names) = &request.subscribed_topic_names {
        if names
            .iter()
            .any(|t| !broker.allows(&ctx, Operation::Describe, ResourceType::Topic, t))
        {
            return failed(ResponseError::TopicAuthorizationFailed, None);
        }
    }
    let topics = consumer_topics(&broker);
    let owned: Option<OwnedPartitions> = request.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .map(|t| (t.topic_id, t.partitions.iter().copied().collect()))
            .collect()
    });
    let heartbeat = ConsumerHeartbeat {
        version: ctx.version,
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(ToString::to_string),
        rack_id: request.rack_id.as_ref().map(ToString::to_string),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|t| t.0.to_string()).collect()),
        subscribed_topic_regex: if ctx.version >= 1 {
            request
                .subscribed_topic_regex
                .as_ref()
                .map(ToString::to_string)
        } else {
            None
        },
        server_assignor: request.server_assignor.as_ref().map(ToString::to_string),
        owned,
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: ctx.client_host.clone(),
    };
    let (group, member, epoch) = (
        heartbeat.group_id.clone(),
        heartbeat.member_id.clone(),
        heartbeat.member_epoch,
    );
    let answer = broker.groups.consumer_heartbeat(heartbeat, &topics).await;
    tracing::debug!(group, member, epoch, ?answer, "ConsumerGroupHeartbeat");
    match answer {
        Ok(answer) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(answer.member_id)))
            .with_member_epoch(answer.member_epoch)
            .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
            .with_assignment(answer.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(topic_id, parts)| {
                            TopicPartitions::default()
                                .with_topic_id(topic_id)
                                .with_partitions(parts.into_iter().collect())
                        })
                        .collect(),
                )
            })),
        Err((error, message)) => failed(coordinator_error(error), message),
    }
}

/// The topics a consumer group may be assigned: every topic but the internal ones (as
/// Kafka's regex subscriptions skip them). Not filtered by the caller's ACLs: the view
/// decides the whole group's assignment, which must not change with who heartbeats (the
/// topics a member subscribes to by name were checked above).
pub fn consumer_topics(broker: &Broker) -> consumer::TopicsView {
    broker
        .logs
        .topics()
        .into_iter()
        .filter(|t| !t.is_internal())
        .map(|t| (t.name.clone(), (t.id, t.partitions.len() as i32)))
        .collect()
}
