//! Rewriting one stored batch for the cleaner (Kafka's `MemoryRecords.filterTo`): a new
//! batch with only the records kept, at their original offsets. The header keeps its base
//! offset, `last_offset_delta`, producer id, epoch and base sequence, so a batch's offset
//! range and the producer state it implies do not change; only the record count, length,
//! CRC and (with a delete horizon) the base timestamp do. Records are copied as they are
//! unless the base timestamp moves, which re-encodes their timestamp deltas.

use super::super::record_batch::{HEADER_SIZE, LOG_OVERHEAD};
use super::super::record_view::{
    put_varint, put_varlong, BatchRecords, RecordRef, DELETE_HORIZON_BIT,
};
use super::super::records::compress_section;

const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const RECORDS_COUNT_OFFSET: usize = 57;

/// `batch` with only `kept` (records of `records`, in order); with `horizon`, marked with
/// that delete horizon. A batch left with no record is written uncompressed, as Kafka
/// writes its empty batches. `None` if a timestamp delta would overflow or recompression
/// failed.
pub fn rewrite(
    batch: &[u8],
    records: &BatchRecords,
    kept: &[&RecordRef],
    horizon: Option<i64>,
) -> Option<Vec<u8>> {
    let header = &records.header;
    let base_timestamp = horizon.unwrap_or(header.base_timestamp);
    let mut raw = Vec::new();
    for r in kept {
        if base_timestamp == header.base_timestamp {
            raw.extend_from_slice(&records.section[r.whole.clone()]);
            continue;
        }
        let mut body = Vec::with_capacity(r.rest.len() + 12);
        body.push(r.attributes);
        put_varlong(&mut body, r.timestamp.checked_sub(base_timestamp)?);
        put_varint(&mut body, r.offset_delta);
        body.extend_from_slice(&records.section[r.rest.clone()]);
        put_varint(&mut raw, body.len() as i64);
        raw.extend_from_slice(&body);
    }
    let mut attributes = header.attributes;
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    }
    if kept.is_empty() {
        return Some(empty_batch(batch));
    }
    let section = compress_section(header.compression(), &raw)?;
    let mut out = Vec::with_capacity(HEADER_SIZE + section.len());
    out.extend_from_slice(batch.get(..HEADER_SIZE)?);
    out.extend_from_slice(&section);
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD).ok()?;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    out[BASE_TIMESTAMP_OFFSET..BASE_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&base_timestamp.to_be_bytes());
    out[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
        .copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Some(out)
}

/// `batch` with no records left: its header only, uncompressed, with its offset range,
/// producer and sequence as they were.
pub fn empty_batch(batch: &[u8]) -> Vec<u8> {
    let mut out = batch[..HEADER_SIZE].to_vec();
    let batch_length = (HEADER_SIZE - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes =
        i16::from_be_bytes([out[ATTRIBUTES_OFFSET], out[ATTRIBUTES_OFFSET + 1]]) & !0x7;
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    out[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&0i32.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record_batch::{assign_offset, check_batch};
    use crate::log::records::decode_key_values;
    use crate::test_batches::TestBatch;
    use kafka_protocol::records::Compression;

    fn keyed(compression: Compression) -> Vec<u8> {
        let records: [crate::test_batches::KeyValue<'_>; 4] = [
            (Some(b"a"), Some(b"1")),
            (Some(b"b"), Some(b"2")),
            (Some(b"a"), None),
            (Some(b"c"), Some(b"3")),
        ];
        let mut b = TestBatch::keyed(&records)
            .timestamp(10_000)
            .producer(7, 1, 40)
            .compression(compression)
            .encode();
        assign_offset(&mut b, 50, 0);
        b
    }

    #[test]
    fn kept_records_keep_their_offsets_and_the_header_its_range() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let b = keyed(compression);
            let records = BatchRecords::read(&b).unwrap();
            let kept = [&records.records[1], &records.records[2]];
            let out = rewrite(&b, &records, &kept, Some(99_000)).unwrap();
            let h = check_batch(&out).expect("a valid batch");
            assert_eq!((h.base_offset, h.last_offset_delta), (50, 3));
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (7, 1, 40)
            );
            assert_eq!((h.records_count, h.base_timestamp), (2, 99_000));
            assert_eq!(h.compression(), compression as i16);
            let again = BatchRecords::read(&out).unwrap();
            assert_eq!(again.delete_horizon(), Some(99_000));
            let (offsets, stamps): (Vec<i64>, Vec<i64>) = again
                .records
                .iter()
                .map(|r| (r.offset, r.timestamp))
                .unzip();
            assert_eq!(offsets, [51, 52]);
            assert_eq!(
                stamps,
                [10_001, 10_002],
                "record timestamps survive the horizon"
            );
            let kvs = decode_key_values(&out).unwrap();
            assert_eq!(kvs[1].value, None);
        }
    }

    #[test]
    fn a_batch_without_records_is_an_uncompressed_empty_batch() {
        let b = keyed(Compression::Snappy);
        let out = empty_batch(&b);
        let h = check_batch(&out).unwrap();
        assert_eq!(
            (h.size(), h.records_count, h.compression()),
            (HEADER_SIZE, 0, 0)
        );
        assert_eq!(h.next_offset(), 54);
    }
}
