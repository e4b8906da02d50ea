//! The records of one stored batch as ranges of its (decompressed) records section: offset,
//! timestamp, key and whether a value is there, without copying keys or values. Off the
//! data path: the log cleaner reads keys with it, and Produce to a compacted topic checks
//! that every record has a key. A record on the wire:
//!
//! ```text
//! length varint | attributes i8 | timestamp_delta varlong | offset_delta varint |
//! key_length varint | key | value_length varint | value | header_count varint | headers
//! ```

use std::ops::Range;

use bytes::Bytes;

use super::record_batch::BatchHeader;
use super::records::{records_section, varint, varlong};

/// Attributes bit 6 of a v2 batch (KIP-534): its base timestamp is the delete horizon, the
/// time after which the cleaner may drop its tombstones and transaction markers.
pub const DELETE_HORIZON_BIT: i16 = 1 << 6;

/// One record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    pub offset: i64,
    pub timestamp: i64,
    pub offset_delta: i64,
    pub attributes: u8,
    /// The key's bytes in the section (`None`: a null key).
    pub key: Option<Range<usize>>,
    /// `false` for a tombstone (null value).
    pub has_value: bool,
    /// From the key length to the record's end: copied as is when a record is re-encoded.
    pub rest: Range<usize>,
    /// The whole record, length prefix included.
    pub whole: Range<usize>,
}

/// A batch's header with its records.
#[derive(Debug, Clone)]
pub struct BatchRecords {
    pub header: BatchHeader,
    /// The records section, decompressed.
    pub section: Bytes,
    pub records: Vec<RecordRef>,
}

impl BatchRecords {
    /// Reads every record of `batch` (any codec); `None` if the batch does not decode, or
    /// its records do not match its header: as many as `records_count`, offset deltas
    /// increasing within `0..=last_offset_delta` (a record claiming a far later offset
    /// would otherwise win every later cleaning for its key).
    pub fn read(batch: &[u8]) -> Option<BatchRecords> {
        let header = BatchHeader::parse(batch)?;
        let section = records_section(batch)?;
        let mut records: Vec<RecordRef> = Vec::new();
        let mut at = 0usize;
        while at < section.len() {
            let record = read_record(&section, at, &header)?;
            let after_previous = records
                .last()
                .is_none_or(|p| record.offset_delta > p.offset_delta);
            if !after_previous
                || record.offset_delta < 0
                || record.offset_delta > i64::from(header.last_offset_delta)
            {
                return None;
            }
            at = record.whole.end;
            records.push(record);
        }
        if records.len() != usize::try_from(header.records_count).ok()? {
            return None;
        }
        Some(BatchRecords {
            header,
            section,
            records,
        })
    }

    pub fn key(&self, record: &RecordRef) -> Option<&[u8]> {
        record.key.clone().map(|r| &self.section[r])
    }

    /// The batch's delete horizon, if the cleaner has set one.
    pub fn delete_horizon(&self) -> Option<i64> {
        delete_horizon(&self.header)
    }
}

pub fn delete_horizon(header: &BatchHeader) -> Option<i64> {
    (header.attributes & DELETE_HORIZON_BIT != 0).then_some(header.base_timestamp)
}

/// The record starting at `at`; `None` if it does not fit its bytes.
fn read_record(section: &[u8], at: usize, header: &BatchHeader) -> Option<RecordRef> {
    let mut buf = section.get(at..)?;
    let before = buf.len();
    let len = usize::try_from(varint(&mut buf)?).ok()?;
    let body_start = at + (before - buf.len());
    let end = body_start.checked_add(len)?;
    let mut body = section.get(body_start..end)?;
    let (&attributes, rest) = body.split_first()?;
    body = rest;
    let timestamp_delta = varlong(&mut body)?;
    let offset_delta = varint(&mut body)?;
    let rest_start = end - body.len();
    let key_len = varint(&mut body)?;
    let key = if key_len < 0 {
        None
    } else {
        let start = end - body.len();
        let len = usize::try_from(key_len).ok()?;
        body = body.get(len..)?;
        Some(start..start + len)
    };
    let value_len = varint(&mut body)?;
    Some(RecordRef {
        offset: header.base_offset.checked_add(offset_delta)?,
        timestamp: header.base_timestamp.checked_add(timestamp_delta)?,
        offset_delta,
        attributes,
        key,
        has_value: value_len >= 0,
        rest: rest_start..end,
        whole: at..end,
    })
}

/// Appends a zigzag varint (Kafka's varint) to `out`.
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    put_varlong(out, value);
}

/// Appends a zigzag varlong to `out`.
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Indexes (within the batch, as Produce's `record_errors` count them) of the records of
/// `batch` that have no key; `None` if the batch does not decode or its records do not
/// match its header (see [`BatchRecords::read`]).
pub fn keyless_records(batch: &[u8]) -> Option<Vec<usize>> {
    let records = BatchRecords::read(batch)?;
    Some(
        records
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.key.is_none())
            .map(|(i, _)| i)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record_batch::assign_offset;
    use crate::log::records::encode_batch;

    #[test]
    fn records_keys_and_tombstones_are_found() {
        let mut b = encode_batch(
            &[
                (Some(b"k1"), Some(b"v1")),
                (None, Some(b"v2")),
                (Some(b"k3"), None),
            ],
            5000,
            None,
        );
        assign_offset(&mut b, 100, 0);
        let r = BatchRecords::read(&b).unwrap();
        assert_eq!(r.records.len(), 3);
        assert_eq!(r.key(&r.records[0]), Some(&b"k1"[..]));
        assert_eq!(r.records[2].offset, 102);
        assert_eq!(r.records[2].timestamp, 5000);
        assert!(r.records[0].has_value && !r.records[2].has_value);
        assert_eq!(keyless_records(&b), Some(vec![1]));
        assert_eq!(r.delete_horizon(), None);
    }

    #[test]
    fn records_that_do_not_match_their_header_are_refused() {
        let mut b = encode_batch(
            &[(Some(b"k1"), Some(b"v1")), (Some(b"k2"), None)],
            5000,
            None,
        );
        assert!(BatchRecords::read(&b).is_some());
        // Claim one record more than the batch holds.
        b[57..61].copy_from_slice(&3i32.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(BatchRecords::read(&b).is_none());
        assert_eq!(keyless_records(&b), None);
    }

    #[test]
    fn varints_round_trip_through_the_reader() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let mut slice = &out[..];
            assert_eq!(varlong(&mut slice), Some(v), "{v}");
            assert!(slice.is_empty());
        }
    }
}
