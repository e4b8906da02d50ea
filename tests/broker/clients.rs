//! The rdkafka crate (librdkafka 2.12) against Gregor: create a topic, produce keyed
//! messages with headers at acks=all, consume them back exactly, across a clean restart
//! and across a kill -9 in the middle of producing.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::Broker;

fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("admin client")
}

fn producer(addr: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer")
}

pub async fn create_topic(addr: &str, name: &str, partitions: i32) {
    let results = admin(addr)
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// A consumed message, reduced to what the tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub timestamp: Option<i64>,
}

/// Reads partitions `0..partitions` of `topic` from the beginning until `expected`
/// messages arrived (or 60 s passed), without a consumer group.
pub fn consume_all(addr: &str, topic: &str, partitions: i32, expected: usize) -> Vec<Seen> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        // librdkafka wants a group id even for assign(); no group API is used.
        .set("group.id", "gregor-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(Seen {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().unwrap_or_default().to_vec(),
                value: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp: m.timestamp().to_millis(),
            }),
            // A dropped connection is librdkafka's to retry (in cluster mode, a broker that
            // just restarted may still be named at its old address); the count decides.
            Some(Err(rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
            ))) => {}
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    // Nothing more should arrive.
    if out.len() == expected {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            panic!(
                "unexpected extra message at {}:{}",
                m.partition(),
                m.offset()
            );
        }
    }
    out
}

const MESSAGES: usize = 10_000;
const BASE_TS: i64 = 1_700_000_000_000;

fn key(i: usize) -> String {
    format!("key-{i:05}")
}

fn value(i: usize) -> String {
    format!("value-{i}-{}", "x".repeat(i % 50))
}

fn check_all(seen: &[Seen], acked: &HashMap<String, (i32, i64)>) {
    assert_eq!(seen.len(), MESSAGES);
    let mut last_offset: BTreeMap<i32, i64> = BTreeMap::new();
    for m in seen {
        let k = String::from_utf8(m.key.clone()).unwrap();
        let i: usize = k.strip_prefix("key-").unwrap().parse().unwrap();
        assert_eq!(m.value, value(i).into_bytes(), "value of {k}");
        assert_eq!(
            m.headers,
            vec![
                ("index".to_string(), i.to_string().into_bytes()),
                ("source".to_string(), b"gregor-test".to_vec())
            ],
            "headers of {k}"
        );
        assert_eq!(m.timestamp, Some(BASE_TS + i as i64), "timestamp of {k}");
        assert_eq!(acked[&k], (m.partition, m.offset), "position of {k}");
        // Per-partition order: offsets strictly increase, and so do the keys sent there.
        if let Some(prev) = last_offset.insert(m.partition, m.offset) {
            assert!(m.offset > prev, "partition {} out of order", m.partition);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_keyed_messages_with_headers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "orders", 3).await;

    let producer = producer(&broker.addr);
    let mut pending = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let (k, v) = (key(i), value(i));
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "index",
                value: Some(i.to_string().as_bytes()),
            })
            .insert(Header {
                key: "source",
                value: Some(b"gregor-test".as_slice()),
            });
        let record = FutureRecord::to("orders")
            .key(&k)
            .payload(&v)
            .headers(headers)
            .timestamp(BASE_TS + i as i64);
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| e)
            .expect("enqueue");
        pending.push((k, delivery));
    }
    let mut acked = HashMap::new();
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (k, delivery) in pending {
        let delivered = delivery.await.expect("delivery").expect("acked");
        per_partition
            .entry(delivered.partition)
            .or_default()
            .push(delivered.offset);
        acked.insert(k, (delivered.partition, delivered.offset));
    }
    assert_eq!(per_partition.len(), 3, "keys spread over all 3 partitions");
    for offsets in per_partition.values() {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, &expected, "offsets are contiguous from 0");
    }
    drop(producer);

    let seen = consume_all(&broker.addr, "orders", 3, MESSAGES);
    check_all(&seen, &acked);

    // After the restart Fetch sends the records with sendfile: the same records arrive.
    let broker = broker.restart_after(Broker::stop, &["socket.sendfile.enable=true"]);
    let seen = consume_all(&broker.addr, "orders", 3, MESSAGES);
    check_all(&seen, &acked);
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "events", 2).await;

    let producer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "5000")
        .set("retries", "0")
        .create::<FutureProducer>()
        .expect("producer");
    // Keep up to 200 sends in flight; kill the broker after 3,000 acknowledgements.
    let mut acked: HashMap<String, (i32, i64)> = HashMap::new();
    let mut in_flight = std::collections::VecDeque::new();
    let mut killer = Some(broker);
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && sent < 20_000 {
        while in_flight.len() < 200 && killer.is_some() {
            let k = format!("k{sent}");
            let v = format!("v{sent}");
            let record = FutureRecord::to("events").key(&k).payload(&v);
            match producer.send_result(record) {
                Ok(delivery) => in_flight.push_back((k.clone(), delivery)),
                Err(_) => break,
            }
            sent += 1;
        }
        let Some((k, delivery)) = in_flight.pop_front() else {
            break;
        };
        if let Ok(Ok(d)) = delivery.await {
            acked.insert(k, (d.partition, d.offset));
        }
        if acked.len() >= 3_000 {
            if let Some(b) = killer.take() {
                b.kill9();
            }
        }
    }
    assert!(killer.is_none(), "the broker was killed mid-stream");
    drop(producer);
    assert!(acked.len() >= 3_000);

    let broker = Broker::start(dir.path(), &[]);
    // Read everything there is (acknowledged or not) and index it by position.
    let total = {
        let end = rdkafka_end_offsets(&broker.addr, "events", 2);
        end.iter().sum::<i64>() as usize
    };
    let seen = consume_all(&broker.addr, "events", 2, total);
    assert_eq!(seen.len(), total);
    let by_position: HashMap<(i32, i64), String> = seen
        .iter()
        .map(|m| {
            (
                (m.partition, m.offset),
                String::from_utf8(m.key.clone()).unwrap(),
            )
        })
        .collect();
    let mut key_count: HashMap<&str, usize> = HashMap::new();
    for k in by_position.values() {
        *key_count.entry(k).or_default() += 1;
    }
    for (k, pos) in &acked {
        assert_eq!(by_position.get(pos), Some(k), "acknowledged {k} at {pos:?}");
        assert_eq!(key_count[k.as_str()], 1, "{k} stored exactly once");
    }
    broker.stop();
}

/// High watermarks of `partitions` partitions.
fn rdkafka_end_offsets(addr: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks")
                .1
        })
        .collect()
}
