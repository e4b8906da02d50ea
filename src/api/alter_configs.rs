//! AlterConfigs (key 33, the legacy form): replaces all of a topic's config overrides with
//! the given set. Broker settings are static here (INVALID_REQUEST).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorization::check_config_access;
use super::describe_configs::{BROKER, TOPIC};
use super::errors::topic_error_code;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::Operation;

/// The answer for a resource that is not a topic.
pub fn not_a_topic(resource_type: i8) -> (ResponseError, String) {
    match resource_type {
        BROKER => (
            ResponseError::InvalidRequest,
            "Broker configs are static in Gregor: set them in the config file or with -o".into(),
        ),
        other => (
            ResponseError::InvalidRequest,
            format!("Resource type {other} is not supported"),
        ),
    }
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in request.resources {
        let access = check_config_access(
            &broker,
            &ctx,
            Operation::AlterConfigs,
            r.resource_type,
            &r.resource_name,
        );
        let outcome = if let Err((e, message)) = access {
            Err((e, message.to_string()))
        } else if r.resource_type == TOPIC {
            let configs: BTreeMap<String, String> = r
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect();
            broker
                .alter_topic_configs(r.resource_name.as_str(), configs, request.validate_only)
                .await
                .map_err(|e| (topic_error_code(&e), e.to_string()))
        } else {
            Err(not_a_topic(r.resource_type))
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err((e, message)) => response
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}
