//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT on a topic's configs
//! (APPEND/SUBTRACT only for list configs), validated and applied live to its logs; SET and
//! DELETE on a group's configs (KIP-848: `consumer.session.timeout.ms`,
//! `consumer.heartbeat.interval.ms`), durable before they apply.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::alter_configs::not_a_topic;
use super::authorization::check_config_access;
use super::describe_configs::{GROUP, TOPIC};
use super::errors::topic_error_code;
use super::RequestContext;
use crate::broker::Broker;
use crate::config::topic::{config_type, default_value, topic_config_def};
use crate::coordinator::group_configs::{group_config, SetError};
use crate::security::acl::Operation;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Kafka refuses a request that names a config twice.
fn once(seen: &mut HashSet<String>, key: &str) -> Result<(), (ResponseError, String)> {
    if seen.insert(key.to_string()) {
        Ok(())
    } else {
        Err((
            ResponseError::InvalidRequest,
            format!("Error due to duplicate config keys: {key}"),
        ))
    }
}

/// The topic's overrides after applying `ops` to `current`.
fn apply(
    broker: &Broker,
    current: &BTreeMap<String, String>,
    ops: &[AlterableConfig],
) -> Result<BTreeMap<String, String>, (ResponseError, String)> {
    let mut seen = HashSet::new();
    let mut configs = current.clone();
    for op in ops {
        let key = op.name.to_string();
        once(&mut seen, &key)?;
        let def = topic_config_def(&key).ok_or_else(|| {
            (
                ResponseError::InvalidConfig,
                format!("Unknown topic config name: {key}"),
            )
        })?;
        let value = op
            .value
            .as_ref()
            .map(std::string::ToString::to_string)
            .unwrap_or_default();
        match op.config_operation {
            SET => {
                configs.insert(key, value);
            }
            DELETE => {
                configs.remove(&key);
            }
            APPEND | SUBTRACT => {
                if def.config_type != config_type::LIST {
                    let what = if op.config_operation == APPEND {
                        "append"
                    } else {
                        "subtract"
                    };
                    return Err((
                        ResponseError::InvalidConfig,
                        format!("Config value {what} is not allowed for config key: {key}"),
                    ));
                }
                let existing = configs
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| default_value(&broker.config.log, &key));
                let mut items: Vec<String> = existing
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for v in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if op.config_operation == APPEND {
                        if !items.iter().any(|i| i == v) {
                            items.push(v.to_string());
                        }
                    } else {
                        items.retain(|i| i != v);
                    }
                }
                configs.insert(key, items.join(","));
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("Unknown config operation {other}"),
                ));
            }
        }
    }
    Ok(configs)
}

/// A group's configs after `ops`, validated and stored.
fn alter_group(
    broker: &Broker,
    group: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    if group.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "Group id must not be empty".into(),
        ));
    }
    let mut configs = broker.groups.group_configs.get(group);
    let mut seen = HashSet::new();
    for op in ops {
        let key = op.name.to_string();
        once(&mut seen, &key)?;
        if group_config(&key).is_none() {
            return Err((
                ResponseError::InvalidConfig,
                format!("Unknown group config name: {key}"),
            ));
        }
        match op.config_operation {
            SET => {
                let value = op
                    .value
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                configs.insert(key, value);
            }
            DELETE => {
                configs.remove(&key);
            }
            APPEND | SUBTRACT => {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("Config value append is not allowed for config key: {key}"),
                ))
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("Unknown config operation {other}"),
                ))
            }
        }
    }
    broker
        .groups
        .group_configs
        .set(group, configs, &broker.config.coordinator, validate_only)
        .map_err(|e| match e {
            SetError::Invalid(message) => (ResponseError::InvalidConfig, message),
            SetError::Write(e) => (ResponseError::KafkaStorageError, e.to_string()),
        })
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in request.resources {
        let name = r.resource_name.as_str();
        let access = check_config_access(
            &broker,
            &ctx,
            Operation::AlterConfigs,
            r.resource_type,
            name,
        );
        let outcome = if let Err((e, message)) = access {
            Err((e, message.to_string()))
        } else if r.resource_type == TOPIC {
            match broker.logs.topic(name) {
                None => Err((
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic '{name}' does not exist."),
                )),
                Some(topic) => match apply(&broker, &topic.configs, &r.configs) {
                    Ok(configs) => broker
                        .alter_topic_configs(name, configs, request.validate_only)
                        .await
                        .map_err(|e| (topic_error_code(&e), e.to_string())),
                    Err(e) => Err(e),
                },
            }
        } else if r.resource_type == GROUP {
            // Read and written under the cluster's lock for the file in cluster mode.
            let (_, path) = broker.groups.group_configs.file();
            broker
                .change_metadata_file(
                    path,
                    || alter_group(&broker, name, &r.configs, request.validate_only),
                    || {
                        let _ = broker.groups.group_configs.reload();
                    },
                    |e| (ResponseError::KafkaStorageError, e.to_string()),
                )
                .await
        } else {
            Err(not_a_topic(r.resource_type))
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        responses.push(match outcome {
            Ok(()) => response,
            Err((e, message)) => response
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
