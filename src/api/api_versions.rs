//! ApiVersions (key 18): which APIs and versions this broker serves, from the registry in
//! `api/mod.rs`; v3+ checks the client's software name and version as Kafka does. No feature flags are sent: tagged fields stay at their defaults, which
//! older librdkafka releases (kcat on Debian) need.

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::{RequestContext, SUPPORTED_APIS};
use crate::broker::Broker;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.key as i16)
                .with_min_version(a.min_version)
                .with_max_version(a.max_version)
        })
        .collect()
}

/// Kafka's rule for `client_software_name` and `client_software_version` (v3+): letters,
/// digits, `-` and `.`, starting and ending with a letter or digit.
fn valid_software_field(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric();
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    ok(first) && ok(last) && s.chars().all(|c| ok(c) || c == '-' || c == '.')
}

pub async fn handle(
    _broker: Arc<Broker>,
    ctx: RequestContext,
    request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    if ctx.version >= 3
        && !(valid_software_field(&request.client_software_name)
            && valid_software_field(&request.client_software_version))
    {
        // As Kafka: INVALID_REQUEST and no API list.
        return ApiVersionsResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code());
    }
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

/// The KIP-511 answer to an ApiVersions version this broker doesn't know (sent as v0):
/// UNSUPPORTED_VERSION and, as Kafka sends, only ApiVersions' own range, so that the
/// client retries with a version both know.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(
            api_keys()
                .into_iter()
                .filter(|a| a.api_key == ApiKey::ApiVersions as i16)
                .collect(),
        )
}
