//! InitProducerId (key 22): a new producer id (epoch 0) for an idempotent producer, from a
//! durable id counter. Transactional ids need a transaction coordinator, which this broker
//! does not have yet (COORDINATOR_NOT_AVAILABLE, as FindCoordinator says for them).

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    broker: Arc<Broker>,
    _ctx: RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    match request.transactional_id.as_ref().map(|t| t.as_str()) {
        // Kafka refuses an empty transactional id.
        Some("") => return failed(ResponseError::InvalidRequest),
        Some(_) => return failed(ResponseError::CoordinatorNotAvailable),
        None => {}
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
