//! Topics: list, describe (partitions with offsets and sizes, configs), create, delete and
//! alter configs, through Metadata, ListOffsets, DescribeLogDirs, DescribeConfigs,
//! CreateTopics, DeleteTopics and IncrementalAlterConfigs.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeLogDirsRequest,
    IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::offsets::OffsetSpec;
use super::{Admin, AdminError, Target};

/// Kafka's ConfigResource type of a topic.
const TOPIC_RESOURCE: i8 = 2;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopicSummary {
    pub name: String,
    pub id: String,
    pub internal: bool,
    pub partitions: usize,
    pub replication_factor: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// Bytes on disk, when the broker answers DescribeLogDirs.
    pub size_bytes: Option<i64>,
}

impl PartitionInfo {
    /// Records between the log start and the high watermark (an upper bound on a
    /// compacted topic, or when transaction markers take offsets).
    pub fn messages(&self) -> i64 {
        (self.high_watermark - self.log_start_offset).max(0)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// Kafka's ConfigSource name: `DYNAMIC_TOPIC_CONFIG`, `DEFAULT_CONFIG`, ...
    pub source: &'static str,
    pub read_only: bool,
    pub sensitive: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub id: String,
    pub internal: bool,
    pub partitions: Vec<PartitionInfo>,
    pub configs: Vec<ConfigEntry>,
}

impl TopicDescription {
    pub fn messages(&self) -> i64 {
        self.partitions.iter().map(PartitionInfo::messages).sum()
    }

    pub fn size_bytes(&self) -> Option<i64> {
        self.partitions.iter().map(|p| p.size_bytes).sum()
    }
}

/// A new topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

/// Kafka's name of a ConfigSource code.
pub fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

impl Admin {
    /// Every topic, by name; internal ones only with `internal`.
    pub async fn list_topics(&self, internal: bool) -> Result<Vec<TopicSummary>, AdminError> {
        let response = self.metadata(None).await?;
        let mut topics: Vec<TopicSummary> = response
            .topics
            .iter()
            .filter(|t| t.error_code == 0 && (internal || !t.is_internal))
            .filter_map(|t| {
                Some(TopicSummary {
                    name: t.name.as_ref()?.to_string(),
                    id: t.topic_id.to_string(),
                    internal: t.is_internal,
                    partitions: t.partitions.len(),
                    replication_factor: t
                        .partitions
                        .iter()
                        .map(|p| p.replica_nodes.len())
                        .max()
                        .unwrap_or(0),
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// A topic's partitions (leaders, offsets, sizes) and configs.
    pub async fn describe_topic(&self, topic: &str) -> Result<TopicDescription, AdminError> {
        let mut description = self.describe_partitions(topic).await?;
        description.configs = self.topic_configs(topic).await?;
        Ok(description)
    }

    /// A topic's partitions (leaders, offsets, sizes), without its configs.
    pub async fn describe_partitions(&self, topic: &str) -> Result<TopicDescription, AdminError> {
        let layout = self.topic_layout(topic).await?;
        let earliest = self
            .list_offsets(&layout, None, OffsetSpec::Earliest)
            .await?;
        let latest = self.list_offsets(&layout, None, OffsetSpec::Latest).await?;
        let sizes = self.partition_sizes(topic, &layout.partitions).await;
        let partitions = layout
            .partitions
            .iter()
            .map(|(partition, leader, replicas, isr)| PartitionInfo {
                partition: *partition,
                leader: *leader,
                replicas: replicas.clone(),
                isr: isr.clone(),
                log_start_offset: earliest.get(partition).copied().unwrap_or(-1),
                high_watermark: latest.get(partition).copied().unwrap_or(-1),
                size_bytes: sizes.get(partition).copied(),
            })
            .collect();
        Ok(TopicDescription {
            name: layout.name.clone(),
            id: layout.id.clone(),
            internal: layout.internal,
            partitions,
            configs: Vec::new(),
        })
    }

    /// Partition sizes from each leader's DescribeLogDirs; empty where a broker does not
    /// answer it (sizes are a nicety, not worth failing a description for).
    async fn partition_sizes(
        &self,
        topic: &str,
        partitions: &[(i32, i32, Vec<i32>, Vec<i32>)],
    ) -> BTreeMap<i32, i64> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for (p, leader, ..) in partitions {
            by_leader.entry(*leader).or_default().push(*p);
        }
        let mut sizes = BTreeMap::new();
        for (leader, partitions) in by_leader {
            let request = DescribeLogDirsRequest::default().with_topics(Some(vec![
                DescribableLogDirTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(partitions),
            ]));
            let target = if leader >= 0 {
                Target::Node(leader)
            } else {
                Target::Any
            };
            let Ok(response) = self.send(target, &request).await else {
                continue;
            };
            for dir in response.results.iter().filter(|d| d.error_code == 0) {
                for t in dir.topics.iter().filter(|t| t.name.0.as_str() == topic) {
                    for p in t.partitions.iter().filter(|p| !p.is_future_key) {
                        *sizes.entry(p.partition_index).or_insert(0) += p.partition_size;
                    }
                }
            }
        }
        sizes
    }

    /// A topic's configs, every one with its value and source.
    pub async fn topic_configs(&self, topic: &str) -> Result<Vec<ConfigEntry>, AdminError> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(topic.to_string())),
        ]);
        let response = self.send(Target::Any, &request).await?;
        let mut configs = Vec::new();
        for result in response.results {
            AdminError::check(result.error_code, result.error_message.as_ref(), || {
                format!("describing the configs of topic {topic}")
            })?;
            for c in result.configs {
                configs.push(ConfigEntry {
                    name: c.name.to_string(),
                    value: c.value.as_ref().map(ToString::to_string),
                    source: config_source_name(c.config_source),
                    read_only: c.read_only,
                    sensitive: c.is_sensitive,
                });
            }
        }
        configs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(configs)
    }

    /// Creates a topic; returns its id.
    pub async fn create_topic(&self, topic: &NewTopic) -> Result<String, AdminError> {
        let request = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(&topic.name))
                .with_num_partitions(topic.partitions)
                .with_replication_factor(topic.replication_factor)
                .with_configs(
                    topic
                        .configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.clone()))
                                .with_value(Some(StrBytes::from_string(v.clone())))
                        })
                        .collect(),
                )])
            .with_timeout_ms(30_000);
        let response = self.send(Target::Any, &request).await?;
        let result = response
            .topics
            .into_iter()
            .next()
            .ok_or_else(|| AdminError::Protocol("CreateTopics answered no topic".into()))?;
        AdminError::check(result.error_code, result.error_message.as_ref(), || {
            format!("creating topic {}", topic.name)
        })?;
        Ok(result.topic_id.to_string())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), AdminError> {
        let version = self.version_of::<DeleteTopicsRequest>()?;
        let request = if version >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(topic_name(topic)))
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![topic_name(topic)])
        }
        .with_timeout_ms(30_000);
        let response = self.send_at(Target::Any, &request, version).await?;
        for result in response.responses {
            AdminError::check(result.error_code, result.error_message.as_ref(), || {
                format!("deleting topic {topic}")
            })?;
        }
        Ok(())
    }

    /// Sets configs (`set`) and returns others to their defaults (`delete`) on a topic.
    pub async fn alter_topic_configs(
        &self,
        topic: &str,
        set: &[(String, String)],
        delete: &[String],
    ) -> Result<(), AdminError> {
        let mut configs: Vec<AlterableConfig> = set
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(v.clone())))
            })
            .collect();
        configs.extend(delete.iter().map(|k| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_config_operation(1)
        }));
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configs(configs),
        ]);
        let response = self.send(Target::Any, &request).await?;
        for r in response.responses {
            AdminError::check(r.error_code, r.error_message.as_ref(), || {
                format!("altering the configs of topic {topic}")
            })?;
        }
        Ok(())
    }
}
