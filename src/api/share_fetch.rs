//! ShareFetch (key 78): a share group member's fetch. It settles the acknowledgements it
//! carries, then acquires records for the member from the partitions of its share session
//! (`share/`): whole stored batches, with the offset ranges in them that are this member's
//! (`AcquiredRecords`) until it acknowledges them or `share.record.lock.duration.ms`
//! passes. With `max_wait_ms` it waits until something can be acquired, woken by appends
//! and by records released by other members.
//!
//! Share sessions: epoch 0 opens one for the partitions listed (no acknowledgements
//! allowed), later epochs add and forget partitions and fetch from all of them, -1 closes
//! it (acknowledgements settled, nothing fetched, the member's other records released).
//!
//! v2 (Kafka 4.2): the acquire mode (KIP-1206: `record_limit` acquires at most `max_records`,
//! splitting a batch) and RENEW acknowledgements (KIP-1222: with `IsRenewAck` the request
//! only settles acknowledgements, its size and wait fields all 0). Its response is v1's.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{ShareFetchRequest, ShareFetchResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::futures::Notified;
use uuid::Uuid;

use bytes::Bytes;

use super::share_acknowledgements::{
    acknowledge, check_request, partition_error, settings, share_partition_log, split_v2, Outcome,
};
use super::{encode_response, Dispatched, RequestContext, RequestError};
use crate::broker::Broker;
use crate::share::session::{SessionError, TopicIdPartition};
use crate::share::state_store::SharePartitionKey;
use crate::share::{Fetched, ShareEntry};

/// Kafka's ShareFetchRequest `INITIAL_EPOCH` and `FINAL_EPOCH`.
const INITIAL_EPOCH: i32 = 0;
const FINAL_EPOCH: i32 = -1;

fn top_level(error: ResponseError) -> ShareFetchResponse {
    ShareFetchResponse::default().with_error_code(error.code())
}

fn session_error(e: SessionError) -> ResponseError {
    match e {
        SessionError::NotFound => ResponseError::ShareSessionNotFound,
        SessionError::InvalidEpoch => ResponseError::InvalidShareSessionEpoch,
        SessionError::LimitReached => ResponseError::ShareSessionLimitReached,
    }
}

/// What the response says of one partition.
#[derive(Default)]
struct Answer {
    error: Option<Outcome>,
    acknowledged: Option<Result<(), Outcome>>,
    fetched: Option<Fetched>,
    /// Listed in the request: answered even with nothing to say.
    listed: bool,
}

/// What v2 adds to a ShareFetch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V2Fields {
    /// 0 batch_optimized, 1 record_limit.
    pub acquire_mode: i8,
    /// RENEW acknowledgements come with it; nothing is fetched.
    pub renew: bool,
}

/// Decodes v1, or v2 as v1 plus its new fields (the protocol crate has Kafka 4.1's
/// schemas); answers in v1's encoding, which v2's response shares.
pub fn route(
    broker: &Arc<Broker>,
    ctx: RequestContext,
    body: &mut Bytes,
) -> Result<Dispatched, RequestError> {
    let (mut v1, extra) = if ctx.version >= 2 {
        // After the group and member ids: six int32s, then ShareAcquireMode and IsRenewAck.
        split_v2(body, 24, 2)
            .ok_or_else(|| RequestError(format!("malformed ShareFetch v{} request", ctx.version)))?
    } else {
        (body.clone(), Bytes::new())
    };
    let v2 = V2Fields {
        acquire_mode: extra.first().map_or(0, |b| *b as i8),
        renew: extra.get(1).is_some_and(|b| *b != 0),
    };
    let as_v1 = RequestContext {
        version: 1,
        ..ctx.clone()
    };
    let request: ShareFetchRequest = super::decode(&as_v1, &mut v1)?;
    let broker = broker.clone();
    Ok(Dispatched::in_order(Box::pin(async move {
        let response = handle(broker, ctx, request, v2).await;
        encode_response(&as_v1, &response)
    })))
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: ShareFetchRequest,
    v2: V2Fields,
) -> ShareFetchResponse {
    let (group, member) = match check_request(
        &broker,
        &ctx,
        request.group_id.as_ref().map(|g| g.as_str()),
        request.member_id.as_ref().map(StrBytes::as_str),
    ) {
        Ok(ids) => ids,
        Err(e) => return top_level(e),
    };
    let listed: Vec<TopicIdPartition> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_id, p.partition_index)))
        .collect();
    let forgotten: Vec<TopicIdPartition> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_id, *p)))
        .collect();
    // v2: a known acquire mode; a renewing request fetches nothing (Kafka's KIP-1222 rule).
    if !(0..=1).contains(&v2.acquire_mode)
        || (v2.renew
            && (request.max_bytes != 0
                || request.min_bytes != 0
                || request.max_records != 0
                || request.max_wait_ms != 0))
    {
        return top_level(ResponseError::InvalidRequest);
    }
    let has_acks = request.topics.iter().any(|t| {
        t.partitions
            .iter()
            .any(|p| !p.acknowledgement_batches.is_empty())
    });
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let epoch = request.share_session_epoch;
    // Which partitions to fetch from, and whether the session ends with this request.
    let session = match epoch {
        INITIAL_EPOCH if has_acks => Err(ResponseError::InvalidRequest),
        INITIAL_EPOCH => broker
            .shares
            .sessions()
            .open(
                &group,
                &member,
                listed.iter().copied().collect(),
                ctx.connection,
            )
            .map(|()| (listed.clone(), None))
            .map_err(session_error),
        FINAL_EPOCH => broker
            .shares
            .sessions()
            .close(&group, &member)
            .map(|s| (Vec::new(), Some(s.partitions)))
            .map_err(session_error),
        e if e > 0 => broker
            .shares
            .sessions()
            .fetch(&group, &member, e, &listed, &forgotten)
            .map(|all| (all.into_iter().collect(), None))
            .map_err(session_error),
        _ => Err(ResponseError::InvalidShareSessionEpoch),
    };
    let (mut fetch_from, closed) = match session {
        Ok(s) => s,
        Err(ResponseError::ShareSessionLimitReached) => {
            // Kafka answers this only after max_wait_ms, so clients do not spin.
            tokio::time::sleep(max_wait).await;
            return top_level(ResponseError::ShareSessionLimitReached);
        }
        Err(e) => return top_level(e),
    };
    let settings = settings(&broker, &group);
    let mut answers: std::collections::BTreeMap<TopicIdPartition, Answer> = listed
        .iter()
        .map(|tp| {
            (
                *tp,
                Answer {
                    listed: true,
                    ..Answer::default()
                },
            )
        })
        .collect();
    for t in &request.topics {
        for p in &t.partitions {
            if p.acknowledgement_batches.is_empty() {
                continue;
            }
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
                v2.renew,
                &settings,
            )
            .await;
            answers
                .entry((t.topic_id, p.partition_index))
                .or_default()
                .acknowledged = Some(outcome);
        }
    }
    if let Some(partitions) = closed {
        let partitions: Vec<TopicIdPartition> = partitions.into_iter().collect();
        broker.shares.release(&group, &member, &partitions).await;
        return respond(answers, &settings);
    }
    if request.max_records > 0 && request.max_bytes > 0 && !fetch_from.is_empty() && !v2.renew {
        // Rotated by the session epoch, so that no partition always comes last.
        let turn = (epoch.max(0) as usize) % fetch_from.len();
        fetch_from.rotate_left(turn);
        fetch(
            &broker,
            &ctx,
            &group,
            &member,
            &fetch_from,
            &request,
            v2.acquire_mode == 1,
            &settings,
            &mut answers,
        )
        .await;
    }
    respond(answers, &settings)
}

/// Acquires records from `partitions`, waiting up to `max_wait_ms` for some.
#[allow(clippy::too_many_arguments)]
async fn fetch(
    broker: &Broker,
    ctx: &RequestContext,
    group: &str,
    member: &str,
    partitions: &[TopicIdPartition],
    request: &ShareFetchRequest,
    record_limit: bool,
    settings: &crate::share::ShareGroupSettings,
    answers: &mut std::collections::BTreeMap<TopicIdPartition, Answer>,
) {
    let member: Arc<str> = member.into();
    let mut entries: Vec<(TopicIdPartition, Arc<ShareEntry>)> = Vec::new();
    for &(topic_id, partition) in partitions {
        match share_partition_log(broker, ctx, topic_id, partition) {
            Ok(log) => {
                let key = SharePartitionKey {
                    group: group.to_string(),
                    topic_id,
                    partition,
                };
                entries.push(((topic_id, partition), broker.shares.entry(key, &log)));
            }
            Err(e) => {
                answers.entry((topic_id, partition)).or_default().error = Some((e, None));
            }
        }
    }
    if entries.is_empty() {
        return;
    }
    let max_records = request.max_records.max(0) as usize;
    let batch_size = request.batch_size.max(1) as usize;
    let per_partition = (request.max_bytes.max(0) as usize / entries.len()).max(1);
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    loop {
        // Register for wake-ups before trying, so a change in between is not missed.
        let mut notified: Vec<Pin<Box<Notified<'_>>>> = entries
            .iter()
            .flat_map(|(_, e)| [e.log.data_arrived().notified(), e.changed.notified()])
            .map(Box::pin)
            .collect();
        for n in &mut notified {
            n.as_mut().enable();
        }
        let mut remaining = max_records;
        let mut done = false;
        for (tp, entry) in &entries {
            if remaining == 0 {
                break;
            }
            match broker
                .shares
                .acquire(
                    entry,
                    &member,
                    remaining,
                    batch_size,
                    per_partition,
                    record_limit,
                    settings,
                )
                .await
            {
                Ok(Some(fetched)) => {
                    remaining = remaining.saturating_sub(
                        fetched
                            .ranges
                            .iter()
                            .map(|r| (r.last_offset - r.first_offset + 1) as usize)
                            .sum(),
                    );
                    answers.entry(*tp).or_default().fetched = Some(fetched);
                    done = true;
                }
                Ok(None) => {}
                Err(e) => {
                    answers.entry(*tp).or_default().error = Some(partition_error(e));
                    done = true;
                }
            }
        }
        if done || tokio::time::Instant::now() >= deadline {
            return;
        }
        let any = poll_fn(|cx| {
            for n in &mut notified {
                if n.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        });
        // On a wake-up, or once more after the wait as Kafka does on expiry (only a change
        // that slipped past the wake-ups could make it find something, so it is cheap).
        let _ = tokio::time::timeout_at(deadline, any).await;
    }
}

/// The response: partitions with records, errors or acknowledgement outcomes, and those
/// the request listed; by topic in request order.
fn respond(
    answers: std::collections::BTreeMap<TopicIdPartition, Answer>,
    settings: &crate::share::ShareGroupSettings,
) -> ShareFetchResponse {
    let mut topics: Vec<ShareFetchableTopicResponse> = Vec::new();
    let mut by_topic: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
    for ((topic_id, partition), a) in answers {
        if !a.listed && a.error.is_none() && a.acknowledged.is_none() && a.fetched.is_none() {
            continue;
        }
        let (error, message) = a.error.map_or((0, None), |(e, m)| (e.code(), m));
        let (ack_error, ack_message) = match a.acknowledged {
            Some(Err((e, m))) => (e.code(), m),
            _ => (0, None),
        };
        let (records, acquired) = match a.fetched {
            Some(f) => (
                f.records,
                f.ranges
                    .iter()
                    .map(|r| {
                        AcquiredRecords::default()
                            .with_first_offset(r.first_offset)
                            .with_last_offset(r.last_offset)
                            .with_delivery_count(r.delivery_count)
                    })
                    .collect(),
            ),
            None => (bytes::Bytes::new(), Vec::new()),
        };
        let data = PartitionData::default()
            .with_partition_index(partition)
            .with_error_code(error)
            .with_error_message(message.map(StrBytes::from_string))
            .with_acknowledge_error_code(ack_error)
            .with_acknowledge_error_message(ack_message.map(StrBytes::from_string))
            .with_records(Some(records))
            .with_acquired_records(acquired);
        let index = *by_topic.entry(topic_id).or_insert_with(|| {
            topics.push(ShareFetchableTopicResponse::default().with_topic_id(topic_id));
            topics.len() - 1
        });
        topics[index].partitions.push(data);
    }
    ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(settings.record_lock_duration.as_millis() as i32)
        .with_responses(topics)
}
