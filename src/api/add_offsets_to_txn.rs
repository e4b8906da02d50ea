//! AddOffsetsToTxn (key 25): a group's offsets partition joins the transaction, so that
//! offsets committed with TxnOffsetCommit become visible only with the transaction.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::errors::CoordinatorCode;
use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    broker: Arc<Broker>,
    _ctx: RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
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
