//! Bad input over a raw socket: huge and negative sizes, truncated frames, unknown API keys,
//! garbage, a hostile array length, unsupported versions and corrupt record batches. Each
//! gets a Kafka error or a closed connection, and the broker keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ProduceResponse;
use kafka_protocol::protocol::{Decodable, Encodable};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

use crate::batches::TestBatch;
use crate::support::{closed_by_broker, Broker};

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A request header v1 (non-flexible) followed by `body`, framed.
fn frame(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(api_key);
    b.put_i16(version);
    b.put_i32(correlation_id);
    b.put_i16(4);
    b.put_slice(b"test");
    b.put_slice(body);
    let mut out = (b.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&b);
    out
}

fn read_response(s: &mut TcpStream) -> Bytes {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).expect("response size");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).expect("response body");
    Bytes::from(body)
}

fn client_still_works(addr: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .unwrap();
    let md = producer
        .client()
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata after bad input");
    assert_eq!(md.brokers().len(), 1);
}

#[test]
fn malformed_frames_close_only_their_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["socket.request.max.bytes=1048576"]);
    // An idle, healthy connection that must survive everything below.
    let mut bystander = connect(&broker.addr);

    // A size far beyond socket.request.max.bytes.
    let mut s = connect(&broker.addr);
    s.write_all(&i32::MAX.to_be_bytes()).unwrap();
    assert!(closed_by_broker(&mut s), "huge size");

    // A negative size.
    let mut s = connect(&broker.addr);
    s.write_all(&(-1i32).to_be_bytes()).unwrap();
    assert!(closed_by_broker(&mut s), "negative size");

    // A frame cut short by the client.
    let mut s = connect(&broker.addr);
    s.write_all(&100i32.to_be_bytes()).unwrap();
    s.write_all(&[0u8; 10]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_by_broker(&mut s), "truncated frame");

    // A frame too short for a request header.
    let mut s = connect(&broker.addr);
    s.write_all(&[0, 0, 0, 3, 0, 18, 0]).unwrap();
    assert!(closed_by_broker(&mut s), "short header");

    // Unknown API key.
    let mut s = connect(&broker.addr);
    s.write_all(&frame(9999, 0, 1, &[])).unwrap();
    assert!(closed_by_broker(&mut s), "unknown api key");

    // A known API this broker does not serve (OffsetCommit).
    let mut s = connect(&broker.addr);
    s.write_all(&frame(8, 2, 1, &[])).unwrap();
    assert!(closed_by_broker(&mut s), "unsupported api");

    // Garbage: an HTTP request.
    let mut s = connect(&broker.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert!(closed_by_broker(&mut s), "http garbage");

    // A Metadata v1 request claiming 2^31-1 topics: must not allocate for them.
    let mut s = connect(&broker.addr);
    s.write_all(&frame(3, 1, 7, &i32::MAX.to_be_bytes()))
        .unwrap();
    assert!(closed_by_broker(&mut s), "hostile array length");

    // Random bytes with a plausible size.
    let mut s = connect(&broker.addr);
    let mut junk = 64i32.to_be_bytes().to_vec();
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..64 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk.push(x as u8);
    }
    s.write_all(&junk).unwrap();
    let _ = closed_by_broker(&mut s);

    // The bystander still gets answers: ApiVersions v0 is header v1 + empty body.
    bystander.write_all(&frame(18, 0, 42, &[])).unwrap();
    let response = read_response(&mut bystander);
    assert_eq!(&response[..4], &42i32.to_be_bytes());
    assert_eq!(
        &response[4..6],
        &0i16.to_be_bytes(),
        "ApiVersions error code"
    );
    client_still_works(&broker.addr);
    broker.stop();
}

#[test]
fn unsupported_api_versions_version_gets_a_v0_answer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let mut s = connect(&broker.addr);
    // ApiVersions v99 (KIP-511): the broker answers in v0 with UNSUPPORTED_VERSION and, as
    // Kafka does, only ApiVersions' own range.
    s.write_all(&frame(18, 99, 5, &[])).unwrap();
    let mut r = read_response(&mut s);
    assert_eq!(&r.split_to(4)[..], &5i32.to_be_bytes());
    assert_eq!(i16::from_be_bytes([r[0], r[1]]), 35, "UNSUPPORTED_VERSION");
    let count = i32::from_be_bytes([r[2], r[3], r[4], r[5]]);
    assert_eq!(count, 1, "only ApiVersions' range is listed");
    assert_eq!(i16::from_be_bytes([r[6], r[7]]), 18, "ApiVersions");
    assert_eq!(i16::from_be_bytes([r[10], r[11]]), 4, "its highest version");
    // The connection stays usable.
    s.write_all(&frame(18, 0, 6, &[])).unwrap();
    let r = read_response(&mut s);
    assert_eq!(&r[..4], &6i32.to_be_bytes());
    broker.stop();
}

/// An uncompressed v2 batch with one record, and a valid CRC.
fn batch(value: &[u8]) -> Vec<u8> {
    TestBatch::new(&[value]).encode()
}

fn produce(s: &mut TcpStream, topic: &str, records: Vec<u8>, correlation_id: i32) -> i16 {
    let request = crate::raw::produce_request(topic, Bytes::from(records));
    let mut body = BytesMut::new();
    request.encode(&mut body, 7).unwrap();
    s.write_all(&frame(0, 7, correlation_id, &body)).unwrap();
    let mut r = read_response(s);
    assert_eq!(&r.split_to(4)[..], &correlation_id.to_be_bytes());
    let response = ProduceResponse::decode(&mut r, 7).unwrap();
    response.responses[0].partition_responses[0].error_code
}

#[test]
fn invalid_record_batches_get_kafka_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["message.max.bytes=2000"]);
    let mut s = connect(&broker.addr);
    // Metadata v1 for "raw" auto-creates it.
    let mut md = BytesMut::new();
    md.put_i32(1);
    md.put_i16(3);
    md.put_slice(b"raw");
    s.write_all(&frame(3, 1, 1, &md)).unwrap();
    read_response(&mut s);

    assert_eq!(produce(&mut s, "raw", batch(b"ok"), 2), 0, "a valid batch");
    let mut bad_crc = batch(b"hello");
    let n = bad_crc.len();
    bad_crc[n - 2] ^= 0xff;
    assert_eq!(produce(&mut s, "raw", bad_crc, 3), 2, "CORRUPT_MESSAGE");
    let mut truncated = batch(b"hello");
    truncated.truncate(40);
    assert_eq!(produce(&mut s, "raw", truncated, 4), 2, "CORRUPT_MESSAGE");
    let mut magic1 = batch(b"hello");
    magic1[16] = 1;
    assert_eq!(produce(&mut s, "raw", magic1, 5), 87, "INVALID_RECORD");
    assert_eq!(produce(&mut s, "raw", batch(&[7u8; 100]), 6), 0);
    let big = batch(&[7u8; 120]);
    let mut two = Vec::new();
    for _ in 0..20 {
        two.extend_from_slice(&big);
    }
    // Since Produce v3 a partition's records are exactly one batch: Kafka refuses more
    // (ProduceRequest.validateRecords) with INVALID_RECORD, as checked against Kafka 4.2.1.
    assert_eq!(
        produce(&mut s, "raw", two, 7),
        87,
        "INVALID_RECORD for twenty batches in one partition"
    );
    // One batch over message.max.bytes (2000): MESSAGE_TOO_LARGE.
    let mut huge_value = vec![1u8; 2100];
    huge_value.truncate(2100);
    let huge = {
        // a two-byte varint length for values over 63 bytes
        let mut record = vec![0u8, 0, 0, 1];
        let mut len = (huge_value.len() as u64) << 1;
        while len >= 0x80 {
            record.push((len as u8) | 0x80);
            len >>= 7;
        }
        record.push(len as u8);
        record.extend_from_slice(&huge_value);
        record.push(0);
        let mut records = Vec::new();
        let mut rlen = (record.len() as u64) << 1;
        while rlen >= 0x80 {
            records.push((rlen as u8) | 0x80);
            rlen >>= 7;
        }
        records.push(rlen as u8);
        records.extend_from_slice(&record);
        let mut b = batch(b"x");
        b.truncate(61);
        b[8..12].copy_from_slice(&((49 + records.len()) as i32).to_be_bytes());
        b.extend_from_slice(&records);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    };
    assert_eq!(produce(&mut s, "raw", huge, 8), 10, "MESSAGE_TOO_LARGE");
    // Unknown topic.
    assert_eq!(
        produce(&mut s, "nope", batch(b"x"), 9),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    broker.stop();
}
