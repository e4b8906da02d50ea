//! DescribeConfigs v0, asked as v1: v0's request is v1's without `include_synonyms`; its
//! answer has `is_default` where v1 has the config's source (default: source 5,
//! DEFAULT_CONFIG) and no synonyms.
//!
//! ```text
//! request v0:   [resource_type i8 | resource_name string | [config_key string] (nullable)]
//! response v0:  throttle_time_ms i32 | [error_code i16 | error_message string | resource_type i8
//!               | resource_name string | [name string | value string | read_only bool
//!               | is_default bool | is_sensitive bool]]
//! ```

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::Decodable;

use super::wire::{put_array_len, put_nullable_string, put_string};
use super::{bridge, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;

/// The oldest DescribeConfigs version Kafka 4 serves.
const FLOOR: i16 = 1;
/// Kafka's ConfigSource.DEFAULT_CONFIG.
const DEFAULT_CONFIG: i8 = 5;

pub fn route(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Dispatched, RequestError> {
    let mut v1 = BytesMut::from(&body[..]);
    v1.put_u8(0); // include_synonyms: false
    let request = DescribeConfigsRequest::decode(&mut v1.freeze(), FLOOR)
        .map_err(|e| RequestError(format!("malformed DescribeConfigs v0 request: {e}")))?;
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        |response: DescribeConfigsResponse| {
            let mut out = BytesMut::new();
            out.put_i32(response.throttle_time_ms);
            put_array_len(&mut out, response.results.len());
            for r in &response.results {
                out.put_i16(r.error_code);
                put_nullable_string(&mut out, r.error_message.as_deref());
                out.put_i8(r.resource_type);
                put_string(&mut out, &r.resource_name);
                put_array_len(&mut out, r.configs.len());
                for c in &r.configs {
                    put_string(&mut out, &c.name);
                    put_nullable_string(&mut out, c.value.as_deref());
                    out.put_u8(u8::from(c.read_only));
                    out.put_u8(u8::from(c.config_source == DEFAULT_CONFIG));
                    out.put_u8(u8::from(c.is_sensitive));
                }
            }
            out
        },
    )
}
