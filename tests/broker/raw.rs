//! A minimal Kafka client for APIs the rdkafka crate does not expose: encodes one request
//! with the protocol crate, sends it over a fresh connection, decodes the response.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::batches::TestBatch;

/// One request, framed: size, header (client id `gregor-tests`), body.
pub fn frame<Req: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Req,
) -> BytesMut {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("gregor-tests")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    frame
}

/// A Produce request (acks=all) of `records` to partition 0 of `topic`.
pub fn produce_request(topic: &str, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

pub fn call<Req: Encodable, Resp: Decodable>(
    addr: &str,
    key: ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    exchange(&mut stream, key, version, request)
}

/// An uncompressed v2 batch of `values` from producer `pid`/`epoch` starting at `seq`,
/// stamped now (producer state expires by batch timestamp: producer.id.expiration.ms).
pub fn batch(values: &[&[u8]], pid: i64, epoch: i16, seq: i32) -> Bytes {
    now_batch(values).producer(pid, epoch, seq).bytes()
}

/// Like [`batch`], transactional (attributes bit 4).
pub fn transactional_batch(values: &[&[u8]], pid: i64, epoch: i16, seq: i32) -> Bytes {
    now_batch(values)
        .producer(pid, epoch, seq)
        .transactional()
        .bytes()
}

fn now_batch<'a>(values: &'a [&'a [u8]]) -> TestBatch<'a> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    TestBatch::new(values).timestamp(now).same_timestamp()
}

/// One request and its answer on an open connection.
pub fn exchange<Req: Encodable, Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    stream.write_all(&frame(key, version, 9, request)).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut buf).expect("response");
    let mut buf = Bytes::from(buf);
    assert_eq!(buf.get_i32(), 9, "correlation id");
    if key.response_header_version(version) >= 1 {
        buf.get_u8();
    }
    Resp::decode(&mut buf, version).expect("decode response")
}

/// SaslHandshake and SaslAuthenticate with PLAIN on `stream`.
pub fn authenticate_plain(
    stream: &mut TcpStream,
    user: &str,
    password: &str,
) -> kafka_protocol::messages::SaslAuthenticateResponse {
    use kafka_protocol::messages::{
        SaslAuthenticateRequest, SaslHandshakeRequest, SaslHandshakeResponse,
    };
    let handshake: SaslHandshakeResponse = exchange(
        stream,
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    );
    assert_eq!(handshake.error_code, 0);
    exchange(
        stream,
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default()
            .with_auth_bytes(format!("\0{user}\0{password}").into_bytes().into()),
    )
}
