//! Crash-consistency tests: a whole broker runs on `SimulatedStorage`, several idempotent
//! producers and an offset committer load it through the Kafka API, the process "dies" at a
//! random I/O operation and the power goes out (only fsynced bytes and names survive, plus
//! a random part of the rest). The broker is then reopened on what is left and checked:
//!
//! - every acknowledged batch is present exactly once, at the offsets it was given;
//! - offsets are contiguous, every stored batch passes its CRC, indexes point at batches;
//! - each partition's producer state matches the batches in its log, and producers can go on;
//! - every acknowledged offset commit (or a later one) is what OffsetFetch returns;
//! - a topic whose creation was acknowledged exists with all its partitions.
//!
//! The log cleaner runs alongside (on `__consumer_offsets`, in small segments), so crashes
//! land in cleanings too: the commit checks then say that compaction lost nothing.
//!
//! A control run with fsync made to lie (`forget_syncs`) must lose acknowledged data: it
//! proves the checks can fail.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, GroupId, InitProducerIdRequest,
    InitProducerIdResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, ProduceRequest, ProduceResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::api::{self, Response};
use crate::broker::Broker;
use crate::config::{BrokerConfig, RawConfig, DEFAULT_CONFIG_YAML};
use crate::log::cleaner::OffsetMap;
use crate::log::record_batch::check_batch;
use crate::log::record_batch::test_support::idempotent_batch;
use crate::log::records::decode_key_values;
use crate::storage::simulated::{Op, SimulatedStorage};

const TOPIC: &str = "crash";
const PARTITIONS: i32 = 3;
const PRODUCERS: usize = 3;
const BATCHES_PER_PRODUCER: i32 = 24;
const GROUP: &str = "crash-group";
const COMMITS: i64 = 40;
/// Cleanings the cleaner task tries during a run (most find nothing due).
const CLEANINGS: usize = 40;

fn config() -> Arc<BrokerConfig> {
    let mut raw = RawConfig::from_yaml(DEFAULT_CONFIG_YAML).expect("default config");
    raw.set("log.dirs", "/data");
    raw.set("offsets.topic.num.partitions", "1");
    raw.set("transaction.state.log.num.partitions", "1");
    raw.set("group.initial.rebalance.delay.ms", "0");
    raw.set("offsets.topic.segment.bytes", "1024");
    raw.set("log.cleaner.min.cleanable.ratio", "0.01");
    Arc::new(BrokerConfig::from_raw(&raw).expect("config"))
}

async fn open(sim: &SimulatedStorage) -> Result<Arc<Broker>, String> {
    let local: SocketAddr = "127.0.0.1:9092".parse().expect("address");
    Broker::open(config(), sim.shared(), local)
        .await
        .map(Arc::new)
        .map_err(|e| crate::error_chain(&e))
}

/// One request through the broker's dispatcher, as a connection would send it.
async fn call<Req: Encodable, Resp: Decodable>(
    broker: &Arc<Broker>,
    key: ApiKey,
    version: i16,
    request: &Req,
) -> Result<Resp, String> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("crash-test")));
    let mut frame = BytesMut::new();
    header
        .encode(&mut frame, key.request_header_version(version))
        .map_err(|e| e.to_string())?;
    request
        .encode(&mut frame, version)
        .map_err(|e| e.to_string())?;
    let dispatched =
        api::dispatch(broker, frame, api::Peer::anonymous("/127.0.0.1")).map_err(|e| e.0)?;
    let Response::Frame(out) = dispatched.response.await else {
        return Err("no response frame".into());
    };
    let mut out = out.freeze();
    out.advance(8); // size, correlation id
    if key.response_header_version(version) >= 1 {
        out.advance(1);
    }
    Resp::decode(&mut out, version).map_err(|e| e.to_string())
}

/// What the clients were told.
#[derive(Default)]
struct Acknowledged {
    topic_created: bool,
    /// (producer id, partition, base sequence) -> (base offset, record count)
    batches: HashMap<(i64, i32, i32), (i64, i32)>,
    /// partition -> (last acknowledged commit, last attempted commit)
    commits: BTreeMap<i32, (i64, i64)>,
    /// Cleanings that completed.
    cleanings: usize,
}

async fn create_topic(broker: &Arc<Broker>) -> Result<(), String> {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_num_partitions(PARTITIONS)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("segment.bytes"))
                .with_value(Some(StrBytes::from_static_str("2048")))])]);
    let r: CreateTopicsResponse = call(broker, ApiKey::CreateTopics, 5, &request).await?;
    match r.topics[0].error_code {
        0 => Ok(()),
        code => Err(format!("CreateTopics error {code}")),
    }
}

async fn init_producer(broker: &Arc<Broker>) -> Result<(i64, i16), String> {
    let r: InitProducerIdResponse = call(
        broker,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    )
    .await?;
    match r.error_code {
        0 => Ok((*r.producer_id, r.producer_epoch)),
        code => Err(format!("InitProducerId error {code}")),
    }
}

async fn produce(broker: &Arc<Broker>, partition: i32, records: Bytes) -> Result<i64, String> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let r: ProduceResponse = call(broker, ApiKey::Produce, 9, &request).await?;
    let p = &r.responses[0].partition_responses[0];
    match p.error_code {
        0 => Ok(p.base_offset),
        code => Err(format!("Produce error {code}")),
    }
}

async fn commit(broker: &Arc<Broker>, partition: i32, offset: i64) -> Result<(), String> {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)])]);
    let r: OffsetCommitResponse = call(broker, ApiKey::OffsetCommit, 8, &request).await?;
    match r.topics[0].partitions[0].error_code {
        0 => Ok(()),
        code => Err(format!("OffsetCommit error {code}")),
    }
}

/// Producers and a committer run concurrently until done or until the first error (after
/// a crash every request fails).
/// With `lie_after_create`, fsync stops working once the topic exists.
async fn workload(
    broker: Arc<Broker>,
    acked: Arc<Mutex<Acknowledged>>,
    seed: u64,
    lie_after_create: Option<SimulatedStorage>,
) {
    if create_topic(&broker).await.is_err() {
        return;
    }
    acked.lock().expect("acked").topic_created = true;
    if let Some(sim) = lie_after_create {
        sim.forget_syncs(true);
    }
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let (broker, acked) = (broker.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let Ok((pid, epoch)) = init_producer(&broker).await else {
                return;
            };
            let mut next_seq = [0i32; PARTITIONS as usize];
            for i in 0..BATCHES_PER_PRODUCER {
                let partition = (i + p as i32 + seed as i32) % PARTITIONS;
                let seq = next_seq[partition as usize];
                let count = 1 + (i % 3);
                let values: Vec<Vec<u8>> = (0..count)
                    .map(|k| format!("{pid}:{}:{:0>200}", seq + k, i).into_bytes())
                    .collect();
                let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                let batch = idempotent_batch(&refs, 1_700_000_000_000, pid, epoch, seq);
                match produce(&broker, partition, Bytes::from(batch)).await {
                    Ok(offset) => {
                        acked
                            .lock()
                            .expect("acked")
                            .batches
                            .insert((pid, partition, seq), (offset, count));
                        next_seq[partition as usize] += count;
                    }
                    Err(_) => return,
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    let committer = {
        let (broker, acked) = (broker.clone(), acked.clone());
        tokio::spawn(async move {
            // (last acknowledged, last attempted) commit of a partition.
            let commits = |partition: i32, update: &dyn Fn(&mut (i64, i64))| {
                let mut acked = acked.lock().expect("acked");
                update(acked.commits.entry(partition).or_insert((-1, -1)));
            };
            for i in 1..=COMMITS {
                let partition = (i % PARTITIONS as i64) as i32;
                commits(partition, &|c| c.1 = i);
                if commit(&broker, partition, i).await.is_err() {
                    return;
                }
                commits(partition, &|c| c.0 = i);
                tokio::task::yield_now().await;
            }
        })
    };
    let cleaner = {
        let (broker, acked) = (broker.clone(), acked.clone());
        tokio::spawn(async move {
            let mut map = OffsetMap::with_memory(1 << 20, 0.9);
            for _ in 0..CLEANINGS {
                let logs = broker.logs.clone();
                let cleaned = tokio::task::spawn_blocking(move || {
                    let cleaned = logs.clean_dirtiest(&mut map);
                    (map, cleaned)
                })
                .await;
                match cleaned {
                    Ok((returned, cleaned)) => {
                        map = returned;
                        acked.lock().expect("acked").cleanings += usize::from(cleaned);
                    }
                    Err(_) => return,
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    for t in tasks {
        let _ = t.await;
    }
    let _ = committer.await;
    let _ = cleaner.await;
}

/// Everything the checks found wrong (empty: consistent).
async fn verify(broker: &Arc<Broker>, acked: &Acknowledged) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(topic) = broker.logs.topic(TOPIC) else {
        if acked.topic_created {
            problems.push("an acknowledged topic is gone".into());
        }
        return problems;
    };
    if topic.partitions.len() != PARTITIONS as usize {
        problems.push(format!("{} partitions", topic.partitions.len()));
        return problems;
    }
    // (producer, partition, sequence) -> offset, from the log.
    let mut stored: HashMap<(i64, i32, i32), i64> = HashMap::new();
    for (partition, log) in topic.partitions.iter().enumerate() {
        let partition = partition as i32;
        if let Err(e) = log.check_consistency() {
            problems.push(format!("partition {partition}: {e}"));
            continue;
        }
        let mut offset = log.log_start_offset();
        let mut last_seq: HashMap<i64, i32> = HashMap::new();
        while offset < log.high_watermark() {
            let read = match log.read(offset, 1 << 20, true, false) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!("partition {partition}: read at {offset}: {e}"));
                    break;
                }
            };
            let mut bytes = read.records;
            if bytes.is_empty() {
                problems.push(format!("partition {partition}: empty read at {offset}"));
                break;
            }
            while !bytes.is_empty() {
                let h = match check_batch(&bytes) {
                    Ok(h) => h,
                    Err(e) => {
                        problems.push(format!("partition {partition}: served a bad batch: {e}"));
                        return problems;
                    }
                };
                if h.base_offset != offset {
                    problems.push(format!(
                        "partition {partition}: batch at {} where {offset} was expected",
                        h.base_offset
                    ));
                }
                let seq_expected = last_seq.get(&h.producer_id).map_or(0, |s| s + 1);
                if h.base_sequence != seq_expected {
                    problems.push(format!(
                        "partition {partition}: producer {} sequence {} after {}",
                        h.producer_id,
                        h.base_sequence,
                        seq_expected - 1
                    ));
                }
                last_seq.insert(h.producer_id, h.base_sequence + h.records_count - 1);
                for kv in decode_key_values(&bytes[..h.size()]).unwrap_or_default() {
                    let value = kv.value.unwrap_or_default();
                    let text = String::from_utf8_lossy(&value);
                    let mut parts = text.split(':');
                    let pid: i64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
                    let seq: i32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(-1);
                    if stored.insert((pid, partition, seq), kv.offset).is_some() {
                        problems.push(format!(
                            "partition {partition}: producer {pid} sequence {seq} stored twice"
                        ));
                    }
                }
                offset = h.next_offset();
                bytes.advance(h.size());
            }
        }
        // Producer state must describe exactly the batches in the log.
        let state: HashMap<i64, i32> = log
            .producers()
            .into_iter()
            .filter_map(|(pid, e)| e.batches.back().map(|b| (pid, b.last_seq)))
            .collect();
        if state != last_seq {
            problems.push(format!(
                "partition {partition}: producer state {state:?} but the log says {last_seq:?}"
            ));
        }
    }
    for ((pid, partition, seq), (offset, count)) in &acked.batches {
        for k in 0..*count {
            let found = stored.get(&(*pid, *partition, seq + k));
            if found != Some(&(offset + k as i64)) {
                problems.push(format!(
                    "acknowledged producer {pid} partition {partition} sequence {} at offset {}: found {found:?}",
                    seq + k,
                    offset + k as i64
                ));
            }
        }
    }
    // Group offsets.
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_indexes((0..PARTITIONS).collect())]));
    match call::<_, OffsetFetchResponse>(broker, ApiKey::OffsetFetch, 7, &request).await {
        Ok(r) => {
            for p in r.topics.iter().flat_map(|t| t.partitions.iter()) {
                let (acked_offset, attempted) = acked
                    .commits
                    .get(&p.partition_index)
                    .copied()
                    .unwrap_or((-1, -1));
                if p.committed_offset < acked_offset || p.committed_offset > attempted {
                    problems.push(format!(
                        "partition {} committed offset {} outside [{acked_offset}, {attempted}]",
                        p.partition_index, p.committed_offset
                    ));
                }
            }
        }
        Err(e) => problems.push(format!("OffsetFetch: {e}")),
    }
    problems
}

/// Runs the workload, crashing at operation `crash_at` (counted from the start of the
/// workload) if given; returns what was acknowledged and the operations the run took.
async fn run_once(
    sim: &SimulatedStorage,
    crash_at: Option<u64>,
    seed: u64,
    lying_disk: bool,
) -> (Acknowledged, u64) {
    let broker = open(sim).await.expect("open the empty broker");
    let start = sim.ops();
    if let Some(n) = crash_at {
        sim.crash_at(start + n);
    }
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let run = workload(broker, acked.clone(), seed, lying_disk.then(|| sim.clone()));
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the workload finishes (or fails) instead of hanging");
    let ops = sim.ops() - start;
    let acked = std::mem::take(&mut *acked.lock().expect("acked"));
    (acked, ops)
}

/// Runs the workload, crashes, recovers and checks; returns the problems found and how many
/// batches had been acknowledged before the crash (what the checks had to find again).
async fn crash_and_check(
    seed: u64,
    crash_at: Option<u64>,
    lying_disk: bool,
) -> (Vec<String>, usize) {
    let sim = SimulatedStorage::new(seed);
    sim.create_dir_all_durable(Path::new("/data"));
    let (acked, _) = run_once(&sim, crash_at, seed, lying_disk).await;
    let acked_batches = acked.batches.len();
    sim.power_loss();
    sim.forget_syncs(false);
    let broker = match open(&sim).await {
        Ok(b) => b,
        Err(e) => return (vec![format!("recovery failed: {e}")], acked_batches),
    };
    let mut problems = verify(&broker, &acked).await;
    // The recovered broker takes new data right after what survived.
    if broker.logs.topic(TOPIC).is_some() {
        let before = broker
            .logs
            .topic(TOPIC)
            .map(|t| t.partitions[0].high_watermark());
        match init_producer(&broker).await {
            Ok((pid, epoch)) => {
                let batch = idempotent_batch(&[b"after"], 1_700_000_000_000, pid, epoch, 0);
                match produce(&broker, 0, Bytes::from(batch)).await {
                    Ok(offset) if Some(offset) == before => {}
                    other => problems.push(format!(
                        "produce after recovery: {other:?}, expected offset {before:?}"
                    )),
                }
            }
            Err(e) => problems.push(format!("InitProducerId after recovery: {e}")),
        }
    }
    (problems, acked_batches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_data_survives_a_crash_at_any_io_operation() {
    // A full run without a crash says how many operations the workload takes.
    let sim = SimulatedStorage::new(1);
    sim.create_dir_all_durable(Path::new("/data"));
    let (acked, ops) = run_once(&sim, None, 1, false).await;
    assert_eq!(
        acked.batches.len(),
        PRODUCERS * BATCHES_PER_PRODUCER as usize,
        "every batch is acknowledged without a crash"
    );
    assert!(ops > 100, "the workload does I/O ({ops} operations)");
    assert!(
        acked.cleanings > 0,
        "the cleaner compacts __consumer_offsets during the workload, so crashes hit it"
    );
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let iterations = 300;
    let (mut acked_total, mut runs_with_acks) = (0, 0);
    for seed in 1..=iterations {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let crash_at = 1 + rng % ops;
        let (problems, acked) = crash_and_check(seed, Some(crash_at), false).await;
        assert!(
            problems.is_empty(),
            "seed {seed}, crash at operation {crash_at} of {ops}:\n{}",
            problems.join("\n")
        );
        acked_total += acked;
        runs_with_acks += usize::from(acked > 0);
    }
    // Crash points are spread over the whole workload, so most runs crash after some
    // acknowledgements: if they did not, the checks above had nothing to verify.
    assert!(
        runs_with_acks >= iterations as usize / 4,
        "only {runs_with_acks} of {iterations} runs acknowledged anything before the crash"
    );
    eprintln!("{iterations} crashes: {acked_total} acknowledged batches checked, {runs_with_acks} runs with acknowledgements");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_catch_a_disk_that_lies_about_fsync() {
    // Same workload, but fsync does nothing: a crash at the end loses acknowledged data,
    // and the verification must say so.
    for seed in 1..=5 {
        let (problems, _) = crash_and_check(seed, None, true).await;
        assert!(
            problems.iter().any(|p| p.starts_with("acknowledged producer")),
            "seed {seed}: a lying disk loses acknowledged batches, and the checks see it: {problems:?}"
        );
    }
}

mod disk_errors;
