//! Cluster mode (docs/cluster.md) against the real engines: a PostgreSQL server and moto's
//! S3 server, started by `compat-tests/cluster/engines.sh` (installed by `make deps`;
//! without them these tests say SKIPPED), and three `gregor` brokers on loopback ports.
//! Produce through one broker and consume through another; kill -9 a broker under load and
//! lose nothing acknowledged; kill a consumer group's coordinator and find the group, its
//! committed offsets and its member carrying on at another broker; kill a transaction's
//! coordinator and find its open transaction aborted and its producer going on; delete
//! records and let retention delete the rest, everywhere, and the objects collected; stop
//! the whole cluster,
//! wipe a broker's disk, and find everything again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::clients::{consume_all, create_topic};
use crate::support::Broker;

/// One cluster at a time: each runs two engines and three brokers on the two cores.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// PostgreSQL and the S3 server, stopped on drop.
struct Engines {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

fn engines_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compat-tests/cluster/engines.sh")
}

impl Engines {
    /// Starts both engines, or says why the test is skipped.
    fn up(test: &str) -> Option<Engines> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(engines_script())
            .arg("up")
            .arg(dir.path())
            // PostgreSQL without fsync: these tests kill brokers, not PostgreSQL.
            .env("GREGOR_ENGINES_NO_FSYNC", "1")
            .output()
            .expect("run engines.sh");
        let engines = Engines {
            env: String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir,
        };
        match out.status.code() {
            Some(0) => Some(engines),
            Some(3) => {
                let reason = String::from_utf8_lossy(&out.stderr);
                eprintln!("SKIPPED {test}: {}", reason.trim());
                None
            }
            _ => panic!(
                "engines.sh up failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// The `-o` settings of broker `node_id` in this cluster.
    fn broker_overrides(&self, node_id: i32) -> Vec<String> {
        vec![
            format!("node.id={node_id}"),
            "gregor.storage=cluster".into(),
            format!(
                "gregor.object.store.url=s3://{}/test",
                self.env["GREGOR_S3_BUCKET"]
            ),
            format!(
                "gregor.object.store.endpoint={}",
                self.env["GREGOR_S3_ENDPOINT"]
            ),
            "gregor.object.store.access.key.id=test".into(),
            "gregor.object.store.secret.access.key=test".into(),
            format!("gregor.metadata.url={}", self.env["GREGOR_METADATA_URL"]),
            // Quick uploads and a quick failover keep the tests short.
            "gregor.produce.buffer.ms=20".into(),
            "broker.session.timeout.ms=3000".into(),
            "broker.heartbeat.interval.ms=500".into(),
            "log.retention.check.interval.ms=500".into(),
            // Uploads whose commit failed are swept after 10 s: the sweeps run beside every
            // test, which would lose data if they took a committed object.
            "gregor.object.orphan.age.ms=10000".into(),
            // Rack-aware reads (KIP-392): broker N in rack rN.
            format!("broker.rack=r{node_id}"),
            "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"
                .into(),
            // ACLs on, open where none are set (the ACL test adds some).
            crate::acls::AUTHORIZER.into(),
            "allow.everyone.if.no.acl.found=true".into(),
            "num.partitions=4".into(),
        ]
    }

    fn start_broker(&self, node_id: i32, data_dir: &Path) -> Broker {
        let overrides = self.broker_overrides(node_id);
        let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
        Broker::start(data_dir, &overrides)
    }
}

impl Drop for Engines {
    fn drop(&mut self) {
        let _ = Command::new(engines_script())
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}

/// Three brokers' data directories, kept across restarts.
fn data_dirs() -> Vec<tempfile::TempDir> {
    (0..3).map(|_| tempfile::tempdir().unwrap()).collect()
}

/// Asks `probe` every 200 ms until it answers `Ok`; once `seconds` have passed, fails with
/// its last `Err`, which says what it saw.
fn wait_for<T>(seconds: u64, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        match probe() {
            Ok(done) => return done,
            Err(seen) => assert!(Instant::now() < deadline, "{seen}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What every test here opens with: the one-cluster lock, both engines, three data
/// directories and three brokers that know each other. Dropped in reverse: brokers first,
/// then the directories, the engines and the lock.
type ThreeBrokers = (
    tokio::sync::MutexGuard<'static, ()>,
    Engines,
    Vec<tempfile::TempDir>,
    Vec<Broker>,
);

/// `ThreeBrokers` for `test`, or `None` (the test reports itself skipped) without engines.
async fn three_brokers(test: &str) -> Option<ThreeBrokers> {
    let one = ONE_CLUSTER.lock().await;
    let engines = Engines::up(test)?;
    let dirs = data_dirs();
    let brokers = start_all(&engines, &dirs);
    Some((one, engines, dirs, brokers))
}

/// Starts three brokers and waits until each lists all three at their addresses (a broker
/// learns of the others at its next heartbeat).
fn start_all(engines: &Engines, dirs: &[tempfile::TempDir]) -> Vec<Broker> {
    let brokers: Vec<Broker> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| engines.start_broker(i as i32 + 1, d.path()))
        .collect();
    wait_settled(&brokers);
    brokers
}

fn wait_settled(brokers: &[Broker]) {
    let mut expected: Vec<String> = brokers.iter().map(|b| b.addr.clone()).collect();
    expected.sort();
    for b in brokers {
        let consumer = consumer_of(&b.addr);
        wait_for(30, || {
            let mut listed: Vec<String> = consumer
                .fetch_metadata(None, Duration::from_secs(5))
                .map(|m| {
                    m.brokers()
                        .iter()
                        .map(|b| format!("{}:{}", b.host(), b.port()))
                        .collect()
                })
                .unwrap_or_default();
            listed.sort();
            (listed == expected)
                .then_some(())
                .ok_or_else(|| format!("{} lists {listed:?}, not {expected:?}", b.addr))
        });
    }
}

fn bootstrap<'a>(brokers: impl IntoIterator<Item = &'a Broker>) -> String {
    brokers
        .into_iter()
        .map(|b| b.addr.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer")
}

/// Sends `count` keyed messages `k<i>` to `topic`, keeping up to 500 in flight, calling
/// `after_acks` once `trigger` of them are acknowledged; returns each acknowledged key's
/// position.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    count: usize,
    trigger: usize,
    mut after_acks: impl FnMut(),
) -> HashMap<String, (i32, i64)> {
    let mut acked = HashMap::new();
    let mut in_flight = std::collections::VecDeque::new();
    let mut sent = 0;
    let mut triggered = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        while in_flight.len() < 500 && sent < count {
            let k = format!("k{sent}");
            let v = format!("v{sent}-{}", "x".repeat(sent % 100));
            match producer.send_result(FutureRecord::to(topic).key(&k).payload(&v)) {
                Ok(delivery) => in_flight.push_back((k, delivery)),
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
        if !triggered && acked.len() >= trigger {
            triggered = true;
            after_acks();
        }
    }
    assert!(triggered, "{trigger} acknowledgements within 120 s");
    acked
}

/// The high watermarks of `topic`'s 4 partitions as `addr` serves them, once they cover
/// every acknowledged position: a broker applies what another broker committed within
/// `gregor.metadata.poll.ms`, so a read through another broker may briefly lag the ack.
fn end_offsets_covering(addr: &str, topic: &str, acked: &HashMap<String, (i32, i64)>) -> Vec<i64> {
    let mut needed = vec![0i64; 4];
    for (p, offset) in acked.values() {
        needed[*p as usize] = needed[*p as usize].max(offset + 1);
    }
    wait_for(60, || {
        // A new client each time: a librdkafka client bootstrapped at a broker that has
        // just restarted sometimes keeps answering a local UNKNOWN_PARTITION for this
        // query (seen under load, not yet explained; a new client is not affected).
        let consumer = consumer_of(addr);
        let ends: Result<Vec<i64>, _> = (0..4)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(5))
                    .map(|w| w.1)
            })
            .collect();
        match ends {
            Ok(ends) if ends.iter().zip(&needed).all(|(end, need)| end >= need) => Ok(ends),
            other => Err(format!(
                "{addr} serves {other:?} of {topic}, acknowledged up to {needed:?}; {}",
                describe(&consumer, topic)
            )),
        }
    })
}

/// The brokers and leaders a client is told of, for a failure's message.
fn describe(consumer: &BaseConsumer, topic: &str) -> String {
    match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
        Ok(m) => format!(
            "brokers {:?}, leaders {:?}",
            m.brokers()
                .iter()
                .map(|b| format!("{}@{}:{}", b.id(), b.host(), b.port()))
                .collect::<Vec<_>>(),
            m.topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| (p.id(), p.leader())))
                .collect::<Vec<_>>()
        ),
        Err(e) => format!("no metadata: {e}"),
    }
}

/// Every acknowledged key is at its acknowledged position, once, in what `addr` serves.
fn check_acked_through(addr: &str, topic: &str, acked: &HashMap<String, (i32, i64)>) {
    let total: i64 = end_offsets_covering(addr, topic, acked).iter().sum();
    let seen = consume_all(addr, topic, 4, total as usize);
    assert_eq!(
        seen.len() as i64,
        total,
        "all of {topic} read through {addr}"
    );
    let mut by_position = HashMap::new();
    let mut copies: HashMap<Vec<u8>, usize> = HashMap::new();
    for m in &seen {
        by_position.insert((m.partition, m.offset), m.key.clone());
        *copies.entry(m.key.clone()).or_default() += 1;
    }
    for (k, pos) in acked {
        assert_eq!(
            by_position.get(pos).map(Vec::as_slice),
            Some(k.as_bytes()),
            "acknowledged {k} at {pos:?} through {addr}"
        );
        assert_eq!(copies[k.as_bytes()], 1, "{k} stored once");
    }
}

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

fn admin_of(addr: &str) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .unwrap()
}

fn consumer_of(addr: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .unwrap()
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

impl Engines {
    /// One number from PostgreSQL (`psql`, which comes with the server).
    fn sql_count(&self, query: &str) -> i64 {
        let out = Command::new("psql")
            .args(["-qtA", &self.env["GREGOR_METADATA_URL"], "-c", query])
            .output()
            .expect("psql");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{query}: {}", String::from_utf8_lossy(&out.stderr)))
    }

    /// Puts `body` at `key` in the bucket, as an upload would (moto takes it unsigned).
    fn put_object(&self, key: &str, body: &[u8]) {
        let url = format!(
            "{}/{}/{key}",
            self.env["GREGOR_S3_ENDPOINT"], self.env["GREGOR_S3_BUCKET"]
        );
        let mut put = Command::new("curl")
            .args(["-sf", "-X", "PUT", "--data-binary", "@-", &url])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("curl");
        use std::io::Write;
        put.stdin.take().unwrap().write_all(body).unwrap();
        assert!(put.wait().unwrap().success(), "PUT {url}");
    }

    /// How many objects the S3 server holds in the bucket.
    fn stored_objects(&self) -> usize {
        let url = format!(
            "{}/{}?list-type=2",
            self.env["GREGOR_S3_ENDPOINT"], self.env["GREGOR_S3_BUCKET"]
        );
        let out = Command::new("curl")
            .args(["-sf", &url])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout)
            .matches("<Key>")
            .count()
    }
}

/// `topic`'s (low, high) watermarks of `partitions` partitions through `addr`.
fn watermarks_through(addr: &str, topic: &str, partitions: i32) -> Vec<(i64, i64)> {
    let consumer = consumer_of(addr);
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .unwrap_or((-1, -1))
        })
        .collect()
}

/// Waits until every broker in `addrs` serves `expected` watermarks.
fn wait_watermarks(addrs: &[String], topic: &str, expected: &[(i64, i64)]) {
    for addr in addrs {
        wait_for(60, || {
            let now = watermarks_through(addr, topic, expected.len() as i32);
            (now == expected)
                .then_some(())
                .ok_or_else(|| format!("{addr} serves {now:?} of {topic}, not {expected:?}"))
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_records_go_everywhere_and_their_objects_are_collected() {
    use rdkafka::admin::{AlterConfig, ResourceSpecifier};
    let Some((_one, engines, dirs, brokers)) =
        three_brokers("deleted_records_go_everywhere_and_their_objects_are_collected").await
    else {
        return;
    };
    let mut brokers = brokers.into_iter().map(Some).collect::<Vec<_>>();
    let all = bootstrap(brokers.iter().flatten());
    create_topic(&all, "events", 2).await;
    let acked = produce(&producer(&all), "events", 400, 400, || {}).await;
    let mut high = [0i64; 2];
    for (p, offset) in acked.values() {
        high[*p as usize] = high[*p as usize].max(offset + 1);
    }
    let addrs = |brokers: &[Option<Broker>]| -> Vec<String> {
        brokers.iter().flatten().map(|b| b.addr.clone()).collect()
    };
    wait_watermarks(&addrs(&brokers), "events", &[(0, high[0]), (0, high[1])]);
    let objects_before = engines.sql_count("SELECT count(*) FROM objects");
    assert!(objects_before > 0);
    // An upload whose commit failed: in the store, named by no commit.
    let stray = "test/objects/an-upload-whose-commit-failed";
    engines.put_object(stray, b"never committed");

    // DeleteRecords through the second broker moves the low watermark everywhere.
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("events", 0, rdkafka::Offset::Offset(high[0] / 2))
        .unwrap();
    let options = rdkafka::admin::AdminOptions::new();
    let deleted = admin_of(&brokers[1].as_ref().unwrap().addr)
        .delete_records(&tpl, &options)
        .await
        .unwrap();
    assert_eq!(
        deleted.elements()[0].offset(),
        rdkafka::Offset::Offset(high[0] / 2),
        "{:?}",
        deleted.elements()[0].error()
    );
    wait_watermarks(
        &addrs(&brokers),
        "events",
        &[(high[0] / 2, high[0]), (0, high[1])],
    );

    // Broker 3 is away while retention deletes everything; it comes back to the same view.
    let third = dirs[2].path().to_path_buf();
    brokers[2].take().unwrap().stop();
    let altered = admin_of(&brokers[0].as_ref().unwrap().addr)
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("events")).set("retention.ms", "1")],
            &options,
        )
        .await
        .unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    wait_watermarks(
        &addrs(&brokers),
        "events",
        &[(high[0], high[0]), (high[1], high[1])],
    );
    brokers[2] = Some(engines.start_broker(3, &third));
    wait_watermarks(
        &addrs(&brokers),
        "events",
        &[(high[0], high[0]), (high[1], high[1])],
    );

    // No batch points to the objects any more: they go, from the store and PostgreSQL. The
    // stray upload goes too, once 10 s old, and keeps a tombstone row.
    let committed = "SELECT count(*) FROM objects WHERE swept_at IS NULL";
    wait_for(60, || {
        let (rows, stored) = (engines.sql_count(committed), engines.stored_objects());
        (rows == 0 && stored == 0).then_some(()).ok_or_else(|| {
            format!("{rows} object rows and {stored} stored objects left of {objects_before} and the stray one")
        })
    });
    assert_eq!(
        engines.sql_count(&format!(
            "SELECT count(*) FROM objects WHERE object_key = '{stray}' AND swept_at IS NOT NULL"
        )),
        1,
        "the stray upload's tombstone"
    );

    // The topic goes on from its high watermarks.
    let more = produce(&producer(&all), "events", 10, 10, || {}).await;
    for (k, (p, offset)) in &more {
        assert!(
            *offset >= high[*p as usize],
            "{k} at {offset} in partition {p}"
        );
    }
}

/// Produces one record to `topic` through `addr`; the partition's error code.
fn produce_once(addr: &str, topic: &str) -> i16 {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    crate::acls::produce(&mut stream, topic, None)
}

/// Waits until a produce to `topic` through each of `addrs` answers `code`.
fn wait_produce_code(addrs: &[String], topic: &str, code: i16) {
    for addr in addrs {
        wait_for(30, || {
            let got = produce_once(addr, topic);
            (got == code)
                .then_some(())
                .ok_or_else(|| format!("{addr} answers {got}, not {code}"))
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_and_credentials_changed_through_one_broker_hold_at_every_broker() {
    use crate::acls::{acl, create_acls, DENY, LITERAL, TOPIC, TOPIC_AUTHORIZATION_FAILED, WRITE};
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let Some((_one, _engines, _dirs, brokers)) =
        three_brokers("acls_and_credentials_changed_through_one_broker_hold_at_every_broker").await
    else {
        return;
    };
    let addrs: Vec<String> = brokers.iter().map(|b| b.addr.clone()).collect();
    create_topic(&bootstrap(&brokers), "vault", 1).await;
    wait_produce_code(&addrs, "vault", 0);

    // A DENY created through the first broker holds at every broker.
    let mut first = std::net::TcpStream::connect(&addrs[0]).unwrap();
    let created = create_acls(
        &mut first,
        vec![acl(TOPIC, "vault", LITERAL, "User:*", WRITE, DENY)],
    );
    assert_eq!(created.results[0].error_code, 0);
    wait_produce_code(&addrs, "vault", TOPIC_AUTHORIZATION_FAILED);

    // Deleted through the third broker, it is gone everywhere.
    let deleted: DeleteAclsResponse = crate::raw::call(
        &addrs[2],
        ApiKey::DeleteAcls,
        3,
        &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(StrBytes::from_static_str("vault")))
            .with_pattern_type_filter(LITERAL)
            .with_operation(WRITE)
            .with_permission_type(DENY)
            .with_host_filter(None)
            .with_principal_filter(None)]),
    );
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    wait_produce_code(&addrs, "vault", 0);

    // SCRAM credentials set through the second broker are described by the others.
    let altered: AlterUserScramCredentialsResponse = crate::raw::call(
        &addrs[1],
        ApiKey::AlterUserScramCredentials,
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_static_str("dora"))
                .with_mechanism(1)
                .with_iterations(4096)
                .with_salt(bytes::Bytes::from_static(b"0123456789abcdef"))
                .with_salted_password(bytes::Bytes::from(vec![7u8; 32])),
        ]),
    );
    assert_eq!(altered.results[0].error_code, 0, "{altered:?}");
    for addr in &addrs {
        wait_for(30, || {
            let described: DescribeUserScramCredentialsResponse = crate::raw::call(
                addr,
                ApiKey::DescribeUserScramCredentials,
                0,
                &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                    UserName::default().with_name(StrBytes::from_static_str("dora")),
                ])),
            );
            (described.results[0].error_code == 0
                && described.results[0].credential_infos.len() == 1)
                .then_some(())
                .ok_or_else(|| format!("{addr}: {described:?}"))
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_are_merged_and_a_wiped_broker_reads_the_merged_ones() {
    let Some((_one, engines, dirs, brokers)) =
        three_brokers("small_objects_are_merged_and_a_wiped_broker_reads_the_merged_ones").await
    else {
        return;
    };
    let mut brokers = brokers.into_iter().map(Some).collect::<Vec<_>>();
    let all = bootstrap(brokers.iter().flatten());
    create_topic(&all, "metrics", 4).await;
    // A 20 ms buffer: the messages spread over many small objects.
    let acked = produce(&producer(&all), "metrics", 3_000, 3_000, || {}).await;
    let written = engines.sql_count("SELECT count(*) FROM objects WHERE swept_at IS NULL");
    assert!(written > 4, "{written} objects");

    // The controller merges them (8 MiB by default, far more than they hold together) and
    // the collector deletes the originals.
    wait_for(60, || {
        let live = engines.sql_count("SELECT count(*) FROM objects WHERE swept_at IS NULL");
        let stored = engines.stored_objects() as i64;
        (live <= 2 && stored == live).then_some(()).ok_or_else(|| {
            format!("{live} object rows and {stored} stored objects left of {written}")
        })
    });

    // A broker that lost its disk rebuilds every partition from the merged objects.
    let third = dirs[2].path().to_path_buf();
    brokers[2].take().unwrap().kill9();
    std::fs::remove_dir_all(&third).unwrap();
    std::fs::create_dir(&third).unwrap();
    brokers[2] = Some(engines.start_broker(3, &third));
    check_acked_through(&brokers[2].as_ref().unwrap().addr, "metrics", &acked);
}
