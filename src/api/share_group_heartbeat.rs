//! ShareGroupHeartbeat (key 76): the KIP-932 share group protocol. A member joins with
//! epoch 0, a client-chosen member id and its subscription, heartbeats with its epoch, and
//! learns from the answers which partitions to fetch from; -1 leaves. The group logic is
//! `coordinator/share/`.

use std::sync::Arc;

use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::consumer_group_heartbeat::consumer_topics;
use super::errors::coordinator_error;
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::share::ShareHeartbeat;
use crate::security::acl::{Operation, ResourceType};

/// Kafka's `isMemberIdValid`: a client-chosen member id, at most 36 characters.
pub fn valid_member_id(member_id: &str) -> bool {
    !member_id.is_empty() && member_id.chars().count() <= 36
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let failed = |error: ResponseError, message: Option<String>| {
        ShareGroupHeartbeatResponse::default()
            .with_error_code(error.code())
            .with_error_message(message.map(StrBytes::from_string))
    };
    if !broker.shares.config().enable {
        return failed(ResponseError::UnsupportedVersion, None);
    }
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
    if !valid_member_id(&request.member_id) {
        return failed(
            ResponseError::InvalidRequest,
            Some("Invalid member id in the request.".into()),
        );
    }
    if let Some(names) = &request.subscribed_topic_names {
        if names
            .iter()
            .any(|t| !broker.allows(&ctx, Operation::Describe, ResourceType::Topic, t))
        {
            return failed(ResponseError::TopicAuthorizationFailed, None);
        }
    }
    let topics = consumer_topics(&broker);
    let heartbeat = ShareHeartbeat {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        rack_id: request.rack_id.as_ref().map(ToString::to_string),
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|t| t.0.to_string()).collect()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: ctx.client_host.clone(),
    };
    let (group, member, epoch) = (
        heartbeat.group_id.clone(),
        heartbeat.member_id.clone(),
        heartbeat.member_epoch,
    );
    let answer = broker.groups.share_heartbeat(heartbeat, &topics).await;
    tracing::debug!(group, member, epoch, ?answer, "ShareGroupHeartbeat");
    match answer {
        Ok(answer) => ShareGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(answer.member_id)))
            .with_member_epoch(answer.member_epoch)
            .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
            .with_assignment(answer.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .filter(|(_, parts)| !parts.is_empty())
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
