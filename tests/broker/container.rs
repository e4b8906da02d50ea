//! The container image through Testcontainers: build the image from the repository's
//! Dockerfile, start it with a host port mapped and advertised (docs/container.md), and
//! produce and consume through it with rdkafka. Without a reachable Docker daemon the test
//! reports itself skipped, with the reason, and checks nothing.

use std::path::Path;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::{SyncBuilder, SyncRunner};
use testcontainers::{GenericBuildableImage, ImageExt};

use crate::clients::consume_all;

/// Why Docker cannot be used here, if it cannot.
fn docker_unavailable() -> Option<String> {
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        let Some(addr) = host.strip_prefix("tcp://") else {
            return (!host.starts_with("unix://"))
                .then(|| format!("DOCKER_HOST={host} is not tcp:// or unix://"));
        };
        return std::net::TcpStream::connect(addr)
            .err()
            .map(|e| format!("DOCKER_HOST={host}: {e}"));
    }
    let socket = "/var/run/docker.sock";
    std::os::unix::net::UnixStream::connect(socket)
        .err()
        .map(|e| format!("no Docker daemon at {socket} ({e})"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn the_image_serves_kafka_clients_through_testcontainers() {
    if let Some(reason) = docker_unavailable() {
        // Printed on both streams so that `make test` shows it (see the Makefile).
        println!("SKIPPED the_image_serves_kafka_clients_through_testcontainers: {reason}");
        eprintln!("SKIPPED the_image_serves_kafka_clients_through_testcontainers: {reason}");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let image = GenericBuildableImage::new("gregor", "testcontainers")
        .with_dockerfile(root.join("Dockerfile"))
        .with_file(root.join("Cargo.toml"), "Cargo.toml")
        .with_file(root.join("Cargo.lock"), "Cargo.lock")
        .with_file(root.join("src"), "src")
        .with_file(root.join("config"), "config")
        .build_image()
        .expect("the image builds from the Dockerfile");
    let (kafka_port, http_port) = (free_port(), free_port());
    let _gregor = image
        .with_wait_for(WaitFor::message_on_stdout("gregor listening on"))
        .with_mapped_port(kafka_port, 9092.tcp())
        .with_mapped_port(http_port, 9644.tcp())
        .with_env_var(
            "KAFKA_ADVERTISED_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{kafka_port}"),
        )
        .with_env_var("GREGOR_NUM_PARTITIONS", "2")
        .start()
        .expect("the container starts");
    let bootstrap = format!("127.0.0.1:{kafka_port}");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    for i in 0..20 {
        let key = format!("k{i}");
        let value = format!("v{i}");
        producer
            .send(
                BaseRecord::to("through-the-container")
                    .key(&key)
                    .payload(&value),
            )
            .expect("queued");
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("every record acknowledged");
    let seen = consume_all(&bootstrap, "through-the-container", 2, 20);
    assert_eq!(seen.len(), 20);
    let (status, body) =
        crate::support::http(&format!("127.0.0.1:{http_port}"), "GET", "/health", &[], "");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"RUNNING"}"#));
}
