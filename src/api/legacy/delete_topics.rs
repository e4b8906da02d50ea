//! DeleteTopics v0, asked as DeleteTopics v1 (the same request); the answer drops v1's
//! throttle time.
//!
//! ```text
//! request:      [topic string] | timeout_ms i32
//! response v0:  [topic string | error_code i16]
//! ```

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::Decodable;

use super::wire::{put_array_len, put_string};
use super::{bridge, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;

/// The oldest DeleteTopics version Kafka 4 serves.
const FLOOR: i16 = 1;

pub fn route(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    mut body: Bytes,
) -> Result<Dispatched, RequestError> {
    let request = DeleteTopicsRequest::decode(&mut body, FLOOR)
        .map_err(|e| RequestError(format!("malformed DeleteTopics v0 request: {e}")))?;
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        |response: DeleteTopicsResponse| {
            let mut out = BytesMut::new();
            put_array_len(&mut out, response.responses.len());
            for t in &response.responses {
                put_string(&mut out, t.name.as_ref().map_or("", |n| n.as_str()));
                out.put_i16(t.error_code);
            }
            out
        },
    )
}
