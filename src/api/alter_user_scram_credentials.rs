//! AlterUserScramCredentials (key 51, KIP-554): deletions and upsertions of SCRAM
//! credentials, validated per user as Kafka's `ScramControlManager` does; the client sends
//! the salt and salted password, the broker derives StoredKey and ServerKey. The valid
//! changes are written durably (`security/credentials.rs`) before the answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::broker::Broker;
use crate::config::listeners::SaslMechanism;
use crate::security::credentials::Change;
use crate::security::scram::{ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS};

/// Kafka's `ScramMechanism` type codes.
pub fn mechanism_code(m: SaslMechanism) -> i8 {
    match m {
        SaslMechanism::ScramSha512 => 2,
        _ => 1,
    }
}

fn mechanism_of(code: i8) -> Option<SaslMechanism> {
    match code {
        1 => Some(SaslMechanism::ScramSha256),
        2 => Some(SaslMechanism::ScramSha512),
        _ => None,
    }
}

pub async fn handle(
    broker: Arc<Broker>,
    _ctx: RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Per user, in request order: the first error wins.
    let mut outcome: BTreeMap<String, Result<(), (ResponseError, &'static str)>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for name in request
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(request.upsertions.iter().map(|u| u.name.to_string()))
    {
        if !count.contains_key(&name) {
            order.push(name.clone());
        }
        *count.entry(name).or_default() += 1;
    }
    let mut changes = Vec::new();
    let existing = broker.credentials.describe();
    let mut fail = |name: &str, error: ResponseError, message: &'static str| {
        outcome
            .entry(name.to_string())
            .or_insert(Err((error, message)));
    };
    for (name, n) in &count {
        if *n > 1 {
            fail(
                name,
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request",
            );
        }
    }
    for d in &request.deletions {
        let name = d.name.to_string();
        let Some(mechanism) = mechanism_of(d.mechanism) else {
            fail(
                &name,
                ResponseError::UnsupportedSaslMechanism,
                "Unknown SCRAM mechanism",
            );
            continue;
        };
        if name.is_empty() {
            fail(
                &name,
                ResponseError::UnacceptableCredential,
                "Username must not be empty",
            );
            continue;
        }
        let exists = existing
            .get(&name)
            .is_some_and(|ms| ms.iter().any(|(m, _)| *m == mechanism));
        if !exists {
            fail(
                &name,
                ResponseError::ResourceNotFound,
                "Attempt to delete a user credential that does not exist",
            );
            continue;
        }
        changes.push((
            name.clone(),
            Change::Delete {
                user: name,
                mechanism,
            },
        ));
    }
    for u in &request.upsertions {
        let name = u.name.to_string();
        let Some(mechanism) = mechanism_of(u.mechanism) else {
            fail(
                &name,
                ResponseError::UnsupportedSaslMechanism,
                "Unknown SCRAM mechanism",
            );
            continue;
        };
        if name.is_empty() {
            fail(
                &name,
                ResponseError::UnacceptableCredential,
                "Username must not be empty",
            );
            continue;
        }
        if u.iterations < MIN_ITERATIONS {
            fail(
                &name,
                ResponseError::UnacceptableCredential,
                "Too few iterations",
            );
            continue;
        }
        if u.iterations > MAX_ITERATIONS {
            fail(
                &name,
                ResponseError::UnacceptableCredential,
                "Too many iterations",
            );
            continue;
        }
        let credential = ScramCredential::from_salted_password(
            mechanism,
            &u.salt,
            &u.salted_password,
            u.iterations,
        );
        changes.push((
            name.clone(),
            Change::Upsert {
                user: name,
                mechanism,
                credential,
            },
        ));
    }
    let valid: Vec<Change> = changes
        .into_iter()
        .filter(|(name, _)| !outcome.contains_key(name))
        .map(|(_, c)| c)
        .collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        broker.credentials.apply(valid)
    };
    let results = order
        .iter()
        .map(|name| {
            let result = AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(name.clone()));
            match (outcome.get(name), &stored) {
                (Some(Err((error, message))), _) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_static_str(message))),
                (_, Err(e)) => {
                    tracing::error!(error = %e, "storing SCRAM credentials failed");
                    result
                        .with_error_code(ResponseError::KafkaStorageError.code())
                        .with_error_message(Some(StrBytes::from_string(e.to_string())))
                }
                _ => result,
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
