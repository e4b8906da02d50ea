//! FindCoordinator (key 10): this broker coordinates every group and every transactional
//! id; in cluster mode, the broker leading the key's partition of `__consumer_offsets` or
//! `__transaction_state`. v4+ asks for several keys at once. A lookup creates `__consumer_offsets` or
//! `__transaction_state` if needed, as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::coordinator_error;
use super::RequestContext;
use crate::broker::Broker;
use crate::coordinator::internal_topic::partition_for;
use crate::coordinator::offsets::OFFSETS_TOPIC;
use crate::security::acl::{Operation, ResourceType};
use crate::transaction::TRANSACTION_STATE_TOPIC;

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

/// The coordinator of `key` as clients reach it through listener `listener`.
fn coordinator(
    broker: &Broker,
    listener: usize,
    key_type: i8,
    key: &str,
) -> (BrokerId, StrBytes, i32) {
    let topic = if key_type == TRANSACTION {
        TRANSACTION_STATE_TOPIC
    } else {
        OFFSETS_TOPIC
    };
    let partitions = broker
        .logs
        .topic(topic)
        .map_or(1, |t| t.partitions.len().max(1) as i32);
    let node = broker.leader(topic, partitions, partition_for(key, partitions));
    let brokers = broker.brokers(listener);
    let b = brokers
        .iter()
        .find(|b| b.node_id == node)
        .or(brokers.first())
        .expect("a broker lists at least itself");
    (
        BrokerId(b.node_id),
        StrBytes::from_string(b.host.clone()),
        i32::from(b.port),
    )
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    if ctx.version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(
                |key| match lookup(&broker, &ctx, request.key_type, key.as_str()) {
                    Ok(()) => {
                        let (node, host, port) =
                            coordinator(&broker, ctx.listener, request.key_type, key.as_str());
                        Coordinator::default()
                            .with_key(key.clone())
                            .with_node_id(node)
                            .with_host(host)
                            .with_port(port)
                    }
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
        Ok(()) => {
            let (node, host, port) =
                coordinator(&broker, ctx.listener, key_type, request.key.as_str());
            FindCoordinatorResponse::default()
                .with_node_id(node)
                .with_host(host)
                .with_port(port)
        }
        Err((e, message)) => FindCoordinatorResponse::default()
            .with_error_code(e.code())
            .with_error_message((ctx.version >= 1).then(|| StrBytes::from_static_str(message)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}
