//! Admin APIs: through the rdkafka admin client where it has them (DescribeConfigs,
//! AlterConfigs, CreatePartitions, DeleteRecords, DeleteGroups) and through raw requests for
//! the rest (IncrementalAlterConfigs, DescribeLogDirs, DescribeCluster, DescribeProducers,
//! ElectLeaders); invalid input, and durability of every change across a restart.

use std::time::Duration;

use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as LegacyResource, AlterableConfig as LegacyConfig,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, DescribeClusterRequest,
    DescribeClusterResponse, DescribeLogDirsRequest, DescribeLogDirsResponse,
    DescribeProducersRequest, DescribeProducersResponse, ElectLeadersRequest, ElectLeadersResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, OwnedResourceSpecifier,
    ResourceSpecifier,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::clients::create_topic;
use crate::raw::call;
use crate::support::Broker;

fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("admin")
}

fn opts() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(10)))
}

/// (value, source as rdkafka names it: "Default", "DynamicTopic", "StaticBroker").
async fn topic_config(addr: &str, topic: &str, key: &str) -> (Option<String>, String) {
    let results = admin(addr)
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &opts())
        .await
        .expect("describe_configs");
    let resource = results.into_iter().next().unwrap().expect("resource");
    assert_eq!(
        resource.specifier,
        OwnedResourceSpecifier::Topic(topic.to_string())
    );
    let entry = resource
        .get(key)
        .unwrap_or_else(|| panic!("{key} is described"));
    (entry.value.clone(), format!("{:?}", entry.source))
}

async fn produce(
    addr: &str,
    topic: &str,
    partition: i32,
    count: usize,
    size: usize,
) -> Result<(), RDKafkaErrorCode> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", "all")
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap();
    let payload = vec![b'x'; size];
    for _ in 0..count {
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .partition(partition)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_are_described_altered_validated_applied_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "conf", 1).await;

    // The embedded config file sets log.retention.hours to its built-in default: a default,
    // and (as in Kafka) retention.ms has no broker synonym before log.retention.ms is set.
    let (value, source) = topic_config(&broker.addr, "conf", "retention.ms").await;
    assert_eq!(
        (value.as_deref(), source.as_str()),
        (Some("604800000"), "Default")
    );
    let (value, source) = topic_config(&broker.addr, "conf", "delete.retention.ms").await;
    assert_eq!(
        (value.as_deref(), source.as_str()),
        (Some("86400000"), "Default")
    );
    let (value, _) = topic_config(&broker.addr, "conf", "segment.bytes").await;
    assert_eq!(value.as_deref(), Some("1073741824"));
    // The broker's own settings: a key the embedded file sets to its built-in default is a
    // default; one it changes (Kafka's 3000 ms initial rebalance delay to 0, as Kafka's own
    // example server.properties does) is reported as set, as Kafka reports server.properties.
    let results = admin(&broker.addr)
        .describe_configs(&[ResourceSpecifier::Broker(1)], &opts())
        .await
        .unwrap();
    let b = results.into_iter().next().unwrap().unwrap();
    let entry = b.get("log.flush.interval.messages").unwrap();
    assert_eq!(entry.value.as_deref(), Some("1"));
    assert!(matches!(entry.source, ConfigSource::Default));
    let entry = b.get("group.initial.rebalance.delay.ms").unwrap();
    assert_eq!(entry.value.as_deref(), Some("0"));
    assert!(matches!(entry.source, ConfigSource::StaticBroker));

    // Alter: a 1000-byte message limit takes effect at once.
    produce(&broker.addr, "conf", 0, 1, 5000)
        .await
        .expect("5000 bytes fit by default");
    let alter = AlterConfig::new(ResourceSpecifier::Topic("conf"))
        .set("max.message.bytes", "1000")
        .set("retention.ms", "3600000");
    let r = admin(&broker.addr)
        .alter_configs(&[alter], &opts())
        .await
        .unwrap();
    r.into_iter().next().unwrap().expect("altered");
    let (value, source) = topic_config(&broker.addr, "conf", "max.message.bytes").await;
    assert_eq!(
        (value.as_deref(), source.as_str()),
        (Some("1000"), "DynamicTopic")
    );
    assert_eq!(
        produce(&broker.addr, "conf", 0, 1, 5000).await,
        Err(RDKafkaErrorCode::MessageSizeTooLarge)
    );

    // Invalid input is refused and changes nothing. (The rdkafka crate drops per-resource
    // AlterConfigs errors, so these go through a raw request.)
    let legacy = |topic: &str, key: &str, value: &str| {
        let request =
            AlterConfigsRequest::default().with_resources(vec![LegacyResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string(topic.into()))
                .with_configs(vec![LegacyConfig::default()
                    .with_name(StrBytes::from_string(key.into()))
                    .with_value(Some(StrBytes::from_string(value.into())))])]);
        let r: AlterConfigsResponse = call(&broker.addr, ApiKey::AlterConfigs, 1, &request);
        r.responses[0].error_code
    };
    for (key, value) in [
        ("retention.ms", "soon"),
        ("no.such.config", "1"),
        ("cleanup.policy", "forever"),
    ] {
        assert_eq!(
            legacy("conf", key, value),
            40,
            "{key}={value}: INVALID_CONFIG"
        );
    }
    assert_eq!(
        legacy("missing", "retention.ms", "1"),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    let (value, _) = topic_config(&broker.addr, "conf", "retention.ms").await;
    assert_eq!(value.as_deref(), Some("3600000"));

    // IncrementalAlterConfigs: APPEND to a list, DELETE, and APPEND to a non-list.
    let incremental = |configs: Vec<(&str, i8, &str)>| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("conf"))
                .with_configs(
                    configs
                        .into_iter()
                        .map(|(k, op, v)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(k.into()))
                                .with_config_operation(op)
                                .with_value(Some(StrBytes::from_string(v.into())))
                        })
                        .collect(),
                ),
        ])
    };
    let r: IncrementalAlterConfigsResponse = call(
        &broker.addr,
        ApiKey::IncrementalAlterConfigs,
        1,
        &incremental(vec![
            ("cleanup.policy", 2, "compact"),
            ("retention.ms", 1, ""),
        ]),
    );
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
    let (value, _) = topic_config(&broker.addr, "conf", "cleanup.policy").await;
    assert_eq!(value.as_deref(), Some("delete,compact"));
    // The override is gone: back to the default, as the test broker sets no retention.
    let (value, source) = topic_config(&broker.addr, "conf", "retention.ms").await;
    assert_eq!(
        (value.as_deref(), source.as_str()),
        (Some("604800000"), "Default")
    );
    let r: IncrementalAlterConfigsResponse = call(
        &broker.addr,
        ApiKey::IncrementalAlterConfigs,
        1,
        &incremental(vec![("retention.ms", 2, "5")]),
    );
    assert_eq!(
        r.responses[0].error_code, 40,
        "APPEND on a non-list: INVALID_CONFIG"
    );

    // Everything survives a restart.
    let broker = broker.restart_after(Broker::stop, &[]);
    let (value, _) = topic_config(&broker.addr, "conf", "max.message.bytes").await;
    assert_eq!(value.as_deref(), Some("1000"));
    let (value, _) = topic_config(&broker.addr, "conf", "cleanup.policy").await;
    assert_eq!(value.as_deref(), Some("delete,compact"));
    assert_eq!(
        produce(&broker.addr, "conf", 0, 1, 5000).await,
        Err(RDKafkaErrorCode::MessageSizeTooLarge)
    );
    broker.stop();
}

fn partition_count(addr: &str, topic: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    md.topics()[0].partitions().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_grow_only_and_stay_grown() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "grow", 2).await;
    let r = admin(&broker.addr)
        .create_partitions(&[NewPartitions::new("grow", 5)], &opts())
        .await
        .unwrap();
    r.into_iter().next().unwrap().expect("grown");
    assert_eq!(partition_count(&broker.addr, "grow"), 5);
    produce(&broker.addr, "grow", 4, 3, 10)
        .await
        .expect("the new partition takes data");
    for count in [3, 5] {
        let r = admin(&broker.addr)
            .create_partitions(&[NewPartitions::new("grow", count)], &opts())
            .await
            .unwrap();
        assert_eq!(
            r.into_iter().next().unwrap().unwrap_err().1,
            RDKafkaErrorCode::InvalidPartitions
        );
    }
    let broker = broker.restart_after(Broker::kill9, &[]);
    assert_eq!(partition_count(&broker.addr, "grow"), 5);
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_records_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so that whole segments go.
    let broker = Broker::start(dir.path(), &["log.segment.bytes=2000"]);
    create_topic(&broker.addr, "trim", 1).await;
    produce(&broker.addr, "trim", 0, 100, 100).await.unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("trim", 0, Offset::Offset(40))
        .unwrap();
    let r = admin(&broker.addr)
        .delete_records(&tpl, &opts())
        .await
        .unwrap();
    assert_eq!(r.elements()[0].offset(), Offset::Offset(40));
    assert!(r.elements()[0].error().is_ok());
    let segments_left = std::fs::read_dir(dir.path().join("trim-0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count();

    let watermarks = |addr: &str| {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", addr)
            .create()
            .unwrap();
        c.fetch_watermarks("trim", 0, Duration::from_secs(10))
            .unwrap()
    };
    assert_eq!(watermarks(&broker.addr), (40, 100));
    let mut beyond = TopicPartitionList::new();
    beyond
        .add_partition_offset("trim", 0, Offset::Offset(500))
        .unwrap();
    let r = admin(&broker.addr)
        .delete_records(&beyond, &opts())
        .await
        .unwrap();
    assert!(
        r.elements()[0].error().is_err(),
        "beyond the high watermark: OFFSET_OUT_OF_RANGE"
    );
    // An internal topic's records are not a client's to delete (Kafka's ReplicaManager).
    let found: kafka_protocol::messages::FindCoordinatorResponse = crate::raw::call(
        &broker.addr,
        kafka_protocol::messages::ApiKey::FindCoordinator,
        4,
        &kafka_protocol::messages::FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_static_str("g")]),
    );
    assert_eq!(
        found.coordinators[0].error_code, 0,
        "creates __consumer_offsets"
    );
    let mut internal = TopicPartitionList::new();
    internal
        .add_partition_offset("__consumer_offsets", 0, Offset::Offset(0))
        .unwrap();
    let r = admin(&broker.addr)
        .delete_records(&internal, &opts())
        .await
        .unwrap();
    let refused = format!("{:?}", r.elements()[0].error());
    assert!(
        refused.contains("InvalidTopic"),
        "INVALID_TOPIC_EXCEPTION: {refused}"
    );

    let broker = broker.restart_after(Broker::kill9, &["log.segment.bytes=2000"]);
    assert_eq!(watermarks(&broker.addr), (40, 100));
    let now_left = std::fs::read_dir(dir.path().join("trim-0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count();
    assert_eq!(now_left, segments_left);
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_log_dirs_producers_and_elections_are_described() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.addr, "described", 2).await;
    produce(&broker.addr, "described", 1, 10, 100)
        .await
        .unwrap();

    let cluster: DescribeClusterResponse = call(
        &broker.addr,
        ApiKey::DescribeCluster,
        1,
        &DescribeClusterRequest::default().with_endpoint_type(1),
    );
    assert_eq!(cluster.error_code, 0);
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(*cluster.controller_id, 1);
    assert_eq!(cluster.cluster_id.len(), 22);

    let dirs: DescribeLogDirsResponse = call(
        &broker.addr,
        ApiKey::DescribeLogDirs,
        4,
        &DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("described")))
                .with_partitions(vec![0, 1]),
        ])),
    );
    let result = &dirs.results[0];
    assert!(result.total_bytes > 0 && result.usable_bytes > 0);
    let sizes: Vec<(i32, i64)> = result.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.partition_size))
        .collect();
    assert_eq!(sizes.len(), 2);
    assert!(sizes.iter().any(|&(p, s)| p == 1 && s > 1000), "{sizes:?}");
    assert!(sizes.iter().any(|&(p, s)| p == 0 && s == 0), "{sizes:?}");

    let producers: DescribeProducersResponse = call(
        &broker.addr,
        ApiKey::DescribeProducers,
        0,
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(TopicName(StrBytes::from_static_str("described")))
            .with_partition_indexes(vec![0, 7])]),
    );
    let parts = &producers.topics[0].partitions;
    assert_eq!(
        (parts[0].error_code, parts[0].active_producers.len()),
        (0, 0)
    );
    assert_eq!(parts[1].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");

    let elect: ElectLeadersResponse = call(
        &broker.addr,
        ApiKey::ElectLeaders,
        2,
        &ElectLeadersRequest::default().with_topic_partitions(Some(vec![
            TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_static_str("described")))
                .with_partitions(vec![0]),
        ])),
    );
    assert_eq!(
        elect.replica_election_results[0].partition_result[0].error_code, 84,
        "ELECTION_NOT_NEEDED"
    );

    // DeleteGroups through rdkafka: an unknown group.
    let r = admin(&broker.addr)
        .delete_groups(&["nobody"], &opts())
        .await
        .unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        RDKafkaErrorCode::GroupIdNotFound
    );
    broker.stop();
}
