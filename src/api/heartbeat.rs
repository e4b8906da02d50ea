//! Heartbeat (key 12): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to
//! rejoin.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::ResponseError;

use super::errors::CoordinatorCode;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    if !broker.allows(
        &ctx,
        Operation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return HeartbeatResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if let Err(e) = broker.groups.check_coordinator(&request.group_id) {
        return HeartbeatResponse::default().with_error_code(e.code());
    }
    let result = broker.groups.heartbeat(
        request.group_id.as_str(),
        request.member_id.as_str(),
        request
            .group_instance_id
            .as_ref()
            .map(kafka_protocol::protocol::StrBytes::as_str),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, CoordinatorCode::code))
}
