//! The `gregor` admin commands against a real broker: topics, produce and consume (checked
//! against rdkafka, an independent client), groups with lag and offset resets, and errors
//! that end in exit code 1.

use serde_json::Value;

use crate::clients::consume_all;
use crate::support::{gregor_cli, Broker};

/// Runs a command that must succeed; its standard output.
fn ok(broker: &Broker, args: &[&str], stdin: &str) -> String {
    let mut all = args.to_vec();
    all.extend(["-b", broker.addr.as_str()]);
    let (success, out, err) = gregor_cli(&all, stdin);
    assert!(success, "gregor {args:?} failed: {err}");
    out
}

/// `count` lines made by `line`, each ended by a newline.
fn lines_of(count: usize, line: impl Fn(usize) -> String) -> String {
    (0..count).fold(String::new(), |mut text, i| {
        text.push_str(&line(i));
        text.push('\n');
        text
    })
}

fn json(broker: &Broker, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&ok(broker, &all, "")).expect("JSON output")
}

#[test]
fn topics_are_created_described_altered_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let out = ok(
        &broker,
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "3",
            "-c",
            "retention.ms=60000",
        ],
        "",
    );
    assert!(out.starts_with("Created topic orders ("), "{out}");
    let list = json(&broker, &["topic", "list"]);
    assert_eq!(list[0]["name"], "orders");
    assert_eq!(list[0]["partitions"], 3);
    let table = ok(&broker, &["topic", "list"], "");
    assert!(
        table.lines().next().unwrap().starts_with("TOPIC"),
        "{table}"
    );
    let config = |d: &Value, name: &str| {
        d["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    let described = json(&broker, &["topic", "describe", "orders"]);
    assert_eq!(described["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(config(&described, "retention.ms")["value"], "60000");
    assert_eq!(
        config(&described, "retention.ms")["source"],
        "DYNAMIC_TOPIC_CONFIG"
    );
    ok(
        &broker,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "retention.ms=120000",
            "--set",
            "cleanup.policy=compact",
        ],
        "",
    );
    let described = json(&broker, &["topic", "describe", "orders"]);
    assert_eq!(config(&described, "retention.ms")["value"], "120000");
    assert_eq!(config(&described, "cleanup.policy")["value"], "compact");
    ok(
        &broker,
        &[
            "topic",
            "alter-config",
            "orders",
            "--delete",
            "retention.ms",
        ],
        "",
    );
    let described = json(&broker, &["topic", "describe", "orders"]);
    assert_eq!(
        config(&described, "retention.ms")["source"],
        "DEFAULT_CONFIG"
    );
    ok(&broker, &["topic", "delete", "orders"], "");
    assert_eq!(json(&broker, &["topic", "list"]), serde_json::json!([]));
    broker.stop();
}

#[test]
fn what_the_cli_produces_a_kafka_client_reads_and_the_other_way_round() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    ok(&broker, &["topic", "create", "events", "-p", "4"], "");
    let lines = lines_of(50, |i| format!("user-{i}:event {i}"));
    ok(
        &broker,
        &["produce", "events", "--parse-key", "-H", "source=cli"],
        &lines,
    );
    // rdkafka reads every record, each in the partition Kafka's partitioner gives its key.
    let seen = consume_all(&broker.addr, "events", 4, 50);
    assert_eq!(seen.len(), 50);
    for s in &seen {
        let key = String::from_utf8(s.key.clone()).unwrap();
        let i: usize = key.trim_start_matches("user-").parse().unwrap();
        assert_eq!(s.value, format!("event {i}").into_bytes());
        assert_eq!(s.headers, vec![("source".to_string(), b"cli".to_vec())]);
        assert_eq!(
            s.partition,
            gregor::admin::murmur2::partition_for_key(key.as_bytes(), 4),
            "{key}"
        );
    }
    // The CLI reads them back, as JSON lines, to the end and stops.
    let out = ok(
        &broker,
        &[
            "consume",
            "events",
            "--from-beginning",
            "-e",
            "--format",
            "json",
        ],
        "",
    );
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 50);
    assert!(records.iter().any(|r| r["key"] == "user-7"
        && r["value"] == "event 7"
        && r["headers"]["source"] == "cli"));
    // From one partition, at an offset, at most two records.
    let out = ok(
        &broker,
        &[
            "consume",
            "events",
            "-p",
            "0",
            "--offset",
            "1",
            "-n",
            "2",
            "--print-offset",
        ],
        "",
    );
    let offsets: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(offsets, vec!["0:1", "0:2"]);
    broker.stop();
}

#[test]
fn a_group_consumes_commits_and_has_its_offsets_reset() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    ok(&broker, &["topic", "create", "jobs", "-p", "2"], "");
    let lines = lines_of(10, |i| format!("job {i}"));
    ok(&broker, &["produce", "jobs"], &lines);
    // A member of a KIP-848 consumer group: reads everything once, committing.
    let out = ok(
        &broker,
        &["consume", "jobs", "-g", "workers", "--from-beginning", "-e"],
        "",
    );
    assert_eq!(out.lines().count(), 10, "{out}");
    let described = json(&broker, &["group", "describe", "workers"]);
    assert_eq!(described["group_type"], "consumer");
    let offsets = described["offsets"].as_array().unwrap();
    assert_eq!(
        offsets
            .iter()
            .map(|o| o["committed"].as_i64().unwrap())
            .sum::<i64>(),
        10
    );
    assert!(offsets.iter().all(|o| o["lag"] == 0), "{described}");
    // Again: nothing new for the group.
    let out = ok(
        &broker,
        &["consume", "jobs", "-g", "workers", "--from-beginning", "-e"],
        "",
    );
    assert_eq!(out, "");
    let groups = json(&broker, &["group", "list"]);
    assert_eq!(groups[0]["group_id"], "workers");
    // A dry run changes nothing; --execute does.
    let plan = json(
        &broker,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--to-earliest",
        ],
    );
    assert_eq!(plan["executed"], false);
    let described = json(&broker, &["group", "describe", "workers"]);
    assert!(described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["lag"] == 0));
    ok(
        &broker,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--shift-by",
            "-2",
            "--execute",
        ],
        "",
    );
    let described = json(&broker, &["group", "describe", "workers"]);
    let lag: i64 = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 4, "{described}");
    let out = ok(&broker, &["consume", "jobs", "-g", "workers", "-e"], "");
    assert_eq!(out.lines().count(), 4, "{out}");
    ok(&broker, &["group", "delete", "workers"], "");
    assert_eq!(json(&broker, &["group", "list"]), serde_json::json!([]));
    let info = json(&broker, &["cluster", "info"]);
    assert_eq!(info["brokers"][0]["node_id"], 1);
    assert_eq!(info["topics"], 1);
    broker.stop();
}

#[test]
fn failures_print_the_kafka_error_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let addr = broker.addr.clone();
    let (success, _, err) = gregor_cli(&["topic", "describe", "nope", "-b", &addr], "");
    assert!(!success);
    assert!(err.contains("topic nope does not exist"), "{err}");
    ok(&broker, &["topic", "create", "t"], "");
    let (success, _, err) = gregor_cli(&["topic", "create", "t", "-b", &addr], "");
    assert!(!success);
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    let (success, _, err) = gregor_cli(
        &[
            "topic",
            "create",
            "bad",
            "-c",
            "retention.ms=soon",
            "-b",
            &addr,
        ],
        "",
    );
    assert!(!success);
    assert!(err.contains("INVALID_CONFIG"), "{err}");
    let (success, _, err) = gregor_cli(
        &[
            "cluster",
            "info",
            "-b",
            "127.0.0.1:1",
            "--request-timeout-ms",
            "2000",
        ],
        "",
    );
    assert!(!success);
    assert!(err.contains("cannot reach the broker"), "{err}");
    broker.stop();
}
