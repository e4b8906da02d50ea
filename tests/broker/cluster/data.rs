//! The data path across brokers: produce through one and read through the others, a broker
//! killed under load, the whole cluster restarted and a wiped disk rebuilt from the objects.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_serve_what_any_of_them_was_sent() {
    let Some((_one, _engines, _dirs, brokers)) =
        three_brokers("three_brokers_serve_what_any_of_them_was_sent").await
    else {
        return;
    };

    // Every broker lists all three and spreads the leaders over them.
    create_topic(&brokers[0].addr, "orders", 4).await;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers[2].addr)
        .create()
        .unwrap();
    // CreateTopics waits at most 5 s for the other brokers (as Kafka's answer does not wait
    // for every broker's metadata): the third may still be applying it.
    wait_for(30, || {
        let metadata = consumer
            .fetch_metadata(Some("orders"), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let topic = &metadata.topics()[0];
        let leaders: std::collections::BTreeSet<i32> = topic
            .partitions()
            .iter()
            .map(rdkafka::metadata::MetadataPartition::leader)
            .collect();
        (metadata.brokers().len() == 3 && topic.partitions().len() == 4 && leaders.len() >= 2)
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "{} brokers, {} partitions, leaders {leaders:?}",
                    metadata.brokers().len(),
                    topic.partitions().len()
                )
            })
    });

    // Produced through the first broker only, read through the second and the third.
    let acked = produce(&producer(&brokers[0].addr), "orders", 3_000, 3_000, || {}).await;
    assert_eq!(acked.len(), 3_000);
    check_acked_through(&brokers[1].addr, "orders", &acked);
    check_acked_through(&brokers[2].addr, "orders", &acked);

    // A client in rack r3 reading through broker 1 is pointed at broker 3, with no records;
    // one in broker 1's rack, or in none, reads there.
    let preferred = |rack: &str| {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
        use kafka_protocol::protocol::StrBytes;
        let response: FetchResponse = crate::raw::call(
            &brokers[0].addr,
            ApiKey::Fetch,
            12,
            &FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_session_epoch(-1)
                .with_rack_id(StrBytes::from_string(rack.to_string()))
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("orders")))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20)])]),
        );
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "rack {rack}");
        let records = p.records.as_ref().map_or(0, bytes::Bytes::len);
        (p.preferred_read_replica.0, records > 0)
    };
    assert_eq!(preferred("r3"), (3, false));
    assert_eq!(preferred("r1"), (-1, true));
    assert_eq!(preferred(""), (-1, true));

    // Partitions added through the second broker and a config changed through the third
    // show through every broker; a record in a new partition reaches all of them.
    let options = rdkafka::admin::AdminOptions::new();
    let grown = admin_of(&brokers[1].addr)
        .create_partitions(&[rdkafka::admin::NewPartitions::new("orders", 6)], &options)
        .await
        .unwrap();
    assert!(grown[0].is_ok(), "{grown:?}");
    let topic_resource = rdkafka::admin::ResourceSpecifier::Topic("orders");
    let altered = admin_of(&brokers[2].addr)
        .alter_configs(
            &[rdkafka::admin::AlterConfig::new(topic_resource).set("retention.ms", "3600000")],
            &options,
        )
        .await
        .unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    producer(&brokers[2].addr)
        .send(
            FutureRecord::to("orders")
                .partition(5)
                .key("new")
                .payload("p5"),
            Duration::from_secs(30),
        )
        .await
        .expect("delivered to a new partition");
    for b in &brokers {
        wait_for(30, || {
            let end = consumer_of(&b.addr)
                .fetch_watermarks("orders", 5, Duration::from_secs(5))
                .map_or(-1, |w| w.1);
            (end == 1)
                .then_some(())
                .ok_or_else(|| format!("partition 5 ends at {end} on {}", b.addr))
        });
        let described = admin_of(&b.addr)
            .describe_configs(&[topic_resource], &options)
            .await
            .unwrap();
        let config = described[0].as_ref().unwrap();
        assert_eq!(
            config.get("retention.ms").and_then(|e| e.value.as_deref()),
            Some("3600000"),
            "retention.ms through {}",
            b.addr
        );
    }

    // LogAppendTime: the broker that accepts a batch stamps it, whatever the producer says.
    let stamped =
        rdkafka::admin::NewTopic::new("stamped", 1, rdkafka::admin::TopicReplication::Fixed(1))
            .set("message.timestamp.type", "LogAppendTime");
    let created = admin_of(&brokers[0].addr)
        .create_topics(&[stamped], &options)
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let offset = producer(&brokers[1].addr)
        .send(
            FutureRecord::to("stamped")
                .key("k")
                .payload("v")
                .timestamp(1_000),
            Duration::from_secs(30),
        )
        .await
        .expect("delivered")
        .offset;
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers[2].addr)
        .set("group.id", "stamped-reader")
        .create()
        .unwrap();
    let mut wanted = rdkafka::TopicPartitionList::new();
    wanted
        .add_partition_offset("stamped", 0, rdkafka::Offset::Beginning)
        .unwrap();
    reader.assign(&wanted).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let timestamp = loop {
        assert!(Instant::now() < deadline, "offset {offset} not read");
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) {
            break rdkafka::Message::timestamp(&m);
        }
    };
    match timestamp {
        rdkafka::Timestamp::LogAppendTime(t) => {
            assert!(t >= before, "stamped at {t}, sent after {before}");
        }
        other => panic!("offset {offset} read with {other:?}"),
    }
    retried_batch_gets_the_original_answer(&brokers[0].addr, &brokers[2].addr);

    // A topic created through one broker is deleted through another, everywhere.
    let deleted = admin_of(&brokers[1].addr)
        .delete_topics(&["orders"], &rdkafka::admin::AdminOptions::new())
        .await
        .unwrap();
    assert!(deleted[0].is_ok(), "{deleted:?}");
    for b in &brokers {
        let consumer = consumer_of(&b.addr);
        wait_for(30, || {
            let metadata = consumer
                .fetch_metadata(None, Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            metadata
                .topics()
                .iter()
                .all(|t| t.name() != "orders")
                .then_some(())
                .ok_or_else(|| format!("orders still listed by {}", b.addr))
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_under_load_loses_nothing_acknowledged() {
    let Some((_one, engines, dirs, brokers)) =
        three_brokers("a_broker_killed_under_load_loses_nothing_acknowledged").await
    else {
        return;
    };
    let mut brokers = brokers.into_iter().map(Some).collect::<Vec<_>>();
    let all = bootstrap(brokers.iter().flatten());
    create_topic(&all, "payments", 4).await;

    // Broker 2 dies (no flush, no goodbye) after 3,000 acknowledgements; the producer
    // goes on through the other two once broker 2's session times out.
    let acked = produce(&producer(&all), "payments", 12_000, 3_000, || {
        brokers[1].take().unwrap().kill9();
    })
    .await;
    assert!(brokers[1].is_none());
    assert_eq!(acked.len(), 12_000, "every message acknowledged in the end");
    for b in brokers.iter().flatten() {
        check_acked_through(&b.addr, "payments", &acked);
    }

    // Broker 2 comes back on its old disk and catches up with what it missed.
    let back = engines.start_broker(2, dirs[1].path());
    let brokers: Vec<Broker> = brokers.into_iter().flatten().chain([back]).collect();
    wait_settled(&brokers);
    check_acked_through(&brokers[2].addr, "payments", &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cluster_restarts_and_a_wiped_broker_rebuilds_from_the_objects() {
    let Some((_one, engines, dirs, brokers)) =
        three_brokers("the_whole_cluster_restarts_and_a_wiped_broker_rebuilds_from_the_objects")
            .await
    else {
        return;
    };
    let all = bootstrap(&brokers);
    create_topic(&all, "ledger", 4).await;
    let acked = produce(&producer(&all), "ledger", 5_000, 5_000, || {}).await;

    // Every broker dies at once; broker 3 also loses its disk.
    for b in brokers {
        b.kill9();
    }
    std::fs::remove_dir_all(dirs[2].path()).unwrap();
    std::fs::create_dir(dirs[2].path()).unwrap();

    let brokers = start_all(&engines, &dirs);
    for b in &brokers {
        check_acked_through(&b.addr, "ledger", &acked);
    }
    // And the topic takes more: offsets go on from where they were.
    let more = produce(&producer(&brokers[2].addr), "ledger", 100, 100, || {}).await;
    for (k, (p, offset)) in &more {
        let before = acked.values().filter(|(q, _)| q == p).count() as i64;
        assert!(
            *offset >= before,
            "{k} at {offset} after {before} in partition {p}"
        );
    }
}

/// An idempotent batch sent through `first`, then retried through `other`, is answered as
/// Kafka answers a duplicate: the original's offset, and its append time (on the
/// LogAppendTime topic `stamped`), kept with the producer's state in PostgreSQL.
fn retried_batch_gets_the_original_answer(first: &str, other: &str) {
    use crate::raw::{batch, call, produce_request};
    use kafka_protocol::messages::{
        ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceResponse,
    };
    let init: InitProducerIdResponse = call(
        first,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    );
    assert_eq!(init.error_code, 0);
    let records = batch(&[b"once"], *init.producer_id, init.producer_epoch, 0);
    let send = |addr: &str| {
        let r: ProduceResponse = call(
            addr,
            ApiKey::Produce,
            9,
            &produce_request("stamped", records.clone()),
        );
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset, p.log_append_time_ms)
    };
    let original = send(first);
    assert_eq!(original.0, 0, "{original:?}");
    assert!(original.2 > 0, "stamped: {original:?}");
    std::thread::sleep(Duration::from_millis(20));
    let retried = send(other);
    assert_eq!(retried, original, "the retry through {other}");
}
