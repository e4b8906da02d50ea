//! Idempotent producers: InitProducerId, duplicates acknowledged with their original
//! offsets and stored once, sequence gaps refused, producer state surviving kill -9; and
//! the rdkafka producer with enable.idempotence delivering everything exactly once.

use std::collections::HashSet;
use std::time::Duration;

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::clients::{consume_all, create_topic};
use crate::raw::{batch, call, produce_request};
use crate::support::Broker;

fn produce(addr: &str, records: bytes::Bytes) -> (i16, i64) {
    let request = produce_request("idem", records);
    let r: ProduceResponse = call(addr, ApiKey::Produce, 9, &request);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn high_watermark(addr: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .unwrap();
    c.fetch_watermarks("idem", 0, Duration::from_secs(10))
        .unwrap()
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_batches_are_stored_once_and_gaps_are_refused_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "idem", 1).await;
    let init: InitProducerIdResponse = call(
        &broker.addr,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    );
    assert_eq!(init.error_code, 0);
    assert_eq!(init.producer_epoch, 0);
    let pid = *init.producer_id;
    let second: InitProducerIdResponse = call(
        &broker.addr,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default().with_transactional_id(None),
    );
    assert_ne!(*second.producer_id, pid, "every producer gets its own id");

    let first = batch(&[b"a", b"b", b"c"], pid, 0, 0);
    assert_eq!(produce(&broker.addr, first.clone()), (0, 0));
    assert_eq!(
        produce(&broker.addr, first.clone()),
        (0, 0),
        "a retry gets the original offset"
    );
    assert_eq!(high_watermark(&broker.addr), 3, "and is not stored again");
    let next = batch(&[b"d"], pid, 0, 3);
    assert_eq!(produce(&broker.addr, next.clone()), (0, 3));
    assert_eq!(
        produce(&broker.addr, batch(&[b"x"], pid, 0, 10)).0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );

    // The producer state survives a crash (snapshot or replay of the log).
    let broker = broker.restart_after(Broker::kill9, &[]);
    assert_eq!(
        produce(&broker.addr, next.clone()),
        (0, 3),
        "still a duplicate after kill -9"
    );
    let gap = produce(&broker.addr, batch(&[b"x"], pid, 0, 10));
    assert_eq!(gap.0, 45, "gap after restart: {gap:?}");
    assert_eq!(produce(&broker.addr, batch(&[b"e"], pid, 0, 4)), (0, 4));
    // And a clean restart (snapshot at shutdown).
    let broker = broker.restart_after(Broker::stop, &[]);
    assert_eq!(produce(&broker.addr, batch(&[b"e"], pid, 0, 4)), (0, 4));
    assert_eq!(high_watermark(&broker.addr), 5);
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_rdkafka_producer_delivers_everything_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "idem", 2).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let mut pending = Vec::new();
    for i in 0..5000 {
        let key = format!("k{i}");
        pending.push(
            producer
                .send_result(FutureRecord::to("idem").key(&key).payload(&key))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
    }
    for p in pending {
        p.await.unwrap().expect("delivered");
    }
    let seen = consume_all(&broker.addr, "idem", 2, 5000);
    let keys: HashSet<Vec<u8>> = seen.iter().map(|m| m.key.clone()).collect();
    assert_eq!(keys.len(), 5000, "no duplicates, nothing missing");
    // DescribeProducers sees one producer, with the last sequence it wrote.
    let described: DescribeProducersResponse = call(
        &broker.addr,
        ApiKey::DescribeProducers,
        0,
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(TopicName(StrBytes::from_static_str("idem")))
            .with_partition_indexes(vec![0, 1])]),
    );
    for (p, partition) in described.topics[0].partitions.iter().enumerate() {
        let count = seen.iter().filter(|m| m.partition == p as i32).count() as i32;
        assert_eq!(partition.active_producers.len(), 1);
        assert_eq!(partition.active_producers[0].last_sequence, count - 1);
    }
    broker.stop();
}
