//! EndTxn (key 26): commits or aborts a producer's transaction: the decision is written
//! durably, then a marker goes to every partition of the transaction.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::errors::CoordinatorCode;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: EndTxnRequest,
) -> EndTxnResponse {
    if !broker.allows(
        &ctx,
        Operation::Write,
        ResourceType::TransactionalId,
        &request.transactional_id,
    ) {
        return EndTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    let result = broker
        .txns
        .end_txn(
            request.transactional_id.as_str(),
            *request.producer_id,
            request.producer_epoch,
            request.committed,
        )
        .await;
    EndTxnResponse::default()
        .with_error_code(result.err().map_or(0, CoordinatorCode::code))
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}
