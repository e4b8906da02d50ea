//! Durability of a real broker process: kill -9 under load, again and again, verified by a
//! real client; and a data directory on a small tmpfs that fills up.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ProduceResponse};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::clients::{consume_all, create_topic};
use crate::raw::{batch, call};
use crate::support::Broker;

const TOPIC: &str = "crashy";
const PARTITIONS: i32 = 3;
const ROUNDS: usize = 5;
const GROUP: &str = "crashy-group";

fn producer(addr: &str, idempotent: bool) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "5000")
        .set(
            "enable.idempotence",
            if idempotent { "true" } else { "false" },
        )
        .create()
        .expect("producer")
}

fn committer(addr: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// Committed offsets of `GROUP` on partitions 0..PARTITIONS.
fn committed(addr: &str) -> Vec<i64> {
    let consumer = committer(addr);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let tpl = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..PARTITIONS)
        .map(|p| match tpl.find_partition(TOPIC, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

/// One round: two producers (one idempotent) keep up to 100 sends in flight each and
/// offsets get committed, until `kill_after` acknowledgements; then kill -9.
async fn round(
    broker: Broker,
    round: usize,
    kill_after: usize,
    acked: &mut HashMap<String, (i32, i64)>,
    commits: &mut BTreeMap<i32, i64>,
) {
    let producers = [producer(&broker.addr, false), producer(&broker.addr, true)];
    let consumer = committer(&broker.addr);
    let mut in_flight = std::collections::VecDeque::new();
    let mut acked_now = 0usize;
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut broker = Some(broker);
    while Instant::now() < deadline && broker.is_some() {
        while in_flight.len() < 200 {
            let k = format!("r{round}-{sent}");
            let record = FutureRecord::to(TOPIC).key(&k).payload(&k);
            match producers[sent % 2].send_result(record) {
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
            acked_now += 1;
            if acked_now.is_multiple_of(100) {
                // Commit "consumed up to here" for the partition just acknowledged.
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(TOPIC, d.partition, Offset::Offset(d.offset))
                    .expect("offset");
                if consumer.commit(&tpl, CommitMode::Sync).is_ok() {
                    commits.insert(d.partition, d.offset);
                }
            }
        }
        if acked_now >= kill_after {
            if let Some(b) = broker.take() {
                b.kill9();
            }
        }
    }
    assert!(
        broker.is_none(),
        "round {round}: {acked_now} acknowledged in 30 s"
    );
    // Whatever was still in flight is abandoned (it may or may not be stored).
    drop(in_flight);
    drop(producers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_again_and_again_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, TOPIC, PARTITIONS).await;
    let mut acked = HashMap::new();
    let mut commits = BTreeMap::new();
    let mut first = Some(broker);
    for r in 0..ROUNDS {
        let b = first
            .take()
            .unwrap_or_else(|| Broker::start(dir.path(), &[]));
        round(b, r, 400 + 300 * r, &mut acked, &mut commits).await;
    }
    let broker = Broker::start(dir.path(), &[]);
    // Everything stored, acknowledged or not, read back by a real consumer.
    let ends: Vec<i64> = {
        let c = committer(&broker.addr);
        (0..PARTITIONS)
            .map(|p| {
                c.fetch_watermarks(TOPIC, p, Duration::from_secs(10))
                    .expect("watermarks")
                    .1
            })
            .collect()
    };
    let total = ends.iter().sum::<i64>() as usize;
    let seen = consume_all(&broker.addr, TOPIC, PARTITIONS, total);
    assert_eq!(seen.len(), total, "every stored message can be read");
    let mut by_position = HashMap::new();
    let mut copies: HashMap<Vec<u8>, usize> = HashMap::new();
    for m in &seen {
        by_position.insert((m.partition, m.offset), m.key.clone());
        *copies.entry(m.key.clone()).or_default() += 1;
    }
    for p in 0..PARTITIONS {
        for o in 0..ends[p as usize] {
            assert!(
                by_position.contains_key(&(p, o)),
                "offsets are contiguous: {p}:{o} is missing"
            );
        }
    }
    for (k, pos) in &acked {
        assert_eq!(
            by_position.get(pos).map(Vec::as_slice),
            Some(k.as_bytes()),
            "acknowledged {k} at {pos:?}"
        );
    }
    // The idempotent producer's messages are stored at most once even across kills.
    for (k, n) in &copies {
        let i: usize = String::from_utf8_lossy(k)
            .rsplit('-')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if i % 2 == 1 {
            assert_eq!(
                *n,
                1,
                "idempotent {} stored {n} times",
                String::from_utf8_lossy(k)
            );
        }
    }
    let stored = committed(&broker.addr);
    for (p, offset) in &commits {
        assert!(
            stored[*p as usize] >= *offset,
            "partition {p}: committed {} but {offset} was acknowledged",
            stored[*p as usize]
        );
    }
    assert!(acked.len() >= (0..ROUNDS).map(|r| 400 + 300 * r).sum::<usize>());
    broker.stop();
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallFileSystem {
    dir: tempfile::TempDir,
}

impl SmallFileSystem {
    /// `None` when this machine can't mount (not root, or no CAP_SYS_ADMIN).
    fn mount(size: &str) -> Option<SmallFileSystem> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallFileSystem { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn produce_raw(addr: &str, topic: &str, value: &[u8]) -> (i16, i64) {
    let request = crate::raw::produce_request(topic, batch(&[value], -1, -1, -1));
    let r: ProduceResponse = call(addr, ApiKey::Produce, 9, &request);
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Fills the file system but for about `leave` bytes.
fn fill(fs: &Path, leave: u64) -> PathBuf {
    let filler = fs.join("filler");
    let free = {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(fs)
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .expect("free bytes")
    };
    let size = free.saturating_sub(leave);
    std::fs::write(&filler, vec![0u8; size as usize]).expect("filler");
    filler
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_storage_errors_and_appends_resume_when_space_returns() {
    let Some(fs) = SmallFileSystem::mount("16m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root); the simulated-disk test in crash_consistency.rs covers this");
        return;
    };
    let data = fs.path().join("data");
    let broker = Broker::start(&data, &[]);
    create_topic(&broker.addr, "full", 1).await;
    let value = vec![b'v'; 8000];
    let mut acked = Vec::new();
    for _ in 0..10 {
        let (code, offset) = produce_raw(&broker.addr, "full", &value);
        assert_eq!(code, 0);
        acked.push(offset);
    }
    let filler = fill(fs.path(), 64 * 1024);
    let mut refused = 0;
    for _ in 0..100 {
        let (code, offset) = produce_raw(&broker.addr, "full", &value);
        match code {
            0 => acked.push(offset),
            56 => {
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
            other => panic!("a full disk answered error {other}, not KAFKA_STORAGE_ERROR (56)"),
        }
    }
    assert_eq!(refused, 3, "the disk filled up and produces were refused");
    // Reads of what is there keep working while the disk is full.
    let seen = consume_all(&broker.addr, "full", 1, acked.len());
    assert_eq!(
        seen.iter().map(|m| m.offset).collect::<Vec<_>>(),
        acked,
        "every acknowledged message, in order, nothing else"
    );
    // Space returns: appends resume right after the acknowledged ones.
    std::fs::remove_file(filler).expect("remove filler");
    for _ in 0..5 {
        let (code, offset) = produce_raw(&broker.addr, "full", &value);
        assert_eq!(code, 0, "appends resume when space returns");
        assert_eq!(offset, acked.last().unwrap() + 1);
        acked.push(offset);
    }
    let broker = broker.restart_after(Broker::kill9, &[]);
    let seen = consume_all(&broker.addr, "full", 1, acked.len());
    assert_eq!(seen.iter().map(|m| m.offset).collect::<Vec<_>>(), acked);
    broker.stop();
}
