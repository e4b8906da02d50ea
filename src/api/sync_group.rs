//! SyncGroup (key 14): the leader hands in the assignment; every member gets its share.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::{coordinator_error_code, CoordinatorCode};
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::{Outcome, SyncRequest};
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    if !broker.allows(
        &ctx,
        Operation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return SyncGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    if let Err(e) = broker.groups.check_coordinator(&request.group_id) {
        return SyncGroupResponse::default().with_error_code(e.code());
    }
    let assignments: HashMap<String, bytes::Bytes> = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let outcome = broker.groups.sync(SyncRequest {
        group_id: request.group_id.as_str(),
        member_id: request.member_id.as_str(),
        group_instance_id: request
            .group_instance_id
            .as_ref()
            .map(kafka_protocol::protocol::StrBytes::as_str),
        generation_id: request.generation_id,
        protocol_type: request
            .protocol_type
            .as_ref()
            .map(kafka_protocol::protocol::StrBytes::as_str),
        protocol_name: request
            .protocol_name
            .as_ref()
            .map(kafka_protocol::protocol::StrBytes::as_str),
        assignments,
    });
    let result = match outcome {
        Outcome::Now(r) => r,
        Outcome::Wait(rx) => {
            let Ok(r) = rx.await else {
                let code = broker.groups.abandoned(&request.group_id).code();
                return SyncGroupResponse::default().with_error_code(code);
            };
            r
        }
    };
    SyncGroupResponse::default()
        .with_error_code(coordinator_error_code(result.error))
        .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
        .with_protocol_name(result.protocol_name.map(StrBytes::from_string))
        .with_assignment(result.assignment)
}
