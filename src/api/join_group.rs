//! JoinGroup (key 11): joins a member to a group and, once the rebalance completes, tells
//! it the generation, the chosen protocol and the leader (the leader also gets every
//! member's metadata). v4+ new members first get MEMBER_ID_REQUIRED with their id.

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::{coordinator_error_code, CoordinatorCode};
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::{JoinRequest, Outcome};
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    if !broker.allows(
        &ctx,
        Operation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return JoinGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code())
            .with_generation_id(-1)
            .with_protocol_name((ctx.version < 7).then(StrBytes::default));
    }
    if let Err(e) = broker.groups.check_coordinator(&request.group_id) {
        return JoinGroupResponse::default()
            .with_error_code(e.code())
            .with_generation_id(-1)
            .with_protocol_name((ctx.version < 7).then(StrBytes::default));
    }
    let join = JoinRequest {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: ctx.client_host.clone(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if ctx.version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: ctx.version >= 4,
    };
    // A consumer group with members serves classic members itself (online migration).
    let in_consumer_group = if broker.groups.is_live_consumer_group(&join.group_id) {
        let topics = super::consumer_group_heartbeat::consumer_topics(&broker);
        broker
            .groups
            .join_consumer_group(&join, &topics)
            .await
            .map(Outcome::Now)
    } else {
        None
    };
    let result = match in_consumer_group.unwrap_or_else(|| broker.groups.join(join)) {
        Outcome::Now(r) => r,
        Outcome::Wait(rx) => {
            let Ok(r) = rx.await else {
                let code = broker.groups.abandoned(&request.group_id).code();
                return JoinGroupResponse::default()
                    .with_error_code(code)
                    .with_generation_id(-1)
                    .with_protocol_name(Some(StrBytes::default()));
            };
            r
        }
    };
    tracing::debug!(group = %request.group_id.as_str(), member = %result.member_id, generation = result.generation_id, error = ?result.error, "JoinGroup");
    let members = result
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(id))
                .with_group_instance_id(instance.map(StrBytes::from_string))
                .with_metadata(metadata)
        })
        .collect();
    // protocol_name is nullable only from v7 on.
    let protocol_name = match result.protocol_name {
        Some(p) => Some(StrBytes::from_string(p)),
        None if ctx.version < 7 => Some(StrBytes::default()),
        None => None,
    };
    JoinGroupResponse::default()
        .with_error_code(coordinator_error_code(result.error))
        .with_generation_id(result.generation_id)
        .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(result.leader_id))
        .with_skip_assignment(result.skip_assignment && ctx.version >= 9)
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(members)
}
