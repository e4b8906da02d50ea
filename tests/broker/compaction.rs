//! Compacted topics through real clients: keyless records are refused per record, the
//! cleaner compacts a changelog in the background while the broker serves it, a
//! Kafka-Streams-style restore (read everything from the beginning into a table) gives the
//! table as last written, sizes shrink, and the cleaner's checkpoint survives a restart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::raw::call;
use crate::support::Broker;

/// A cleaner that looks for work every 100 ms.
const CLEANER: [&str; 1] = ["log.cleaner.backoff.ms=100"];

async fn create_compacted(addr: &str, name: &str, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("admin");
    let mut topic =
        NewTopic::new(name, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin
        .create_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

fn producer(addr: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("message.timeout.ms", "10000")
        .set("linger.ms", "5");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("producer")
}

/// Waits for every queued record's delivery; any failure fails the test.
async fn delivered(deliveries: Vec<rdkafka::producer::DeliveryFuture>) {
    for d in deliveries {
        d.await
            .expect("delivered")
            .map_err(|(e, _)| e)
            .expect("produced");
    }
}

/// A consumed record: offset, key, value (None: a tombstone).
type Stored = (i64, Vec<u8>, Option<Vec<u8>>);

/// Reads the whole partition from the beginning to its high watermark, as a Kafka Streams
/// restore does: (offset, key, value) in order.
fn read_all(addr: &str, topic: &str) -> Vec<Stored> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "restore")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut position = 0;
    while position < high && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                position = m.offset() + 1;
                out.push((
                    m.offset(),
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().map(<[u8]>::to_vec),
                ));
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {
                // A compacted tail may end before the high watermark in a gap.
                if let Ok(Some(p)) = consumer.position().map(|tpl| {
                    tpl.find_partition(topic, 0)
                        .and_then(|e| e.offset().to_raw())
                }) {
                    position = position.max(p);
                }
            }
            Some(Err(e)) => panic!("consume: {e}"),
        }
    }
    out
}

fn table(records: &[Stored]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut table = BTreeMap::new();
    for (_, key, value) in records {
        match value {
            Some(v) => table.insert(key.clone(), v.clone()),
            None => table.remove(key),
        };
    }
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_are_refused_one_by_one_on_a_compacted_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_compacted(&broker.addr, "keys-required", &[]).await;
    let p = producer(&broker.addr, &[("batch.size", "1")]);
    let keyless = p
        .send(
            FutureRecord::<(), _>::to("keys-required").payload("no key"),
            Duration::from_secs(10),
        )
        .await;
    match keyless {
        Err((e, _)) => assert_eq!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::InvalidRecord)
        ),
        Ok(delivered) => panic!("a keyless record was stored at {delivered:?}"),
    }
    let keyed = p
        .send(
            FutureRecord::to("keys-required").key("k").payload("v"),
            Duration::from_secs(10),
        )
        .await
        .expect("a keyed record is stored");
    assert_eq!(keyed.offset, 0, "the refused record took no offset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_is_compacted_in_the_background_and_restores_to_the_same_table() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &CLEANER);
    create_compacted(
        &broker.addr,
        "changelog",
        &[
            ("segment.bytes", "4096"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    )
    .await;
    let p = producer(
        &broker.addr,
        &[
            ("compression.type", "lz4"),
            ("enable.idempotence", "true"),
            ("batch.size", "2000"),
        ],
    );
    let mut expected = BTreeMap::new();
    let mut deliveries = Vec::new();
    const RECORDS: usize = 6000;
    const KEYS: usize = 50;
    for i in 0..RECORDS {
        let key = format!("key-{}", i % KEYS);
        let value = format!("value-{i}");
        // Every 7th key is deleted at the end of its round, like a store's delete().
        let tombstone = i % KEYS == 7 && i >= RECORDS - KEYS;
        let record = FutureRecord::to("changelog").key(&key);
        let record = if tombstone {
            record
        } else {
            record.payload(&value)
        };
        deliveries.push(p.send_result(record).map_err(|(e, _)| e).expect("queued"));
        if tombstone {
            expected.remove(key.as_bytes());
        } else {
            expected.insert(key.into_bytes(), value.into_bytes());
        }
    }
    delivered(deliveries).await;
    p.flush(Duration::from_secs(10)).expect("flush");
    // The cleaner runs in the background: wait (bounded) until it has compacted.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = read_all(&broker.addr, "changelog");
    while records.len() > RECORDS / 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        records = read_all(&broker.addr, "changelog");
    }
    assert!(
        records.len() <= RECORDS / 2,
        "not compacted within 60 s: {} records left",
        records.len()
    );
    assert!(
        records.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets increase"
    );
    assert_eq!(table(&records), expected, "the restored table");
    // What compaction left: one record per key in the cleaned part, no lost key.
    let broker = broker.restart_after(Broker::stop, &CLEANER);
    let again = read_all(&broker.addr, "changelog");
    assert_eq!(table(&again), expected, "after a restart");
    assert!(again.len() <= records.len());
    let checkpoint = std::fs::read_to_string(dir.path().join("cleaner-offset-checkpoint"))
        .expect("the cleaner checkpoint is written");
    assert!(
        checkpoint
            .lines()
            .any(|l| l.starts_with("changelog 0 ") && !l.ends_with(" 0")),
        "{checkpoint}"
    );
}

fn partition_size(addr: &str, topic: &'static str) -> i64 {
    let dirs: DescribeLogDirsResponse = call(
        addr,
        ApiKey::DescribeLogDirs,
        4,
        &DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(topic)))
                .with_partitions(vec![0]),
        ])),
    );
    dirs.results[0].topics[0].partitions[0].partition_size
}

/// A topic switched live from `delete` to `compact` is cleaned, and DescribeLogDirs reports
/// the smaller partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_a_topic_to_compact_shrinks_it_in_describe_log_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &CLEANER);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .expect("admin");
    let topic = NewTopic::new("switched", 1, TopicReplication::Fixed(1))
        .set("segment.bytes", "4096")
        .set("min.cleanable.dirty.ratio", "0.01");
    for r in admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .expect("create_topics")
    {
        r.expect("created");
    }
    let p = producer(&broker.addr, &[("batch.size", "2000")]);
    let mut expected = BTreeMap::new();
    let mut deliveries = Vec::new();
    for i in 0..2000 {
        let (key, value) = (format!("k{}", i % 20), format!("v{i}"));
        deliveries.push(
            p.send_result(FutureRecord::to("switched").key(&key).payload(&value))
                .map_err(|(e, _)| e)
                .expect("queued"),
        );
        expected.insert(key.into_bytes(), value.into_bytes());
    }
    delivered(deliveries).await;
    let before = partition_size(&broker.addr, "switched");
    let switch: IncrementalAlterConfigsResponse = call(
        &broker.addr,
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("switched"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("cleanup.policy"))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_static_str("compact")))]),
        ]),
    );
    assert_eq!(switch.responses[0].error_code, 0, "{switch:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = partition_size(&broker.addr, "switched");
    while after * 2 > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = partition_size(&broker.addr, "switched");
    }
    assert!(
        after * 2 <= before,
        "{before} bytes, then {after} after 60 s"
    );
    assert_eq!(table(&read_all(&broker.addr, "switched")), expected);
}
