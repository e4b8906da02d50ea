//! ShareAcknowledge (key 79): a share group member settles records it acquired: ACCEPT,
//! RELEASE (delivered again, up to `group.share.delivery.count.limit` times), REJECT, or a
//! gap (an acquired offset with no record). Each partition's acknowledgements are all or
//! nothing and durable before the answer. It moves the member's share session to its next
//! epoch; epoch -1 also closes the session and releases the member's other records; a
//! session cannot be opened with it (epoch 0).
//!
//! v2 (Kafka 4.2) adds `IsRenewAck` (RENEW acknowledgements restart the records' locks) and
//! the response's `AcquisitionLockTimeoutMs`; the protocol crate has 4.1's schemas, so the
//! request is decoded as v1 and the field written into v1's encoding.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::{ShareAcknowledgeRequest, ShareAcknowledgeResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::share_acknowledgements::{acknowledge, check_request, settings, split_v2};
use super::{encode_response, Dispatched, RequestContext, RequestError, Response};
use crate::broker::Broker;
use crate::share::session::{SessionError, TopicIdPartition};

const FINAL_EPOCH: i32 = -1;

fn top_level(error: ResponseError) -> ShareAcknowledgeResponse {
    ShareAcknowledgeResponse::default().with_error_code(error.code())
}

/// Decodes v1, or v2 as v1 plus IsRenewAck; answers v2 with AcquisitionLockTimeoutMs after
/// the top-level error message.
pub fn route(
    broker: &Arc<Broker>,
    ctx: RequestContext,
    body: &mut Bytes,
) -> Result<Dispatched, RequestError> {
    let (mut v1, extra) = if ctx.version >= 2 {
        // After the group and member ids: the session epoch, then IsRenewAck.
        split_v2(body, 4, 1).ok_or_else(|| {
            RequestError(format!(
                "malformed ShareAcknowledge v{} request",
                ctx.version
            ))
        })?
    } else {
        (body.clone(), Bytes::new())
    };
    let renew = extra.first().is_some_and(|b| *b != 0);
    let as_v1 = RequestContext {
        version: 1,
        ..ctx.clone()
    };
    let request: ShareAcknowledgeRequest = super::decode(&as_v1, &mut v1)?;
    let broker = broker.clone();
    Ok(Dispatched::in_order(Box::pin(async move {
        let version = ctx.version;
        let (response, lock_ms) = handle(broker, ctx, request, renew).await;
        let encoded = encode_response(&as_v1, &response);
        match encoded {
            Response::Frame(frame) if version >= 2 => with_lock_timeout(&frame, lock_ms),
            other => other,
        }
    })))
}

/// A v1 response frame with v2's AcquisitionLockTimeoutMs inserted after the top-level
/// error message: size (4), correlation id (4), header tags (1), throttle time (4), error
/// code (2), then the message as a compact nullable string.
fn with_lock_timeout(frame: &BytesMut, lock_ms: i32) -> Response {
    let mut at = 15;
    let mut len: u64 = 0;
    let mut shift = 0;
    while let Some(b) = frame.get(at) {
        at += 1;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let at = at + usize::try_from(len.saturating_sub(1)).unwrap_or(usize::MAX);
    if at > frame.len() {
        return Response::Close;
    }
    let mut out = BytesMut::with_capacity(frame.len() + 4);
    out.put_i32(i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) + 4);
    out.put_slice(&frame[4..at]);
    out.put_i32(lock_ms);
    out.put_slice(&frame[at..]);
    Response::Frame(out)
}

/// The answer, and the group's record lock duration (v2's AcquisitionLockTimeoutMs).
pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ShareAcknowledgeRequest,
    renew: bool,
) -> (ShareAcknowledgeResponse, i32) {
    let (group, member) = match check_request(
        &broker,
        &ctx,
        request.group_id.as_ref().map(|g| g.as_str()),
        request.member_id.as_ref().map(StrBytes::as_str),
    ) {
        Ok(ids) => ids,
        Err(e) => return (top_level(e), 0),
    };
    let epoch = request.share_session_epoch;
    let closed = {
        let mut sessions = broker.shares.sessions();
        let outcome = match epoch {
            FINAL_EPOCH => sessions.close(&group, &member).map(|s| Some(s.partitions)),
            e if e > 0 => sessions.acknowledge(&group, &member, e).map(|()| None),
            _ => Err(SessionError::InvalidEpoch),
        };
        match outcome {
            Ok(closed) => closed,
            Err(SessionError::NotFound) => {
                return (top_level(ResponseError::ShareSessionNotFound), 0)
            }
            Err(_) => return (top_level(ResponseError::InvalidShareSessionEpoch), 0),
        }
    };
    let settings = settings(&broker, &group);
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let batches: Vec<(i64, i64, Vec<i8>)> = p
                .acknowledgement_batches
                .iter()
                .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
                .collect();
            let outcome = acknowledge(
                &broker,
                &ctx,
                &group,
                &member,
                t.topic_id,
                p.partition_index,
                &batches,
                renew,
                &settings,
            )
            .await;
            let (code, message) = match outcome {
                Ok(()) => (0, None),
                Err((e, message)) => (e.code(), message),
            };
            partitions.push(
                PartitionData::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string)),
            );
        }
        topics.push(
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    if let Some(partitions) = closed {
        let partitions: Vec<TopicIdPartition> = partitions.into_iter().collect();
        broker.shares.release(&group, &member, &partitions).await;
    }
    (
        ShareAcknowledgeResponse::default().with_responses(topics),
        settings.record_lock_duration.as_millis() as i32,
    )
}
