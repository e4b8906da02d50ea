//! Whole record batches the broker builds or reads itself, off the data path: batches of
//! the internal topics (`__consumer_offsets`, `__transaction_state`), transaction markers,
//! and the record timestamps ListOffsets needs. Encoding and decoding are kafka-protocol's
//! `RecordBatchEncoder` / `RecordBatchDecoder` (any codec); Produce and Fetch never come
//! here, they only touch batch headers (`record_batch.rs`).

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::record_batch::{BatchHeader, HEADER_SIZE};
use super::TimestampOffset;

/// A record to encode: optional key, optional value (None = tombstone).
pub type RawRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A record read back from an internal topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// The producer of a transactional batch the broker writes (no sequence: the coordinators'
/// own writes are not sequenced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

fn record(
    offset: i64,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    txn: Option<TxnProducer>,
    control: bool,
) -> Record {
    Record {
        transactional: txn.is_some(),
        control,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: txn.map_or(-1, |t| t.producer_id),
        producer_epoch: txn.map_or(-1, |t| t.producer_epoch),
        timestamp_type: TimestampType::Creation,
        offset,
        // Base sequence -1 (not sequenced); the encoder keeps offset - sequence constant.
        sequence: offset as i32 - 1,
        timestamp,
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
        headers: IndexMap::new(),
    }
}

/// A record of a producer without idempotence, `offset` within its batch: the encoder starts
/// a new batch wherever offset - sequence changes, so this keeps one batch (Kafka takes one
/// per partition) with base sequence -1.
pub fn plain_record(
    offset: i64,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: IndexMap<kafka_protocol::protocol::StrBytes, Option<Bytes>>,
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: offset as i32 - 1,
        timestamp,
        key,
        value,
        headers,
    }
}

fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    // Uncompressed encoding of records we built ourselves has no failure mode but a
    // count beyond i32, which the callers' few records never reach.
    if let Err(e) = RecordBatchEncoder::encode(&mut out, records, &options) {
        tracing::error!(error = %e, "encoding an internal batch failed");
        return Vec::new();
    }
    out.to_vec()
}

/// One uncompressed v2 batch of `(key, value)` records at `timestamp`, base offset 0
/// (offsets are assigned at append); transactional when `txn` is given.
pub fn encode_batch(
    records: &[RawRecord<'_>],
    timestamp: i64,
    txn: Option<TxnProducer>,
) -> Vec<u8> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| record(i as i64, timestamp, *key, *value, txn, false))
        .collect();
    encode(&records)
}

/// A transaction marker: a control batch of one record whose key is (version 0, type:
/// 0 abort, 1 commit) and whose value is (version 0, coordinator epoch).
pub fn encode_control_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let key = [0u8, 0, 0, u8::from(commit)];
    let mut value = vec![0u8, 0];
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let txn = TxnProducer {
        producer_id,
        producer_epoch,
    };
    encode(&[record(
        0,
        timestamp,
        Some(&key),
        Some(&value),
        Some(txn),
        true,
    )])
}

/// The records of one batch (any codec), or `None` if it does not decode: decompressed
/// within a bound and its layout checked before the protocol crate builds anything (the
/// admin client reads fetched batches with it too).
pub fn decode(batch: &[u8]) -> Option<(BatchHeader, Vec<Record>)> {
    let h = BatchHeader::parse(batch)?;
    let mut bytes = Bytes::copy_from_slice(batch.get(..h.size())?);
    let decompress = |buf: &mut Bytes, compression| {
        decompress_checked(buf, compression, h.base_offset, h.base_timestamp)
    };
    let set =
        RecordBatchDecoder::decode_with_custom_compression(&mut bytes, Some(&decompress)).ok()?;
    Some((h, set.records))
}

/// The records section of a stored batch (the bytes after its header), decompressed and
/// checked by [`check_record_layout`]; `None` if it does not decompress or is malformed.
pub(super) fn records_section(batch: &[u8]) -> Option<Bytes> {
    let h = BatchHeader::parse(batch)?;
    let compression = match h.compression() {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => return None,
    };
    let mut section = Bytes::copy_from_slice(batch.get(HEADER_SIZE..h.size())?);
    decompress_checked(&mut section, compression, h.base_offset, h.base_timestamp).ok()
}

/// `records` compressed with a batch's codec (its attributes' low three bits).
pub(super) fn compress_section(codec: i16, records: &[u8]) -> Option<Vec<u8>> {
    use bytes::BufMut;
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
    let fill = |tmp: &mut BytesMut| {
        tmp.put_slice(records);
        Ok(())
    };
    let mut out = BytesMut::new();
    let done = match codec {
        0 => return Some(records.to_vec()),
        1 => Gzip::compress(&mut out, fill),
        2 => Snappy::compress(&mut out, fill),
        3 => Lz4::compress(&mut out, fill),
        4 => Zstd::compress(&mut out, fill),
        _ => return None,
    };
    done.ok().map(|()| out.to_vec())
}

/// The records section decompressed within `compression::batch_limit` (a small batch
/// claiming gigabytes is refused, not inflated), then [`check_record_layout`] on the result,
/// before the protocol crate builds the records.
fn decompress_checked(
    buf: &mut Bytes,
    compression: Compression,
    base_offset: i64,
    base_timestamp: i64,
) -> anyhow::Result<Bytes> {
    let codec = match compression {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    };
    let compressed = std::mem::take(buf);
    let records = super::compression::decompress(
        codec,
        &compressed,
        super::compression::batch_limit(compressed.len()),
    )?;
    check_record_layout(&records, base_offset, base_timestamp).map_err(anyhow::Error::msg)?;
    Ok(records)
}

/// Walks the records of a batch (after decompression) without building them: every record
/// fits in its bytes, and so do its key, its value and its headers; a record claims no more
/// headers than its remaining bytes can hold (two bytes each at least). The protocol crate
/// sizes its vectors and header maps by these counts before reading; without this walk a
/// 70-byte batch claiming 2^31 headers in one record made it fill gigabytes (found by the
/// `record_batch` fuzz target). Each record's timestamp and offset (the batch's base plus
/// the record's delta) must not overflow either: the crate adds them unchecked.
fn check_record_layout(
    mut records: &[u8],
    base_offset: i64,
    base_timestamp: i64,
) -> Result<(), &'static str> {
    while !records.is_empty() {
        let len = varint(&mut records).ok_or("a record length does not decode")?;
        let len = usize::try_from(len).map_err(|_| "a negative record length")?;
        if len > records.len() {
            return Err("a record is longer than its batch");
        }
        let (mut record, rest) = records.split_at(len);
        records = rest;
        record = record.get(1..).ok_or("a record without attributes")?;
        let timestamp_delta = varlong(&mut record).ok_or("a timestamp delta does not decode")?;
        base_timestamp
            .checked_add(timestamp_delta)
            .ok_or("a record timestamp overflows")?;
        let offset_delta = varint(&mut record).ok_or("an offset delta does not decode")?;
        base_offset
            .checked_add(offset_delta)
            .ok_or("a record offset overflows")?;
        for _ in 0..2 {
            skip_bytes(&mut record).ok_or("a key or value is longer than its record")?;
        }
        let headers = varint(&mut record).ok_or("a header count does not decode")?;
        if headers < 0 || headers as usize > record.len() / 2 {
            return Err("a record claims more headers than its bytes can hold");
        }
        for _ in 0..headers {
            for _ in 0..2 {
                skip_bytes(&mut record).ok_or("a header is longer than its record")?;
            }
        }
    }
    Ok(())
}

/// A zigzag varint (Kafka's 32-bit varint), advancing `buf`, read exactly as the protocol
/// crate reads it (at most 5 bytes, high bits dropped) so that the walk and the decoder
/// agree on where each field ends.
pub(super) fn varint(buf: &mut &[u8]) -> Option<i64> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        value |= u32::from(b & 0x7f) << (i * 7);
        if b < 0x80 {
            break;
        }
    }
    Some(i64::from(((value >> 1) as i32) ^ -((value & 1) as i32)))
}

/// A zigzag varlong (at most 10 bytes, as the protocol crate reads it), advancing `buf`.
pub(super) fn varlong(buf: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << (i * 7);
        if b < 0x80 {
            break;
        }
    }
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

/// Skips a varint-length-prefixed byte string (-1: null).
fn skip_bytes(buf: &mut &[u8]) -> Option<()> {
    let len = varint(buf)?;
    if len == -1 {
        return Some(());
    }
    let len = usize::try_from(len).ok()?;
    *buf = buf.get(len..)?;
    Some(())
}

/// For a control batch: `Some(true)` for a commit marker, `Some(false)` for an abort.
pub fn control_marker(batch: &[u8]) -> Option<bool> {
    let h = BatchHeader::parse(batch)?;
    if !h.is_control() {
        return None;
    }
    let (_, records) = decode(batch)?;
    match records.first()?.key.as_deref()?.get(..4)? {
        [0, 0, 0, 0] => Some(false),
        [0, 0, 0, 1] => Some(true),
        _ => None,
    }
}

/// The keys and values of a data batch of an internal topic (`None` for a control batch
/// or one that does not decode).
pub fn decode_key_values(batch: &[u8]) -> Option<Vec<KeyValue>> {
    let (h, records) = decode(batch)?;
    if h.is_control() {
        return None;
    }
    Some(
        records
            .into_iter()
            .map(|r| KeyValue {
                offset: r.offset,
                key: r.key.map(|k| k.to_vec()),
                value: r.value.map(|v| v.to_vec()),
            })
            .collect(),
    )
}

/// (timestamp, offset) of every record of a stored batch. LogAppendTime batches give every
/// record the batch's time (its max timestamp), as Kafka does.
fn record_timestamps(batch: &[u8]) -> Option<Vec<TimestampOffset>> {
    let (h, records) = decode(batch)?;
    Some(
        records
            .iter()
            .map(|r| TimestampOffset {
                timestamp: if h.is_log_append_time() {
                    h.max_timestamp
                } else {
                    r.timestamp
                },
                offset: r.offset,
            })
            .collect(),
    )
}

/// The first record of `batch` whose timestamp is >= `timestamp`.
pub fn first_record_at_or_after(batch: &[u8], timestamp: i64) -> Option<TimestampOffset> {
    record_timestamps(batch)?
        .into_iter()
        .find(|r| r.timestamp >= timestamp)
}

/// The first record of `batch` carrying exactly `timestamp`.
pub fn first_record_with_timestamp(batch: &[u8], timestamp: i64) -> Option<TimestampOffset> {
    record_timestamps(batch)?
        .into_iter()
        .find(|r| r.timestamp == timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::log::record_batch::test_support::{batch, TestBatch};
    use crate::log::record_batch::{assign_offset, check_batch};

    #[test]
    fn a_record_claiming_more_headers_than_its_bytes_hold_is_refused() {
        // length 9: attributes, timestamp delta 0, offset delta 0, null key, null value,
        // then a header count of 2^31 - 1 (zigzag varint) and nothing after it.
        let mut record = vec![0u8, 0, 0, 1, 1];
        record.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
        let mut records = vec![(record.len() as u8) << 1];
        records.extend_from_slice(&record);
        assert_eq!(
            check_record_layout(&records, 0, 0),
            Err("a record claims more headers than its bytes can hold")
        );
        // The same record with no headers is fine, and so is an empty batch.
        let mut ok = vec![0u8, 0, 0, 1, 1, 0];
        ok.insert(0, (ok.len() as u8) << 1);
        assert_eq!(check_record_layout(&ok, 0, 0), Ok(()));
        assert_eq!(
            check_record_layout(&ok, 0, i64::MAX - 1),
            Ok(()),
            "a zero delta does not overflow"
        );
        assert_eq!(check_record_layout(&[], 0, 0), Ok(()));
        assert_eq!(
            check_record_layout(&[0x7f], 0, 0),
            Err("a negative record length")
        );
        // A timestamp delta of +1 (zigzag 2) on a base of i64::MAX overflows.
        let mut late = vec![0u8, 2, 0, 1, 1, 0];
        late.insert(0, (late.len() as u8) << 1);
        assert_eq!(
            check_record_layout(&late, 0, i64::MAX),
            Err("a record timestamp overflows")
        );
    }

    #[test]
    fn record_timestamps_of_an_uncompressed_batch() {
        let mut b = batch(&[b"a", b"b", b"c"], 100);
        assign_offset(&mut b, 10, 0);
        let r = first_record_at_or_after(&b, 101).unwrap();
        assert_eq!((r.offset, r.timestamp), (11, 101));
        assert!(first_record_at_or_after(&b, 500).is_none());
        let r = first_record_with_timestamp(&b, 102).unwrap();
        assert_eq!(r.offset, 12);
    }

    /// Regression: franz-go compresses with snappy by default, and ListOffsets by timestamp
    /// answered the batch's base offset instead of the record's.
    #[test]
    fn record_timestamps_of_compressed_batches() {
        let values: [&[u8]; 5] = [b"some value"; 5];
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = TestBatch::new(&values)
                .timestamp(1000)
                .compression(compression)
                .encode();
            assign_offset(&mut b, 20, 0);
            let r = first_record_at_or_after(&b, 1003).unwrap();
            assert_eq!((r.offset, r.timestamp), (23, 1003), "{compression:?}");
            assert_eq!(first_record_with_timestamp(&b, 1001).unwrap().offset, 21);
        }
    }

    #[test]
    fn internal_batches_round_trip() {
        let mut b = encode_batch(&[(Some(b"k1"), Some(b"v1")), (Some(b"k2"), None)], 42, None);
        assign_offset(&mut b, 7, 0);
        let h = check_batch(&b).unwrap();
        assert_eq!(
            (h.records_count, h.producer_id, h.base_sequence),
            (2, -1, -1)
        );
        assert!(!h.is_transactional());
        let kvs = decode_key_values(&b).unwrap();
        assert_eq!(kvs[0].offset, 7);
        assert_eq!(kvs[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(kvs[1].value, None);
    }

    #[test]
    fn transactional_internal_batches_carry_the_producer() {
        let txn = TxnProducer {
            producer_id: 5,
            producer_epoch: 2,
        };
        let b = encode_batch(&[(Some(b"k"), Some(b"v"))], 42, Some(txn));
        let h = check_batch(&b).unwrap();
        assert!(h.is_transactional() && !h.is_control());
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (5, 2, -1)
        );
    }

    #[test]
    fn markers_round_trip() {
        for commit in [true, false] {
            let b = encode_control_batch(9, 3, commit, 0, 42);
            let h = check_batch(&b).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.producer_id, h.producer_epoch), (9, 3));
            assert_eq!(control_marker(&b), Some(commit));
            assert_eq!(decode_key_values(&b), None);
        }
        assert_eq!(control_marker(&batch(&[b"x"], 1)), None);
    }
}
