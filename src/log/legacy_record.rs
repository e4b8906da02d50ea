//! Kafka's message formats v0 and v1 (the MessageSet of Kafka before 0.11; Kafka's
//! `LegacyRecord`), for the protocol versions Kafka 4 removed (`legacy.protocol.enable`).
//! Produce v0-v2 carry them: [`parse_message_set`] then [`up_convert`] turn a message set
//! into one v2 batch, so the segment store keeps one format. Fetch v0-v3 want them back:
//! [`down_convert`] turns stored v2 batches into messages of the magic the request
//! implies. Neither runs on the Produce v3+ or Fetch v4+ path.
//!
//! ```text
//! message set:  (offset i64 | message_size i32 | message)*
//! message v0:   crc u32 | magic i8 = 0 | attributes i8 | key bytes | value bytes
//! message v1:   crc u32 | magic i8 = 1 | attributes i8 | timestamp i64 | key bytes | value bytes
//! ```
//!
//! `bytes` is an i32 length (-1: null) then the bytes; the CRC is CRC-32 (IEEE, not the
//! v2 format's CRC-32C) of everything after it. Attributes bits 0-2 are the codec of a
//! wrapper message, whose value is a compressed message set of inner messages (in v1 the
//! inner offsets are relative and the wrapper carries the last inner offset); bit 3 is
//! LogAppendTime (v1).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions};

use super::record_batch::BatchHeader;
use super::record_view::BatchRecords;
use super::records::{plain_record, varint};

/// Offset and size before every message of a set.
const LOG_OVERHEAD: usize = 12;
/// crc, magic, attributes, key length, value length: the smallest v0 message.
const MIN_MESSAGE_V0: usize = 4 + 1 + 1 + 4 + 4;
/// Attributes bit 3 of a v1 message: its timestamp is the broker's append time.
const LOG_APPEND_TIME_BIT: u8 = 1 << 3;
/// A "timestamp" for v0 messages, which have none (Kafka's `RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;

/// Why a message set was refused, as Kafka 3.9 answered it: a message that does not parse,
/// fails its CRC or does not decompress is CORRUPT_MESSAGE; a v1 timestamp below -1 is
/// INVALID_TIMESTAMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyRecordError {
    Corrupt(String),
    InvalidTimestamp(i64),
}

impl std::fmt::Display for LegacyRecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LegacyRecordError::Corrupt(what) => f.write_str(what),
            LegacyRecordError::InvalidTimestamp(t) => write!(f, "invalid message timestamp {t}"),
        }
    }
}

fn corrupt(what: impl Into<String>) -> LegacyRecordError {
    LegacyRecordError::Corrupt(what.into())
}

/// One record of a message set, after any wrapper is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRecord {
    /// [`NO_TIMESTAMP`] for v0.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

/// The records of a produced message set: their magic, the codec their wrapper used (0:
/// none) and the records in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSet {
    pub magic: i8,
    pub codec: i16,
    pub records: Vec<LegacyRecord>,
}

/// A message's fields, read and CRC-checked.
struct Message {
    magic: i8,
    attributes: u8,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

/// Reads a produced message set, opening compressed wrappers (gzip, snappy in raw or
/// xerial framing, lz4) and checking every CRC. Every message must have the same magic,
/// and a wrapper may not hold another wrapper. The records of all wrappers together may
/// not decompress to more than `max_decompressed` bytes (the broker passes
/// `socket.request.max.bytes`: no more than an uncompressed request could carry), so a
/// small compressed request cannot make the broker hold gigabytes.
pub fn parse_message_set(
    set: &Bytes,
    max_decompressed: usize,
) -> Result<MessageSet, LegacyRecordError> {
    let mut budget = max_decompressed;
    let mut out = MessageSet {
        magic: -1,
        codec: 0,
        records: Vec::new(),
    };
    for message in messages(set)? {
        let message = message?;
        if out.magic == -1 {
            out.magic = message.magic;
        } else if out.magic != message.magic {
            return Err(corrupt("messages of different magic in one message set"));
        }
        let codec = i16::from(message.attributes & 0x07);
        if codec == 0 {
            out.records.push(LegacyRecord {
                timestamp: message.timestamp,
                key: message.key,
                value: message.value,
            });
            continue;
        }
        if out.codec != 0 && out.codec != codec {
            return Err(corrupt(
                "wrapper messages of different codecs in one message set",
            ));
        }
        out.codec = codec;
        let value = message
            .value
            .ok_or_else(|| corrupt("a compressed wrapper message has no value"))?;
        let inner = decompress(codec, value, budget)?;
        budget -= inner.len();
        let wrapper_log_append = message.attributes & LOG_APPEND_TIME_BIT != 0;
        for m in messages(&inner)? {
            let m = m?;
            if m.magic != message.magic || m.attributes & 0x07 != 0 {
                return Err(corrupt(
                    "a wrapper message holds a wrapper or another magic",
                ));
            }
            out.records.push(LegacyRecord {
                timestamp: if wrapper_log_append {
                    message.timestamp
                } else {
                    m.timestamp
                },
                key: m.key,
                value: m.value,
            });
        }
    }
    if out.records.is_empty() {
        return Err(corrupt("the message set holds no message"));
    }
    Ok(out)
}

/// The messages of a set, each parsed and checked; a set that ends inside a message is
/// refused (a producer never sends a partial message).
fn messages(
    set: &Bytes,
) -> Result<impl Iterator<Item = Result<Message, LegacyRecordError>> + '_, LegacyRecordError> {
    let mut ranges = Vec::new();
    let mut at = 0usize;
    while at < set.len() {
        let head = set
            .get(at..at + LOG_OVERHEAD)
            .ok_or_else(|| corrupt("a message set ends inside a message header"))?;
        let size = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s >= MIN_MESSAGE_V0)
            .ok_or_else(|| corrupt(format!("a message of size {size}")))?;
        let start = at + LOG_OVERHEAD;
        if set.len() - start < size {
            return Err(corrupt("a message set ends inside a message"));
        }
        ranges.push(start..start + size);
        at = start + size;
    }
    Ok(ranges.into_iter().map(|r| parse_message(&set.slice(r))))
}

fn parse_message(m: &Bytes) -> Result<Message, LegacyRecordError> {
    let crc = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
    if crc32fast::hash(&m[4..]) != crc {
        return Err(corrupt("a message fails its CRC"));
    }
    let magic = m[4] as i8;
    let attributes = m[5];
    let mut at = 6;
    let timestamp = match magic {
        0 => NO_TIMESTAMP,
        1 => {
            let t = m
                .get(at..at + 8)
                .ok_or_else(|| corrupt("a v1 message ends inside its timestamp"))?;
            at += 8;
            let t = i64::from_be_bytes(t.try_into().unwrap_or_default());
            if t < NO_TIMESTAMP {
                return Err(LegacyRecordError::InvalidTimestamp(t));
            }
            t
        }
        _ => {
            return Err(corrupt(format!(
                "a message of magic {magic} in a message set"
            )))
        }
    };
    let key = length_prefixed(m, &mut at)?;
    let value = length_prefixed(m, &mut at)?;
    if at != m.len() {
        return Err(corrupt("a message has bytes after its value"));
    }
    Ok(Message {
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

/// An i32-length-prefixed field (-1: null) at `*at`.
fn length_prefixed(m: &Bytes, at: &mut usize) -> Result<Option<Bytes>, LegacyRecordError> {
    let len = m
        .get(*at..*at + 4)
        .ok_or_else(|| corrupt("a message ends inside a length"))?;
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    *at += 4;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| corrupt(format!("a field of length {len}")))?;
    if m.len() - *at < len {
        return Err(corrupt("a message ends inside a key or value"));
    }
    let field = m.slice(*at..*at + len);
    *at += len;
    Ok(Some(field))
}

/// A wrapper's value decompressed, refused once it passes `limit` bytes (lz4 and zstd are
/// not wrapper codecs of the old formats: zstd came with v2 batches).
fn decompress(codec: i16, value: Bytes, limit: usize) -> Result<Bytes, LegacyRecordError> {
    if !(1..=3).contains(&codec) {
        return Err(corrupt(format!("unknown compression codec {codec}")));
    }
    super::compression::decompress(codec, &value, limit).map_err(|e| match e {
        super::compression::DecompressError::TooLarge { limit } => corrupt(format!(
            "the wrapper messages decompress to more than {limit} bytes (socket.request.max.bytes)"
        )),
        super::compression::DecompressError::Invalid(why) => {
            corrupt(format!("the wrapper message does not decompress: {why}"))
        }
    })
}

/// One v2 batch (base offset 0, no producer id) holding `set`'s records in order,
/// compressed with the codec its wrapper used, as Kafka 3.9 up-converted with
/// `compression.type=producer`. v0 records keep [`NO_TIMESTAMP`]; a topic with
/// LogAppendTime stamps the batch at append, as for any batch.
pub fn up_convert(set: &MessageSet) -> Result<Vec<u8>, LegacyRecordError> {
    // A v2 record stores its timestamp as a delta from the batch's smallest one.
    let timestamps = set.records.iter().map(|r| r.timestamp);
    let (min, max) = (timestamps.clone().min(), timestamps.max());
    if let (Some(min), Some(max)) = (min, max) {
        if max.checked_sub(min).is_none() {
            return Err(corrupt(
                "the message timestamps are too far apart for one batch",
            ));
        }
    }
    let records: Vec<Record> = set
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (key, value) = (r.key.clone(), r.value.clone());
            plain_record(i as i64, r.timestamp, key, value, IndexMap::new())
        })
        .collect();
    let compression = match set.codec {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        _ => Compression::Lz4,
    };
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options)
        .map_err(|e| corrupt(format!("the records do not encode as a v2 batch: {e}")))?;
    Ok(out.to_vec())
}

/// Stored v2 `batches` (whole batches, as a read returns them) as uncompressed messages
/// of `magic` 0 or 1, each with its offset: headers are dropped (the old formats have
/// none), control batches skipped, a v1 message of a LogAppendTime batch carries the
/// batch's append time and attribute. Records before `first_offset` (a fetch from the
/// middle of a batch) are left out, as Kafka's `RecordsUtil.downConvert` does. Batches
/// that do not decode end the conversion.
pub fn down_convert(batches: &[u8], magic: i8, first_offset: i64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(header) = BatchHeader::parse(&batches[at..]) {
        let Some(batch) = batches.get(at..at + header.size()) else {
            break;
        };
        at += header.size();
        if header.is_control() {
            continue;
        }
        let Some(view) = BatchRecords::read(batch) else {
            break;
        };
        let log_append = header.is_log_append_time();
        for r in view.records.iter().filter(|r| r.offset >= first_offset) {
            let mut rest = &view.section[r.rest.clone()];
            let key = take_field(&mut rest);
            let value = take_field(&mut rest);
            let (Some(key), Some(value)) = (key, value) else {
                break;
            };
            let timestamp = if log_append {
                header.max_timestamp
            } else {
                r.timestamp
            };
            out.push(encode_message(
                r.offset,
                magic,
                if log_append && magic == 1 {
                    LOG_APPEND_TIME_BIT
                } else {
                    0
                },
                timestamp,
                key,
                value,
            ));
        }
    }
    out
}

/// A v2 record's varint-length key or value at the front of `rest`: `Some(None)` for null.
#[allow(clippy::option_option)]
fn take_field<'a>(rest: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let len = varint(rest)?;
    if len < 0 {
        return Some(None);
    }
    let len = usize::try_from(len).ok()?;
    let field = rest.get(..len)?;
    *rest = &rest[len..];
    Some(Some(field))
}

/// One message with its offset and size, as a message set holds it.
pub fn encode_message(
    offset: i64,
    magic: i8,
    attributes: u8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Bytes {
    let field_len = |f: Option<&[u8]>| 4 + f.map_or(0, <[u8]>::len);
    let size = 4 + 1 + 1 + if magic >= 1 { 8 } else { 0 } + field_len(key) + field_len(value);
    let mut m = BytesMut::with_capacity(LOG_OVERHEAD + size);
    m.put_i64(offset);
    m.put_i32(size as i32);
    m.put_u32(0); // the CRC, once the rest is written
    m.put_i8(magic);
    m.put_u8(attributes);
    if magic >= 1 {
        m.put_i64(timestamp);
    }
    for field in [key, value] {
        match field {
            None => m.put_i32(-1),
            Some(f) => {
                m.put_i32(f.len() as i32);
                m.put_slice(f);
            }
        }
    }
    let crc = crc32fast::hash(&m[LOG_OVERHEAD + 4..]);
    m[LOG_OVERHEAD..LOG_OVERHEAD + 4].copy_from_slice(&crc.to_be_bytes());
    m.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record_batch::check_batch;

    const LIMIT: usize = 1 << 20;

    /// A v0 message written out byte by byte from the protocol guide's layout: offset 0,
    /// key "k", value "hello". Its CRC-32 was computed apart, with Python's zlib.crc32.
    fn v0_fixture() -> Vec<u8> {
        #[rustfmt::skip]
        let bytes = vec![
            0, 0, 0, 0, 0, 0, 0, 0,      // offset 0
            0, 0, 0, 20,                 // message size
            0xa4, 0xcd, 0xab, 0x3a,      // crc
            0,                           // magic 0
            0,                           // attributes
            0, 0, 0, 1, b'k',            // key
            0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o', // value
        ];
        bytes
    }

    /// A v1 message at offset 3, timestamp 1000, key "a", value "one" (CRC from zlib.crc32).
    #[rustfmt::skip]
    const V1_FIXTURE: [u8; 38] = [
        0, 0, 0, 0, 0, 0, 0, 3,          // offset 3
        0, 0, 0, 26,                     // message size
        0xab, 0x58, 0x98, 0xb4,          // crc
        1,                               // magic 1
        0,                               // attributes: CreateTime, no codec
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,    // timestamp 1000
        0, 0, 0, 1, b'a',                // key
        0, 0, 0, 3, b'o', b'n', b'e',    // value
    ];

    #[test]
    fn a_v1_message_from_the_protocol_guide_is_read_and_written_back() {
        let parsed = parse_message_set(&Bytes::from_static(&V1_FIXTURE), LIMIT).unwrap();
        assert_eq!((parsed.magic, parsed.codec), (1, 0));
        assert_eq!(parsed.records[0].timestamp, 1000);
        let again = encode_message(3, 1, 0, 1000, Some(b"a"), Some(b"one"));
        assert_eq!(&again[..], &V1_FIXTURE[..]);
    }

    #[test]
    fn a_v0_message_set_from_the_protocol_guide_is_read() {
        let set = Bytes::from(v0_fixture());
        let parsed = parse_message_set(&set, LIMIT).unwrap();
        assert_eq!(parsed.magic, 0);
        assert_eq!(parsed.codec, 0);
        assert_eq!(
            parsed.records,
            vec![LegacyRecord {
                timestamp: NO_TIMESTAMP,
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"hello")),
            }]
        );
        // Writing it back gives the same bytes.
        let again = encode_message(0, 0, 0, NO_TIMESTAMP, Some(b"k"), Some(b"hello"));
        assert_eq!(&again[..], &v0_fixture()[..]);
    }

    #[test]
    fn a_bad_crc_or_a_torn_message_is_corrupt() {
        let mut bad = v0_fixture();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(parse_message_set(&Bytes::from(bad), LIMIT).is_err());
        let torn = v0_fixture()[..25].to_vec();
        assert!(parse_message_set(&Bytes::from(torn), LIMIT).is_err());
        assert!(parse_message_set(&Bytes::new(), LIMIT).is_err());
        // A size below the smallest message, and a negative one.
        let mut small = v0_fixture();
        small[8..12].copy_from_slice(&3i32.to_be_bytes());
        assert!(parse_message_set(&Bytes::from(small), LIMIT).is_err());
        let mut negative = v0_fixture();
        negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(parse_message_set(&Bytes::from(negative), LIMIT).is_err());
    }

    fn v1_message(offset: i64, ts: i64, key: Option<&[u8]>, value: &[u8]) -> Bytes {
        encode_message(offset, 1, 0, ts, key, Some(value))
    }

    /// A v1 gzip wrapper: inner offsets relative (0, 1), the wrapper at the last one.
    fn gzip_wrapper() -> Bytes {
        use kafka_protocol::compression::{Compressor, Gzip};
        let inner = [
            v1_message(0, 1_000, Some(b"a"), b"one"),
            v1_message(1, 2_000, None, b"two"),
        ]
        .concat();
        let mut compressed = BytesMut::new();
        Gzip::compress(&mut compressed, |b: &mut BytesMut| {
            b.put_slice(&inner);
            Ok(())
        })
        .unwrap();
        encode_message(1, 1, 1, 2_000, None, Some(&compressed))
    }

    #[test]
    fn a_compressed_v1_wrapper_is_opened_and_up_converted() {
        let parsed = parse_message_set(&gzip_wrapper(), LIMIT).unwrap();
        assert_eq!((parsed.magic, parsed.codec), (1, 1));
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.records[1].timestamp, 2_000);
        assert_eq!(parsed.records[1].key, None);
        let batch = up_convert(&parsed).unwrap();
        let header = check_batch(&batch).unwrap();
        assert_eq!(header.compression(), 1);
        assert_eq!(header.records_count, 2);
        assert_eq!(header.producer_id, -1);
        assert_eq!(header.base_sequence, -1);
        assert_eq!(header.max_timestamp, 2_000);
        // And back down: the same records as v1 and as v0 messages.
        let v1 = down_convert(&batch, 1, 0);
        assert_eq!(
            v1.concat(),
            [
                v1_message(0, 1_000, Some(b"a"), b"one"),
                v1_message(1, 2_000, None, b"two"),
            ]
            .concat()
        );
        let v0 = down_convert(&batch, 0, 0);
        assert_eq!(
            v0[0],
            encode_message(0, 0, 0, NO_TIMESTAMP, Some(b"a"), Some(b"one"))
        );
        // From the middle of the batch: only the records from that offset.
        assert_eq!(
            down_convert(&batch, 1, 1),
            vec![v1_message(1, 2_000, None, b"two")]
        );
    }

    #[test]
    fn snappy_is_read_raw_and_in_xerial_framing() {
        let inner = v1_message(0, 5, Some(b"x"), b"snappy").to_vec();
        let block = snap::raw::Encoder::new().compress_vec(&inner).unwrap();
        // kafka-node sends a raw block; Java clients the xerial stream.
        let raw = encode_message(0, 1, 2, 5, None, Some(&block));
        let mut stream = b"\x82SNAPPY\x00".to_vec();
        stream.extend_from_slice(&1i32.to_be_bytes());
        stream.extend_from_slice(&1i32.to_be_bytes());
        stream.extend_from_slice(&(block.len() as u32).to_be_bytes());
        stream.extend_from_slice(&block);
        let xerial = encode_message(0, 1, 2, 5, None, Some(&stream));
        for wrapper in [raw, xerial] {
            let parsed = parse_message_set(&wrapper, LIMIT).unwrap();
            assert_eq!(parsed.codec, 2);
            assert_eq!(parsed.records[0].value.as_deref(), Some(&b"snappy"[..]));
        }
    }

    #[test]
    fn a_wrapper_decompressing_beyond_the_limit_is_refused() {
        use kafka_protocol::compression::{Compressor, Gzip};
        // 4 MiB of zeros as one value: a few KiB compressed.
        let inner = v1_message(0, 0, None, &vec![0u8; 4 << 20]);
        let mut compressed = BytesMut::new();
        Gzip::compress(&mut compressed, |b: &mut BytesMut| {
            b.put_slice(&inner);
            Ok(())
        })
        .unwrap();
        assert!(compressed.len() < 64 << 10);
        let wrapper = encode_message(0, 1, 1, 0, None, Some(&compressed));
        let err = parse_message_set(&wrapper, LIMIT).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        assert!(parse_message_set(&wrapper, 8 << 20).is_ok());
    }

    #[test]
    fn timestamps_below_minus_one_or_too_far_apart_are_refused() {
        let bad = v1_message(0, -2, None, b"x");
        assert_eq!(
            parse_message_set(&bad, LIMIT),
            Err(LegacyRecordError::InvalidTimestamp(-2))
        );
        let apart = [
            v1_message(0, -1, None, b"a"),
            v1_message(1, i64::MAX, None, b"b"),
        ]
        .concat();
        let parsed = parse_message_set(&Bytes::from(apart), LIMIT).unwrap();
        assert!(up_convert(&parsed).is_err());
    }

    #[test]
    fn mixed_magics_and_nested_wrappers_are_refused() {
        let mixed = [
            encode_message(0, 0, 0, NO_TIMESTAMP, None, Some(b"a")),
            v1_message(1, 1, None, b"b"),
        ]
        .concat();
        assert!(parse_message_set(&Bytes::from(mixed), LIMIT).is_err());
        let nested = encode_message(0, 1, 1, 0, None, Some(&gzip_wrapper()));
        assert!(parse_message_set(&nested, LIMIT).is_err());
    }

    #[test]
    fn control_batches_are_skipped_and_headers_dropped_on_the_way_down() {
        let marker = crate::log::records::encode_control_batch(7, 0, true, 0, 10);
        let data = crate::log::records::encode_batch(&[(Some(b"k"), Some(b"v"))], 10, None);
        let mut stored = marker.clone();
        stored.extend_from_slice(&data);
        let out = down_convert(&stored, 1, 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0], v1_message(0, 10, Some(b"k"), b"v"));
    }
}
