//! DescribeUserScramCredentials (key 50, KIP-554): each user's SCRAM mechanisms and
//! iteration counts (never salts or keys), all users when none are named.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::alter_user_scram_credentials::{java_hash_map_order, mechanism_code};
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::Operation;

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !broker.allows_on_cluster(&ctx, Operation::Describe) {
        // The request fails, and there is one failed result per user it names, without the
        // user's name, as Kafka's error response has it.
        let denied = ResponseError::ClusterAuthorizationFailed.code();
        let results = request
            .users
            .unwrap_or_default()
            .iter()
            .map(|_| DescribeUserScramCredentialsResult::default().with_error_code(denied))
            .collect();
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(denied)
            .with_results(results);
    }
    let all = broker.credentials.describe();
    let info = |user: &str| -> Vec<CredentialInfo> {
        all.get(user)
            .map(|ms| {
                ms.iter()
                    .map(|(m, i)| {
                        CredentialInfo::default()
                            .with_mechanism(mechanism_code(*m))
                            .with_iterations(*i)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let results = match request.users.filter(|u| !u.is_empty()) {
        None => java_hash_map_order(all.keys().cloned().collect())
            .iter()
            .map(|user| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user.clone()))
                    .with_credential_infos(info(user))
            })
            .collect(),
        Some(users) => {
            let mut seen = BTreeSet::new();
            let duplicates: BTreeSet<String> = users
                .iter()
                .filter(|u| !seen.insert(u.name.to_string()))
                .map(|u| u.name.to_string())
                .collect();
            let mut done = BTreeSet::new();
            let distinct: Vec<String> = users
                .iter()
                .map(|u| u.name.to_string())
                .filter(|n| done.insert(n.clone()))
                .collect();
            java_hash_map_order(distinct)
                .into_iter()
                .map(|name| {
                    let result = DescribeUserScramCredentialsResult::default()
                        .with_user(StrBytes::from_string(name.clone()));
                    if duplicates.contains(&name) {
                        result
                            .with_error_code(ResponseError::DuplicateResource.code())
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Cannot describe SCRAM credentials for the same user twice in a single request",
                            )))
                    } else if !all.contains_key(&name) {
                        result
                            .with_error_code(ResponseError::ResourceNotFound.code())
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Attempt to describe a user credential that does not exist",
                            )))
                    } else {
                        result.with_credential_infos(info(&name))
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
