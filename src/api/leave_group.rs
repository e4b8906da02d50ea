//! LeaveGroup (key 13): removes members (v3+: several at once, by member id or by
//! group.instance.id) and starts a rebalance for the rest.

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::ResponseError;

use super::errors::{coordinator_code, CoordinatorCode};
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::Leaving;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    if !broker.allows(
        &ctx,
        Operation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return LeaveGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if let Err(e) = broker.groups.check_coordinator(&request.group_id) {
        return LeaveGroupResponse::default().with_error_code(e.code());
    }
    let leaving: Vec<Leaving> = if ctx.version >= 3 {
        request
            .members
            .iter()
            .map(|m| Leaving {
                member_id: m.member_id.to_string(),
                group_instance_id: m
                    .group_instance_id
                    .as_ref()
                    .map(std::string::ToString::to_string),
            })
            .collect()
    } else {
        vec![Leaving {
            member_id: request.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    // A consumer group's members (classic ones, or any by instance id) leave through it.
    let group = request.group_id.as_str();
    let left = if broker.groups.is_live_consumer_group(group) {
        broker.groups.leave_consumer_group(group, &leaving).await
    } else {
        None
    };
    match left.unwrap_or_else(|| broker.groups.leave(group, &leaving)) {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(codes) if ctx.version >= 3 => {
            let members = request
                .members
                .into_iter()
                .zip(codes)
                .map(|(m, code)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(coordinator_code(code))
                })
                .collect();
            LeaveGroupResponse::default().with_members(members)
        }
        Ok(codes) => LeaveGroupResponse::default()
            .with_error_code(codes.first().copied().map_or(0, coordinator_code)),
    }
}
