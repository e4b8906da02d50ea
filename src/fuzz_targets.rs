//! What the fuzz targets (`fuzz/fuzz_targets/*.rs`, run by `make fuzz`) exercise: request
//! framing and decoding for every advertised API and version (the legacy ones included),
//! record batch validation, message formats v0/v1 and their conversions,
//! loading a partition from arbitrary segment, index, transaction-index and snapshot bytes,
//! producer snapshots, and configuration. The bodies live here, inside the crate, so they
//! reach its internals and so each crash a fuzzer finds is replayed by a unit test below,
//! named after it. Each function must return for any input: no panic, no hang.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, BytesMut};

use crate::api::{dispatch, SUPPORTED_APIS};
use crate::broker::Broker;
use crate::config::{BrokerConfig, RawConfig, BROKER_CONFIGS};
use crate::log::loader::{load_log, RecoveryStart};
use crate::log::producer_state::{snapshot_file, ProducerStateManager};
use crate::log::record_batch::{check_batch, validate_produce_batches};
use crate::log::records::{control_marker, decode_key_values, first_record_at_or_after};
use crate::log::{file_names, TopicPartition};
use crate::network::read_frame;
use crate::network::request_memory::RequestMemoryPool;
use crate::storage::simulated::SimulatedStorage;
use crate::storage::OpenMode;

/// A broker on simulated storage with one topic `t`, shared by every input of a run.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    broker: Arc<Broker>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let sim = SimulatedStorage::new(1);
        sim.create_dir_all_durable(Path::new("/data"));
        let mut raw = RawConfig::from_yaml("").expect("empty YAML");
        raw.set("log.dirs", "/data");
        raw.set("offsets.topic.num.partitions", "1");
        raw.set("transaction.state.log.num.partitions", "1");
        let config = Arc::new(BrokerConfig::from_raw(&raw).expect("the fuzz config"));
        let broker = runtime
            .block_on(Broker::open(
                config,
                sim.shared(),
                "127.0.0.1:9092".parse().expect("an address"),
            ))
            .expect("a broker on simulated storage");
        broker
            .logs
            .create_topic("t", 2, 1, std::collections::BTreeMap::new())
            .expect("topic t");
        Fixture {
            runtime,
            broker: Arc::new(broker),
        }
    })
}

/// `data[0]` picks an advertised API, `data[1]` a version in its range (down to the versions
/// `legacy.protocol.enable`, on in the fixture, serves again); the rest is the
/// request after api_key and api_version (correlation id, client id, body). The request is
/// framed, header-decoded and body-decoded as a connection would; Produce, whose handler
/// runs eagerly, is also validated and (for a valid batch to topic `t`) appended. Other
/// handlers are not run: their futures are dropped.
pub fn request(data: &[u8]) {
    let [api, version, rest @ ..] = data else {
        return;
    };
    let api = &SUPPORTED_APIS[*api as usize % SUPPORTED_APIS.len()];
    let min = crate::api::legacy::min_version(api.key)
        .map_or(api.min_version, |m| m.min(api.min_version));
    let span = (api.max_version - min + 1) as u8;
    let version = min + i16::from(version % span);
    let mut frame = BytesMut::with_capacity(4 + rest.len());
    frame.put_i16(api.key as i16);
    frame.put_i16(version);
    frame.put_slice(rest);
    let f = fixture();
    let _guard = f.runtime.enter();
    let _ = dispatch(&f.broker, frame, crate::api::Peer::anonymous("/127.0.0.1"));
}

/// The bytes a client sends, cut into frames with a 64 KiB `socket.request.max.bytes`.
pub fn framing(data: &[u8]) {
    let f = fixture();
    let pool = RequestMemoryPool::new(Some(1 << 16));
    f.runtime.block_on(async {
        let mut reader = data;
        let mut buf = BytesMut::new();
        while read_frame(&mut reader, &mut buf, 1 << 16, &pool)
            .await
            .is_ok()
        {}
    });
}

/// One produced batch. `data[0]` bit 0 asks for the CRC to be fixed up first, so that the
/// fuzzer gets past it to the header checks, the records and the codecs.
pub fn record_batch(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut batch = rest.to_vec();
    if flags & 1 == 1 && batch.len() >= 21 {
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    let _ = validate_produce_batches(&batch, 1 << 20);
    if check_batch(&batch).is_ok() {
        let _ = decode_key_values(&batch);
        let _ = control_marker(&batch);
        let _ = first_record_at_or_after(&batch, i64::from(*flags) << 8);
    }
}

/// A produced message set of formats v0/v1 (Produce v0-v2), with its CRCs fixed up when
/// `data[0]` bit 0 says so (the first message only: enough to reach its fields and
/// codecs). What parses is up-converted to a v2 batch, which must pass the checks of any
/// produced batch and come back down with the same records, in both old formats.
pub fn message_set(data: &[u8]) {
    use crate::log::legacy_record::{down_convert, parse_message_set, up_convert};
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut set = rest.to_vec();
    if flags & 1 == 1 && set.len() >= 16 {
        let size = i32::from_be_bytes([set[8], set[9], set[10], set[11]]);
        let end = usize::try_from(size).map_or(set.len(), |s| (12 + s).min(set.len()));
        let crc = crc32fast::hash(&set[16..end.max(16)]);
        set[12..16].copy_from_slice(&crc.to_be_bytes());
    }
    let Ok(parsed) = parse_message_set(&bytes::Bytes::from(set), 1 << 20) else {
        return;
    };
    let Ok(batch) = up_convert(&parsed) else {
        return;
    };
    validate_produce_batches(&batch, usize::MAX).expect("an up-converted batch is valid");
    for magic in [0, 1] {
        let down = down_convert(&batch, magic, 0);
        assert_eq!(
            down.len(),
            parsed.records.len(),
            "every record comes back down"
        );
    }
}

/// A partition directory made of arbitrary files, loaded after a crash (recovery checks
/// every batch) and after a clean shutdown (indexes and snapshot trusted as they are), then
/// read from end to end. The input is the files' contents, each after a 2-byte length:
/// `.log`, `.index`, `.timeindex`, `.txnindex`, then a producer snapshot at offset 0.
pub fn log_loading(data: &[u8]) {
    let mut parts = Vec::new();
    let mut rest = data;
    for _ in 0..5 {
        let (part, next) = match rest {
            [a, b, tail @ ..] => {
                let n = (usize::from(*a) << 8 | usize::from(*b)).min(tail.len());
                tail.split_at(n)
            }
            _ => (&[][..], &[][..]),
        };
        parts.push(part);
        rest = next;
    }
    let log_config = fixture().broker.config.log.clone();
    for recovery in [RecoveryStart::From(0), RecoveryStart::CleanShutdown] {
        let sim = SimulatedStorage::new(1);
        let dir = Path::new("/d/t-0");
        sim.create_dir_all_durable(dir);
        let storage = sim.shared();
        let [log, index, time_index, txn_index] = file_names::segment_files(dir, 0);
        let snapshot = snapshot_file(dir, 0);
        for (path, bytes) in [log, index, time_index, txn_index, snapshot]
            .iter()
            .zip(&parts)
        {
            let file = storage
                .open(path, OpenMode::Truncate)
                .expect("a simulated file");
            file.write_all_at(&[bytes], 0).expect("a simulated write");
        }
        let tp = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        let Ok((log, _)) = load_log(
            &storage,
            tp,
            dir.to_path_buf(),
            log_config.clone(),
            recovery,
            0,
        ) else {
            continue;
        };
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            match log.read(offset, 1 << 16, true, false) {
                Ok(r) if r.records.len() >= 12 => {
                    let header = &r.records[..12];
                    let base = i64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
                    offset = base.max(offset) + 1;
                }
                _ => break,
            }
        }
        let _ = log.check_consistency();
    }
}

/// A producer snapshot file's bytes.
pub fn producer_snapshot(data: &[u8]) {
    let _ = ProducerStateManager::decode(data);
}

/// Configuration: the input as a YAML file, then as `index=value` lines where the index
/// picks a broker key; either way loading returns a config or an error naming a key.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(raw) = RawConfig::from_yaml(&text) {
        let _ = BrokerConfig::from_raw(&raw);
    }
    let mut raw = RawConfig::from_yaml("").expect("empty YAML");
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.bytes().fold(0usize, |n, b| n.wrapping_add(b as usize));
        raw.set(BROKER_CONFIGS[key % BROKER_CONFIGS.len()].name, value);
    }
    let _ = BrokerConfig::from_raw(&raw);
}

/// Crashes the fuzzers found, replayed: each test is named after what it found.
#[cfg(test)]
mod regressions {
    use super::*;

    #[test]
    fn every_target_returns_on_empty_and_small_inputs() {
        for data in [&b""[..], b"\0", b"\xff\xff", b"\0\0\0\0\0\0\0\0\0"] {
            request(data);
            framing(data);
            record_batch(data);
            message_set(data);
            log_loading(data);
            producer_snapshot(data);
            config(data);
        }
    }

    /// record_batch, 2026-12-03: one record claiming 2^31 headers made the protocol crate's
    /// decoder build a header map of that capacity (gigabytes touched: out of memory).
    /// `records::check_record_layout` now refuses the batch first.
    #[test]
    fn record_batch_2g_header_count() {
        record_batch(include_bytes!(
            "../fuzz/regressions/record_batch-2g-header-count.bin"
        ));
    }

    /// record_batch, 2026-12-03, after the fix above: a field written as a 6-byte varint,
    /// which the protocol crate reads as 5 bytes and the layout walk read as 6, so the two
    /// disagreed on where the header count was. The walk now reads varints as the crate does.
    #[test]
    fn record_batch_walk_and_decoder_disagreed_on_a_long_varint() {
        record_batch(include_bytes!(
            "../fuzz/regressions/record_batch-long-varint.bin"
        ));
    }

    /// record_batch, 2026-12-03, with overflow checks on: a batch base timestamp plus a
    /// record's timestamp delta overflowed i64 in the protocol crate's decoder (a panic in
    /// debug builds, a wrapped timestamp in release). The layout walk refuses it first.
    #[test]
    fn record_batch_timestamp_delta_overflow() {
        record_batch(include_bytes!(
            "../fuzz/regressions/record_batch-timestamp-delta-overflow.bin"
        ));
    }

    /// record_batch, 2026-12-03: a records_count of hundreds of millions made the decoder
    /// reserve that many records up front; under the broker's allocator (`alloc.rs`) the
    /// reservation is lazy and the decoder fails at the first missing record.
    #[test]
    fn record_batch_huge_record_count() {
        record_batch(include_bytes!(
            "../fuzz/regressions/record_batch-huge-record-count.bin"
        ));
    }

    /// The committed message_set seeds (v0 and v1 messages, gzip wrappers of each) go
    /// through the whole round trip the target checks.
    #[test]
    fn message_set_seeds_round_trip() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/message_set");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("the committed seeds") {
            let data = std::fs::read(entry.expect("a seed").path()).expect("a seed's bytes");
            let set = bytes::Bytes::copy_from_slice(&data[1..]);
            assert!(
                crate::log::legacy_record::parse_message_set(&set, 1 << 20).is_ok(),
                "every seed is a valid message set"
            );
            message_set(&data);
            seen += 1;
        }
        assert!(seen >= 5, "the seeds are there ({seen})");
    }
}
