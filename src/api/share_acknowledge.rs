//! ShareAcknowledge (key 79): a share group member settles records it acquired: ACCEPT,
//! RELEASE (delivered again, up to `group.share.delivery.count.limit` times), REJECT, or a
//! gap (an acquired offset with no record). Each partition's acknowledgements are all or
//! nothing and durable before the answer. It moves the member's share session to its next
//! epoch; epoch -1 also closes the session and releases the member's other records; a
//! session cannot be opened with it (epoch 0).

use std::sync::Arc;

use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::{ShareAcknowledgeRequest, ShareAcknowledgeResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::share_acknowledgements::{acknowledge, check_request, settings};
use super::RequestContext;
use crate::broker::Broker;
use crate::share::session::{SessionError, TopicIdPartition};

const FINAL_EPOCH: i32 = -1;

fn top_level(error: ResponseError) -> ShareAcknowledgeResponse {
    ShareAcknowledgeResponse::default().with_error_code(error.code())
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let (group, member) = match check_request(
        &broker,
        &ctx,
        request.group_id.as_ref().map(|g| g.as_str()),
        request.member_id.as_ref().map(StrBytes::as_str),
    ) {
        Ok(ids) => ids,
        Err(e) => return top_level(e),
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
            Err(SessionError::NotFound) => return top_level(ResponseError::ShareSessionNotFound),
            Err(_) => return top_level(ResponseError::InvalidShareSessionEpoch),
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
    ShareAcknowledgeResponse::default().with_responses(topics)
}
