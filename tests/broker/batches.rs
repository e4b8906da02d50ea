//! Record batches for tests, encoded by kafka-protocol's `RecordBatchEncoder`: the one
//! builder that the unit tests (in `src/`, included with `#[path]`) and the integration
//! tests share, so no test carries its own varint and CRC code.
#![allow(dead_code)] // each crate that includes this file uses part of it

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// A record's key and value (`None`: null; a null value is a tombstone).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A v2 batch of `values` (no keys, no headers) at offsets 0.., CreateTime timestamps
/// `timestamp, timestamp + 1, ...`, from no producer, uncompressed, unless told otherwise.
#[derive(Debug, Clone, Copy)]
pub struct TestBatch<'a> {
    values: &'a [&'a [u8]],
    /// Keys and values (None: null) instead of `values`.
    keyed: Option<&'a [KeyValue<'a>]>,
    timestamp: i64,
    same_timestamp: bool,
    producer: Option<(i64, i16, i32)>,
    transactional: bool,
    compression: Compression,
}

impl<'a> TestBatch<'a> {
    pub fn new(values: &'a [&'a [u8]]) -> TestBatch<'a> {
        TestBatch {
            values,
            keyed: None,
            timestamp: 1000,
            same_timestamp: false,
            producer: None,
            transactional: false,
            compression: Compression::None,
        }
    }

    /// A batch of keyed records (a `None` value is a tombstone).
    pub fn keyed(records: &'a [KeyValue<'a>]) -> TestBatch<'a> {
        TestBatch {
            keyed: Some(records),
            ..TestBatch::new(&[])
        }
    }

    /// The first record's timestamp.
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Every record at the first record's timestamp.
    pub fn same_timestamp(mut self) -> Self {
        self.same_timestamp = true;
        self
    }

    /// From an idempotent producer: id, epoch and the first record's sequence.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer = Some((producer_id, producer_epoch, base_sequence));
        self
    }

    /// Part of the producer's transaction (attributes bit 4).
    pub fn transactional(mut self) -> Self {
        self.transactional = true;
        self
    }

    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        let (producer_id, producer_epoch, base_sequence) = self.producer.unwrap_or((-1, -1, -1));
        let count = self.keyed.map_or(self.values.len(), <[_]>::len);
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
                transactional: self.transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder derives the base sequence from the first record's.
                sequence: base_sequence.wrapping_add(i as i32),
                timestamp: if self.same_timestamp {
                    self.timestamp
                } else {
                    self.timestamp + i as i64
                },
                key: self.keyed.and_then(|k| k[i].0).map(Bytes::copy_from_slice),
                value: match self.keyed {
                    Some(k) => k[i].1.map(Bytes::copy_from_slice),
                    None => Some(Bytes::copy_from_slice(self.values[i])),
                },
                headers: kafka_protocol::indexmap::IndexMap::new(),
            })
            .collect();
        let mut out = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: self.compression,
        };
        RecordBatchEncoder::encode(&mut out, &records, &options).expect("encode a test batch");
        out.to_vec()
    }

    pub fn bytes(&self) -> Bytes {
        Bytes::from(self.encode())
    }
}
