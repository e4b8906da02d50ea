//! The HTTP listener: `/metrics` counting what real clients do (with Kafka's metric
//! names), `/health`, configuration from environment variables, and the listener's answers
//! to bad or cross-site requests.

use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::clients::{consume_all, create_topic};
use crate::raw::call;
use crate::support::{http, Broker};

/// The value of the sample `name{labels}` (labels as printed), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

async fn produce(addr: &str, topic: &str, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in 0..count {
        let key = format!("k{i}");
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload("some value"),
                Duration::from_secs(30),
            )
            .await
            .expect("produced");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_clients_do_under_kafkas_names() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["auto.create.topics.enable=false"]);
    let http_addr = broker.http.clone().expect("the HTTP listener is on");
    create_topic(&broker.addr, "m", 3).await;
    produce(&broker.addr, "m", 30).await;
    let seen = consume_all(&broker.addr, "m", 3, 30);
    assert_eq!(seen.len(), 30);
    // A group with a committed offset behind the end of partition 0.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "lagging")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("m", 0, Offset::Offset(1)).unwrap();
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    // Metadata for a topic that does not exist: an error code to count.
    let _: MetadataResponse = call(
        &broker.addr,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("missing"))))])),
    );

    let (status, metrics) = http(&http_addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    let get = |series: &str| {
        sample(&metrics, series).unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert_eq!(
        get("kafka_server_brokertopicmetrics_messagesin_total{topic=\"m\"}") as i64,
        30
    );
    assert!(get("kafka_server_brokertopicmetrics_bytesin_total{topic=\"m\"}") > 30.0 * 10.0);
    assert!(get("kafka_server_brokertopicmetrics_bytesout_total{topic=\"m\"}") > 30.0 * 10.0);
    assert!(get("kafka_server_brokertopicmetrics_totalproducerequests_total{topic=\"m\"}") >= 3.0);
    assert!(get("kafka_server_brokertopicmetrics_totalfetchrequests_total{topic=\"m\"}") >= 3.0);
    assert!(metrics.contains("kafka_network_requestmetrics_requests_total{request=\"Produce\""));
    assert!(get("kafka_network_requestmetrics_totaltimems_count{request=\"Fetch\"}") >= 1.0);
    assert!(get("kafka_network_requestmetrics_errors_total{request=\"Metadata\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"}") >= 1.0);
    assert!(get("kafka_log_logflushstats_logflushrateandtimems_count") >= 1.0);
    let end: f64 = (0..3)
        .map(|p| {
            get(&format!(
                "kafka_log_log_logendoffset{{topic=\"m\",partition=\"{p}\"}}"
            ))
        })
        .sum();
    assert_eq!(end as i64, 30);
    let end0 = get("kafka_log_log_logendoffset{topic=\"m\",partition=\"0\"}");
    assert_eq!(
        get("kafka_consumergroup_lag{consumergroup=\"lagging\",topic=\"m\",partition=\"0\"}")
            as i64,
        end0 as i64 - 1
    );
    assert!(get("kafka_log_log_size{topic=\"m\",partition=\"0\"}") > 0.0);
    assert_eq!(get("kafka_server_kafkaserver_brokerstate") as i64, 3);
    assert!(get("process_resident_memory_bytes") > 0.0);
    assert!(get("process_open_fds") > 0.0);
    // The consumer above is still connected.
    assert!(
        get("kafka_server_socketservermetrics_connection_count{listener=\"PLAINTEXT\"}") >= 1.0
    );
    drop(consumer);
    broker.stop();
}

#[test]
fn health_answers_running_and_the_listener_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http_addr = broker.http.clone().expect("the HTTP listener is on");
    assert_eq!(
        http(&http_addr, "GET", "/health", &[], ""),
        (200, r#"{"status":"RUNNING"}"#.to_string())
    );
    assert_eq!(http(&http_addr, "POST", "/health", &[], "").0, 405);
    assert_eq!(http(&http_addr, "GET", "/nothing-here", &[], "").0, 404);
    broker.stop();
    let off = tempfile::tempdir().unwrap();
    let broker = Broker::start(off.path(), &["http.listen="]);
    assert!(
        broker.http.is_none(),
        "http.listen empty turns the listener off"
    );
    broker.stop();
}

#[test]
fn the_console_can_be_turned_off_leaving_metrics_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["console.enable=false"]);
    let http_addr = broker.http.clone().unwrap();
    assert_eq!(http(&http_addr, "GET", "/", &[], "").0, 404);
    assert_eq!(http(&http_addr, "GET", "/api/topics", &[], "").0, 404);
    assert_eq!(http(&http_addr, "GET", "/health", &[], "").0, 200);
    assert_eq!(http(&http_addr, "GET", "/metrics", &[], "").0, 200);
    broker.stop();
}

#[test]
fn environment_variables_set_broker_configs_as_the_kafka_images_do() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with_env(
        dir.path(),
        &[],
        &[
            ("GREGOR_NUM_PARTITIONS", "3"),
            ("KAFKA_LOG_RETENTION_MS", "123456"),
            // Kafka's scripts' own variables are not settings and are left alone.
            ("KAFKA_HOME", "/opt/kafka"),
            ("KAFKA_OPTS", "-Xmx1g"),
        ],
    );
    let http_addr = broker.http.clone().unwrap();
    let metadata: MetadataResponse = call(
        &broker.addr,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("auto"))))]))
            .with_allow_auto_topic_creation(true),
    );
    assert_eq!(
        metadata.topics[0].partitions.len(),
        3,
        "num.partitions from GREGOR_NUM_PARTITIONS"
    );
    let (_, body) = http(&http_addr, "GET", "/api/topics/auto", &[], "");
    let topic: serde_json::Value = serde_json::from_str(&body).unwrap();
    let retention = topic["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap()
        .clone();
    assert_eq!(
        retention["value"], "123456",
        "log.retention.ms from KAFKA_LOG_RETENTION_MS"
    );
    broker.stop();
}

#[test]
fn bad_http_requests_get_a_status_and_the_listener_keeps_serving() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http_addr = broker.http.clone().unwrap();
    for (request, status) in [
        ("garbage\r\n\r\n", "400"),
        ("GET / HTTP/2.0\r\n\r\n", "505"),
        (
            "POST /api/topics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            "413",
        ),
        (
            "POST /api/topics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "501",
        ),
    ] {
        let mut s = std::net::TcpStream::connect(&http_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{request:?} got {answer:?}"
        );
    }
    // A head that never ends is cut at 16 KiB.
    let mut s = std::net::TcpStream::connect(&http_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(40_000)).as_bytes());
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");
    assert_eq!(http(&http_addr, "GET", "/health", &[], "").0, 200);
    broker.stop();
}

#[test]
fn the_console_api_refuses_writes_from_other_sites() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http_addr = broker.http.clone().unwrap();
    let json = [("Content-Type", "application/json")];
    let body = r#"{"name":"t"}"#;
    // A form post (no JSON), another origin, a rebound host name: refused.
    assert_eq!(
        http(
            &http_addr,
            "POST",
            "/api/topics",
            &[("Content-Type", "text/plain")],
            body
        )
        .0,
        415
    );
    assert_eq!(
        http(
            &http_addr,
            "POST",
            "/api/topics",
            &[json[0], ("Origin", "http://evil.example")],
            body
        )
        .0,
        403
    );
    let (status, answer) = http(&http_addr, "POST", "/api/topics", &json, body);
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = http(&http_addr, "POST", "/api/topics", &json, body);
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("TOPIC_ALREADY_EXISTS"), "{answer}");
    assert_eq!(http(&http_addr, "GET", "/api/topics/none", &[], "").0, 404);
    broker.stop();
}
