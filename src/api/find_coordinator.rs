//! FindCoordinator (key 10): this broker coordinates every group and every transactional
//! id. v4+ asks for several keys at once. A lookup creates `__consumer_offsets` or
//! `__transaction_state` if needed, as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::coordinator_error;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

fn lookup(
    broker: &Broker,
    ctx: &RequestContext,
    key_type: i8,
    key: &str,
) -> Result<(), (ResponseError, &'static str)> {
    match key_type {
        GROUP if !broker.allows(ctx, Operation::Describe, ResourceType::Group, key) => Err((
            ResponseError::GroupAuthorizationFailed,
            "Group authorization failed.",
        )),
        TRANSACTION
            if !broker.allows(ctx, Operation::Describe, ResourceType::TransactionalId, key) =>
        {
            Err((
                ResponseError::TransactionalIdAuthorizationFailed,
                "Transactional Id authorization failed.",
            ))
        }
        GROUP => broker.groups.ensure_offsets_topic(key).map_err(|e| {
            (
                coordinator_error(e),
                "the group coordinator is not available",
            )
        }),
        TRANSACTION => broker.txns.ensure_state_topic(key).map_err(|e| {
            (
                coordinator_error(e),
                "the transaction coordinator is not available",
            )
        }),
        _ => Err((
            ResponseError::InvalidRequest,
            "unknown coordinator key type",
        )),
    }
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let endpoint = broker.endpoint(ctx.listener);
    let host = StrBytes::from_string(endpoint.host.clone());
    let port = i32::from(endpoint.port);
    let node = BrokerId(broker.node_id());
    if ctx.version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(
                |key| match lookup(&broker, &ctx, request.key_type, key.as_str()) {
                    Ok(()) => Coordinator::default()
                        .with_key(key.clone())
                        .with_node_id(node)
                        .with_host(host.clone())
                        .with_port(port),
                    Err((e, message)) => Coordinator::default()
                        .with_key(key.clone())
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(StrBytes::from_static_str(message))),
                },
            )
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let key_type = if ctx.version >= 1 {
        request.key_type
    } else {
        GROUP
    };
    match lookup(&broker, &ctx, key_type, request.key.as_str()) {
        Ok(()) => FindCoordinatorResponse::default()
            .with_node_id(node)
            .with_host(host)
            .with_port(port),
        Err((e, message)) => FindCoordinatorResponse::default()
            .with_error_code(e.code())
            .with_error_message((ctx.version >= 1).then(|| StrBytes::from_static_str(message)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}
