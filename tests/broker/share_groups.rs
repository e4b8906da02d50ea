//! Share groups (KIP-932) through the wire protocol: membership, acquisition and the
//! acknowledgement rules, share sessions, lock expiry, and the share-partition state
//! surviving kill -9 in the middle of acknowledgements.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatch,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch, FetchPartition, FetchTopic,
};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, ShareAcknowledgeRequest, ShareAcknowledgeResponse,
    ShareFetchRequest, ShareFetchResponse, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::raw::{batch, call, exchange, frame, produce_request};
use crate::support::Broker;

const ACCEPT: i8 = 1;
const RELEASE: i8 = 2;
const REJECT: i8 = 3;

/// Creates `name` with one partition; its topic id.
fn create_topic(addr: &str, name: &str) -> Uuid {
    let r: CreateTopicsResponse = call(
        addr,
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.into())))
                .with_num_partitions(1)
                .with_replication_factor(1)])
            .with_timeout_ms(10_000),
    );
    assert_eq!(r.topics[0].error_code, 0);
    r.topics[0].topic_id
}

/// Produces `count` records to partition 0 of `topic`, 100 to a batch.
fn produce(addr: &str, topic: &str, count: usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    let values: Vec<Vec<u8>> = (0..100).map(|i| format!("v{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    for _ in 0..count / 100 {
        let r: kafka_protocol::messages::ProduceResponse = exchange(
            &mut s,
            ApiKey::Produce,
            9,
            &produce_request(topic, batch(&refs, -1, -1, -1)),
        );
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
}

/// Sets group configs of `group` (resource type GROUP, 32).
fn group_configs(addr: &str, group: &str, configs: &[(&str, &str)]) {
    let r: IncrementalAlterConfigsResponse = call(
        addr,
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(32)
                .with_resource_name(StrBytes::from_string(group.into()))
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string((*k).into()))
                                .with_config_operation(0)
                                .with_value(Some(StrBytes::from_string((*v).into())))
                        })
                        .collect(),
                ),
        ]),
    );
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
}

fn heartbeat(
    addr: &str,
    group: &str,
    member: &str,
    epoch: i32,
    topics: Option<&[&str]>,
) -> ShareGroupHeartbeatResponse {
    call(
        addr,
        ApiKey::ShareGroupHeartbeat,
        1,
        &ShareGroupHeartbeatRequest::default()
            .with_group_id(StrBytes::from_string(group.into()).into())
            .with_member_id(StrBytes::from_string(member.into()))
            .with_member_epoch(epoch)
            .with_subscribed_topic_names(topics.map(|ts| {
                ts.iter()
                    .map(|t| TopicName(StrBytes::from_string((*t).into())))
                    .collect()
            })),
    )
}

/// A share consumer on one connection: its session epoch, and what it acquired last.
struct ShareClient {
    stream: TcpStream,
    group: String,
    member: String,
    topic: Uuid,
    epoch: i32,
}

/// (first, last, delivery count) of an acquired range.
type Range = (i64, i64, i16);

impl ShareClient {
    fn join(addr: &str, group: &str, member: &str, topic: (&str, Uuid)) -> ShareClient {
        let r = heartbeat(addr, group, member, 0, Some(&[topic.0]));
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        ShareClient {
            stream,
            group: group.into(),
            member: member.into(),
            topic: topic.1,
            epoch: 0,
        }
    }

    fn request(&self, acks: &[(i64, i64, i8)], max_wait_ms: i32) -> ShareFetchRequest {
        let partition = FetchPartition::default()
            .with_partition_index(0)
            .with_acknowledgement_batches(
                acks.iter()
                    .map(|(f, l, t)| {
                        AcknowledgementBatch::default()
                            .with_first_offset(*f)
                            .with_last_offset(*l)
                            .with_acknowledge_types(vec![*t])
                    })
                    .collect(),
            );
        ShareFetchRequest::default()
            .with_group_id(Some(StrBytes::from_string(self.group.clone()).into()))
            .with_member_id(Some(StrBytes::from_string(self.member.clone())))
            .with_share_session_epoch(self.epoch)
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_max_records(500)
            .with_batch_size(500)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(self.topic)
                .with_partitions(vec![partition])])
    }

    /// One ShareFetch carrying `acks`; the response.
    fn fetch(&mut self, acks: &[(i64, i64, i8)], max_wait_ms: i32) -> ShareFetchResponse {
        let request = self.request(acks, max_wait_ms);
        let r: ShareFetchResponse = exchange(&mut self.stream, ApiKey::ShareFetch, 1, &request);
        if r.error_code == 0 {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
        r
    }

    fn acknowledge(&mut self, acks: &[(i64, i64, i8)]) -> ShareAcknowledgeResponse {
        let request = ShareAcknowledgeRequest::default()
            .with_group_id(Some(StrBytes::from_string(self.group.clone()).into()))
            .with_member_id(Some(StrBytes::from_string(self.member.clone())))
            .with_share_session_epoch(self.epoch)
            .with_topics(vec![AcknowledgeTopic::default()
                .with_topic_id(self.topic)
                .with_partitions(vec![AcknowledgePartition::default()
                    .with_partition_index(0)
                    .with_acknowledgement_batches(
                        acks.iter()
                            .map(|(f, l, t)| {
                                AckBatch::default()
                                    .with_first_offset(*f)
                                    .with_last_offset(*l)
                                    .with_acknowledge_types(vec![*t])
                            })
                            .collect(),
                    )])]);
        let r: ShareAcknowledgeResponse =
            exchange(&mut self.stream, ApiKey::ShareAcknowledge, 1, &request);
        if r.error_code == 0 && self.epoch > 0 {
            self.epoch += 1;
        }
        r
    }
}

/// The acquired ranges of a response's only partition, and its acknowledgement error.
fn acquired(r: &ShareFetchResponse) -> (Vec<Range>, i16) {
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let Some(p) = r.responses.first().and_then(|t| t.partitions.first()) else {
        return (Vec::new(), 0);
    };
    assert_eq!(p.error_code, 0, "{:?}", p.error_message);
    (
        p.acquired_records
            .iter()
            .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
            .collect(),
        p.acknowledge_error_code,
    )
}

fn offsets(ranges: &[Range]) -> BTreeSet<i64> {
    ranges.iter().flat_map(|(f, l, _)| *f..=*l).collect()
}

#[test]
fn share_group_members_share_records_and_the_acknowledgement_rules_hold() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        dir.path(),
        &[
            "group.share.min.record.lock.duration.ms=1000",
            "group.share.delivery.count.limit=2",
        ],
    );
    let addr = broker.addr.as_str();
    let id = create_topic(addr, "shared");
    produce(addr, "shared", 100);
    // Validation and membership errors, as Kafka answers them.
    let r = heartbeat(addr, "g", "", 0, Some(&["shared"]));
    assert_eq!(r.error_code, 42, "empty member id: INVALID_REQUEST");
    let r = heartbeat(addr, "g", "m1", 0, None);
    assert_eq!(
        r.error_code, 42,
        "no subscription when joining: INVALID_REQUEST"
    );
    let r = heartbeat(addr, "g", "m1", 1, Some(&["shared"]));
    assert_eq!(
        r.error_code, 69,
        "epoch 1 for a group that does not exist: GROUP_ID_NOT_FOUND"
    );
    // The default start is the end (latest): nothing to fetch for a new group.
    group_configs(
        addr,
        "g",
        &[
            ("share.auto.offset.reset", "earliest"),
            // Long enough for the steps before the expiry below on a loaded machine (with
            // 1 s, a's lock could run out while b still expects to see nothing).
            ("share.record.lock.duration.ms", "5000"),
        ],
    );
    let mut a = ShareClient::join(addr, "g", "member-a", ("shared", id));
    let r = heartbeat(addr, "g", "member-a", 5, None);
    assert_eq!(
        r.error_code, 110,
        "an epoch from the future: FENCED_MEMBER_EPOCH"
    );
    let r = heartbeat(addr, "g", "member-x", 3, None);
    assert_eq!(r.error_code, 25, "an unknown member: UNKNOWN_MEMBER_ID");
    let mut b = ShareClient::join(addr, "g", "member-b", ("shared", id));

    // Sessions: acknowledgements cannot open one; a wrong epoch is refused.
    assert_eq!(
        a.fetch(&[(0, 0, ACCEPT)], 0).error_code,
        42,
        "acks at epoch 0"
    );
    let (got_a, _) = acquired(&a.fetch(&[], 5_000));
    assert_eq!(
        offsets(&got_a),
        (0..100).collect(),
        "one batch, all of it to a"
    );
    assert!(got_a.iter().all(|r| r.2 == 1), "first delivery");
    let saved = a.epoch;
    a.epoch = 7;
    assert_eq!(
        a.fetch(&[], 0).error_code,
        123,
        "INVALID_SHARE_SESSION_EPOCH"
    );
    a.epoch = saved;
    // b's session sees nothing: everything is a's.
    let (got_b, _) = acquired(&b.fetch(&[], 200));
    assert!(got_b.is_empty());
    // b may not settle a's records: INVALID_RECORD_STATE, all or nothing.
    let r = b.acknowledge(&[(0, 9, ACCEPT)]);
    assert_eq!(r.responses[0].partitions[0].error_code, 121);
    // a accepts 0-9, rejects 10-19, releases 20-29; the rest waits for its lock.
    let r = a.acknowledge(&[(0, 9, ACCEPT), (10, 19, REJECT), (20, 29, RELEASE)]);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    // Released records go to whoever fetches next, at delivery count 2.
    let (got_b, _) = acquired(&b.fetch(&[], 5_000));
    assert_eq!(got_b, vec![(20, 29, 2)]);
    // Released again at the limit (2): archived, never delivered again.
    let (_, ack_error) = acquired(&b.fetch(&[(20, 29, RELEASE)], 0));
    assert_eq!(ack_error, 0);
    // a's lock on 30-99 expires (5 s): they come back at delivery count 2.
    let (got_b, _) = acquired(&b.fetch(&[], 15_000));
    assert_eq!(got_b, vec![(30, 99, 2)]);
    // a's late acknowledgement is refused: the records are b's now.
    let r = a.acknowledge(&[(30, 39, ACCEPT)]);
    assert_eq!(r.responses[0].partitions[0].error_code, 121);
    // b closes its session (epoch -1) without settling: its records are released, and at
    // the limit archived. Nothing is left.
    b.epoch = -1;
    let r = b.fetch(&[], 0);
    assert_eq!(r.error_code, 0);
    b.epoch = 0;
    let (left, _) = acquired(&b.fetch(&[], 500));
    assert!(left.is_empty(), "{left:?}");
    // A connection that closes releases its member's records: 100 more, a takes them and
    // drops its connection; b gets them.
    produce(addr, "shared", 100);
    let (got_a, _) = acquired(&a.fetch(&[], 5_000));
    assert_eq!(offsets(&got_a), (100..200).collect());
    drop(a);
    // Well within a's 5 s lock: only the closed connection can have released them.
    let (got_b, _) = acquired(&b.fetch(&[], 2_000));
    assert_eq!(got_b, vec![(100, 199, 2)]);
}

/// kill -9 while acknowledgements are in flight, three times: no record whose
/// acknowledgement was answered is delivered again, and every record is acknowledged in the
/// end (those whose acknowledgement was cut off by a kill either come back or were
/// acknowledged).
#[test]
fn share_group_state_survives_kill_9_during_acknowledgements() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let total = 3000;
    let id = create_topic(&broker.addr, "work");
    produce(&broker.addr, "work", total);
    group_configs(
        &broker.addr,
        "workers",
        &[("share.auto.offset.reset", "earliest")],
    );
    let mut confirmed: BTreeSet<i64> = BTreeSet::new();
    let mut in_doubt: BTreeSet<i64> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for rounds in 1..=4 {
        let mut c = ShareClient::join(&broker.addr, "workers", "worker", ("work", id));
        let mut pending: Vec<(i64, i64, i8)> = Vec::new();
        // Kill at a different point each round (the last round runs to the end).
        let kill_at = [700, 1600, 2300].get(rounds - 1).copied();
        while Instant::now() < deadline {
            if let Some(at) = kill_at {
                if confirmed.len() >= at && !pending.is_empty() {
                    // The acknowledgement is on its way when the broker dies.
                    let request = c.request(&pending, 0);
                    c.stream
                        .write_all(&frame(ApiKey::ShareFetch, 1, 9, &request))
                        .unwrap();
                    broker = broker.restart_after(Broker::kill9, &[]);
                    in_doubt.extend(pending.iter().flat_map(|(f, l, _)| *f..=*l));
                    break;
                }
            }
            let (got, ack_error) = acquired(&c.fetch(&pending, 1_000));
            assert_eq!(ack_error, 0, "acknowledgement of {pending:?}");
            confirmed.extend(pending.iter().flat_map(|(f, l, _)| *f..=*l));
            let delivered = offsets(&got);
            let again: Vec<i64> = delivered.intersection(&confirmed).copied().collect();
            assert!(
                again.is_empty(),
                "acknowledged records delivered again: {again:?}"
            );
            // An acknowledgement cut off by a kill did not happen, after all.
            in_doubt.retain(|o| !delivered.contains(o));
            pending = got.iter().map(|(f, l, _)| (*f, *l, ACCEPT)).collect();
            if got.is_empty() && confirmed.len() + in_doubt.len() >= total {
                break;
            }
        }
    }
    let settled: BTreeSet<i64> = confirmed.union(&in_doubt).copied().collect();
    assert_eq!(
        settled,
        (0..total as i64).collect(),
        "three kills, then a round to the end"
    );
}

/// A v2 request: the v1 encoding of `request` with `extra` spliced in after the group and
/// member ids and `fixed` bytes (the protocol crate has only Kafka 4.1's v1 schemas).
fn v2_frame<Req: kafka_protocol::protocol::Encodable>(
    key: ApiKey,
    request: &Req,
    fixed: usize,
    extra: &[u8],
) -> Vec<u8> {
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::Encodable;
    let mut body = bytes::BytesMut::new();
    request.encode(&mut body, 1).unwrap();
    // Group id and member id: compact strings of one-byte lengths in these tests.
    let mut at = 0;
    for _ in 0..2 {
        at += body[at].saturating_sub(1) as usize + 1;
    }
    at += fixed;
    let mut spliced = body[..at].to_vec();
    spliced.extend_from_slice(extra);
    spliced.extend_from_slice(&body[at..]);
    let mut header = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(2)
        .with_correlation_id(9)
        .encode(&mut header, key.request_header_version(2))
        .unwrap();
    let mut frame = ((header.len() + spliced.len()) as i32)
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(&header);
    frame.extend_from_slice(&spliced);
    frame
}

/// Reads one response frame's body after its header (flexible: correlation id, tags).
fn read_body(stream: &mut TcpStream) -> bytes::Bytes {
    use std::io::Read;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut buf).unwrap();
    bytes::Bytes::from(buf).slice(5..)
}

/// Kafka 4.2's ShareFetch and ShareAcknowledge v2: the record_limit acquire mode takes at
/// most max_records (splitting a batch), RENEW needs IsRenewAck, and ShareAcknowledge v2
/// answers the lock duration.
#[test]
fn share_fetch_and_acknowledge_v2_limit_records_and_renew_locks() {
    use kafka_protocol::protocol::Decodable;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let addr = broker.addr.as_str();
    let id = create_topic(addr, "v2");
    produce(addr, "v2", 100);
    group_configs(addr, "g2", &[("share.auto.offset.reset", "earliest")]);
    let mut c = ShareClient::join(addr, "g2", "m", ("v2", id));
    // record_limit (1), no renew: at most 4 of the batch's 100 records.
    let request = c.request(&[], 5_000).with_max_records(4);
    c.stream
        .write_all(&v2_frame(ApiKey::ShareFetch, &request, 24, &[1, 0]))
        .unwrap();
    let r = ShareFetchResponse::decode(&mut read_body(&mut c.stream), 1).unwrap();
    c.epoch += 1;
    assert_eq!(acquired(&r).0, vec![(0, 3, 1)]);
    // RENEW is refused without IsRenewAck (v1 knows no RENEW: INVALID_REQUEST).
    let r = c.acknowledge(&[(0, 3, 4)]);
    assert_eq!(r.responses[0].partitions[0].error_code, 42);
    // With IsRenewAck (v2): accepted, and the answer carries the lock duration (30 s).
    let request = ShareAcknowledgeRequest::default()
        .with_group_id(Some(StrBytes::from_static_str("g2").into()))
        .with_member_id(Some(StrBytes::from_static_str("m")))
        .with_share_session_epoch(c.epoch)
        .with_topics(vec![AcknowledgeTopic::default()
            .with_topic_id(id)
            .with_partitions(vec![AcknowledgePartition::default()
                .with_partition_index(0)
                .with_acknowledgement_batches(vec![AckBatch::default()
                    .with_first_offset(0)
                    .with_last_offset(3)
                    .with_acknowledge_types(vec![4])])])]);
    c.stream
        .write_all(&v2_frame(ApiKey::ShareAcknowledge, &request, 4, &[1]))
        .unwrap();
    let body = read_body(&mut c.stream);
    c.epoch += 1;
    // v2: throttle, error code, error message (null), then AcquisitionLockTimeoutMs.
    assert_eq!(&body[..7], &[0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        i32::from_be_bytes([body[7], body[8], body[9], body[10]]),
        30_000
    );
    let mut as_v1 = bytes::BytesMut::from(&body[..7]);
    as_v1.extend_from_slice(&body[11..]);
    let r = ShareAcknowledgeResponse::decode(&mut as_v1.freeze(), 1).unwrap();
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    // A renewing ShareFetch must not fetch: its wait and sizes must be 0.
    let request = c.request(&[(0, 3, 4)], 5_000);
    c.stream
        .write_all(&v2_frame(ApiKey::ShareFetch, &request, 24, &[0, 1]))
        .unwrap();
    let r = ShareFetchResponse::decode(&mut read_body(&mut c.stream), 1).unwrap();
    assert_eq!(r.error_code, 42);
    // Settled: the next record_limit fetch goes on from 4.
    let request = c.request(&[(0, 3, ACCEPT)], 5_000).with_max_records(4);
    c.stream
        .write_all(&v2_frame(ApiKey::ShareFetch, &request, 24, &[1, 0]))
        .unwrap();
    let r = ShareFetchResponse::decode(&mut read_body(&mut c.stream), 1).unwrap();
    assert_eq!(acquired(&r), (vec![(4, 7, 1)], 0));
}
