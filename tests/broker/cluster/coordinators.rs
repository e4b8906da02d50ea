//! A consumer group and a transaction survive the loss of the broker that coordinated them.

use super::*;

/// The node id of the broker that `addr` says coordinates `group` (None: an error).
fn coordinator_of(addr: &str, group: &str) -> Option<i32> {
    find_coordinator(addr, 0, group)
}

/// FindCoordinator for a group (`key_type` 0) or a transactional id (1).
fn find_coordinator(addr: &str, key_type: i8, key: &str) -> Option<i32> {
    use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
    let response: FindCoordinatorResponse = crate::raw::call(
        addr,
        ApiKey::FindCoordinator,
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(key_type)
            .with_coordinator_keys(vec![kafka_protocol::protocol::StrBytes::from_string(
                key.to_string(),
            )]),
    );
    let found = &response.coordinators[0];
    (found.error_code == 0).then_some(found.node_id.0)
}

/// A group's committed offsets of `topic`'s 4 partitions, read through `addr` (-1: none),
/// by a client that does not join the group.
fn committed_through(addr: &str, group: &str, topic: &str) -> Result<Vec<i64>, String> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut wanted = rdkafka::TopicPartitionList::new();
    for p in 0..4 {
        wanted.add_partition(topic, p);
    }
    let committed = client
        .committed_offsets(wanted, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    Ok((0..4)
        .map(
            |p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(rdkafka::Offset::Offset(o)) => o,
                _ => -1,
            },
        )
        .collect())
}

/// Commits `consumer`'s positions; nothing new to commit is no failure.
fn commit(consumer: &BaseConsumer) -> rdkafka::error::KafkaResult<()> {
    match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        Err(rdkafka::error::KafkaError::ConsumerCommit(
            rdkafka::types::RDKafkaErrorCode::NoOffset,
        )) => Ok(()),
        other => other,
    }
}

/// Polls `consumer` until it has seen `count` distinct messages, committing after each 100
/// (a member that rejoins after its group moved may read again from the last commit).
fn consume_and_commit(
    consumer: &BaseConsumer,
    count: usize,
    seen: &mut std::collections::HashSet<String>,
) {
    use rdkafka::consumer::CommitMode;
    use rdkafka::Message;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut polled = 0;
    while seen.len() < count {
        assert!(
            Instant::now() < deadline,
            "{} of {count} consumed in 120 s",
            seen.len()
        );
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.insert(String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned());
            polled += 1;
            if polled % 100 == 0 {
                // Refused while the group moves (NOT_COORDINATOR): a later one carries
                // the position anyway.
                let _ = consumer.commit_consumer_state(CommitMode::Sync);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_group_survives_the_loss_of_its_coordinator() {
    let Some((_one, _engines, _dirs, brokers)) =
        three_brokers("a_consumer_group_survives_the_loss_of_its_coordinator").await
    else {
        return;
    };
    let mut brokers = brokers.into_iter().map(Some).collect::<Vec<_>>();
    let all = bootstrap(brokers.iter().flatten());
    create_topic(&all, "tasks", 4).await;
    let acked = produce(&producer(&all), "tasks", 2_000, 2_000, || {}).await;
    let ends = end_offsets_covering(&brokers[0].as_ref().unwrap().addr, "tasks", &acked);

    // Every broker names the same coordinator.
    let node = coordinator_of(&brokers[0].as_ref().unwrap().addr, "workers")
        .expect("FindCoordinator answered");
    for b in brokers.iter().flatten() {
        assert_eq!(
            coordinator_of(&b.addr, "workers"),
            Some(node),
            "through {}",
            b.addr
        );
    }

    // A member consumes half and commits; then its coordinator dies (kill -9).
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .set("group.id", "workers")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["tasks"]).unwrap();
    let mut seen = std::collections::HashSet::new();
    consume_and_commit(&consumer, 1_000, &mut seen);
    wait_for(60, || {
        commit(&consumer).map_err(|e| format!("commit before the loss: {e}"))
    });
    let before = committed_through(&all, "workers", "tasks").unwrap();
    let positions: i64 = before.iter().map(|&o| o.max(0)).sum();
    assert_eq!(positions, 1_000, "committed {before:?}");
    brokers[node as usize - 1].take().unwrap().kill9();
    let survivors = bootstrap(brokers.iter().flatten());

    // Another broker takes the group over with its committed offsets.
    let asked = brokers.iter().flatten().next().unwrap().addr.clone();
    let moved = wait_for(60, || match coordinator_of(&asked, "workers") {
        Some(moved) if moved != node => Ok(moved),
        other => Err(format!("the group on broker {other:?}, was {node}")),
    });
    wait_for(60, || {
        match committed_through(&survivors, "workers", "tasks") {
            Ok(after) if after == before => Ok(()),
            other => Err(format!(
                "broker {moved} has {other:?}, committed {before:?}"
            )),
        }
    });

    // The member goes on with the new coordinator and commits the rest there.
    consume_and_commit(&consumer, 2_000, &mut seen);
    wait_for(60, || {
        commit(&consumer).map_err(|e| format!("commit after the move: {e}"))
    });
    drop(consumer);
    assert_eq!(
        committed_through(&survivors, "workers", "tasks").unwrap(),
        ends,
        "committed up to the end"
    );
}

fn transactional_producer(bootstrap: &str, id: &str) -> rdkafka::producer::BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "30000")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("transactional producer")
}

/// Sends `keys` in the producer's open transaction and waits until they are delivered.
fn send_all(producer: &rdkafka::producer::BaseProducer, topic: &str, keys: std::ops::Range<usize>) {
    use rdkafka::producer::{BaseRecord, Producer};
    for i in keys {
        let k = format!("t{i}");
        producer
            .send(BaseRecord::to(topic).key(&k).payload(&k))
            .map_err(|(e, _)| e)
            .expect("queued");
    }
    producer.flush(Duration::from_secs(30)).expect("delivered");
}

/// The keys a read_committed consumer reads from `topic` through `addr`, up to the end.
fn read_committed(addr: &str, topic: &str, at_least: usize) -> std::collections::BTreeSet<String> {
    use rdkafka::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", format!("reader-{}", std::process::id()))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut keys = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_since = Instant::now();
    // Until it has what it must have and nothing more came for 3 s.
    while Instant::now() < deadline
        && (keys.len() < at_least || quiet_since.elapsed() < Duration::from_secs(3))
    {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            keys.insert(String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned());
            quiet_since = Instant::now();
        }
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_survives_the_loss_of_its_coordinator() {
    use rdkafka::producer::Producer;
    let Some((_one, _engines, _dirs, brokers)) =
        three_brokers("a_transaction_survives_the_loss_of_its_coordinator").await
    else {
        return;
    };
    let mut brokers = brokers.into_iter().map(Some).collect::<Vec<_>>();
    let all = bootstrap(brokers.iter().flatten());
    create_topic(&all, "transfers", 4).await;

    // Committed, aborted, and one left open when its coordinator dies.
    let first = transactional_producer(&all, "transfers-tx");
    first.init_transactions(Duration::from_secs(60)).unwrap();
    first.begin_transaction().unwrap();
    send_all(&first, "transfers", 0..100);
    first.commit_transaction(Duration::from_secs(60)).unwrap();
    first.begin_transaction().unwrap();
    send_all(&first, "transfers", 100..150);
    first.abort_transaction(Duration::from_secs(60)).unwrap();
    first.begin_transaction().unwrap();
    send_all(&first, "transfers", 150..170);

    let some = brokers.iter().flatten().next().unwrap().addr.clone();
    let node = find_coordinator(&some, 1, "transfers-tx").expect("FindCoordinator answered");
    brokers[node as usize - 1].take().unwrap().kill9();
    drop(first);
    let survivors = bootstrap(brokers.iter().flatten());

    // The producer starts again elsewhere: the open transaction is aborted, the producer
    // goes on with a new epoch.
    let second = transactional_producer(&survivors, "transfers-tx");
    wait_for(90, || {
        second
            .init_transactions(Duration::from_secs(30))
            .map_err(|e| format!("init after the loss: {e}"))
    });
    let asked = brokers.iter().flatten().next().unwrap().addr.clone();
    assert_ne!(find_coordinator(&asked, 1, "transfers-tx"), Some(node));
    second.begin_transaction().unwrap();
    send_all(&second, "transfers", 170..200);
    second.commit_transaction(Duration::from_secs(60)).unwrap();

    let expected: std::collections::BTreeSet<String> =
        (0..100).chain(170..200).map(|i| format!("t{i}")).collect();
    for b in brokers.iter().flatten() {
        assert_eq!(
            read_committed(&b.addr, "transfers", expected.len()),
            expected,
            "read_committed through {}",
            b.addr
        );
    }
}
