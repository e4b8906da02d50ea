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

    /// Saturating: a client's batch may carry any base offset until the broker assigns one.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
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
        if header.last_offset_delta < 0
            || i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1
        {
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

    /// Regression: `records_count != last_offset_delta + 1` overflowed (a panic in debug
    /// builds) for a batch with last_offset_delta = i32::MAX and a valid CRC.
    #[test]
    fn an_extreme_last_offset_delta_is_invalid_not_an_overflow() {
        let mut b = batch(&[b"x"], 5);
        b[23..27].copy_from_slice(&i32::MAX.to_be_bytes());
        b[0..8].copy_from_slice(&i64::MAX.to_be_bytes());
        let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        let h = check_batch(&b).unwrap();
        assert_eq!(h.next_offset(), i64::MAX);
        assert!(matches!(
            validate_produce_batches(&b, 1 << 20),
            Err(BatchError::Invalid(_))
        ));
    }

    #[test]
    fn old_magic_is_invalid() {
        let mut b = batch(&[b"x"], 5);
        b[16] = 1;
        assert!(matches!(check_batch(&b), Err(BatchError::Invalid(_))));
    }
}
