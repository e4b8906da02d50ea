//! Transactions through the rdkafka crate: commit and abort seen correctly by read_committed
//! and read_uncommitted consumers, consume-transform-produce with offsets in the
//! transaction, fencing by a second producer with the same transactional id, and a kill -9
//! in the middle of a transaction.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest,
    ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::clients::create_topic;
use crate::raw::{call, transactional_batch};
use crate::support::Broker;

const T: Duration = Duration::from_secs(30);

fn txn_producer(addr: &str, id: &str) -> BaseProducer {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .create()
        .expect("producer");
    p.init_transactions(T).expect("init_transactions");
    p
}

fn send(p: &BaseProducer, topic: &str, values: &[String]) {
    for v in values {
        p.send(BaseRecord::<(), _>::to(topic).partition(0).payload(v))
            .expect("enqueue");
    }
    p.flush(T).expect("flush");
}

/// Everything readable in `topic` partition 0 with the given isolation level: at least
/// `expected` values (or what came within 30 s), then whatever more arrives until nothing
/// has for a second. The quiet second starts only once `expected` are in, so a slow client
/// start-up cannot end the read early.
fn read_values(addr: &str, topic: &str, isolation: &str, expected: usize) -> Vec<String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", format!("reader-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (out.len() < expected || quiet_since.elapsed() < Duration::from_secs(1))
        && Instant::now() < deadline
    {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("message");
            out.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
            quiet_since = Instant::now();
        }
    }
    out
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_and_aborted_transactions_are_seen_according_to_isolation() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "txn", 1).await;
    let p = txn_producer(&broker.addr, "tx-1");
    p.begin_transaction().unwrap();
    send(&p, "txn", &values("committed", 10));
    p.commit_transaction(T).expect("commit");
    p.begin_transaction().unwrap();
    send(&p, "txn", &values("aborted", 5));
    p.abort_transaction(T).expect("abort");
    p.begin_transaction().unwrap();
    send(&p, "txn", &values("second", 3));
    p.commit_transaction(T).expect("commit");

    let committed = read_values(&broker.addr, "txn", "read_committed", 13);
    let mut expected = values("committed", 10);
    expected.extend(values("second", 3));
    assert_eq!(committed, expected);
    let uncommitted = read_values(&broker.addr, "txn", "read_uncommitted", 18);
    assert_eq!(
        uncommitted.len(),
        18,
        "read_uncommitted sees the aborted records too"
    );

    // An open transaction holds back read_committed readers (last stable offset)...
    p.begin_transaction().unwrap();
    send(&p, "txn", &values("open", 2));
    assert_eq!(
        read_values(&broker.addr, "txn", "read_committed", 13).len(),
        13
    );
    assert_eq!(
        read_values(&broker.addr, "txn", "read_uncommitted", 20).len(),
        20
    );
    // ...and everything survives a restart: aborted stays aborted.
    p.commit_transaction(T).expect("commit");
    drop(p);
    let broker = broker.restart_after(Broker::stop, &[]);
    let committed = read_values(&broker.addr, "txn", "read_committed", 15);
    assert_eq!(committed.len(), 15);
    assert!(committed.iter().all(|v| !v.starts_with("aborted")));
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_commits_offsets_with_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "input", 1).await;
    create_topic(&broker.addr, "output", 1).await;
    let seed: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .create()
        .unwrap();
    send(&seed, "input", &values("in", 20));

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "transformers")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    consumer.subscribe(&["input"]).unwrap();
    let p = txn_producer(&broker.addr, "transformer");
    let mut consumed = 0;
    let mut aborted_once = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumed < 20 && Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        p.begin_transaction().unwrap();
        let out = format!("out-{}", String::from_utf8_lossy(m.payload().unwrap()));
        send(&p, "output", &[out]);
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("input", 0, Offset::Offset(m.offset() + 1))
            .unwrap();
        let metadata = consumer.group_metadata().unwrap();
        p.send_offsets_to_transaction(&offsets, &metadata, T)
            .expect("send offsets");
        // Abort every fifth transaction once: its output and its offset vanish together.
        if m.offset() % 5 == 4 && aborted_once.insert(m.offset()) {
            p.abort_transaction(T).unwrap();
            // Rewind to the uncommitted position and process the record again.
            consumer
                .seek("input", 0, Offset::Offset(m.offset()), T)
                .unwrap();
        } else {
            p.commit_transaction(T).unwrap();
            consumed += 1;
        }
    }
    assert_eq!(
        consumed, 20,
        "every record processed once by a committed transaction"
    );
    assert_eq!(aborted_once.len(), 4);
    let committed = consumer.committed(T).unwrap();
    assert!(committed
        .elements()
        .iter()
        .all(|e| e.offset() != Offset::Offset(0)));
    let out = read_values(&broker.addr, "output", "read_committed", 20);
    let unique: BTreeSet<&String> = out.iter().collect();
    assert_eq!(out.len(), 20, "aborted outputs are invisible");
    assert_eq!(out.len(), unique.len(), "no output twice");
    // Close the consumer: it leaves the group. (rdkafka's BaseConsumer drop does not return
    // in this sequence although the LeaveGroup was answered; closing on a detached thread
    // and checking the group's state on the broker keeps the test bounded.)
    std::thread::spawn(move || drop(consumer));
    let describe = || {
        let r: DescribeGroupsResponse = call(
            &broker.addr,
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(StrBytes::from_static_str("transformers"))]),
        );
        r.groups[0].group_state.to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while describe() != "Empty" {
        assert!(Instant::now() < deadline, "the consumer left the group");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The group's committed offset is exactly what the last committed transaction set.
    let check: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "transformers")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("input", 0);
    let committed = check.committed_offsets(tpl, T).unwrap();
    let last_committed_input = out
        .iter()
        .filter_map(|v| v.strip_prefix("out-in-"))
        .filter_map(|n| n.parse::<i64>().ok())
        .max()
        .unwrap();
    assert_eq!(
        committed.elements()[0].offset(),
        Offset::Offset(last_committed_input + 1)
    );
    let _ = check.commit_consumer_state(CommitMode::Sync);
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "fence", 1).await;
    let old = txn_producer(&broker.addr, "shared-id");
    old.begin_transaction().unwrap();
    send(&old, "fence", &values("zombie", 3));
    let new = txn_producer(&broker.addr, "shared-id");
    let fenced = old.commit_transaction(T);
    match fenced {
        Err(KafkaError::Transaction(e)) => assert!(e.is_fatal() || e.txn_requires_abort(), "{e}"),
        other => panic!("the old producer must be fenced, got {other:?}"),
    }
    new.begin_transaction().unwrap();
    send(&new, "fence", &values("alive", 2));
    new.commit_transaction(T).unwrap();
    assert_eq!(
        read_values(&broker.addr, "fence", "read_committed", 2),
        values("alive", 2)
    );
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_transaction_leaves_no_half_visible_data() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "crash", 1).await;
    let p = txn_producer(&broker.addr, "crasher");
    p.begin_transaction().unwrap();
    send(&p, "crash", &values("done", 4));
    p.commit_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    send(&p, "crash", &values("half", 4));
    drop(p);
    let broker = broker.restart_after(Broker::kill9, &[]);
    // The open transaction was aborted at start-up: read_committed sees only the commit,
    // and is not held back by it.
    assert_eq!(
        read_values(&broker.addr, "crash", "read_committed", 4),
        values("done", 4)
    );
    // A new producer with the same id works.
    let p = txn_producer(&broker.addr, "crasher");
    p.begin_transaction().unwrap();
    send(&p, "crash", &values("after", 1));
    p.commit_transaction(T).unwrap();
    let mut expected = values("done", 4);
    expected.extend(values("after", 1));
    assert_eq!(
        read_values(&broker.addr, "crash", "read_committed", 5),
        expected
    );
    broker.stop();
}

/// Kafka's partition verification (KIP-890 part 1): a transactional batch for a partition
/// the transaction has not added is refused with INVALID_TXN_STATE, and nothing is written.
/// Found by the differential runner against Kafka 4.1: Gregor used to append it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_batch_for_a_partition_not_in_the_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "verify", 2).await;
    let txn = TransactionalId(StrBytes::from_static_str("verify-txn"));
    let init: InitProducerIdResponse = call(
        &broker.addr,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(txn.clone()))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    let topic = TopicName(StrBytes::from_static_str("verify"));
    let added: AddPartitionsToTxnResponse = call(
        &broker.addr,
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn.clone())
            .with_v3_and_below_producer_id(pid)
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(topic.clone())
                .with_partitions(vec![0])]),
    );
    assert!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 0
    );
    let produce = |partition: i32| -> ProduceResponse {
        call(
            &broker.addr,
            ApiKey::Produce,
            9,
            &ProduceRequest::default()
                .with_transactional_id(Some(txn.clone()))
                .with_acks(-1)
                .with_timeout_ms(10_000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic.clone())
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(transactional_batch(&[b"v"], *pid, epoch, 0)))])]),
        )
    };
    let refused = &produce(1).responses[0].partition_responses[0];
    assert_eq!(refused.error_code, 48, "INVALID_TXN_STATE");
    assert_eq!((refused.base_offset, refused.log_start_offset), (-1, -1));
    let accepted = &produce(0).responses[0].partition_responses[0];
    assert_eq!((accepted.error_code, accepted.base_offset), (0, 0));
    broker.stop();
}
