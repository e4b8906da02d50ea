//! Resource limits with Kafka's names: `max.connections.per.ip` and its overrides,
//! `connections.max.idle.ms` (silent and slow-loris clients), and the bound on answers held
//! for a client that never reads them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::batches::TestBatch;
use crate::raw::{call, frame, produce_request};
use crate::support::{closed_by_broker, Broker};

/// ApiVersions v0 over `s`; true if answered.
fn answered(s: &mut TcpStream, correlation_id: i32) -> bool {
    let request = frame(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ApiVersionsRequest::default(),
    );
    if s.write_all(&request).is_err() {
        return false;
    }
    let mut size = [0u8; 4];
    if s.read_exact(&mut size).is_err() {
        return false;
    }
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).is_ok() && body[..4] == correlation_id.to_be_bytes()
}

/// A Fetch (no wait) of up to `max_bytes` from partition 0 of `topic` at `offset`.
fn fetch_request(topic: &'static str, offset: i64, max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(topic)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max_bytes)])])
}

/// A connection from `local` (a loopback address) to the broker.
async fn connect_from(local: &str, broker: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(broker.parse().unwrap()).await.unwrap();
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

#[tokio::test]
async fn connections_over_max_connections_per_ip_are_closed_and_overrides_apply() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        dir.path(),
        &[
            "max.connections.per.ip=2",
            "max.connections.per.ip.overrides=127.0.0.2:3",
        ],
    );
    let mut kept = Vec::new();
    for (address, allowed) in [("127.0.0.1", 2), ("127.0.0.2", 3)] {
        for i in 0..allowed {
            let mut s = connect_from(address, &broker.addr).await;
            assert!(answered(&mut s, i), "{address}: connection {i} was refused");
            kept.push(s);
        }
        let mut over = connect_from(address, &broker.addr).await;
        assert!(
            closed_by_broker(&mut over),
            "{address}: connection {allowed} was not closed"
        );
    }
    // A closed connection gives its slot back.
    drop(kept.remove(0));
    let mut again = None;
    // Up to 30 s: the slot comes back once the connection's task has ended.
    for _ in 0..600 {
        let mut s = connect_from("127.0.0.1", &broker.addr).await;
        if answered(&mut s, 9) {
            again = Some(s);
            break;
        }
        // The broker may not have seen the close yet.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "the freed slot was never given back");
}

#[test]
fn silent_and_trickling_connections_are_closed_after_connections_max_idle_ms() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["connections.max.idle.ms=2000"]);
    let connect = || {
        let s = TcpStream::connect(&broker.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    };
    // Silent: closed after about 2 s.
    let mut silent = connect();
    let started = Instant::now();
    assert!(
        closed_by_broker(&mut silent),
        "a silent connection stayed open"
    );
    assert!(started.elapsed() >= Duration::from_millis(1900));

    // Slow loris: a request sent one byte every 100 ms would take longer than 2 s to
    // arrive; the connection is closed before it completes.
    let mut loris = connect();
    let request = frame(ApiKey::ApiVersions, 0, 1, &ApiVersionsRequest::default());
    let mut trickle = loris.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut sent = 0;
        let padded: Vec<u8> = request.iter().copied().chain(vec![0u8; 64]).collect();
        for b in padded {
            if trickle.write_all(&[b]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        sent
    });
    assert!(
        closed_by_broker(&mut loris),
        "a trickling connection stayed open"
    );
    let sent = writer.join().unwrap();
    assert!(sent < 80, "the whole trickle went through ({sent} bytes)");

    // Busy: a request every 200 ms keeps a connection open well past the limit.
    let mut busy = connect();
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(5) {
        assert!(answered(&mut busy, i), "a busy connection was closed");
        i += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A consumer that sends fetches and never reads the answers: the broker stops reading its
/// requests once 16 MiB of answers wait for it, so its memory stays bounded. Before the
/// bound the 32 requests read ahead held 32 answers of 4 MiB each.
#[tokio::test]
async fn a_client_that_never_reads_its_fetches_does_not_grow_broker_memory() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    crate::clients::create_topic(&broker.addr, "big", 1).await;
    // 4 MiB in the partition, in 1/4 MiB batches.
    let value = vec![7u8; 256 * 1024];
    for _ in 0..16 {
        let request = produce_request("big", TestBatch::new(&[&value[..]]).bytes());
        let r: ProduceResponse = call(&broker.addr, ApiKey::Produce, 9, &request);
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let fetch = fetch_request("big", 0, 8 << 20);
    let before = broker.rss_anon_bytes();
    let mut stuck = TcpStream::connect(&broker.addr).unwrap();
    let control = stuck.try_clone().unwrap();
    let mut pipelined = Vec::new();
    for i in 0..64 {
        pipelined.extend_from_slice(&frame(ApiKey::Fetch, 4, i, &fetch));
    }
    // The broker stops reading, so this write may block once the socket buffers fill: it
    // runs on its own thread, ended by the shutdown of the socket below.
    let writer = std::thread::spawn(move || {
        let _ = stuck.write_all(&pipelined);
    });
    // Let the broker read and answer what it will.
    let mut peak = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(broker.rss_anon_bytes());
    }
    let grown = peak.saturating_sub(before);
    eprintln!(
        "broker anonymous RSS grew by {} MiB for a stuck consumer",
        grown >> 20
    );
    assert!(
        grown < 64 << 20,
        "a client that never reads grew broker memory by {} MiB",
        grown >> 20
    );
    // Everyone else is still served.
    let mut other = TcpStream::connect(&broker.addr).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(answered(&mut other, 1));
    control.shutdown(std::net::Shutdown::Both).unwrap();
    writer.join().unwrap();
}

/// Sends `request` on `s` and reads the answer's bytes (after the correlation id).
fn round_trip(s: &mut TcpStream, request: &[u8]) -> Vec<u8> {
    s.write_all(request).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).unwrap();
    body.split_off(4)
}

/// Admin work runs off the async workers: while a CreateTopics of 10,000 partitions is in
/// flight (seconds of file creation), produce-and-fetch round trips on another topic keep
/// their usual latency. The data directory is on tmpfs where there is one, so creation is
/// CPU-bound, the case that would hold a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_topics_of_10000_partitions_does_not_delay_produce_and_fetch() {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
    let dir = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let broker = Broker::start(dir.path(), &[]);
    crate::clients::create_topic(&broker.addr, "busy", 1).await;
    let addr = broker.addr.clone();
    let create = std::thread::spawn(move || {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(600_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("wide")))
                .with_num_partitions(10_000)
                .with_replication_factor(1)]);
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
        let started = Instant::now();
        let answer = round_trip(&mut s, &frame(ApiKey::CreateTopics, 4, 3, &request));
        let r = CreateTopicsResponse::decode(&mut bytes::Bytes::from(answer), 4).unwrap();
        let message = r.topics[0].error_message.as_ref().map(ToString::to_string);
        (r.topics[0].error_code, message, started.elapsed())
    });
    let mut s = TcpStream::connect(&broker.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let value = [1u8; 100];
    let mut latencies = Vec::new();
    let mut offset = 0i64;
    // Bounded: at most 100,000 round trips, or until the creation is answered.
    while !create.is_finished() && latencies.len() < 100_000 {
        let produce = produce_request("busy", TestBatch::new(&[&value[..]]).bytes());
        let fetch = fetch_request("busy", offset, 1 << 20);
        let started = Instant::now();
        round_trip(&mut s, &frame(ApiKey::Produce, 9, 1, &produce));
        let fetched = round_trip(&mut s, &frame(ApiKey::Fetch, 4, 2, &fetch));
        latencies.push(started.elapsed());
        assert!(fetched.len() > 100, "the fetch returned no records");
        offset += 1;
    }
    let (code, message, took) = create.join().unwrap();
    assert_eq!(
        code, 0,
        "CreateTopics of 10,000 partitions failed: {message:?}"
    );
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() - 1) * p / 100];
    let max = *latencies.last().expect("round trips during the creation");
    eprintln!(
        "CreateTopics 10,000 partitions took {took:?}; {} produce+fetch round trips meanwhile: p50 {:?}, p99 {:?}, max {max:?}",
        latencies.len(),
        pct(50),
        pct(99),
    );
    // A worker blocked by the creation holds a round trip for about the whole creation
    // time. The bound is half of it, kept between 500 ms (room for a busy 2-core machine's
    // scheduling; a fixed latency bound alone would be a timed test) and 2 s (so that a
    // long creation does not hide a stall of seconds).
    let bound = (took / 2).clamp(Duration::from_millis(500), Duration::from_secs(2));
    assert!(
        max < bound,
        "a produce+fetch took {max:?} while CreateTopics ran ({took:?})"
    );
}
