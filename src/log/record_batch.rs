//! Record batch (magic v2) headers: parse, validate and patch the 61-byte header without
//! touching the records inside. This is all the data path ever decodes.
//!
//! ```text
//! offset  size  field
//!  0       8    base_offset            (rewritten by the broker on append)
//!  8       4    batch_length           (bytes after this field)
//! 12       4    partition_leader_epoch (rewritten by the broker on append)
//! 16       1    magic                  (2)
//! 17       4    crc                    (CRC32C of bytes 21..end)
//! 21       2    attributes             (bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control)
//! 23       4    last_offset_delta
//! 27       8    base_timestamp
//! 35       8    max_timestamp
//! 43       8    producer_id
//! 51       2    producer_epoch
//! 53       4    base_sequence
//! 57       4    records_count
//! 61       ...  records
//! ```

/// Size of the v2 batch header.
pub const HEADER_SIZE: usize = 61;
/// Bytes before `batch_length` ends: a batch's total size is `batch_length + LOG_OVERHEAD`.
pub const LOG_OVERHEAD: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;

const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;

/// Why a batch was refused; each maps to one Kafka error code at the API boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Truncated, wrong length, bad CRC: Kafka's CORRUPT_MESSAGE.
    Corrupt(String),
    /// Well-formed but not acceptable (bad magic, offsets, control batch from a client): INVALID_RECORD.
    Invalid(String),
    /// Bigger than `max.message.bytes`: MESSAGE_TOO_LARGE.
    TooLarge { size: usize, max: usize },
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Corrupt(m) | BatchError::Invalid(m) => f.write_str(m),
            BatchError::TooLarge { size, max } => {
                write!(
                    f,
                    "record batch of {size} bytes exceeds the maximum of {max} bytes"
                )
            }
        }
    }
}

impl std::error::Error for BatchError {}

/// The header fields of one batch, read from its first 61 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Reads the header from the start of `buf`; `None` when fewer than 61 bytes are there.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < HEADER_SIZE {
            return None;
        }
        Some(BatchHeader {
            base_offset: i64_at(buf, 0),
            batch_length: i32_at(buf, 8),
            magic: buf[MAGIC_OFFSET] as i8,
            crc: u32::from_be_bytes([buf[17], buf[18], buf[19], buf[20]]),
            attributes: i16_at(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: i32_at(buf, 23),
            base_timestamp: i64_at(buf, 27),
            max_timestamp: i64_at(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: i64_at(buf, 43),
            producer_epoch: i16_at(buf, 51),
            base_sequence: i32_at(buf, 53),
            records_count: i32_at(buf, 57),
        })
    }

    /// Total bytes of the batch on the wire and on disk.
    pub fn size(&self) -> usize {
        self.batch_length.max(0) as usize + LOG_OVERHEAD
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// Checks the structure of a stored or received batch at the start of `buf`: length, magic
/// and CRC32C. Returns its header. Used by Produce and by recovery.
pub fn check_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf).ok_or_else(|| {
        BatchError::Corrupt(format!(
            "record batch is truncated: {} bytes, a header needs {HEADER_SIZE}",
            buf.len()
        ))
    })?;
    if header.magic != 2 {
        return Err(BatchError::Invalid(format!(
            "record batch magic {} is not supported (only magic 2)",
            header.magic
        )));
    }
    if (header.batch_length as i64) < (HEADER_SIZE - LOG_OVERHEAD) as i64 {
        return Err(BatchError::Corrupt(format!(
            "record batch length {} is smaller than a batch header",
            header.batch_length
        )));
    }
    let size = header.size();
    if size > buf.len() {
        return Err(BatchError::Corrupt(format!(
            "record batch claims {size} bytes but only {} are present",
            buf.len()
        )));
    }
    let computed = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..size]);
    if computed != header.crc {
        return Err(BatchError::Corrupt(format!(
            "record batch CRC32C mismatch: stored {:#010x}, computed {computed:#010x}",
            header.crc
        )));
    }
    Ok(header)
}

/// The batches of a Produce request's `records` for one partition, validated as Kafka's
/// `LogValidator` does for a client append. Returns the headers, in order.
pub fn validate_produce_batches(
    records: &[u8],
    max_message_bytes: usize,
) -> Result<Vec<BatchHeader>, BatchError> {
    let mut headers = Vec::new();
    let mut at = 0;
    if records.is_empty() {
        return Err(BatchError::Invalid(
            "produce request has no record batch".into(),
        ));
    }
    while at < records.len() {
        let header = check_batch(&records[at..])?;
        let size = header.size();
        if size > max_message_bytes {
            return Err(BatchError::TooLarge {
                size,
                max: max_message_bytes,
            });
        }
        if header.is_control() {
            return Err(BatchError::Invalid(
                "clients may not produce control batches".into(),
            ));
        }
        if header.last_offset_delta < 0 || header.records_count != header.last_offset_delta + 1 {
            return Err(BatchError::Invalid(format!(
                "record batch has {} records but last offset delta {}",
                header.records_count, header.last_offset_delta
            )));
        }
        if header.compression() > 4 {
            return Err(BatchError::Invalid(format!(
                "unknown compression codec {}",
                header.compression()
            )));
        }
        headers.push(header);
        at += size;
    }
    Ok(headers)
}

/// Rewrites the broker-assigned fields of a batch in place: base offset and leader epoch are
/// outside the CRC, so the CRC stays valid.
pub fn assign_offset(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks a batch as LogAppendTime with `now_ms` as its max timestamp, and recomputes the CRC.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16_at(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now_ms.to_be_bytes());
    let size = (i32_at(batch, 8).max(0) as usize + LOG_OVERHEAD).min(batch.len());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..size]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Reads a zig-zag varint at `*at`, advancing it; `None` if malformed or truncated.
fn read_varint(buf: &[u8], at: &mut usize) -> Option<i64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        value |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

/// One record of an uncompressed batch: its offset delta, and the record's bytes after
/// it (key, value, headers).
struct RecordView<'a> {
    offset_delta: i64,
    rest: &'a [u8],
}

/// The records of an uncompressed batch, in order; `None` for compressed or malformed
/// batches. Off the data path only (internal topics): Produce and Fetch never look inside
/// a batch.
fn uncompressed_records(batch: &[u8]) -> Option<(BatchHeader, Vec<RecordView<'_>>)> {
    let h = BatchHeader::parse(batch)?;
    if h.compression() != 0 {
        return None;
    }
    let end = h.size().min(batch.len());
    let mut at = HEADER_SIZE;
    let mut out = Vec::new();
    for _ in 0..h.records_count.max(0) {
        let len = read_varint(batch, &mut at)?;
        let record_end = at.checked_add(usize::try_from(len).ok()?)?;
        if record_end > end {
            return None;
        }
        let mut p = at + 1; // attributes
        read_varint(batch, &mut p)?; // timestamp delta
        let offset_delta = read_varint(batch, &mut p)?;
        out.push(RecordView {
            offset_delta,
            rest: batch.get(p..record_end)?,
        });
        at = record_end;
    }
    Some((h, out))
}

/// (timestamp, offset) of every record of a stored batch, decompressed if need be (with
/// kafka-protocol's decoder). Off the data path: ListOffsets by timestamp only.
fn record_timestamps(batch: &[u8]) -> Option<Vec<crate::log::TimestampOffset>> {
    let h = BatchHeader::parse(batch)?;
    let mut bytes = bytes::Bytes::copy_from_slice(batch.get(..h.size())?);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).ok()?;
    Some(
        set.records
            .iter()
            .map(|r| crate::log::TimestampOffset {
                // LogAppendTime: every record carries the batch's time (its max timestamp).
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
pub fn first_record_at_or_after(
    batch: &[u8],
    timestamp: i64,
) -> Option<crate::log::TimestampOffset> {
    record_timestamps(batch)?
        .into_iter()
        .find(|r| r.timestamp >= timestamp)
}

/// The first record of `batch` carrying exactly `timestamp`.
pub fn first_record_with_timestamp(
    batch: &[u8],
    timestamp: i64,
) -> Option<crate::log::TimestampOffset> {
    record_timestamps(batch)?
        .into_iter()
        .find(|r| r.timestamp == timestamp)
}

fn write_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_varbytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => write_varint(out, -1),
        Some(b) => {
            write_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Encodes an uncompressed v2 batch of `(key, value)` records at `timestamp`, for the
/// broker's own internal topics. The base offset is 0 (assigned at append).
/// A record to encode: optional key, optional value (None = tombstone).
pub type RawRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

pub fn encode_batch(records: &[RawRecord<'_>], timestamp: i64) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut r = Vec::new();
        r.push(0); // attributes
        write_varint(&mut r, 0); // timestamp delta
        write_varint(&mut r, i as i64); // offset delta
        write_varbytes(&mut r, *key);
        write_varbytes(&mut r, *value);
        write_varint(&mut r, 0); // no headers
        write_varint(&mut body, r.len() as i64);
        body.extend_from_slice(&r);
    }
    let n = records.len() as i32;
    let mut b = Vec::with_capacity(HEADER_SIZE + body.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((HEADER_SIZE - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(n - 1).to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&n.to_be_bytes());
    b.extend_from_slice(&body);
    let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    b
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
    let key = [0u8, 0, 0, commit as u8];
    let mut value = vec![0u8, 0];
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut b = encode_batch(&[(Some(&key), Some(&value))], timestamp);
    let attributes: i16 = TRANSACTIONAL_BIT | CONTROL_BIT;
    b[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// For a control batch: `Some(true)` for a commit marker, `Some(false)` for an abort.
pub fn control_marker(batch: &[u8]) -> Option<bool> {
    let h = BatchHeader::parse(batch)?;
    if !h.is_control() {
        return None;
    }
    let mut at = HEADER_SIZE;
    let len = read_varint(batch, &mut at)?;
    let end = at.checked_add(usize::try_from(len).ok()?)?.min(batch.len());
    let mut p = at + 1;
    read_varint(batch, &mut p)?;
    read_varint(batch, &mut p)?;
    let key = read_varbytes(&batch[..end], &mut p)??;
    match key.get(2..4)? {
        [0, 0] => Some(false),
        [0, 1] => Some(true),
        _ => None,
    }
}

/// A record read back from an internal topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

fn read_varbytes(buf: &[u8], at: &mut usize) -> Option<Option<Vec<u8>>> {
    let len = read_varint(buf, at)?;
    if len < 0 {
        return Some(None);
    }
    let end = at.checked_add(len as usize)?;
    let bytes = buf.get(*at..end)?.to_vec();
    *at = end;
    Some(Some(bytes))
}

/// The keys and values of an uncompressed batch (internal topics only; `None` if the batch
/// is compressed or malformed).
pub fn decode_key_values(batch: &[u8]) -> Option<Vec<KeyValue>> {
    let (h, records) = uncompressed_records(batch)?;
    if h.is_control() {
        return None;
    }
    records
        .iter()
        .map(|r| {
            let mut p = 0;
            let key = read_varbytes(r.rest, &mut p)?;
            let value = read_varbytes(r.rest, &mut p)?;
            Some(KeyValue {
                offset: h.base_offset + r.offset_delta,
                key,
                value,
            })
        })
        .collect()
}

#[cfg(test)]
pub mod test_support {
    //! Test batches, from the builder the unit and integration tests share.

    pub use crate::test_batches::TestBatch;

    /// A batch of `values` (no keys, no headers) with timestamps `ts, ts+1, ...`.
    pub fn batch(values: &[&[u8]], ts: i64) -> Vec<u8> {
        TestBatch::new(values).timestamp(ts).encode()
    }

    /// Like [`batch`], from an idempotent producer.
    pub fn idempotent_batch(
        values: &[&[u8]],
        ts: i64,
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
    ) -> Vec<u8> {
        TestBatch::new(values)
            .timestamp(ts)
            .producer(producer_id, epoch, base_sequence)
            .encode()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::batch;
    use super::*;

    #[test]
    fn valid_batch_passes_and_offsets_rewrite_keeps_crc() {
        let mut b = batch(&[b"a", b"bb", b"ccc"], 1000);
        let h = validate_produce_batches(&b, 1 << 20).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].records_count, 3);
        assign_offset(&mut b, 42, 0);
        let h = check_batch(&b).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.last_offset(), 44);
    }

    #[test]
    fn bad_crc_is_corrupt() {
        let mut b = batch(&[b"a"], 1);
        let last = b.len() - 2;
        b[last] ^= 0xff;
        assert!(matches!(check_batch(&b), Err(BatchError::Corrupt(_))));
    }

    #[test]
    fn truncated_and_oversized() {
        let b = batch(&[b"hello"], 1);
        assert!(matches!(check_batch(&b[..30]), Err(BatchError::Corrupt(_))));
        assert!(matches!(
            check_batch(&b[..b.len() - 1]),
            Err(BatchError::Corrupt(_))
        ));
        assert!(matches!(
            validate_produce_batches(&b, 10),
            Err(BatchError::TooLarge { .. })
        ));
    }

    #[test]
    fn log_append_time_recomputes_crc() {
        let mut b = batch(&[b"x"], 5);
        set_log_append_time(&mut b, 99);
        let h = check_batch(&b).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99);
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
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let records: Vec<Record> = (0..5)
                .map(|i| Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: 20 + i,
                    // One batch: the encoder keeps offset - sequence constant within it.
                    sequence: i as i32 - 1,
                    timestamp: 1000 + i,
                    key: None,
                    value: Some(bytes::Bytes::from_static(b"some value")),
                    headers: kafka_protocol::indexmap::IndexMap::new(),
                })
                .collect();
            let mut b = bytes::BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression,
            };
            RecordBatchEncoder::encode(&mut b, &records, &options).unwrap();
            let r = first_record_at_or_after(&b, 1003).unwrap();
            assert_eq!((r.offset, r.timestamp), (23, 1003), "{compression:?}");
            assert_eq!(first_record_with_timestamp(&b, 1001).unwrap().offset, 21);
        }
    }

    #[test]
    fn internal_batches_round_trip() {
        let mut b = encode_batch(&[(Some(b"k1"), Some(b"v1")), (Some(b"k2"), None)], 42);
        assign_offset(&mut b, 7, 0);
        let h = check_batch(&b).unwrap();
        assert_eq!(h.records_count, 2);
        let kvs = decode_key_values(&b).unwrap();
        assert_eq!(kvs[0].offset, 7);
        assert_eq!(kvs[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(kvs[1].value, None);
    }

    #[test]
    fn old_magic_is_invalid() {
        let mut b = batch(&[b"x"], 5);
        b[16] = 1;
        assert!(matches!(check_batch(&b), Err(BatchError::Invalid(_))));
    }
}
