//! The cluster as Metadata describes it: brokers, controller, topics and their partitions'
//! leaders. Every other operation finds leaders here.

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;

use super::{Admin, AdminError, Target};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClusterInfo {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    /// Topics other than the internal ones.
    pub topics: usize,
    pub internal_topics: usize,
    pub partitions: usize,
}

/// A topic's partitions and their leaders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    pub name: String,
    pub id: String,
    pub internal: bool,
    /// (partition, leader, replicas, in-sync replicas), by partition.
    pub partitions: Vec<(i32, i32, Vec<i32>, Vec<i32>)>,
}

impl Admin {
    /// Metadata for `topics` (all topics for `None`), never creating any; the brokers'
    /// addresses are passed to the transport.
    pub async fn metadata(
        &self,
        topics: Option<&[String]>,
    ) -> Result<MetadataResponse, AdminError> {
        self.metadata_creating(topics, false).await
    }

    /// Metadata that lets the broker create missing topics if its
    /// `auto.create.topics.enable` allows, as a producer's does.
    pub async fn metadata_creating(
        &self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<MetadataResponse, AdminError> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(auto_create);
        let response = self.send(Target::Any, &request).await?;
        let brokers: Vec<(i32, String, i32)> = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, b.host.to_string(), b.port))
            .collect();
        self.transport().learn_brokers(&brokers);
        Ok(response)
    }

    /// One topic's partitions and leaders; NotFound when it does not exist.
    pub async fn topic_layout(&self, topic: &str) -> Result<TopicLayout, AdminError> {
        self.topic_layout_creating(topic, false).await
    }

    /// Like [`Admin::topic_layout`], creating the topic if the broker auto-creates topics.
    pub async fn topic_layout_creating(
        &self,
        topic: &str,
        auto_create: bool,
    ) -> Result<TopicLayout, AdminError> {
        let response = self
            .metadata_creating(Some(&[topic.to_string()]), auto_create)
            .await?;
        let Some(t) = response.topics.into_iter().next() else {
            return Err(AdminError::NotFound(format!(
                "topic {topic} does not exist"
            )));
        };
        if t.error_code == 3 {
            return Err(AdminError::NotFound(format!(
                "topic {topic} does not exist"
            )));
        }
        AdminError::check(t.error_code, None, || format!("describing topic {topic}"))?;
        let mut partitions: Vec<_> = t
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.leader_id.0,
                    p.replica_nodes.iter().map(|r| r.0).collect(),
                    p.isr_nodes.iter().map(|r| r.0).collect(),
                )
            })
            .collect();
        partitions.sort_by_key(|p| p.0);
        Ok(TopicLayout {
            name: topic.to_string(),
            id: t.topic_id.to_string(),
            internal: t.is_internal,
            partitions,
        })
    }

    /// The cluster's id, controller, brokers and counts.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, AdminError> {
        let response = self.metadata(None).await?;
        let mut brokers: Vec<BrokerInfo> = response
            .brokers
            .iter()
            .map(|b| BrokerInfo {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(ToString::to_string),
            })
            .collect();
        brokers.sort_by_key(|b| b.node_id);
        let internal_topics = response.topics.iter().filter(|t| t.is_internal).count();
        Ok(ClusterInfo {
            cluster_id: response.cluster_id.as_ref().map(ToString::to_string),
            controller_id: response.controller_id.0,
            brokers,
            topics: response.topics.len() - internal_topics,
            internal_topics,
            partitions: response.topics.iter().map(|t| t.partitions.len()).sum(),
        })
    }
}
