//! Consumer groups through the rdkafka crate: partitions shared out exactly once among
//! members (eager and cooperative-sticky assignors), partitions moving when a member
//! leaves, committed offsets surviving a clean restart and a kill -9, and a static member
//! restarting without a rebalance.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::clients::create_topic;
use crate::support::Broker;

/// Counts assignments (post-rebalance Assign events).
#[derive(Default)]
struct Counting {
    assigns: Arc<AtomicUsize>,
}

impl ClientContext for Counting {}

impl ConsumerContext for Counting {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Assign(_)) {
            self.assigns.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A group member polling on its own thread.
struct Member {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(i32, i64)>>>,
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    assigns: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

struct MemberConfig<'a> {
    addr: &'a str,
    group: &'a str,
    topic: &'a str,
    strategy: &'a str,
    instance: Option<&'a str>,
}

impl Member {
    fn spawn(c: MemberConfig<'_>) -> Member {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", c.addr)
            .set("group.id", c.group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "200");
        // "consumer:<assignor>": the KIP-848 protocol, the broker assigns (and owns the
        // session and heartbeat settings); else a classic assignment strategy.
        match c.strategy.strip_prefix("consumer:") {
            Some(assignor) => config
                .set("group.protocol", "consumer")
                .set("group.remote.assignor", assignor),
            None => config
                .set("session.timeout.ms", "10000")
                .set("heartbeat.interval.ms", "300")
                .set("partition.assignment.strategy", c.strategy),
        };
        if let Some(instance) = c.instance {
            config.set("group.instance.id", instance);
        }
        let counting = Counting::default();
        let assigns = counting.assigns.clone();
        let consumer: BaseConsumer<Counting> =
            config.create_with_context(counting).expect("consumer");
        consumer.subscribe(&[c.topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let (s, sn, asg) = (stop.clone(), seen.clone(), assignment.clone());
        let handle = std::thread::spawn(move || {
            // A bound for a test that never stops its members, far past any test's own
            // waits: a member that left early would fail a slow run for the wrong reason.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    sn.lock().unwrap().push((m.partition(), m.offset()));
                }
                if let Ok(tpl) = consumer.assignment() {
                    *asg.lock().unwrap() = tpl
                        .elements()
                        .iter()
                        .map(rdkafka::topic_partition_list::TopicPartitionListElem::partition)
                        .collect();
                }
            }
            let _ = consumer.commit_consumer_state(CommitMode::Sync);
            // Dropping the consumer closes it: a dynamic member leaves the group.
        });
        Member {
            stop,
            seen,
            assignment,
            assigns,
            handle: Some(handle),
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.assignment.lock().unwrap().clone()
    }

    fn seen(&self) -> Vec<(i32, i64)> {
        self.seen.lock().unwrap().clone()
    }

    fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.close();
    }
}

fn wait_until<F: FnMut() -> bool>(what: &str, secs: u64, mut f: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {secs} s waiting for: {what}");
}

async fn produce(addr: &str, topic: &str, from: usize, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut pending = Vec::new();
    for i in from..from + count {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        pending.push(
            producer
                .send_result(FutureRecord::to(topic).key(&key).payload(&value))
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    for p in pending {
        p.await.expect("delivery").expect("acked");
    }
}

/// Every (partition, offset) seen, across members, exactly once.
fn assert_exactly_once(members: &[&Member], expected: usize) {
    let mut count: HashMap<(i32, i64), usize> = HashMap::new();
    for m in members {
        for p in m.seen() {
            *count.entry(p).or_default() += 1;
        }
    }
    let dupes: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "consumed more than once: {dupes:?}");
    assert_eq!(count.len(), expected, "every message consumed");
}

/// Consumer groups (KIP-848) heartbeat every 500 ms here, not Kafka's 5 s.
const FAST_CONSUMER_GROUPS: [&str; 4] = [
    "group.consumer.min.heartbeat.interval.ms=100",
    "group.consumer.heartbeat.interval.ms=500",
    "group.consumer.min.session.timeout.ms=6000",
    "group.consumer.session.timeout.ms=10000",
];

async fn three_members_share_six_partitions(strategy: &str) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &FAST_CONSUMER_GROUPS);
    let topic = format!("shared-{}", strategy.replace(':', "-"));
    create_topic(&broker.addr, &topic, 6).await;
    let group = format!("group-{}", strategy.replace(':', "-"));
    let spawn = |_: usize| {
        Member::spawn(MemberConfig {
            addr: &broker.addr,
            group: &group,
            topic: &topic,
            strategy,
            instance: None,
        })
    };
    let mut members: Vec<Member> = (0..3).map(spawn).collect();
    // A stable group: each member owns two partitions, every partition has one owner.
    wait_until("three members with two partitions each", 60, || {
        let owned: Vec<BTreeSet<i32>> = members.iter().map(Member::assignment).collect();
        let all: BTreeSet<i32> = owned.iter().flatten().copied().collect();
        owned.iter().all(|a| a.len() == 2) && all.len() == 6
    });
    produce(&broker.addr, &topic, 0, 3000).await;
    wait_until("3000 messages consumed", 60, || {
        members.iter().map(|m| m.seen().len()).sum::<usize>() >= 3000
    });
    let refs: Vec<&Member> = members.iter().collect();
    assert_exactly_once(&refs, 3000);
    for m in &members {
        for (p, _) in m.seen() {
            assert!(
                m.assignment().contains(&p),
                "a member consumed a partition it does not own"
            );
        }
    }

    // One member leaves: its partitions move to the other two, which finish the work.
    let mut leaving = members.pop().unwrap();
    let moved = leaving.assignment();
    leaving.close();
    wait_until(
        "the two remaining members own all six partitions",
        60,
        || {
            let a = members[0].assignment();
            let b = members[1].assignment();
            a.len() + b.len() == 6 && a.is_disjoint(&b)
        },
    );
    for p in &moved {
        assert!(members.iter().any(|m| m.assignment().contains(p)));
    }
    produce(&broker.addr, &topic, 3000, 3000).await;
    let all_members = [&members[0], &members[1], &leaving];
    wait_until("6000 messages consumed", 60, || {
        all_members.iter().map(|m| m.seen().len()).sum::<usize>() >= 6000
    });
    assert_exactly_once(&all_members, 6000);
    drop(members);
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_partitions_exactly_once_with_the_range_assignor() {
    three_members_share_six_partitions("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_partitions_exactly_once_with_cooperative_sticky() {
    three_members_share_six_partitions("cooperative-sticky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_members_share_partitions_exactly_once_with_uniform() {
    three_members_share_six_partitions("consumer:uniform").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_members_share_partitions_exactly_once_with_range() {
    three_members_share_six_partitions("consumer:range").await;
}

fn plain_consumer(addr: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// Subscribes, returns the offset of the first message received, then commits `commit_at`.
fn first_offset_then_commit(addr: &str, topic: &str, commit_at: i64) -> i64 {
    let consumer = plain_consumer(addr, "resumers");
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        assert!(Instant::now() < deadline, "no message within 60 s");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            break m.expect("message").offset();
        }
    };
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(commit_at))
        .unwrap();
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_clean_restart_and_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "resume", 1).await;
    produce(&broker.addr, "resume", 0, 100).await;

    assert_eq!(first_offset_then_commit(&broker.addr, "resume", 40), 0);
    let broker = broker.restart_after(Broker::stop, &[]);
    assert_eq!(first_offset_then_commit(&broker.addr, "resume", 70), 40);
    let broker = broker.restart_after(Broker::kill9, &[]);
    assert_eq!(first_offset_then_commit(&broker.addr, "resume", 99), 70);
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarts_without_a_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "static", 4).await;
    let config = |instance| MemberConfig {
        addr: &broker.addr,
        group: "statics",
        topic: "static",
        strategy: "range",
        instance: Some(instance),
    };
    let mut a = Member::spawn(config("a"));
    wait_until("a owns all partitions", 60, || a.assignment().len() == 4);
    let b = Member::spawn(config("b"));
    wait_until("two members with two partitions each", 60, || {
        a.assignment().len() == 2 && b.assignment().len() == 2
    });
    let a_partitions = a.assignment();
    let b_assigns = b.assigns.load(Ordering::SeqCst);
    // Restart a: a static member does not leave the group when it closes.
    a.close();
    let a2 = Member::spawn(config("a"));
    wait_until("the restarted member gets its partitions back", 60, || {
        a2.assignment() == a_partitions
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        b.assigns.load(Ordering::SeqCst),
        b_assigns,
        "b saw no rebalance"
    );
    assert_eq!(b.assignment().len(), 2);
    let owned: BTreeMap<&str, BTreeSet<i32>> =
        [("a", a2.assignment()), ("b", b.assignment())].into();
    assert!(owned["a"].is_disjoint(&owned["b"]));
    drop(a2);
    drop(b);
    broker.stop();
}

#[test]
fn shutdown_does_not_wait_for_a_parked_join_group() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::{ApiKey, GroupId, JoinGroupRequest};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use std::io::Write;

    let dir = tempfile::tempdir().unwrap();
    // The first join of a group waits 60 s for more members.
    let broker = Broker::start(dir.path(), &["group.initial.rebalance.delay.ms=60000"]);
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("parked")))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(120_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::from_static(b"x"))]);
    let mut body = bytes::BytesMut::new();
    let header = kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(ApiKey::JoinGroup as i16)
        .with_request_api_version(1)
        .with_correlation_id(1);
    header.encode(&mut body, 1).unwrap();
    request.encode(&mut body, 1).unwrap();
    let mut socket = std::net::TcpStream::connect(&broker.addr).unwrap();
    socket
        .write_all(&(body.len() as i32).to_be_bytes())
        .unwrap();
    socket.write_all(&body).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    broker.stop();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shutdown waited for the parked JoinGroup: {:?}",
        started.elapsed()
    );
}

/// The group's type and state as ListGroups v5 reports them.
fn group_type(addr: &str, group: &str) -> Option<(String, String)> {
    use kafka_protocol::messages::{ApiKey, ListGroupsRequest, ListGroupsResponse};
    let r: ListGroupsResponse =
        crate::raw::call(addr, ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    r.groups
        .iter()
        .find(|g| g.group_id.as_str() == group)
        .map(|g| (g.group_type.to_string(), g.group_state.to_string()))
}

/// Online migration (group.consumer.migration.policy=bidirectional): two classic members,
/// then a consumer-protocol member joins and the group becomes a consumer group with all
/// three sharing the partitions; when it leaves, the group is classic again. Every record is
/// consumed exactly once throughout, and no partition has two owners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_classic_group_upgrades_to_a_consumer_group_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &FAST_CONSUMER_GROUPS);
    let topic = "migrating";
    create_topic(&broker.addr, topic, 6).await;
    let group = "migrating-group";
    let spawn = |strategy| {
        Member::spawn(MemberConfig {
            addr: &broker.addr,
            group,
            topic,
            strategy,
            instance: None,
        })
    };
    let classic = [spawn("range"), spawn("range")];
    wait_until("two classic members with three partitions each", 60, || {
        classic.iter().all(|m| m.assignment().len() == 3)
    });
    assert_eq!(
        group_type(&broker.addr, group).map(|t| t.0),
        Some("classic".into())
    );
    produce(&broker.addr, topic, 0, 1500).await;
    wait_until("1500 messages consumed", 60, || {
        classic.iter().map(|m| m.seen().len()).sum::<usize>() >= 1500
    });

    let mut modern = spawn("consumer:uniform");
    wait_until(
        "three members (two classic, one consumer) with two partitions each",
        60,
        || {
            let owned: Vec<BTreeSet<i32>> = classic
                .iter()
                .chain(std::iter::once(&modern))
                .map(Member::assignment)
                .collect();
            let all: BTreeSet<i32> = owned.iter().flatten().copied().collect();
            owned.iter().all(|a| a.len() == 2) && all.len() == 6
        },
    );
    assert_eq!(
        group_type(&broker.addr, group).map(|t| t.0),
        Some("consumer".into()),
        "upgraded"
    );
    produce(&broker.addr, topic, 1500, 1500).await;
    wait_until("3000 messages consumed", 60, || {
        classic
            .iter()
            .chain(std::iter::once(&modern))
            .map(|m| m.seen().len())
            .sum::<usize>()
            >= 3000
    });

    // The consumer-protocol member leaves: only classic members remain, so the group goes
    // back to the classic protocol, and they take its partitions.
    modern.close();
    wait_until(
        "the classic group again, its two members with three partitions each",
        60,
        || {
            group_type(&broker.addr, group).is_some_and(|t| t.0 == "classic")
                && classic.iter().all(|m| m.assignment().len() == 3)
        },
    );
    produce(&broker.addr, topic, 3000, 1500).await;
    let all = [&classic[0], &classic[1], &modern];
    wait_until("4500 messages consumed", 60, || {
        all.iter().map(|m| m.seen().len()).sum::<usize>() >= 4500
    });
    assert_exactly_once(&all, 4500);
    drop(classic);
    broker.stop();
}
