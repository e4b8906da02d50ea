//! CreateTopics v0-v1, asked as CreateTopics v2: v1's request is v2's, and v0's is v1's
//! without the trailing `validate_only`. The answers drop v2's throttle time, and v0 also
//! each topic's error message.
//!
//! ```text
//! request v0:   [topic string | num_partitions i32 | replication_factor i16
//!               | [partition i32 | [broker_id i32]] | [config string | value string]] | timeout_ms i32
//! request v1:   v0 | validate_only bool
//! response v0:  [topic string | error_code i16]
//! response v1:  [topic string | error_code i16 | error_message string]
//! ```

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::Decodable;

use super::wire::{put_array_len, put_nullable_string, put_string};
use super::{bridge, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;

/// The oldest CreateTopics version Kafka 4 serves.
const FLOOR: i16 = 2;

pub fn route(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Dispatched, RequestError> {
    let version = ctx.version;
    let mut v2 = BytesMut::from(&body[..]);
    if version == 0 {
        v2.put_u8(0); // validate_only: false
    }
    let request = CreateTopicsRequest::decode(&mut v2.freeze(), FLOOR)
        .map_err(|e| RequestError(format!("malformed CreateTopics v{version} request: {e}")))?;
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        move |response: CreateTopicsResponse| {
            let mut out = BytesMut::new();
            put_array_len(&mut out, response.topics.len());
            for t in &response.topics {
                put_string(&mut out, t.name.as_str());
                out.put_i16(t.error_code);
                if version >= 1 {
                    put_nullable_string(&mut out, t.error_message.as_deref());
                }
            }
            out
        },
    )
}
