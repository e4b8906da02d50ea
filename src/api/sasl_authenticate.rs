//! SaslAuthenticate (key 36) where no SASL exchange is open: on a SASL listener the
//! connection handles the exchange (`network/authentication.rs`); a request that reaches
//! this handler gets ILLEGAL_SASL_STATE with Kafka's text.

use std::sync::Arc;

use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    _broker: Arc<Broker>,
    _ctx: RequestContext,
    _request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "SaslAuthenticate request received after successful authentication",
        )))
}
