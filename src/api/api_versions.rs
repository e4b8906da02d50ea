//! ApiVersions (key 18): which APIs and versions this broker serves, from the registry in
//! `api/mod.rs`; v3+ checks the client's software name and version as Kafka does.
//!
//! v3+ also carries the features (KIP-584) of what Gregor implements: `group.version` 1
//! (KIP-848 consumer groups) and, with `group.share.enable`, `share.version` 1 (KIP-932
//! share groups), finalized at those levels. `transaction.version` stays at 0 (KIP-890
//! part 2 is not implemented, so clients use transactions v1), and the KRaft features
//! (`metadata.version`, `kraft.version`) are not listed: Gregor has no metadata quorum.
//! Features travel in tagged fields, which librdkafka before 2.2 cannot skip (its #4278:
//! "Read underflow", as against Kafka 4 itself), so those clients get none: Debian's kcat
//! keeps working.

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{RequestContext, SUPPORTED_APIS};
use crate::broker::Broker;

/// The table's versions; with `legacy` (legacy.protocol.enable) down to the versions
/// Kafka 4 removed.
fn api_keys(legacy: bool) -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|a| {
            let min = match super::legacy::min_version(a.key) {
                Some(old) if legacy => old.min(a.min_version),
                _ => a.min_version,
            };
            ApiVersion::default()
                .with_api_key(a.key as i16)
                .with_min_version(min)
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

/// The features Gregor implements, each at its level: (name, level).
fn features(broker: &Broker) -> Vec<(&'static str, i16)> {
    let mut out = vec![("group.version", 1)];
    if broker.shares.config().enable {
        out.push(("share.version", 1));
    }
    out
}

/// Whether the client reads tagged fields correctly: not librdkafka before 2.2 (under its
/// own name, or inside a wrapper's version such as confluent-kafka's `2.3.0-rdkafka-2.0.2`).
fn reads_tagged_fields(request: &ApiVersionsRequest) -> bool {
    let name = request.client_software_name.as_str();
    let version = request.client_software_version.as_str();
    let rdkafka = if name == "librdkafka" {
        Some(version)
    } else {
        version.split_once("-rdkafka-").map(|(_, v)| v)
    };
    let Some(v) = rdkafka else {
        return true;
    };
    let mut parts = v.trim_start_matches('v').split(['.', '-']);
    let major: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(u32::MAX);
    let minor: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(u32::MAX);
    (major, minor) >= (2, 2)
}

pub async fn handle(
    broker: Arc<Broker>,
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
    let response = ApiVersionsResponse::default()
        .with_api_keys(api_keys(broker.config.legacy_protocol_enable));
    if ctx.version < 3 || !reads_tagged_fields(&request) {
        return response;
    }
    let features = features(&broker);
    response
        .with_supported_features(
            features
                .iter()
                .map(|(name, level)| {
                    SupportedFeatureKey::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_min_version(0)
                        .with_max_version(*level)
                })
                .collect(),
        )
        // Clients take finalized features only from an epoch above -1; they never change
        // while the broker runs.
        .with_finalized_features_epoch(1)
        .with_finalized_features(
            features
                .iter()
                .map(|(name, level)| {
                    FinalizedFeatureKey::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_min_version_level(*level)
                        .with_max_version_level(*level)
                })
                .collect(),
        )
}

/// The KIP-511 answer to an ApiVersions version this broker doesn't know (sent as v0):
/// UNSUPPORTED_VERSION and, as Kafka sends, only ApiVersions' own range, so that the
/// client retries with a version both know.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(
            api_keys(false)
                .into_iter()
                .filter(|a| a.api_key == ApiKey::ApiVersions as i16)
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafka_before_2_2_gets_no_tagged_fields() {
        let client = |name: &str, version: &str| {
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_string(name.into()))
                .with_client_software_version(StrBytes::from_string(version.into()))
        };
        assert!(!reads_tagged_fields(&client("librdkafka", "2.0.2")));
        assert!(!reads_tagged_fields(&client(
            "confluent-kafka-python",
            "1.9.2-rdkafka-1.9.2"
        )));
        assert!(reads_tagged_fields(&client("librdkafka", "2.12.1")));
        assert!(reads_tagged_fields(&client("apache-kafka-java", "4.1.1")));
        assert!(reads_tagged_fields(&client(
            "confluent-kafka-python",
            "2.6.0-rdkafka-2.6.0"
        )));
    }
}
