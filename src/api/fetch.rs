//! Fetch (key 1): returns stored batches as they are on disk, up to the high watermark,
//! `partition_max_bytes` per partition and `max_bytes` per response (always at least one
//! whole batch, as Kafka does since KIP-74). With `max_wait_ms` the request waits until
//! `min_bytes` have arrived or the time is up, woken by appends rather than polling.
//!
//! The records are not copied into the response (`FetchAnswer`, encoded by
//! `fetch_response`): the connection writes them from the buffer they were read into, or
//! with `socket.sendfile.enable` straight from their segment files.
//!
//! Fetch sessions (KIP-227) are not kept: a full fetch is answered with session id 0
//! (sessionless), and an incremental one with FETCH_SESSION_ID_NOT_FOUND so the client
//! falls back to full fetches.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};
use kafka_protocol::ResponseError;
use tokio::sync::futures::Notified;

use super::errors::log_error_code;
use super::{fetch_response, IntoResponse, RequestContext, Response};
use crate::broker::Broker;
use crate::log::{Log, Records};
use crate::security::acl::{Operation, ResourceType};

/// Kafka's FetchRequest `INITIAL_EPOCH` and `FINAL_EPOCH`.
const INITIAL_EPOCH: i32 = 0;
const FINAL_EPOCH: i32 = -1;

/// One requested partition, resolved.
struct Wanted {
    topic_index: usize,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    current_leader_epoch: i32,
    log: Result<Arc<Log>, ResponseError>,
    /// Cluster mode, rack-aware: the broker in the client's rack to read from instead.
    preferred_read_replica: Option<i32>,
}

/// Checks a client's `current_leader_epoch` against ours ([`Broker::leader_epoch`]; -1
/// means: not checked).
pub fn check_leader_epoch(current_leader_epoch: i32, ours: i32) -> Result<(), ResponseError> {
    match current_leader_epoch {
        -1 => Ok(()),
        e if e < ours => Err(ResponseError::FencedLeaderEpoch),
        e if e > ours => Err(ResponseError::UnknownLeaderEpoch),
        _ => Ok(()),
    }
}

/// A Fetch response whose partitions' records (in response order) are still in their files.
pub struct FetchAnswer {
    pub response: FetchResponse,
    pub records: Vec<Records>,
}

impl IntoResponse for FetchAnswer {
    fn into_response(self, ctx: &RequestContext) -> Response {
        super::count_errors(ctx, &self.response);
        fetch_response::encode(ctx, &self.response, self.records)
    }
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: FetchRequest,
) -> FetchAnswer {
    if ctx.version >= 7
        && (request.session_id != 0
            || !matches!(request.session_epoch, INITIAL_EPOCH | FINAL_EPOCH))
    {
        return FetchAnswer {
            response: FetchResponse::default()
                .with_error_code(ResponseError::FetchSessionIdNotFound.code())
                .with_session_id(0),
            records: Vec::new(),
        };
    }
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut wanted: Vec<Wanted> = Vec::new();
    for t in &request.topics {
        let (topic, unknown) = if ctx.version >= 13 {
            (
                broker.logs.topic_by_id(t.topic_id),
                ResponseError::UnknownTopicId,
            )
        } else {
            (
                broker.logs.topic(t.topic.as_str()),
                ResponseError::UnknownTopicOrPartition,
            )
        };
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id),
        );
        // READ on the topic, checked before its existence (except an unknown topic id).
        let name = topic.as_ref().map_or(t.topic.as_str(), |t| t.name.as_str());
        let denied = (topic.is_some() || ctx.version < 13)
            && !broker.allows(&ctx, Operation::Read, ResourceType::Topic, name);
        for p in &t.partitions {
            let log = match &topic {
                _ if denied => Err(ResponseError::TopicAuthorizationFailed),
                None => Err(unknown),
                Some(topic) => topic
                    .partition(p.partition)
                    .cloned()
                    .ok_or(ResponseError::UnknownTopicOrPartition),
            };
            let preferred_read_replica = (ctx.version >= 11)
                .then(|| broker.preferred_read_replica(&request.rack_id, name, p.partition))
                .flatten();
            wanted.push(Wanted {
                topic_index: topics.len() - 1,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes.max(0) as usize,
                current_leader_epoch: p.current_leader_epoch,
                log,
                preferred_read_replica,
            });
        }
    }
    let max_bytes = request.max_bytes.max(0) as usize;
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let logs: Vec<Arc<Log>> = wanted
        .iter()
        .filter_map(|w| w.log.as_ref().ok().cloned())
        .collect();
    let read_committed = request.isolation_level == 1;
    // With sendfile the records stay in their files until the connection sends them.
    let in_file = broker.config.socket_server.sendfile;
    let partitions = loop {
        // Register for wake-ups before reading, so an append in between is not missed.
        let mut notified: Vec<Pin<Box<Notified<'_>>>> = logs
            .iter()
            .map(|l| Box::pin(l.data_arrived().notified()))
            .collect();
        for n in &mut notified {
            n.as_mut().enable();
        }
        let (partitions, bytes, at_once) = read_all(
            &wanted,
            max_bytes,
            read_committed,
            in_file,
            broker.leader_epoch(),
        );
        if bytes >= min_bytes
            || at_once
            || tokio::time::Instant::now() >= deadline
            || logs.is_empty()
        {
            break partitions;
        }
        let any = poll_fn(|cx| {
            for n in &mut notified {
                if n.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        });
        if tokio::time::timeout_at(deadline, any).await.is_err() {
            break read_all(
                &wanted,
                max_bytes,
                read_committed,
                in_file,
                broker.leader_epoch(),
            )
            .0;
        }
    };
    count_fetch(&wanted, &partitions);
    // Partitions are answered in request order, so topic by topic as `wanted` lists them.
    let mut records = Vec::with_capacity(partitions.len());
    for (w, (data, stored)) in wanted.iter().zip(partitions) {
        topics[w.topic_index].partitions.push(data);
        records.push(stored);
    }
    FetchAnswer {
        response: FetchResponse::default()
            .with_session_id(0)
            .with_responses(topics),
        records,
    }
}

/// Kafka's per-topic fetch metrics: a request (and a failed one) per partition of an
/// existing topic, and the record bytes answered. Partitions of unknown topics are not
/// counted, so a client asking for made-up names cannot grow the metrics.
fn count_fetch(wanted: &[Wanted], partitions: &[(PartitionData, Records)]) {
    let metrics = crate::metrics::global();
    let mut i = 0;
    while i < wanted.len() {
        let topic_index = wanted[i].topic_index;
        let (mut requests, mut failed, mut bytes, mut name) = (0u64, 0u64, 0u64, None);
        while i < wanted.len() && wanted[i].topic_index == topic_index {
            if let Ok(log) = &wanted[i].log {
                name.get_or_insert_with(|| log.topic_partition().topic.clone());
                requests += 1;
                let (data, records) = &partitions[i];
                failed += u64::from(data.error_code != 0);
                bytes += records.len() as u64;
            }
            i += 1;
        }
        if let Some(name) = name {
            let topic = [("topic", name)];
            metrics
                .fetch_requests
                .get_or_create(&topic)
                .inc_by(requests);
            if failed > 0 {
                metrics
                    .failed_fetch_requests
                    .get_or_create(&topic)
                    .inc_by(failed);
            }
            if bytes > 0 {
                metrics.bytes_out.get_or_create(&topic).inc_by(bytes);
            }
        }
    }
}

/// A partition that failed, as Kafka answers it: no offsets (-1) and no records. A partition
/// that does not exist (or may not be read) gets an empty aborted-transaction list whatever the isolation
/// (`FetchResponse.partitionResponse`); a failed read keeps the isolation's (null for
/// read_uncommitted), as Kafka's ReplicaManager answers it.
fn error_partition(partition: i32, error: ResponseError, read_committed: bool) -> PartitionData {
    let unknown = matches!(
        error,
        ResponseError::UnknownTopicOrPartition
            | ResponseError::UnknownTopicId
            | ResponseError::TopicAuthorizationFailed
    );
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(error.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_aborted_transactions((unknown || read_committed).then(Vec::new))
}

/// The records of a partition that failed: empty, not null, as Kafka answers
/// (`MemoryRecords.EMPTY`).
fn no_records() -> Records {
    Records::Bytes(bytes::Bytes::new())
}

/// Reads every wanted partition once. Returns the partition responses with their records,
/// the bytes of records in them, and whether to answer at once (a partition has an error,
/// or the client is pointed at another broker).
fn read_all(
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
    in_file: bool,
    leader_epoch: i32,
) -> (Vec<(PartitionData, Records)>, usize, bool) {
    let mut out = Vec::with_capacity(wanted.len());
    let mut total = 0usize;
    let mut at_once = false;
    for w in wanted {
        let base = PartitionData::default()
            .with_partition_index(w.partition)
            .with_aborted_transactions(if read_committed {
                Some(Vec::new())
            } else {
                None
            });
        let log = match (
            w.log.as_ref().map_err(|e| *e),
            check_leader_epoch(w.current_leader_epoch, leader_epoch),
        ) {
            (Err(e), _) | (Ok(_), Err(e)) => {
                at_once = true;
                out.push((
                    error_partition(w.partition, e, read_committed),
                    no_records(),
                ));
                continue;
            }
            (Ok(log), Ok(())) => log,
        };
        let remaining = max_bytes.saturating_sub(total);
        // Pointed at a broker in the client's rack: no records from here (as Kafka's
        // leader answers), and no waiting.
        let limit = match w.preferred_read_replica {
            Some(_) => {
                at_once = true;
                0
            }
            None => w.partition_max_bytes.min(remaining),
        };
        // A redirected partition reads nothing (its watermarks only).
        let first = total == 0 && w.preferred_read_replica.is_none();
        match log.read_records(w.fetch_offset, limit, first, read_committed, in_file) {
            Ok(r) => {
                if w.preferred_read_replica.is_none() {
                    total += r.records.len();
                }
                let base = if read_committed {
                    base.with_aborted_transactions(Some(
                        r.aborted
                            .iter()
                            .map(|a| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(a.producer_id))
                                    .with_first_offset(a.first_offset)
                            })
                            .collect(),
                    ))
                } else {
                    base
                };
                let data = base
                    .with_high_watermark(r.high_watermark)
                    .with_last_stable_offset(r.last_stable_offset)
                    .with_log_start_offset(r.log_start_offset);
                match w.preferred_read_replica {
                    Some(replica) => out.push((
                        data.with_preferred_read_replica(BrokerId(replica)),
                        no_records(),
                    )),
                    None => out.push((data, r.records)),
                }
            }
            Err(e) => {
                at_once = true;
                out.push((
                    error_partition(w.partition, log_error_code(&e), read_committed),
                    no_records(),
                ));
            }
        }
    }
    (out, total, at_once)
}
