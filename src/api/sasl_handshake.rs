//! SaslHandshake (key 17) where no SASL is spoken: on a SASL listener the connection handles
//! it (`network/authentication.rs`); a request that reaches this handler came on a
//! PLAINTEXT or SSL listener, or after authentication, and gets ILLEGAL_SASL_STATE as from
//! Kafka's `KafkaApis`.

use std::sync::Arc;

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    _broker: Arc<Broker>,
    _ctx: RequestContext,
    _request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}
