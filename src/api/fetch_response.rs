//! The Fetch response, encoded by hand around record ranges that stay in their segment
//! files ([`FrameParts`]): the protocol crate would need the records copied into its
//! buffer first. Encodes the fields Gregor's Fetch sets, in versions 4-18, byte for byte as
//! the protocol crate does (the tests compare the two); the tagged fields it never sets
//! (diverging epoch, current leader, snapshot id, node endpoints) are left out, as Kafka
//! leaves out tagged fields at their defaults.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::FetchResponse;

use super::frame_parts::FrameParts;
use super::{RequestContext, Response};
use crate::log::Records;

/// Encodes `response` as a complete frame; `records` are the partitions' records in the
/// order of `response.responses[..].partitions[..]`, replacing their `records` fields (never
/// null: Kafka answers a failed partition with empty records too).
pub fn encode(
    ctx: &RequestContext,
    response: &FetchResponse,
    records: impl IntoIterator<Item = Records>,
) -> Response {
    let version = ctx.version;
    let flexible = version >= 12;
    let mut records = records.into_iter();
    let mut frame = FrameParts::new();
    let buf = frame.buf();
    buf.put_i32(ctx.correlation_id);
    if flexible {
        buf.put_u8(0); // response header v1: no tagged fields
    }
    buf.put_i32(response.throttle_time_ms);
    if version >= 7 {
        buf.put_i16(response.error_code);
        buf.put_i32(response.session_id);
    }
    put_array_len(buf, flexible, response.responses.len());
    for topic in &response.responses {
        let buf = frame.buf();
        if version <= 12 {
            put_string(buf, flexible, topic.topic.as_bytes());
        }
        if version >= 13 {
            buf.put_slice(topic.topic_id.as_bytes());
        }
        put_array_len(buf, flexible, topic.partitions.len());
        for p in &topic.partitions {
            let buf = frame.buf();
            buf.put_i32(p.partition_index);
            buf.put_i16(p.error_code);
            buf.put_i64(p.high_watermark);
            buf.put_i64(p.last_stable_offset);
            if version >= 5 {
                buf.put_i64(p.log_start_offset);
            }
            match &p.aborted_transactions {
                None => put_null_array(buf, flexible),
                Some(aborted) => {
                    put_array_len(buf, flexible, aborted.len());
                    for a in aborted {
                        buf.put_i64(a.producer_id.0);
                        buf.put_i64(a.first_offset);
                        if flexible {
                            buf.put_u8(0);
                        }
                    }
                }
            }
            if version >= 11 {
                buf.put_i32(p.preferred_read_replica.0);
            }
            let r = records
                .next()
                .unwrap_or_else(|| Records::Bytes(bytes::Bytes::new()));
            if flexible {
                put_uvarint(buf, r.len() as u64 + 1);
            } else {
                buf.put_i32(r.len() as i32);
            }
            frame.push_records(r);
            if flexible {
                frame.buf().put_u8(0); // partition tagged fields
            }
        }
        if flexible {
            frame.buf().put_u8(0); // topic tagged fields
        }
    }
    if flexible {
        frame.buf().put_u8(0); // response tagged fields
    }
    let (parts, len) = frame.finish();
    Response::Parts(parts, len)
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_array_len(buf: &mut BytesMut, flexible: bool, len: usize) {
    if flexible {
        put_uvarint(buf, len as u64 + 1);
    } else {
        buf.put_i32(len as i32);
    }
}

fn put_null_array(buf: &mut BytesMut, flexible: bool) {
    if flexible {
        buf.put_u8(0);
    } else {
        buf.put_i32(-1);
    }
}

fn put_string(buf: &mut BytesMut, flexible: bool, s: &[u8]) {
    if flexible {
        put_uvarint(buf, s.len() as u64 + 1);
    } else {
        buf.put_i16(s.len() as i16);
    }
    buf.put_slice(s);
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{ApiKey, ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::api::{encode_response, frame_parts};
    use crate::log::FileRecords;
    use crate::storage::{OpenMode, Storage};

    fn ctx(version: i16) -> RequestContext {
        RequestContext {
            api_key: ApiKey::Fetch,
            version,
            correlation_id: 0x0102_0304,
            client_id: None,
            client_host: String::new(),
            listener: 0,
            principal: String::new(),
            connection: 0,
        }
    }

    /// Records of `len` bytes in a file, and the same bytes.
    fn stored(storage: &dyn Storage, name: &str, len: usize) -> (FileRecords, Bytes) {
        let bytes: Bytes = (0..len + 7)
            .map(|i| (i * 31) as u8)
            .collect::<Vec<_>>()
            .into();
        let path = std::path::PathBuf::from(format!("/d/{name}"));
        let file = storage.open(&path, OpenMode::Truncate).unwrap();
        file.write_all_at(&[&bytes], 0).unwrap();
        let records = FileRecords {
            file: Some(file),
            path,
            position: 7,
            len,
            cold_before: 0,
        };
        (records, bytes.slice(7..))
    }

    #[test]
    fn hand_encoded_fetch_responses_match_the_protocol_crate_in_every_version() {
        let sim = crate::storage::simulated::SimulatedStorage::new(3);
        let storage = sim.shared();
        storage.create_dir_all(std::path::Path::new("/d")).unwrap();
        // A long record set makes the flexible length a multi-byte varint.
        let (big, big_bytes) = stored(storage.as_ref(), "a", 300);
        let (small, small_bytes) = stored(storage.as_ref(), "b", 5);
        let (_, empty_bytes) = stored(storage.as_ref(), "c", 0);
        // A failed partition (`None`) keeps the crate's default records: empty, not null.
        let partition =
            |i: i32, records: Option<Bytes>, aborted: Option<Vec<AbortedTransaction>>| {
                let failed = records.is_none();
                PartitionData::default()
                    .with_partition_index(i)
                    .with_error_code(if failed { 3 } else { 0 })
                    .with_high_watermark(1000 + i64::from(i))
                    .with_last_stable_offset(900)
                    .with_log_start_offset(7)
                    .with_aborted_transactions(aborted)
                    .with_records(records.or(PartitionData::default().records))
            };
        let aborted = vec![AbortedTransaction::default()
            .with_producer_id(ProducerId(42))
            .with_first_offset(17)];
        let response = FetchResponse::default()
            .with_session_id(0)
            .with_responses(vec![
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str("topic-one")))
                    .with_topic_id(uuid::Uuid::from_u128(0x1234_5678_9abc_def0))
                    .with_partitions(vec![
                        partition(0, Some(big_bytes), Some(aborted)),
                        partition(1, None, None),
                        partition(2, Some(small_bytes), Some(Vec::new())),
                        partition(3, Some(empty_bytes), None),
                    ]),
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t2")))
                    .with_partitions(Vec::new()),
            ]);
        let mut without_records = response.clone();
        for t in &mut without_records.responses {
            for p in &mut t.partitions {
                p.records = None;
            }
        }
        for version in 4..=18 {
            let Response::Frame(expected) = encode_response(&ctx(version), &response) else {
                panic!("v{version}: the protocol crate did not encode");
            };
            // Records left in their file and records read into memory encode alike.
            let records = [
                Records::File(big.clone()),
                Records::Bytes(Bytes::new()),
                Records::Bytes(small.read_bytes().unwrap()),
                Records::File(FileRecords::empty()),
            ];
            let Response::Parts(parts, len) = encode(&ctx(version), &without_records, records)
            else {
                panic!("v{version}: no parts");
            };
            let ours = frame_parts::into_frame(parts).unwrap();
            assert_eq!(len, ours.len(), "v{version}: stated length");
            assert_eq!(ours, expected, "v{version}");
        }
    }
}
