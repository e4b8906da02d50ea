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
use crate::security::acl::Operation;
use crate::security::credentials::Change;
use crate::security::scram::{ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS};

/// `keys` (distinct, in insertion order) in the order a Java `HashMap<String, _>` of default
/// capacity iterates them: Kafka builds these responses from one, and clients that compare
/// answers (or tests) see its order. Buckets by Java's spread `String.hashCode`, the table
/// doubling past a load of 0.75, insertion order within a bucket.
pub fn java_hash_map_order(keys: Vec<String>) -> Vec<String> {
    let mut capacity = 16usize;
    while keys.len() > capacity * 3 / 4 {
        capacity *= 2;
    }
    let bucket = |key: &str| {
        let mut h: u32 = 0;
        for unit in key.encode_utf16() {
            h = h.wrapping_mul(31).wrapping_add(u32::from(unit));
        }
        ((h ^ (h >> 16)) as usize) & (capacity - 1)
    };
    let mut indexed: Vec<(usize, usize, String)> = keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| (bucket(&k), i, k))
        .collect();
    indexed.sort_by_key(|(b, i, _)| (*b, *i));
    indexed.into_iter().map(|(_, _, k)| k).collect()
}

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

/// The checks every change gets: a known mechanism, then a user name.
fn user_and_mechanism(
    name: &str,
    mechanism: i8,
) -> Result<SaslMechanism, (ResponseError, &'static str)> {
    let mechanism = mechanism_of(mechanism).ok_or((
        ResponseError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism",
    ))?;
    if name.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    Ok(mechanism)
}

pub async fn handle(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    if !broker.allows_on_cluster(&ctx, Operation::Alter) {
        // Every user named fails, in name order, as Kafka's controller answers.
        let users: std::collections::BTreeSet<String> = request
            .deletions
            .iter()
            .map(|d| d.name.to_string())
            .chain(request.upsertions.iter().map(|u| u.name.to_string()))
            .collect();
        let results = users
            .into_iter()
            .map(|user| {
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user))
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "Request needs ALTER permission.",
                    )))
            })
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(results);
    }
    // Per user, in request order: the first error wins.
    let mut outcome: BTreeMap<String, Result<(), (ResponseError, &'static str)>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    // Kafka refuses the same (user, mechanism) twice; one user may change two mechanisms.
    let mut count: BTreeMap<(String, i8), usize> = BTreeMap::new();
    for (name, mechanism) in request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism))
        .chain(
            request
                .upsertions
                .iter()
                .map(|u| (u.name.to_string(), u.mechanism)),
        )
    {
        if !order.contains(&name) {
            order.push(name.clone());
        }
        *count.entry((name, mechanism)).or_default() += 1;
    }
    let mut changes = Vec::new();
    let existing = broker.credentials.describe();
    let mut fail = |name: &str, error: ResponseError, message: &'static str| {
        outcome
            .entry(name.to_string())
            .or_insert(Err((error, message)));
    };
    for ((name, _), n) in &count {
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
        let mechanism = match user_and_mechanism(&name, d.mechanism) {
            Ok(mechanism) => mechanism,
            Err((error, message)) => {
                fail(&name, error, message);
                continue;
            }
        };
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
        let mechanism = match user_and_mechanism(&name, u.mechanism) {
            Ok(mechanism) => mechanism,
            Err((error, message)) => {
                fail(&name, error, message);
                continue;
            }
        };
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
        let (_, path) = broker.credentials.file();
        broker
            .change_metadata_file(
                path,
                || broker.credentials.apply(valid),
                || {
                    let _ = broker.credentials.reload();
                },
                |e| crate::security::metadata_file::MetadataFileError::new(path, e.to_string()),
            )
            .await
    };
    let results = java_hash_map_order(order)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The orders Kafka 4.1.1 answered in (the differential runner's names).
    #[test]
    fn results_come_in_java_hash_map_order() {
        let names = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            java_hash_map_order(names(&["diff-u1-035758", "diff-u1b-035758"])),
            names(&["diff-u1b-035758", "diff-u1-035758"])
        );
        assert_eq!(
            java_hash_map_order(names(&[
                "diff-u4-29481a",
                "diff-u6-29481a",
                "diff-u2-29481a",
                "diff-u3-29481a",
                "diff-u5-29481a"
            ])),
            names(&[
                "diff-u6-29481a",
                "diff-u4-29481a",
                "diff-u2-29481a",
                "diff-u3-29481a",
                "diff-u5-29481a"
            ])
        );
    }
}
