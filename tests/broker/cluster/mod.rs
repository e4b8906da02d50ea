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

mod acls;
mod coordinators;
mod data;
mod objects;

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
