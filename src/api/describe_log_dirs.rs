//! DescribeLogDirs (key 35): each data directory with the size of every partition in it
//! and (v4+) the file system's total and usable bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::Operation;

/// (total, usable) bytes of the file system holding `path`, -1 each when unknown.
fn disk_space(path: &std::path::Path) -> (i64, i64) {
    crate::storage::disk_space(path).map_or((-1, -1), |(total, usable)| {
        (
            i64::try_from(total).unwrap_or(i64::MAX),
            i64::try_from(usable).unwrap_or(i64::MAX),
        )
    })
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    if !broker.allows_on_cluster(&ctx, Operation::Describe) {
        return DescribeLogDirsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect()
    });
    let topics = broker.logs.topics();
    let results = broker
        .config
        .log_dirs
        .iter()
        .map(|dir| {
            let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
            for topic in &topics {
                for log in &topic.partitions {
                    if log.dir().parent() != Some(dir.as_path()) {
                        continue;
                    }
                    let p = log.topic_partition().partition;
                    let include = match &wanted {
                        None => true,
                        Some(w) => w.iter().any(|(t, ps)| *t == topic.name && ps.contains(&p)),
                    };
                    if include {
                        by_topic.entry(topic.name.clone()).or_default().push(
                            DescribeLogDirsPartition::default()
                                .with_partition_index(p)
                                .with_partition_size(log.size_bytes() as i64)
                                .with_offset_lag(0),
                        );
                    }
                }
            }
            let result = DescribeLogDirsResult::default()
                .with_log_dir(StrBytes::from_string(
                    std::fs::canonicalize(dir)
                        .unwrap_or_else(|_| dir.clone())
                        .to_string_lossy()
                        .into_owned(),
                ))
                .with_topics(
                    by_topic
                        .into_iter()
                        .map(|(name, partitions)| {
                            DescribeLogDirsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(name)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                );
            if ctx.version >= 4 {
                let (total, usable) = disk_space(dir);
                result.with_total_bytes(total).with_usable_bytes(usable)
            } else {
                result
            }
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}
