//! Produce v0-v2 (message formats v0 and v1), as Kafka 3.9 served them: each partition's
//! message set is read, CRC-checked, and up-converted to one v2 batch
//! (`log::legacy_record`), which Produce v3 then appends like any batch. A message set
//! that does not parse is answered CORRUPT_MESSAGE (a v1 timestamp below -1:
//! INVALID_TIMESTAMP) for its partition alone.
//!
//! ```text
//! request v0-v2:  acks i16 | timeout_ms i32 | [topic string | [partition i32 | message_set bytes]]
//! response v0:    [topic string | [partition i32 | error_code i16 | base_offset i64]]
//! response v1:    v0 | throttle_time_ms i32
//! response v2:    v1 with log_append_time i64 after each base_offset
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::wire::{put_array_len, put_string, Reader};
use super::{bridge, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;
use crate::log::legacy_record::{parse_message_set, up_convert, LegacyRecordError};

/// The oldest Produce version Kafka 4 serves.
const FLOOR: i16 = 3;

/// One partition of the old request, in request order.
struct Partition {
    index: i32,
    /// Set when its message set was refused before the append.
    error: Option<i16>,
}

pub fn route(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<Dispatched, RequestError> {
    let max_decompressed = broker.config.socket_server.socket_request_max_bytes;
    let mut r = Reader::new(body, "Produce v0-v2");
    let acks = r.i16()?;
    let timeout_ms = r.i32()?;
    let mut order: Vec<(String, Vec<Partition>)> = Vec::new();
    let mut topic_data = Vec::new();
    for _ in 0..r.array_len()? {
        let name = r.string()?;
        let mut partitions = Vec::new();
        let mut data = Vec::new();
        for _ in 0..r.array_len()? {
            let index = r.i32()?;
            let set = r.bytes()?.unwrap_or_default();
            let converted = parse_message_set(&set, max_decompressed).and_then(|s| up_convert(&s));
            match converted {
                Ok(batch) => {
                    data.push(
                        PartitionProduceData::default()
                            .with_index(index)
                            .with_records(Some(Bytes::from(batch))),
                    );
                    partitions.push(Partition { index, error: None });
                }
                Err(e) => {
                    tracing::debug!(topic = %name, partition = index, error = %e, "legacy message set refused");
                    let code = match e {
                        LegacyRecordError::Corrupt(_) => ResponseError::CorruptMessage,
                        LegacyRecordError::InvalidTimestamp(_) => ResponseError::InvalidTimestamp,
                    };
                    partitions.push(Partition {
                        index,
                        error: Some(code.code()),
                    });
                }
            }
        }
        if !data.is_empty() {
            topic_data.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(name.clone())))
                    .with_partition_data(data),
            );
        }
        order.push((name, partitions));
    }
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topic_data);
    let version = ctx.version;
    bridge(
        broker,
        ctx,
        FLOOR,
        &request,
        move |response: ProduceResponse| answer(version, &order, &response),
    )
}

fn answer(
    version: i16,
    order: &[(String, Vec<Partition>)],
    response: &ProduceResponse,
) -> BytesMut {
    let mut found = HashMap::new();
    for t in &response.responses {
        for p in &t.partition_responses {
            found.insert((t.name.as_str(), p.index), p);
        }
    }
    let mut out = BytesMut::new();
    put_array_len(&mut out, order.len());
    for (name, partitions) in order {
        put_string(&mut out, name);
        put_array_len(&mut out, partitions.len());
        for p in partitions {
            let modern = found.get(&(name.as_str(), p.index));
            let (error, base_offset, append_time) = match (p.error, modern) {
                (Some(code), _) => (code, -1, -1),
                (None, Some(m)) => (m.error_code, m.base_offset, m.log_append_time_ms),
                // Not in v3's answer (a partition the request listed twice).
                (None, None) => (ResponseError::UnknownServerError.code(), -1, -1),
            };
            out.put_i32(p.index);
            out.put_i16(error);
            out.put_i64(base_offset);
            if version >= 2 {
                out.put_i64(append_time);
            }
        }
    }
    if version >= 1 {
        out.put_i32(response.throttle_time_ms);
    }
    out
}
