//! DescribeConfigs (key 32): a topic's configs (overrides, broker settings and Kafka
//! defaults, each with its source, optionally with synonyms and documentation) and this
//! broker's settings.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::broker::Broker;
use crate::config::topic::{default_value, TOPIC_CONFIGS};
use crate::config::BROKER_CONFIGS;

/// Kafka's `ConfigResource.Type`.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
/// Kafka's `DescribeConfigsResponse.ConfigSource`.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

fn text(s: &str) -> Option<StrBytes> {
    (!s.is_empty()).then(|| StrBytes::from_string(s.to_string()))
}

/// Topic config values are never null (an empty list is ""), as Kafka reports them;
/// broker settings without a value (e.g. an unset `log.flush.interval.ms`) are null.
fn value_of(value: &str, nullable: bool) -> Option<StrBytes> {
    if nullable {
        text(value)
    } else {
        Some(StrBytes::from_string(value.to_string()))
    }
}

fn synonym(name: &str, value: &str, source: i8, nullable: bool) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(value_of(value, nullable))
        .with_source(source)
}

struct Options {
    version: i16,
    synonyms: bool,
    documentation: bool,
}

/// One described config: name, value, source, read-only, type, documentation, synonyms.
struct Described<'a> {
    name: &'a str,
    value: &'a str,
    source: i8,
    read_only: bool,
    nullable: bool,
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
        nullable,
        config_type,
        doc,
        synonyms,
    } = d;
    let e = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(value_of(value, nullable))
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
    let defaults = &broker.config.log;
    Ok(TOPIC_CONFIGS
        .iter()
        .filter(|d| wanted(keys, d.name))
        .map(|d| {
            let broker_value = broker.config.explicit.get(d.broker_synonym);
            let default = default_value(defaults, d.name);
            let mut synonyms = Vec::new();
            if let Some(v) = topic.configs.get(d.name) {
                synonyms.push(synonym(d.name, v, DYNAMIC_TOPIC_CONFIG, false));
            }
            if let Some(v) = broker_value {
                synonyms.push(synonym(d.broker_synonym, v, STATIC_BROKER_CONFIG, false));
            }
            synonyms.push(synonym(d.broker_synonym, &default, DEFAULT_CONFIG, false));
            let (value, source) = match (topic.configs.get(d.name), broker_value) {
                (Some(v), _) => (v.clone(), DYNAMIC_TOPIC_CONFIG),
                (None, Some(_)) => (default, STATIC_BROKER_CONFIG),
                (None, None) => (default, DEFAULT_CONFIG),
            };
            entry(
                o,
                Described {
                    name: d.name,
                    value: &value,
                    source,
                    read_only: false,
                    nullable: false,
                    config_type: d.config_type,
                    doc: d.doc,
                    synonyms,
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
            let (value, source) = match broker.config.explicit.get(d.name) {
                Some(v) => (v.clone(), STATIC_BROKER_CONFIG),
                None => (d.default.to_string(), DEFAULT_CONFIG),
            };
            let synonyms = vec![synonym(d.name, &value, source, true)];
            // Broker settings are static: they come from the file or the command line.
            entry(
                o,
                Described {
                    name: d.name,
                    value: &value,
                    source,
                    read_only: true,
                    nullable: true,
                    config_type: d.config_type,
                    doc: d.doc,
                    synonyms,
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
    let results = request
        .resources
        .into_iter()
        .map(|r| {
            let name = r.resource_name.as_str();
            let outcome = match r.resource_type {
                TOPIC => topic_configs(&broker, &o, name, &r.configuration_keys),
                BROKER => broker_configs(&broker, &o, name, &r.configuration_keys),
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
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
