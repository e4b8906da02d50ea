//! The broker's metrics, in Prometheus' text format at `/metrics` (docs/metrics.md), named
//! after Kafka's JMX metrics as the JMX exporter prints them
//! (`kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=t` becomes
//! `kafka_server_brokertopicmetrics_messagesin_total{topic="t"}`).
//!
//! Two kinds: instruments updated where things happen (counters, histograms, gauges: one
//! process-wide set, [`global`], cheap enough for the data path: an atomic add, and a
//! read-locked map lookup for a labelled one), and values read when `/metrics` is scraped
//! ([`BrokerCollector`]: log sizes and offsets, consumer group lag, the process's memory,
//! CPU and descriptors), which cost nothing in between.
//!
//! Synchronisation: the instruments are atomics inside prometheus-client's families (a
//! `RwLock`ed map per family); the collector reads the broker's state through its usual
//! locks at scrape time.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::broker::Broker;
use crate::broker_state::Lifecycle;

/// A label set of one label.
pub type Label = [(&'static str, String); 1];
/// A label set of two labels.
pub type Labels2 = [(&'static str, String); 2];

fn millisecond_buckets() -> Histogram {
    // 0.1 ms to about 16 s.
    Histogram::new([
        0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
        5000.0, 10_000.0, 16_000.0,
    ])
}

/// The instruments the broker updates as it works.
#[derive(Debug)]
pub struct Metrics {
    pub messages_in: Family<Label, Counter>,
    pub bytes_in: Family<Label, Counter>,
    pub bytes_out: Family<Label, Counter>,
    pub produce_requests: Family<Label, Counter>,
    pub fetch_requests: Family<Label, Counter>,
    pub failed_produce_requests: Family<Label, Counter>,
    pub failed_fetch_requests: Family<Label, Counter>,
    /// By request name and version.
    pub requests: Family<Labels2, Counter>,
    /// By request name and error name.
    pub errors: Family<Labels2, Counter>,
    pub request_time_ms: Family<Label, Histogram, fn() -> Histogram>,
    pub flush_time_ms: Histogram,
    pub connections: Family<Label, Gauge>,
    started: Instant,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    messages_in: Family::default(),
    bytes_in: Family::default(),
    bytes_out: Family::default(),
    produce_requests: Family::default(),
    fetch_requests: Family::default(),
    failed_produce_requests: Family::default(),
    failed_fetch_requests: Family::default(),
    requests: Family::default(),
    errors: Family::default(),
    request_time_ms: Family::new_with_constructor(millisecond_buckets),
    flush_time_ms: millisecond_buckets(),
    connections: Family::default(),
    started: Instant::now(),
});

/// A request series' handles: its count and its latency histogram.
type RequestSeries = std::sync::OnceLock<(Counter, Histogram)>;

/// Request series handles by API key, then version (a version's slots are made when its
/// API is first used). Keys and versions stay below these bounds in every Kafka release.
const MAX_API_KEYS: usize = 128;
const MAX_VERSIONS: usize = 32;
static REQUEST_SERIES: LazyLock<Vec<std::sync::OnceLock<Vec<RequestSeries>>>> =
    LazyLock::new(|| {
        (0..MAX_API_KEYS)
            .map(|_| std::sync::OnceLock::new())
            .collect()
    });

/// The process's instruments.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// The names of the APIs (`Produce`), as Kafka labels its request metrics.
static API_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    (0..=i16::from(u8::MAX))
        .map(|k| match kafka_protocol::messages::ApiKey::try_from(k) {
            Ok(key) => &*Box::leak(format!("{key:?}").into_boxed_str()),
            Err(()) => "Unknown",
        })
        .collect()
});

/// The name of API `key`.
pub fn api_name(key: kafka_protocol::messages::ApiKey) -> &'static str {
    API_NAMES
        .get(usize::try_from(key as i16).unwrap_or(usize::MAX))
        .copied()
        .unwrap_or("Unknown")
}

impl Metrics {
    /// Time since the instruments were created (the server creates them as it starts).
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Counts a request of `api` (key `api_key`) at `version` answered after `elapsed`.
    /// The series' handles are looked up once per (API, version) and kept, so a request
    /// costs an atomic add and a histogram observation, no label strings.
    pub fn request(&self, api_key: i16, api: &'static str, version: i16, elapsed_ms: f64) {
        let slot = REQUEST_SERIES
            .get(usize::try_from(api_key).unwrap_or(usize::MAX))
            .map(|versions| {
                versions.get_or_init(|| (0..MAX_VERSIONS).map(|_| RequestSeries::new()).collect())
            })
            .and_then(|versions| versions.get(usize::try_from(version).unwrap_or(usize::MAX)));
        let Some(slot) = slot else {
            return;
        };
        let (count, time) = slot.get_or_init(|| {
            (
                self.requests.get_or_create_owned(&[
                    ("request", api.to_string()),
                    ("version", version.to_string()),
                ]),
                self.request_time_ms
                    .get_or_create_owned(&[("request", api.to_string())]),
            )
        });
        count.inc();
        time.observe(elapsed_ms);
    }

    /// Counts error `code` in an answer to `api` (0, no error, is not counted).
    pub fn error(&self, api: &'static str, code: i16) {
        if code == 0 {
            return;
        }
        let name = kafka_protocol::ResponseError::try_from_code(code)
            .map_or_else(|| format!("UNKNOWN_{code}"), error_name);
        self.errors
            .get_or_create(&[("request", api.to_string()), ("error", name)])
            .inc();
    }
}

/// Kafka's name of an error (`UNKNOWN_TOPIC_OR_PARTITION`), from the protocol crate's
/// `UnknownTopicOrPartition`.
pub fn error_name(e: kafka_protocol::ResponseError) -> String {
    let camel = format!("{e:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The registry `/metrics` encodes: the instruments, the broker's state and, once the
/// broker is loaded, what is read from it at scrape time.
pub fn registry(lifecycle: &Lifecycle) -> Registry {
    let m = global();
    let mut r = Registry::default();
    let topic_counters: [(&str, &str, &Family<Label, Counter>); 7] = [
        (
            "kafka_server_brokertopicmetrics_messagesin",
            "Messages appended, by topic (Kafka's MessagesInPerSec)",
            &m.messages_in,
        ),
        (
            "kafka_server_brokertopicmetrics_bytesin",
            "Bytes appended, by topic (BytesInPerSec)",
            &m.bytes_in,
        ),
        (
            "kafka_server_brokertopicmetrics_bytesout",
            "Record bytes fetched by consumers, by topic (BytesOutPerSec)",
            &m.bytes_out,
        ),
        (
            "kafka_server_brokertopicmetrics_totalproducerequests",
            "Produce requests, by topic (TotalProduceRequestsPerSec)",
            &m.produce_requests,
        ),
        (
            "kafka_server_brokertopicmetrics_totalfetchrequests",
            "Fetch requests, by topic (TotalFetchRequestsPerSec)",
            &m.fetch_requests,
        ),
        (
            "kafka_server_brokertopicmetrics_failedproducerequests",
            "Produce requests that failed, by topic (FailedProduceRequestsPerSec)",
            &m.failed_produce_requests,
        ),
        (
            "kafka_server_brokertopicmetrics_failedfetchrequests",
            "Fetch requests that failed, by topic (FailedFetchRequestsPerSec)",
            &m.failed_fetch_requests,
        ),
    ];
    for (name, help, family) in topic_counters {
        r.register(name, help, family.clone());
    }
    r.register(
        "kafka_network_requestmetrics_requests",
        "Requests answered, by API and version (Kafka's RequestsPerSec)",
        m.requests.clone(),
    );
    r.register(
        "kafka_network_requestmetrics_errors",
        "Error codes in answers, by API and error (Kafka's ErrorsPerSec)",
        m.errors.clone(),
    );
    r.register(
        "kafka_network_requestmetrics_totaltimems",
        "Milliseconds from a request read to its answer ready, by API (Kafka's TotalTimeMs); Produce includes its fsync",
        m.request_time_ms.clone(),
    );
    r.register(
        "kafka_log_logflushstats_logflushrateandtimems",
        "Milliseconds per log flush (fsync) (Kafka's LogFlushRateAndTimeMs)",
        m.flush_time_ms.clone(),
    );
    r.register(
        "kafka_server_socketservermetrics_connection_count",
        "Open client connections, by listener",
        m.connections.clone(),
    );
    r.register(
        "kafka_server_kafkaserver_brokerstate",
        "The broker's state, as Kafka numbers it: 1 STARTING, 2 RECOVERY, 3 RUNNING, 7 SHUTTING_DOWN",
        ConstGauge::new(i64::from(lifecycle.state().value())),
    );
    r.register_collector(Box::new(ProcessCollector));
    if let Some(broker) = lifecycle.broker() {
        r.register_collector(Box::new(BrokerCollector(broker)));
    }
    r
}

/// The text `/metrics` answers with (Prometheus' text format 0.0.4).
pub fn encode(lifecycle: &Lifecycle) -> String {
    let mut out = String::new();
    // Writing into a String does not fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry(lifecycle));
    out
}

impl Metrics {
    /// Forgets a deleted topic's counters, as Kafka removes its topic metrics.
    pub fn forget_topic(&self, topic: &str) {
        let labels = [("topic", topic.to_string())];
        for family in [
            &self.messages_in,
            &self.bytes_in,
            &self.bytes_out,
            &self.produce_requests,
            &self.fetch_requests,
            &self.failed_produce_requests,
            &self.failed_fetch_requests,
        ] {
            family.remove(&labels);
        }
    }

    /// A topic's counter in `family`, 0 if it never counted.
    pub fn topic_count(family: &Family<Label, Counter>, topic: &str) -> u64 {
        family
            .get(&[("topic", topic.to_string())])
            .map_or(0, |c| c.get())
    }
}

/// Writes one family of gauges (`values`: label sets and values).
fn gauges<L: prometheus_client::encoding::EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: &[(L, i64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (labels, v) in values {
        ConstGauge::new(*v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

/// Partition offsets and sizes, consumer group positions and lag: read at scrape time.
pub struct BrokerCollector(pub Arc<Broker>);

impl std::fmt::Debug for BrokerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerCollector")
    }
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let broker = &self.0;
        type Partition = [(&'static str, String); 2];
        let mut size = Vec::new();
        let mut segments = Vec::new();
        let mut start = Vec::new();
        let mut end = Vec::new();
        let mut hw = Vec::new();
        let mut lso = Vec::new();
        let mut high_watermarks = std::collections::HashMap::new();
        for topic in broker.logs.topics() {
            for (p, log) in topic.partitions.iter().enumerate() {
                let labels: Partition =
                    [("topic", topic.name.clone()), ("partition", p.to_string())];
                size.push((labels.clone(), log.size_bytes() as i64));
                segments.push((labels.clone(), log.segment_count() as i64));
                start.push((labels.clone(), log.log_start_offset()));
                end.push((labels.clone(), log.log_end_offset()));
                hw.push((labels.clone(), log.high_watermark()));
                lso.push((labels, log.last_stable_offset()));
                high_watermarks.insert((topic.name.clone(), p as i32), log.high_watermark());
            }
        }
        gauges(
            &mut encoder,
            "kafka_log_log_size",
            "Bytes of a partition's log.",
            &size,
        )?;
        gauges(
            &mut encoder,
            "kafka_log_log_numlogsegments",
            "Segments of a partition's log.",
            &segments,
        )?;
        gauges(
            &mut encoder,
            "kafka_log_log_logstartoffset",
            "A partition's log start offset.",
            &start,
        )?;
        gauges(
            &mut encoder,
            "kafka_log_log_logendoffset",
            "A partition's log end offset.",
            &end,
        )?;
        gauges(&mut encoder, "gregor_log_high_watermark", "A partition's high watermark: what consumers can read (fsynced, with the default flush settings).", &hw)?;
        gauges(
            &mut encoder,
            "gregor_log_last_stable_offset",
            "A partition's last stable offset: what read_committed consumers can read.",
            &lso,
        )?;
        type GroupPartition = [(&'static str, String); 3];
        let mut current = Vec::new();
        let mut lag = Vec::new();
        for (group, ..) in broker.groups.list_groups() {
            for (topic, partitions) in broker.groups.fetch_offsets(&group, None) {
                for (partition, committed) in partitions {
                    let Some(committed) = committed else { continue };
                    let labels: GroupPartition = [
                        ("consumergroup", group.clone()),
                        ("topic", topic.clone()),
                        ("partition", partition.to_string()),
                    ];
                    if let Some(hw) = high_watermarks.get(&(topic.clone(), partition)) {
                        lag.push((labels.clone(), (hw - committed.offset).max(0)));
                    }
                    current.push((labels, committed.offset));
                }
            }
        }
        gauges(
            &mut encoder,
            "kafka_consumergroup_current_offset",
            "A consumer group's committed offset of a partition.",
            &current,
        )?;
        gauges(
            &mut encoder,
            "kafka_consumergroup_lag",
            "Records between a consumer group's committed offset and the high watermark.",
            &lag,
        )?;
        Ok(())
    }
}

/// The process's memory, CPU and descriptors (Prometheus' standard `process_*` names),
/// from `/proc/self`.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let no_labels: [(&str, String); 0] = [];
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = |key: &str| -> i64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
                .unwrap_or(0)
                * 1024
        };
        gauges(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory.",
            &[(no_labels.clone(), kb("VmRSS:"))],
        )?;
        gauges(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory.",
            &[(no_labels.clone(), kb("VmSize:"))],
        )?;
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64);
        gauges(
            &mut encoder,
            "process_open_fds",
            "Open file descriptors.",
            &[(no_labels.clone(), fds)],
        )?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let max_fds = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(-1);
        gauges(
            &mut encoder,
            "process_max_fds",
            "Most file descriptors allowed.",
            &[(no_labels.clone(), max_fds)],
        )?;
        // utime and stime, fields 14 and 15 of /proc/self/stat (after the command's ")").
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let ticks: u64 = stat.rsplit_once(')').map_or(0, |(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        });
        // Clock ticks of 1/100 s (USER_HZ, 100 on Linux for user-visible times).
        let cpu = ConstCounter::new(ticks as f64 / 100.0);
        let descriptor = encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time.",
            None,
            cpu.metric_type(),
        )?;
        cpu.encode(descriptor)?;
        let uptime = ConstGauge::new(global().started.elapsed().as_secs_f64());
        let descriptor = encoder.encode_descriptor(
            "gregor_uptime_seconds",
            "Seconds since the broker process started.",
            None,
            uptime.metric_type(),
        )?;
        uptime.encode(descriptor)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(
            error_name(kafka_protocol::ResponseError::UnknownTopicOrPartition),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            error_name(kafka_protocol::ResponseError::NotCoordinator),
            "NOT_COORDINATOR"
        );
    }

    #[test]
    fn instruments_are_encoded_with_kafkas_names() {
        let m = global();
        m.messages_in
            .get_or_create(&[("topic", "metrics-test".into())])
            .inc_by(3);
        m.request(0, "Produce", 9, 1.5);
        m.error("Produce", 3);
        let text = encode(&Lifecycle::new());
        assert!(text
            .contains("kafka_server_brokertopicmetrics_messagesin_total{topic=\"metrics-test\"}"));
        assert!(text.contains(
            "kafka_network_requestmetrics_requests_total{request=\"Produce\",version=\"9\"}"
        ));
        assert!(text.contains("kafka_network_requestmetrics_errors_total{request=\"Produce\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"}"));
        assert!(text.contains(
            "kafka_network_requestmetrics_totaltimems_bucket{request=\"Produce\",le=\"2.5\"}"
        ));
        assert!(text.contains("process_resident_memory_bytes "));
        assert!(text.contains("kafka_server_kafkaserver_brokerstate 1"));
    }
}
