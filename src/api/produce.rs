//! Produce (key 0): validates each partition's record batches (header and CRC32C only;
//! for a compacted topic also that every record has a key), appends them, and answers once the data is durable (or at once when the log
//! acknowledges before fsync, or never for acks=0).
//!
//! The appends happen when the request is dispatched, in request order; only the wait for
//! the fsync is left to the returned future, so pipelined produces share fsyncs.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::errors::{coordinator_error, log_error_code};
use super::{Dispatched, RequestContext, RequestError, Response, ResponseFuture};
use crate::broker::Broker;
use crate::cluster::batch_coordinator::BatchOutcome;
use crate::cluster::ClusterError;
use crate::config::TimestampType;
use crate::log::record_batch::{
    set_log_append_time, validate_produce_batches, BatchError, BatchHeader,
};
use crate::log::record_view::keyless_records;
use crate::log::{AppendInfo, Log, LogError};
use crate::security::acl::{Operation, ResourceType};

/// What a partition's answer waits for.
enum Wait {
    /// This append to be durable (fsync).
    Durable(Arc<Log>, AppendInfo),
    /// Cluster mode: the object holding the batch to be uploaded and committed; the
    /// batch's LogAppendTime (-1: CreateTime).
    Committed(
        Arc<Log>,
        oneshot::Receiver<Result<BatchOutcome, ClusterError>>,
        i64,
    ),
}

/// A partition's outcome before the durability wait.
struct PartitionOutcome {
    response: PartitionProduceResponse,
    wait: Option<Wait>,
    /// Records and bytes appended (for the metrics).
    appended: (u64, u64),
}

fn error_partition(index: i32, error: ResponseError, message: Option<String>) -> PartitionOutcome {
    PartitionOutcome {
        response: PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(error.code())
            .with_base_offset(-1)
            .with_log_start_offset(-1)
            .with_error_message(message.map(StrBytes::from_string)),
        wait: None,
        appended: (0, 0),
    }
}

/// Validates and appends every partition of `request` now; returns the response future.
/// Produce's entry in the route table: decoded now, appended now (in request order), and
/// only the wait for durability is left to the returned future, which later requests may
/// overlap.
pub fn route(
    broker: &Arc<Broker>,
    ctx: RequestContext,
    body: &mut Bytes,
) -> Result<Dispatched, RequestError> {
    let request = super::decode(&ctx, body)?;
    Ok(Dispatched {
        response: handle(broker, ctx, request),
        may_overlap: true,
    })
}

pub fn handle(
    broker: &Arc<Broker>,
    ctx: RequestContext,
    request: ProduceRequest,
) -> ResponseFuture {
    let acks = request.acks;
    // Transactional batches need a transactional id the producer may WRITE, checked first
    // for the whole request (Kafka looks at each partition's first batch).
    let transaction_denied = has_transactional_batches(&request)
        && request.transactional_id.as_ref().is_none_or(|id| {
            !broker.allows(&ctx, Operation::Write, ResourceType::TransactionalId, id)
        });
    let mut topics: Vec<(TopicProduceResponse, Vec<PartitionOutcome>)> = Vec::new();
    let mut any_error = false;
    for topic_data in request.topic_data {
        let topic = if ctx.version >= 13 {
            broker.logs.topic_by_id(topic_data.topic_id)
        } else {
            broker.logs.topic(topic_data.name.as_str())
        };
        let unknown = if ctx.version >= 13 {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        // Unauthorized topics fail before their existence is checked, as in Kafka (but an
        // unknown topic id is UNKNOWN_TOPIC_ID).
        let name = topic
            .as_ref()
            .map_or(topic_data.name.as_str(), |t| t.name.as_str());
        let denied = if transaction_denied {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else if (topic.is_some() || ctx.version < 13)
            && !broker.allows(&ctx, Operation::Write, ResourceType::Topic, name)
        {
            Some(ResponseError::TopicAuthorizationFailed)
        } else {
            None
        };
        let mut partitions = Vec::new();
        for p in topic_data.partition_data {
            let outcome = if let Some(error) = denied {
                error_partition(p.index, error, None)
            } else if matches!(acks, -1..=1) {
                match topic.as_ref().and_then(|t| t.partition(p.index)) {
                    None => error_partition(p.index, unknown, None),
                    Some(log) => append_partition(
                        broker,
                        request.transactional_id.as_ref().map(|t| t.as_str()),
                        topic.as_ref().map_or(uuid::Uuid::nil(), |t| t.id),
                        log,
                        p.index,
                        p.records.as_ref(),
                        acks,
                    ),
                }
            } else {
                error_partition(p.index, ResponseError::InvalidRequiredAcks, None)
            };
            any_error |= outcome.response.error_code != 0;
            partitions.push(outcome);
        }
        if let Some(topic) = &topic {
            count_produce(&topic.name, &partitions);
        }
        topics.push((
            TopicProduceResponse::default()
                .with_name(topic_data.name)
                .with_topic_id(topic_data.topic_id),
            partitions,
        ));
    }
    if acks == 0 {
        // No response for acks=0; Kafka closes the connection to signal an error.
        return Box::pin(async move {
            if any_error {
                Response::Close
            } else {
                Response::None
            }
        });
    }
    Box::pin(async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (topic, partitions) in topics {
            let mut out = Vec::with_capacity(partitions.len());
            for outcome in partitions {
                let mut response = outcome.response;
                match outcome.wait {
                    None => {}
                    Some(Wait::Durable(log, info)) => {
                        if let Err(e) = log.wait_durable(&info).await {
                            response = failed_response(response.index, log_error_code(&e), &e);
                        }
                    }
                    Some(Wait::Committed(log, rx, append_time)) => {
                        response = committed_response(&log, response.index, rx.await, append_time);
                    }
                }
                out.push(response);
            }
            responses.push(topic.with_partition_responses(out));
        }
        super::encode_response(&ctx, &ProduceResponse::default().with_responses(responses))
    })
}

/// An error answer with its message, after the append (the durability or commit wait).
fn failed_response(
    index: i32,
    code: ResponseError,
    e: &dyn std::fmt::Display,
) -> PartitionProduceResponse {
    error_partition(index, code, Some(e.to_string())).response
}

/// Cluster mode: the answer once the batch's object is committed (or failed).
fn committed_response(
    log: &Log,
    index: i32,
    result: Result<Result<BatchOutcome, ClusterError>, oneshot::error::RecvError>,
    log_append_time: i64,
) -> PartitionProduceResponse {
    match result {
        Ok(Ok(BatchOutcome::Committed {
            base_offset,
            log_start_offset,
            found_timestamp,
            ..
        })) => PartitionProduceResponse::default()
            .with_index(index)
            .with_base_offset(base_offset)
            // A retry is answered with the original's timestamp, as Kafka answers a
            // duplicate; a new batch with its stamp (LogAppendTime) or -1.
            .with_log_append_time_ms(found_timestamp.unwrap_or(log_append_time))
            .with_log_start_offset(log_start_offset),
        Ok(Ok(BatchOutcome::UnknownPartition)) => failed_response(
            index,
            ResponseError::UnknownTopicOrPartition,
            &"the topic was deleted",
        ),
        Ok(Ok(BatchOutcome::Producer(e))) => refused(log, index, &LogError::Producer(e)).response,
        // Only coordinators' batches are fenced; a produce request never is.
        Ok(Ok(BatchOutcome::Fenced)) => failed_response(
            index,
            ResponseError::NotLeaderOrFollower,
            &"fenced by a newer membership epoch",
        ),
        // Retriable: nothing of the object is visible, the producer sends again.
        Ok(Err(e)) => failed_response(index, ResponseError::KafkaStorageError, &e),
        Err(_) => failed_response(
            index,
            ResponseError::KafkaStorageError,
            &ClusterError::Stopped,
        ),
    }
}

/// Kafka's per-topic produce metrics: a request (and a failed one) per partition, and the
/// records and bytes appended. Only existing topics are counted, so a client naming
/// made-up topics cannot grow the metrics.
fn count_produce(topic: &str, partitions: &[PartitionOutcome]) {
    let metrics = crate::metrics::global();
    let labels = [("topic", topic.to_string())];
    let failed = partitions
        .iter()
        .filter(|p| p.response.error_code != 0)
        .count() as u64;
    let (messages, bytes) = partitions
        .iter()
        .fold((0, 0), |(m, b), p| (m + p.appended.0, b + p.appended.1));
    metrics
        .produce_requests
        .get_or_create(&labels)
        .inc_by(partitions.len() as u64);
    if failed > 0 {
        metrics
            .failed_produce_requests
            .get_or_create(&labels)
            .inc_by(failed);
    }
    if messages > 0 {
        metrics.messages_in.get_or_create(&labels).inc_by(messages);
        metrics.bytes_in.get_or_create(&labels).inc_by(bytes);
    }
}

/// Whether the first batch of any partition's records is transactional.
fn has_transactional_batches(request: &ProduceRequest) -> bool {
    request.topic_data.iter().any(|t| {
        t.partition_data.iter().any(|p| {
            p.records
                .as_deref()
                .and_then(BatchHeader::parse)
                .is_some_and(|h| h.is_transactional())
        })
    })
}

fn append_partition(
    broker: &Broker,
    transactional_id: Option<&str>,
    topic_id: uuid::Uuid,
    log: &Arc<Log>,
    index: i32,
    records: Option<&Bytes>,
    acks: i16,
) -> PartitionOutcome {
    let Some(records) = records else {
        return error_partition(
            index,
            ResponseError::CorruptMessage,
            Some("records are null".into()),
        );
    };
    // Kafka's ProduceRequest.validateRecords: since v3 a partition's records are exactly
    // one batch (refused before the log is touched, with no message).
    if has_second_batch(records) {
        return error_partition(index, ResponseError::InvalidRecord, None);
    }
    let config = log.config();
    let headers = match validate_produce_batches(records, config.max_message_bytes) {
        Ok(headers) => headers,
        Err(e) => return refused(log, index, &LogError::Batch(e)),
    };
    if config.cleanup_compact {
        if let Some(refusal) = check_keys(log, index, records, &headers) {
            return refusal;
        }
    }
    if let Some(transactional_id) = transactional_id {
        if let Err(e) = verify_transactional(broker, transactional_id, log, &headers) {
            // Refused before the log is touched: no offsets, as Kafka answers.
            return error_partition(index, e, None);
        }
    }
    if let Some(cluster) = &broker.cluster {
        // LogAppendTime is stamped here, when the batch is accepted (the one copy of the
        // batch this path makes: the stamp is covered by its CRC).
        let (stamped, header, append_time) =
            if config.message_timestamp_type == TimestampType::LogAppendTime {
                let now = crate::log::now_ms();
                let mut copy = records.to_vec();
                set_log_append_time(&mut copy, now);
                let mut header = headers[0];
                header.max_timestamp = now;
                (Bytes::from(copy), header, now)
            } else {
                (records.clone(), headers[0], -1)
            };
        let rx = cluster.produce(topic_id, index, stamped, header);
        return PartitionOutcome {
            response: PartitionProduceResponse::default().with_index(index),
            wait: Some(Wait::Committed(log.clone(), rx, append_time)),
            appended: (
                headers.iter().map(|h| h.records_count.max(0) as u64).sum(),
                records.len() as u64,
            ),
        };
    }
    let result = log.append(records, &headers);
    match result {
        Ok(info) => {
            let wait = (acks != 0 && config.is_durable()).then(|| Wait::Durable(log.clone(), info));
            PartitionOutcome {
                response: PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(info.base_offset)
                    .with_log_append_time_ms(info.log_append_time)
                    .with_log_start_offset(info.log_start_offset),
                wait,
                appended: (
                    headers.iter().map(|h| h.records_count.max(0) as u64).sum(),
                    records.len() as u64,
                ),
            }
        }
        Err(e) => {
            if matches!(e, LogError::Io { .. }) {
                tracing::error!(partition = %log.topic_partition(), error = %e, "append failed");
            } else {
                tracing::debug!(partition = %log.topic_partition(), error = %e, "produce refused");
            }
            refused(log, index, &e)
        }
    }
}

/// Whether a whole second batch follows the first (as Kafka's batch iterator finds one).
fn has_second_batch(records: &[u8]) -> bool {
    let Some(first) = BatchHeader::parse(records) else {
        return false;
    };
    let rest = records.get(first.size()..).unwrap_or_default();
    BatchHeader::parse(rest).is_some_and(|second| second.size() <= rest.len())
}

/// Kafka's `LogValidator.validateKey`: every record produced to a compacted topic needs a
/// key. The partition is refused with INVALID_RECORD, and `record_errors` names each
/// keyless record by its index in its batch (clients fail those records with
/// INVALID_RECORD and the others of the batch with a retriable error of their own).
fn check_keys(
    log: &Log,
    index: i32,
    records: &[u8],
    headers: &[BatchHeader],
) -> Option<PartitionOutcome> {
    let mut errors = Vec::new();
    let mut at = 0usize;
    for h in headers {
        let batch = &records[at..at + h.size()];
        at += h.size();
        let Some(keyless) = keyless_records(batch) else {
            return Some(refused(
                log,
                index,
                &LogError::Batch(BatchError::Invalid(
                    "the records of a batch do not decode or do not match its header".into(),
                )),
            ));
        };
        errors.extend(keyless);
    }
    if errors.is_empty() {
        return None;
    }
    // Kafka's texts: the summary quotes each error with a full stop, the per-record
    // messages have none.
    let message = format!(
        "Compacted topic cannot accept message without key in topic partition {}",
        log.topic_partition()
    );
    let shown: Vec<String> = errors
        .iter()
        .take(3)
        .map(|i| format!("RecordError(batchIndex={i}, message='{message}.')"))
        .collect();
    let mut outcome = refused(
        log,
        index,
        &LogError::Batch(BatchError::Invalid(format!(
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
            errors.len(),
            shown.join(", ")
        ))),
    );
    outcome.response.record_errors = errors
        .iter()
        .map(|i| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(*i as i32)
                .with_batch_index_error_message(Some(StrBytes::from_string(message.clone())))
        })
        .collect();
    Some(outcome)
}

/// Kafka's check of transactional batches before they are written: a batch from an
/// older epoch than the partition knows is refused at once; a producer without a
/// transaction open on the partition must have added it to its ongoing transaction.
fn verify_transactional(
    broker: &Broker,
    transactional_id: &str,
    log: &Log,
    headers: &[BatchHeader],
) -> Result<(), ResponseError> {
    for h in headers
        .iter()
        .filter(|h| h.is_transactional() && !h.is_control())
    {
        match log.producer_status(h.producer_id) {
            Some((epoch, _)) if epoch > h.producer_epoch => {
                return Err(ResponseError::InvalidProducerEpoch)
            }
            Some((epoch, true)) if epoch == h.producer_epoch => {}
            _ => broker
                .txns
                .verify_partition(
                    transactional_id,
                    h.producer_id,
                    h.producer_epoch,
                    log.topic_partition(),
                )
                .map_err(coordinator_error)?,
        }
    }
    Ok(())
}

/// A partition's refusal. Kafka reports the log start offset with it, except for the
/// errors its ReplicaManager treats as "the partition could not be written at all"
/// (too large, corrupt, storage, not the leader).
fn refused(log: &Log, index: i32, e: &LogError) -> PartitionOutcome {
    let code = log_error_code(e);
    let mut outcome = error_partition(index, code, Some(e.to_string()));
    let without_offsets = matches!(
        code,
        ResponseError::MessageTooLarge
            | ResponseError::RecordListTooLarge
            | ResponseError::CorruptMessage
            | ResponseError::KafkaStorageError
            | ResponseError::NotLeaderOrFollower
    );
    if !without_offsets {
        outcome.response.log_start_offset = log.log_start_offset();
    }
    outcome
}
