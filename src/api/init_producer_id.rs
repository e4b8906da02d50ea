//! InitProducerId (key 22): a new producer id (epoch 0) for an idempotent producer, from a
//! durable id counter; for a transactional id, the transaction coordinator's producer id
//! with a bumped epoch (which fences older producers and aborts their open transaction).

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::errors::coordinator_error;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(id) = request.transactional_id.as_ref() {
        if !broker.allows(&ctx, Operation::Write, ResourceType::TransactionalId, id) {
            return failed(ResponseError::TransactionalIdAuthorizationFailed);
        }
        let expected = (ctx.version >= 3 && *request.producer_id >= 0)
            .then_some((*request.producer_id, request.producer_epoch));
        return match broker
            .txns
            .init_producer_id(id.as_str(), request.transaction_timeout_ms, expected)
            .await
        {
            Ok((pid, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch),
            Err(e) => failed(coordinator_error(e)),
        };
    }
    // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
    if !broker.allows_on_cluster(&ctx, Operation::IdempotentWrite)
        && !broker.allows_on_any(&ctx, Operation::Write, ResourceType::Topic)
    {
        return failed(ResponseError::ClusterAuthorizationFailed);
    }
    // As Kafka does for idempotent producers (also for a KIP-360 epoch bump request): a
    // fresh producer id, epoch 0.
    match broker.producer_ids.next_id() {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::error!(error = %e, "allocating a producer id failed");
            failed(ResponseError::KafkaStorageError)
        }
    }
}
