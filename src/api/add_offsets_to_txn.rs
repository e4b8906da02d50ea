//! AddOffsetsToTxn (key 25): a group's offsets partition joins the transaction, so that
//! offsets committed with TxnOffsetCommit become visible only with the transaction.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::authorization::refused_offsets_in_transaction;
use super::errors::CoordinatorCode;
use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let denied =
        refused_offsets_in_transaction(&broker, &ctx, &request.transactional_id, &request.group_id);
    if let Some(e) = denied {
        return AddOffsetsToTxnResponse::default().with_error_code(e.code());
    }
    let result = broker
        .txns
        .add_offsets(
            request.transactional_id.as_str(),
            *request.producer_id,
            request.producer_epoch,
            request.group_id.as_str(),
        )
        .await;
    AddOffsetsToTxnResponse::default()
        .with_error_code(result.err().map_or(0, CoordinatorCode::code))
}
