//! DescribeConfigs (key 32): a topic's configs (overrides, broker settings and Kafka
//! defaults, each with its source, optionally with synonyms and documentation), this
//! broker's settings, and a group's configs (KIP-848).

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorization::check_config_access;
use super::RequestContext;
use crate::broker::Broker;
use crate::config::source::DescribedConfig;
use crate::config::topic::TOPIC_CONFIGS;
use crate::config::BROKER_CONFIGS;
use crate::security::acl::Operation;

/// Kafka's `ConfigResource.Type`.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const GROUP: i8 = 32;

/// Kafka's `ConfigSource` of a group config set on the group, and of a default.
const GROUP_CONFIG: i8 = 8;
const DEFAULT_CONFIG: i8 = 5;

fn text(s: &str) -> Option<StrBytes> {
    (!s.is_empty()).then(|| StrBytes::from_string(s.to_string()))
}

struct Options {
    version: i16,
    synonyms: bool,
    documentation: bool,
}

/// One described config: name, value (null when unset), source, read-only, type,
/// documentation, synonyms.
struct Described<'a> {
    name: &'a str,
    value: Option<&'a str>,
    source: i8,
    read_only: bool,
    config_type: i8,
    doc: &'a str,
    synonyms: Vec<DescribeConfigsSynonym>,
}

fn entry(o: &Options, d: Described<'_>) -> DescribeConfigsResourceResult {
    let Described {
        name,
        value,
        source,
        read_only,
        config_type,
        doc,
        synonyms,
    } = d;
    let e = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_synonyms(if o.synonyms { synonyms } else { Vec::new() });
    if o.version >= 3 {
        e.with_config_type(config_type)
            .with_documentation(if o.documentation { text(doc) } else { None })
    } else {
        e
    }
}

fn wanted(keys: &Option<Vec<StrBytes>>, name: &str) -> bool {
    keys.as_ref()
        .is_none_or(|k| k.is_empty() || k.iter().any(|k| k.as_str() == name))
}

fn synonyms(d: &DescribedConfig) -> Vec<DescribeConfigsSynonym> {
    d.synonyms
        .iter()
        .map(|s| {
            DescribeConfigsSynonym::default()
                .with_name(StrBytes::from_string(s.name.clone()))
                .with_value(s.value.clone().map(StrBytes::from_string))
                .with_source(s.source as i8)
        })
        .collect()
}

fn topic_configs(
    broker: &Broker,
    o: &Options,
    name: &str,
    keys: &Option<Vec<StrBytes>>,
) -> Result<Vec<DescribeConfigsResourceResult>, (ResponseError, String)> {
    let topic = broker.logs.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("Topic '{name}' does not exist."),
        )
    })?;
    Ok(TOPIC_CONFIGS
        .iter()
        .filter(|d| wanted(keys, d.name))
        .map(|d| {
            let described = broker.config.describe_topic_config(d, &topic.configs);
            entry(
                o,
                Described {
                    name: d.name,
                    value: described.value.as_deref(),
                    source: described.source as i8,
                    read_only: false,
                    config_type: d.config_type,
                    doc: d.doc,
                    synonyms: synonyms(&described),
                },
            )
        })
        .collect())
}

fn broker_configs(
    broker: &Broker,
    o: &Options,
    name: &str,
    keys: &Option<Vec<StrBytes>>,
) -> Result<Vec<DescribeConfigsResourceResult>, (ResponseError, String)> {
    if !name.is_empty() && name != broker.node_id().to_string() {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                broker.node_id()
            ),
        ));
    }
    Ok(BROKER_CONFIGS
        .iter()
        .filter(|d| wanted(keys, d.name))
        .map(|d| {
            let described = broker.config.describe_broker_config(d.name);
            // Broker settings are static: they come from the file or the command line.
            entry(
                o,
                Described {
                    name: d.name,
                    value: described.value.as_deref(),
                    source: described.source as i8,
                    read_only: true,
                    config_type: d.config_type,
                    doc: d.doc,
                    synonyms: synonyms(&described),
                },
            )
        })
        .collect())
}

/// A group's configs: its overrides, else the broker's settings (KIP-848).
fn group_configs(
    broker: &Broker,
    o: &Options,
    name: &str,
    keys: &Option<Vec<StrBytes>>,
) -> Result<Vec<DescribeConfigsResourceResult>, (ResponseError, String)> {
    use crate::coordinator::group_configs::GROUP_CONFIGS;
    if name.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "Group id must not be empty".into(),
        ));
    }
    let set = broker.groups.group_configs.get(name);
    let coordinator = &broker.config.coordinator;
    Ok(GROUP_CONFIGS
        .iter()
        .filter(|d| wanted(keys, d.name))
        .map(|d| {
            let default = (d.default)(coordinator);
            let (value, source) = match set.get(d.name) {
                Some(v) => (v.as_str(), GROUP_CONFIG),
                None => (default.as_str(), DEFAULT_CONFIG),
            };
            entry(
                o,
                Described {
                    name: d.name,
                    value: Some(value),
                    source,
                    read_only: false,
                    config_type: d.config_type,
                    doc: d.doc,
                    synonyms: Vec::new(),
                },
            )
        })
        .collect())
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let o = Options {
        version: ctx.version,
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
    };
    // Kafka answers the resources the principal may describe first, then the others.
    let (allowed, denied): (Vec<_>, Vec<_>) = request
        .resources
        .into_iter()
        .map(|r| {
            let access = check_config_access(
                &broker,
                &ctx,
                Operation::DescribeConfigs,
                r.resource_type,
                &r.resource_name,
            );
            (r, access)
        })
        .partition(|(_, access)| access.is_ok());
    let denied = denied.into_iter().filter_map(|(r, access)| {
        let (e, message) = access.err()?;
        Some(
            DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_static_str(message))),
        )
    });
    let allowed = allowed.into_iter().map(|(r, _)| r);
    let results = allowed
        .into_iter()
        .map(|r| {
            let name = r.resource_name.as_str();
            let outcome = match r.resource_type {
                TOPIC => topic_configs(&broker, &o, name, &r.configuration_keys),
                BROKER => broker_configs(&broker, &o, name, &r.configuration_keys),
                GROUP => group_configs(&broker, &o, name, &r.configuration_keys),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("Resource type {other} is not supported"),
                )),
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match outcome {
                Ok(configs) => result.with_configs(configs),
                Err((e, message)) => result
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .chain(denied)
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
