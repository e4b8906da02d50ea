//! The protocol versions Kafka 4 removed, over a raw socket in their own byte layouts
//! (the protocol guide's): served with `legacy.protocol.enable` (the default), their
//! records readable by a modern client and a modern client's records readable by them;
//! refused exactly as Kafka 4 refuses them with the setting off.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::clients::consume_all;
use crate::support::{closed_by_broker, Broker};

const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
const LIST_OFFSETS: i16 = 2;
const OFFSET_COMMIT: i16 = 8;
const OFFSET_FETCH: i16 = 9;
const CREATE_TOPICS: i16 = 19;
const DELETE_TOPICS: i16 = 20;
const API_VERSIONS: i16 = 18;

struct Conn {
    s: TcpStream,
    correlation: i32,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        Conn { s, correlation: 0 }
    }

    /// Sends `body` under request header v1 and returns the response body (after the
    /// correlation id, which must match).
    fn call(&mut self, api_key: i16, version: i16, body: &[u8]) -> Bytes {
        self.send(api_key, version, body);
        let mut size = [0u8; 4];
        self.s.read_exact(&mut size).expect("response size");
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.s.read_exact(&mut frame).expect("response body");
        let mut frame = Bytes::from(frame);
        assert_eq!(frame.get_i32(), self.correlation, "correlation id");
        frame
    }

    fn send(&mut self, api_key: i16, version: i16, body: &[u8]) {
        self.correlation += 1;
        let mut b = BytesMut::new();
        b.put_i16(api_key);
        b.put_i16(version);
        b.put_i32(self.correlation);
        put_str(&mut b, "legacy-test");
        b.put_slice(body);
        let mut out = (b.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&b);
        self.s.write_all(&out).unwrap();
    }
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn get_str(b: &mut Bytes) -> String {
    let len = b.get_i16();
    String::from_utf8(b.split_to(len as usize).to_vec()).unwrap()
}

/// A message of format `magic` with its offset and size; the CRC-32 by the guide's rule.
fn message(
    offset: i64,
    magic: i8,
    codec: u8,
    ts: i64,
    key: Option<&[u8]>,
    value: &[u8],
) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i8(magic);
    body.put_u8(codec);
    if magic == 1 {
        body.put_i64(ts);
    }
    match key {
        None => body.put_i32(-1),
        Some(k) => {
            body.put_i32(k.len() as i32);
            body.put_slice(k);
        }
    }
    body.put_i32(value.len() as i32);
    body.put_slice(value);
    let mut m = BytesMut::new();
    m.put_i64(offset);
    m.put_i32(body.len() as i32 + 4);
    m.put_u32(crc32fast_hash(&body));
    m.put_slice(&body);
    m.to_vec()
}

/// CRC-32 (IEEE), bit by bit: the tests do not share the broker's implementation.
fn crc32fast_hash(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Produce v0-v2 of one message set to partition 0 of `topic`, acks=1.
fn produce_body(topic: &str, set: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(1);
    b.put_i32(10_000);
    b.put_i32(1);
    put_str(&mut b, topic);
    b.put_i32(1);
    b.put_i32(0);
    b.put_i32(set.len() as i32);
    b.put_slice(set);
    b.to_vec()
}

/// (error, base offset) of the only partition of a Produce v0-v2 answer.
fn produce_answer(mut r: Bytes, version: i16) -> (i16, i64) {
    assert_eq!(r.get_i32(), 1);
    get_str(&mut r);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i32(), 0);
    let out = (r.get_i16(), r.get_i64());
    if version >= 2 {
        r.get_i64(); // log append time
    }
    if version >= 1 {
        r.get_i32(); // throttle
    }
    assert!(r.is_empty(), "nothing after the answer");
    out
}

fn fetch_body(version: i16, topic: &str, offset: i64, max_bytes: i32) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i32(-1);
    b.put_i32(100);
    b.put_i32(1);
    if version >= 3 {
        b.put_i32(max_bytes);
    }
    b.put_i32(1);
    put_str(&mut b, topic);
    b.put_i32(1);
    b.put_i32(0);
    b.put_i64(offset);
    b.put_i32(max_bytes);
    b.to_vec()
}

/// A fetched message: offset, magic, attributes, timestamp (v1), key, value.
#[derive(Debug, PartialEq, Eq)]
struct Fetched {
    offset: i64,
    magic: i8,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
}

/// (error, high watermark, messages, bytes of a trailing partial message).
fn fetch_answer(mut r: Bytes, version: i16) -> (i16, i64, Vec<Fetched>, usize) {
    if version >= 1 {
        r.get_i32();
    }
    assert_eq!(r.get_i32(), 1);
    get_str(&mut r);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i32(), 0);
    let error = r.get_i16();
    let hw = r.get_i64();
    let len = r.get_i32();
    let mut set = r.split_to(len as usize);
    let mut out = Vec::new();
    while set.len() >= 12 {
        let offset = set.get_i64();
        let size = set.get_i32() as usize;
        if set.len() < size {
            break;
        }
        let mut m = set.split_to(size);
        let crc = m.get_u32();
        assert_eq!(crc, crc32fast_hash(&m), "message CRC");
        let magic = m.get_i8();
        let _attributes = m.get_u8();
        let timestamp = (magic == 1).then(|| m.get_i64());
        let klen = m.get_i32();
        let key = (klen >= 0).then(|| m.split_to(klen as usize).to_vec());
        let vlen = m.get_i32();
        let value = m.split_to(vlen as usize).to_vec();
        out.push(Fetched {
            offset,
            magic,
            timestamp,
            key,
            value,
        });
    }
    (error, hw, out, set.len())
}

/// Creates `topic` (one partition) with CreateTopics v0.
fn create_topic_v0(c: &mut Conn, topic: &str) -> i16 {
    let mut b = BytesMut::new();
    b.put_i32(1);
    put_str(&mut b, topic);
    b.put_i32(1);
    b.put_i16(1);
    b.put_i32(0);
    b.put_i32(0);
    b.put_i32(10_000);
    let mut r = c.call(CREATE_TOPICS, 0, &b);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(get_str(&mut r), topic);
    r.get_i16()
}

fn api_min_versions(conn: &mut Conn) -> std::collections::HashMap<i16, (i16, i16)> {
    let mut r = conn.call(API_VERSIONS, 0, &[]);
    assert_eq!(r.get_i16(), 0);
    let n = r.get_i32();
    (0..n)
        .map(|_| (r.get_i16(), (r.get_i16(), r.get_i16())))
        .collect()
}

#[test]
fn old_producers_and_consumers_meet_modern_ones() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["num.partitions=1"]);
    let mut c = Conn::open(&broker.addr);

    let versions = api_min_versions(&mut c);
    for (key, min) in [
        (PRODUCE, 0),
        (FETCH, 0),
        (LIST_OFFSETS, 0),
        (OFFSET_COMMIT, 0),
        (OFFSET_FETCH, 0),
        (CREATE_TOPICS, 0),
        (DELETE_TOPICS, 0),
    ] {
        assert_eq!(versions[&key].0, min, "api {key} advertised from v{min}");
    }

    // CreateTopics v0 (no validate_only), then v1 with an error message.
    let mut b = BytesMut::new();
    b.put_i32(1);
    put_str(&mut b, "legacy");
    b.put_i32(1);
    b.put_i16(1);
    b.put_i32(0);
    b.put_i32(0);
    b.put_i32(10_000);
    let mut r = c.call(CREATE_TOPICS, 0, &b);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(get_str(&mut r), "legacy");
    assert_eq!(r.get_i16(), 0, "created");
    assert!(r.is_empty());
    b.put_u8(0);
    let mut r = c.call(CREATE_TOPICS, 1, &b);
    r.get_i32();
    get_str(&mut r);
    assert_eq!(r.get_i16(), 36, "TOPIC_ALREADY_EXISTS");
    assert!(r.get_i16() > 0, "v1 carries the error message");

    // Produce v0: two v0 messages (no timestamps).
    let set = [
        message(0, 0, 0, 0, Some(b"k0"), b"v0-zero"),
        message(1, 0, 0, 0, None, b"v0-one"),
    ]
    .concat();
    let r = c.call(PRODUCE, 0, &produce_body("legacy", &set));
    assert_eq!(produce_answer(r, 0), (0, 0));

    // Produce v2: a gzip wrapper of two v1 messages (relative inner offsets).
    let inner = [
        message(0, 1, 0, 1_700_000_000_000, Some(b"k2"), b"v1-two"),
        message(1, 1, 0, 1_700_000_000_001, Some(b"k3"), b"v1-three"),
    ]
    .concat();
    let mut gz = BytesMut::new();
    {
        use kafka_protocol::compression::{Compressor, Gzip};
        Gzip::compress(&mut gz, |b: &mut BytesMut| {
            b.put_slice(&inner);
            Ok(())
        })
        .unwrap();
    }
    let wrapper = message(1, 1, 1, 1_700_000_000_001, None, &gz);
    let r = c.call(PRODUCE, 2, &produce_body("legacy", &wrapper));
    assert_eq!(produce_answer(r, 2), (0, 2));

    // A modern producer adds a fifth record with a header, which old formats drop.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
        key: "h",
        value: Some("x"),
    });
    producer
        .send(
            BaseRecord::to("legacy")
                .key("k4")
                .payload("modern-four")
                .timestamp(1_700_000_000_004)
                .headers(headers),
        )
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();

    // A modern consumer reads all five.
    let seen = consume_all(&broker.addr, "legacy", 1, 5);
    let values: Vec<&[u8]> = seen.iter().map(|s| s.value.as_slice()).collect();
    assert_eq!(
        values,
        [
            &b"v0-zero"[..],
            b"v0-one",
            b"v1-two",
            b"v1-three",
            b"modern-four"
        ]
    );
    assert_eq!(seen[2].timestamp, Some(1_700_000_000_000));

    // Fetch v0: message format v0 for all five.
    let r = c.call(FETCH, 0, &fetch_body(0, "legacy", 0, 1 << 20));
    let (error, hw, messages, partial) = fetch_answer(r, 0);
    assert_eq!((error, hw, partial), (0, 5, 0));
    assert_eq!(messages.len(), 5);
    assert!(messages
        .iter()
        .all(|m| m.magic == 0 && m.timestamp.is_none()));
    assert_eq!(messages[0].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(messages[1].key, None);
    assert_eq!(messages[4].value, b"modern-four");

    // Fetch v2 from the middle of the gzip batch: format v1 with timestamps, from offset 3.
    let r = c.call(FETCH, 2, &fetch_body(2, "legacy", 3, 1 << 20));
    let (_, _, messages, _) = fetch_answer(r, 2);
    assert_eq!(
        messages,
        vec![
            Fetched {
                offset: 3,
                magic: 1,
                timestamp: Some(1_700_000_000_001),
                key: Some(b"k3".to_vec()),
                value: b"v1-three".to_vec(),
            },
            Fetched {
                offset: 4,
                magic: 1,
                timestamp: Some(1_700_000_000_004),
                key: Some(b"k4".to_vec()),
                value: b"modern-four".to_vec(),
            },
        ]
    );

    // Sizes: v1 returns only a partial first message when it does not fit; v3 returns
    // it whole (KIP-74).
    let r = c.call(FETCH, 1, &fetch_body(1, "legacy", 0, 20));
    let (_, _, messages, partial) = fetch_answer(r, 1);
    assert!(messages.is_empty());
    assert_eq!(
        partial, 8,
        "20 bytes: the 12-byte offset and size, then 8 of the message"
    );
    let r = c.call(FETCH, 3, &fetch_body(3, "legacy", 0, 20));
    let (_, _, messages, partial) = fetch_answer(r, 3);
    assert_eq!((messages.len(), partial), (1, 0));

    // ListOffsets v0: latest and earliest.
    for (timestamp, expected) in [(-1i64, 5i64), (-2, 0)] {
        let mut b = BytesMut::new();
        b.put_i32(-1);
        b.put_i32(1);
        put_str(&mut b, "legacy");
        b.put_i32(1);
        b.put_i32(0);
        b.put_i64(timestamp);
        b.put_i32(1);
        let mut r = c.call(LIST_OFFSETS, 0, &b);
        r.get_i32();
        get_str(&mut r);
        r.get_i32();
        assert_eq!(r.get_i32(), 0);
        assert_eq!(r.get_i16(), 0);
        assert_eq!(r.get_i32(), 1, "one offset");
        assert_eq!(r.get_i64(), expected);
    }

    // OffsetCommit v0 and v1 (simple consumers: no generation), read back with OffsetFetch v0.
    for (version, offset) in [(0i16, 3i64), (1, 4)] {
        let mut b = BytesMut::new();
        put_str(&mut b, "old-group");
        if version == 1 {
            b.put_i32(-1);
            put_str(&mut b, "");
        }
        b.put_i32(1);
        put_str(&mut b, "legacy");
        b.put_i32(1);
        b.put_i32(0);
        b.put_i64(offset);
        if version == 1 {
            b.put_i64(-1);
        }
        put_str(&mut b, "meta");
        let mut r = c.call(OFFSET_COMMIT, version, &b);
        r.get_i32();
        get_str(&mut r);
        r.get_i32();
        assert_eq!(r.get_i32(), 0);
        assert_eq!(r.get_i16(), 0, "OffsetCommit v{version}");
        assert!(r.is_empty());

        let mut b = BytesMut::new();
        put_str(&mut b, "old-group");
        b.put_i32(1);
        put_str(&mut b, "legacy");
        b.put_i32(1);
        b.put_i32(0);
        let mut r = c.call(OFFSET_FETCH, 0, &b);
        r.get_i32();
        get_str(&mut r);
        r.get_i32();
        assert_eq!(r.get_i32(), 0);
        assert_eq!(r.get_i64(), offset);
        assert_eq!(get_str(&mut r), "meta");
        assert_eq!(r.get_i16(), 0);
    }

    // DeleteTopics v0.
    let mut b = BytesMut::new();
    b.put_i32(1);
    put_str(&mut b, "legacy");
    b.put_i32(10_000);
    let mut r = c.call(DELETE_TOPICS, 0, &b);
    assert_eq!(r.get_i32(), 1);
    assert_eq!(get_str(&mut r), "legacy");
    assert_eq!(r.get_i16(), 0);
    assert!(r.is_empty(), "no throttle time in v0");
}

#[test]
fn a_corrupt_message_set_fails_its_partition_only() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["num.partitions=1"]);
    let mut c = Conn::open(&broker.addr);
    assert_eq!(create_topic_v0(&mut c, "corrupt"), 0);
    let mut bad = message(0, 1, 0, 5, None, b"payload");
    let last = bad.len() - 1;
    bad[last] ^= 0xFF;
    let r = c.call(PRODUCE, 1, &produce_body("corrupt", &bad));
    assert_eq!(produce_answer(r, 1).0, 2, "CORRUPT_MESSAGE");
    // A torn set, and a set claiming a huge message.
    let torn = &message(0, 0, 0, 0, None, b"payload")[..20];
    let r = c.call(PRODUCE, 0, &produce_body("corrupt", torn));
    assert_eq!(produce_answer(r, 0).0, 2);
    let mut huge = message(0, 0, 0, 0, None, b"x");
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    let r = c.call(PRODUCE, 0, &produce_body("corrupt", &huge));
    assert_eq!(produce_answer(r, 0).0, 2);
    // The connection and the partition still work.
    let good = message(0, 1, 0, 5, None, b"payload");
    let r = c.call(PRODUCE, 1, &produce_body("corrupt", &good));
    assert_eq!(produce_answer(r, 1), (0, 0));
}

#[test]
fn with_the_setting_off_the_removed_versions_are_refused_as_kafka_4_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        dir.path(),
        &["num.partitions=1", "legacy.protocol.enable=false"],
    );
    let mut c = Conn::open(&broker.addr);
    let versions = api_min_versions(&mut c);
    assert_eq!(
        versions[&PRODUCE].0, 0,
        "Kafka 4 advertises Produce v0 (KAFKA-18659)"
    );
    assert_eq!(versions[&FETCH].0, 4);
    assert_eq!(versions[&LIST_OFFSETS].0, 1);
    assert_eq!(versions[&OFFSET_COMMIT].0, 2);
    assert_eq!(versions[&OFFSET_FETCH].0, 1);
    assert_eq!(versions[&CREATE_TOPICS].0, 2);
    assert_eq!(versions[&DELETE_TOPICS].0, 1);
    assert_eq!(versions[&OFFSET_FOR_LEADER_EPOCH].0, 2);
    assert_eq!(versions[&DESCRIBE_CONFIGS].0, 1);
    assert_eq!(versions[&DESCRIBE_LOG_DIRS].0, 1);
    for key in [DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS] {
        assert_eq!(versions[&key].0, 1);
    }
    // Produce v2: advertised, and the connection is closed, as Kafka 4.1.1 and 4.2.1 do.
    let set = message(0, 1, 0, 0, None, b"old");
    c.send(PRODUCE, 2, &produce_body("off", &set));
    assert!(
        closed_by_broker(&mut c.s),
        "Produce v2 closes the connection"
    );
    let mut c = Conn::open(&broker.addr);
    // Fetch v0: the connection is closed.
    c.send(FETCH, 0, &fetch_body(0, "off", 0, 1024));
    assert!(closed_by_broker(&mut c.s), "Fetch v0 closes the connection");
}

const OFFSET_FOR_LEADER_EPOCH: i16 = 23;
const DESCRIBE_ACLS: i16 = 29;
const CREATE_ACLS: i16 = 30;
const DELETE_ACLS: i16 = 31;
const DESCRIBE_CONFIGS: i16 = 32;
const DESCRIBE_LOG_DIRS: i16 = 35;

fn get_nullable_str(b: &mut Bytes) -> Option<String> {
    let len = b.get_i16();
    (len >= 0).then(|| String::from_utf8(b.split_to(len as usize).to_vec()).unwrap())
}

/// The match-anything ACL filter of v0 (no pattern type): ANY resource, ANY operation.
fn any_acl_filter(b: &mut BytesMut) {
    b.put_i8(1);
    b.put_i16(-1);
    b.put_i16(-1);
    b.put_i16(-1);
    b.put_i8(1);
    b.put_i8(1);
}

#[test]
fn the_removed_admin_versions_work_too() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        dir.path(),
        &[
            "num.partitions=1",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:ANONYMOUS",
        ],
    );
    let mut c = Conn::open(&broker.addr);
    let versions = api_min_versions(&mut c);
    for key in [
        OFFSET_FOR_LEADER_EPOCH,
        DESCRIBE_ACLS,
        CREATE_ACLS,
        DELETE_ACLS,
        DESCRIBE_CONFIGS,
        DESCRIBE_LOG_DIRS,
    ] {
        assert_eq!(versions[&key].0, 0, "api {key} advertised from v0");
    }
    assert_eq!(create_topic_v0(&mut c, "admin-v0"), 0);
    let r = c.call(
        PRODUCE,
        1,
        &produce_body("admin-v0", &message(0, 1, 0, 7, None, b"x")),
    );
    assert_eq!(produce_answer(r, 1), (0, 0));

    // CreateAcls v0: a LITERAL binding (v0 knows no other kind).
    let mut b = BytesMut::new();
    b.put_i32(1);
    b.put_i8(2); // TOPIC
    put_str(&mut b, "admin-v0");
    put_str(&mut b, "User:bob");
    put_str(&mut b, "*");
    b.put_i8(3); // READ
    b.put_i8(3); // ALLOW
    let mut r = c.call(CREATE_ACLS, 0, &b);
    r.get_i32();
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i16(), 0, "created");
    get_nullable_str(&mut r);
    assert!(r.is_empty());

    // DescribeAcls v0: the binding, without a pattern type.
    let mut b = BytesMut::new();
    any_acl_filter(&mut b);
    let mut r = c.call(DESCRIBE_ACLS, 0, &b);
    r.get_i32();
    assert_eq!(r.get_i16(), 0);
    get_nullable_str(&mut r);
    assert_eq!(r.get_i32(), 1, "one resource");
    assert_eq!(r.get_i8(), 2);
    assert_eq!(get_str(&mut r), "admin-v0");
    assert_eq!(r.get_i32(), 1, "one ACL");
    assert_eq!(get_str(&mut r), "User:bob");
    assert_eq!(get_str(&mut r), "*");
    assert_eq!((r.get_i8(), r.get_i8()), (3, 3));
    assert!(r.is_empty(), "no pattern type in v0");

    // DeleteAcls v0.
    let mut b = BytesMut::new();
    b.put_i32(1);
    any_acl_filter(&mut b);
    let mut r = c.call(DELETE_ACLS, 0, &b);
    r.get_i32();
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i16(), 0);
    get_nullable_str(&mut r);
    assert_eq!(r.get_i32(), 1, "one binding deleted");
    assert_eq!(r.get_i16(), 0);
    get_nullable_str(&mut r);
    assert_eq!(r.get_i8(), 2);
    assert_eq!(get_str(&mut r), "admin-v0");
    assert_eq!(get_str(&mut r), "User:bob");

    // DescribeConfigs v0: is_default instead of a source.
    let mut b = BytesMut::new();
    b.put_i32(1);
    b.put_i8(2);
    put_str(&mut b, "admin-v0");
    b.put_i32(1);
    put_str(&mut b, "cleanup.policy");
    let mut r = c.call(DESCRIBE_CONFIGS, 0, &b);
    r.get_i32();
    assert_eq!(r.get_i32(), 1);
    assert_eq!(r.get_i16(), 0);
    get_nullable_str(&mut r);
    assert_eq!(r.get_i8(), 2);
    assert_eq!(get_str(&mut r), "admin-v0");
    assert_eq!(r.get_i32(), 1);
    assert_eq!(get_str(&mut r), "cleanup.policy");
    assert_eq!(get_nullable_str(&mut r).as_deref(), Some("delete"));
    let (read_only, is_default, sensitive) = (r.get_u8(), r.get_u8(), r.get_u8());
    assert_eq!((read_only, is_default, sensitive), (0, 1, 0));
    assert!(r.is_empty(), "no synonyms in v0");

    // OffsetForLeaderEpoch v0 and v1: epoch 0 ends at the log end.
    for version in [0i16, 1] {
        let mut b = BytesMut::new();
        b.put_i32(1);
        put_str(&mut b, "admin-v0");
        b.put_i32(1);
        b.put_i32(0);
        b.put_i32(0);
        let mut r = c.call(OFFSET_FOR_LEADER_EPOCH, version, &b);
        assert_eq!(r.get_i32(), 1);
        assert_eq!(get_str(&mut r), "admin-v0");
        assert_eq!(r.get_i32(), 1);
        assert_eq!(r.get_i16(), 0);
        assert_eq!(r.get_i32(), 0);
        if version == 1 {
            assert_eq!(r.get_i32(), 0, "leader epoch");
        }
        assert_eq!(r.get_i64(), 1, "end offset");
        assert!(r.is_empty());
    }

    // DescribeLogDirs v0 (v1's layout): the one data directory, holding the partition.
    let mut b = BytesMut::new();
    b.put_i32(-1);
    let mut r = c.call(DESCRIBE_LOG_DIRS, 0, &b);
    r.get_i32();
    assert_eq!(r.get_i32(), 1, "one log dir");
    assert_eq!(r.get_i16(), 0);
    assert!(get_str(&mut r).starts_with(dir.path().to_str().unwrap()));
}
