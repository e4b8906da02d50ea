//! ListOffsets (key 2): the earliest offset, the latest (high watermark), the first offset
//! at or after a timestamp (through the time index), or the record with the largest
//! timestamp.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::errors::log_error_code;
use super::fetch::check_leader_epoch;
use super::RequestContext;
use crate::broker::Broker;
use crate::log::{Log, LogError, TimestampOffset, LEADER_EPOCH};
use crate::security::acl::{Operation, ResourceType};

/// Kafka's special timestamps in ListOffsets.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

const UNKNOWN: TimestampOffset = TimestampOffset {
    timestamp: -1,
    offset: -1,
};

/// The answer for one partition; `None` for a special (negative) timestamp this version of
/// the protocol does not define, which Kafka answers with UNSUPPORTED_VERSION.
fn lookup(
    log: &Log,
    timestamp: i64,
    read_committed: bool,
) -> Result<Option<TimestampOffset>, LogError> {
    Ok(Some(match timestamp {
        LATEST => TimestampOffset {
            timestamp: -1,
            offset: if read_committed {
                log.last_stable_offset()
            } else {
                log.high_watermark()
            },
        },
        EARLIEST | EARLIEST_LOCAL => TimestampOffset {
            timestamp: -1,
            offset: log.log_start_offset(),
        },
        MAX_TIMESTAMP => log.max_timestamp_offset()?.unwrap_or(UNKNOWN),
        // No tiered storage: nothing is tiered or waiting to be.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => UNKNOWN,
        t if t >= 0 => log.offset_for_timestamp(t)?.unwrap_or(UNKNOWN),
        _ => return Ok(None),
    }))
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let mut topics = Vec::new();
    for t in request.topics {
        let topic = broker.logs.topic(t.name.as_str());
        let denied = !broker.allows(&ctx, Operation::Describe, ResourceType::Topic, &t.name);
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let response =
                    ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                if denied {
                    return response
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        .with_timestamp(-1)
                        .with_offset(-1);
                }
                let Some(log) = topic.as_ref().and_then(|t| t.partition(p.partition_index)) else {
                    return response
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_timestamp(-1)
                        .with_offset(-1);
                };
                if let Err(e) = check_leader_epoch(p.current_leader_epoch, broker.leader_epoch()) {
                    return response
                        .with_error_code(e.code())
                        .with_timestamp(-1)
                        .with_offset(-1);
                }
                match lookup(log, p.timestamp, request.isolation_level == 1) {
                    Ok(None) => response
                        .with_error_code(ResponseError::UnsupportedVersion.code())
                        .with_timestamp(-1)
                        .with_offset(-1),
                    Ok(Some(found)) => response
                        .with_timestamp(found.timestamp)
                        .with_offset(found.offset)
                        // leader_epoch exists from v4 on.
                        .with_leader_epoch(if found.offset >= 0 && ctx.version >= 4 {
                            LEADER_EPOCH
                        } else {
                            -1
                        }),
                    Err(e) => response
                        .with_error_code(log_error_code(&e).code())
                        .with_timestamp(-1)
                        .with_offset(-1),
                }
            })
            .collect();
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
