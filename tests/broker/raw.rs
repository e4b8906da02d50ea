//! A minimal Kafka client for APIs the rdkafka crate does not expose: encodes one request
//! with the protocol crate, sends it over a fresh connection, decodes the response.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

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
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("gregor-tests")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    stream.write_all(&frame).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut buf).expect("response");
    let mut buf = Bytes::from(buf);
    assert_eq!(buf.get_i32(), 7, "correlation id");
    if key.response_header_version(version) >= 1 {
        assert_eq!(buf.get_u8(), 0, "no tagged fields in the response header");
    }
    Resp::decode(&mut buf, version).expect("decode response")
}

fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// An uncompressed v2 batch of `values` from producer `pid`/`epoch` starting at `seq`.
pub fn batch(values: &[&[u8]], pid: i64, epoch: i16, seq: i32) -> Bytes {
    batch_with_attributes(values, pid, epoch, seq, 0)
}

/// Like [`batch`], transactional (attributes bit 4).
pub fn transactional_batch(values: &[&[u8]], pid: i64, epoch: i16, seq: i32) -> Bytes {
    batch_with_attributes(values, pid, epoch, seq, 0x10)
}

fn batch_with_attributes(
    values: &[&[u8]],
    pid: i64,
    epoch: i16,
    seq: i32,
    attributes: i16,
) -> Bytes {
    let mut records = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let mut r = vec![0u8];
        varint(&mut r, 0);
        varint(&mut r, i as i64);
        varint(&mut r, -1);
        varint(&mut r, v.len() as i64);
        r.extend_from_slice(v);
        varint(&mut r, 0);
        varint(&mut records, r.len() as i64);
        records.extend_from_slice(&r);
    }
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((49 + records.len()) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(attributes);
    b.put_i32(values.len() as i32 - 1);
    // Now: producer state expires by batch timestamp (producer.id.expiration.ms).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    b.put_i64(now);
    b.put_i64(now);
    b.put_i64(pid);
    b.put_i16(epoch);
    b.put_i32(seq);
    b.put_i32(values.len() as i32);
    b.put_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}
