//! What ShareFetch and ShareAcknowledge share: the checks every share request starts with,
//! a share group's settings from its configs, one partition's acknowledgements, validated
//! (Kafka's `validateAcknowledgementBatches`) and settled, as a Kafka error; and their v2
//! (Kafka 4.2: RENEW acknowledgements, the record_limit acquire mode), whose new fields the
//! protocol crate's 4.1 schemas lack: read here, the rest decoded as v1.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::share_group_heartbeat::valid_member_id;
use super::RequestContext;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::share::partition::{AckError, Acknowledgement, ACK_RENEW};
use crate::share::state_store::SharePartitionKey;
use crate::share::{PartitionError, ShareGroupSettings};

/// Splits a v2 body of ShareFetch or ShareAcknowledge into its v1 body and the `extra`
/// bytes v2 inserts after the two leading compact strings (group id, member id) and
/// `fixed` bytes of fixed-size fields. None if the body is too short to hold them.
pub fn split_v2(body: &Bytes, fixed: usize, extra: usize) -> Option<(Bytes, Bytes)> {
    let mut at = 0;
    for _ in 0..2 {
        // A compact nullable string: unsigned varint length + 1 (0: null), then the bytes.
        let mut len: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *body.get(at)?;
            at += 1;
            len |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return None;
            }
        }
        at = at.checked_add(usize::try_from(len.saturating_sub(1)).ok()?)?;
    }
    let cut = at.checked_add(fixed)?;
    let end = cut.checked_add(extra)?;
    if end > body.len() {
        return None;
    }
    let mut v1 = Vec::with_capacity(body.len() - extra);
    v1.extend_from_slice(&body[..cut]);
    v1.extend_from_slice(&body[end..]);
    Some((Bytes::from(v1), body.slice(cut..end)))
}

/// A partition's error and Kafka's message, if any.
pub type Outcome = (ResponseError, Option<String>);

/// The top-level checks of ShareFetch and ShareAcknowledge: share groups on, READ on the
/// group, a member id. Returns (group, member).
pub fn check_request(
    broker: &Broker,
    ctx: &RequestContext,
    group: Option<&str>,
    member: Option<&str>,
) -> Result<(String, String), ResponseError> {
    if !broker.shares.config().enable {
        return Err(ResponseError::UnsupportedVersion);
    }
    let group = group.unwrap_or_default();
    if !broker.allows(ctx, Operation::Read, ResourceType::Group, group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let member = member.unwrap_or_default();
    if group.is_empty() || !valid_member_id(member) {
        return Err(ResponseError::InvalidRequest);
    }
    Ok((group.to_string(), member.to_string()))
}

/// Group `group`'s share settings (its configs, else the broker's).
pub fn settings(broker: &Broker, group: &str) -> ShareGroupSettings {
    let configs = &broker.groups.group_configs;
    let coordinator = &broker.config.coordinator;
    ShareGroupSettings {
        record_lock_duration: Duration::from_millis(
            configs
                .share_record_lock_duration_ms(group, coordinator)
                .max(0) as u64,
        ),
        auto_offset_reset: configs.share_auto_offset_reset(group),
        read_committed: configs.share_read_committed(group),
    }
}

/// The log of a partition named by topic id, as a share request may use it: unknown topic
/// id, no READ on the topic, or no such partition are the partition's error.
pub fn share_partition_log(
    broker: &Broker,
    ctx: &RequestContext,
    topic_id: Uuid,
    partition: i32,
) -> Result<Arc<crate::log::Log>, ResponseError> {
    let topic = broker
        .logs
        .topic_by_id(topic_id)
        .ok_or(ResponseError::UnknownTopicId)?;
    if !broker.allows(ctx, Operation::Read, ResourceType::Topic, &topic.name) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    topic
        .partition(partition)
        .cloned()
        .ok_or(ResponseError::UnknownTopicOrPartition)
}

/// Kafka's error for a share-partition that could not be read or changed.
pub fn partition_error(e: PartitionError) -> Outcome {
    match e {
        PartitionError::NotInitialized => (
            ResponseError::UnknownServerError,
            Some("Read operation on uninitialized share partition".into()),
        ),
        PartitionError::Fenced => (ResponseError::NotLeaderOrFollower, None),
        PartitionError::Log(message, code) => (code, Some(message)),
        PartitionError::Storage => (ResponseError::UnknownServerError, None),
        PartitionError::Ack(AckError::InvalidRecordState(m)) => {
            (ResponseError::InvalidRecordState, Some(m))
        }
        PartitionError::Ack(AckError::InvalidRequest(m)) => {
            (ResponseError::InvalidRequest, Some(m))
        }
    }
}

/// Checks one partition's acknowledgement batches, (first, last, types) each: ascending,
/// each with one type or one per offset, types Kafka knows (RENEW only where
/// `renew_allowed`).
fn validate(
    batches: &[(i64, i64, Vec<i8>)],
    renew_allowed: bool,
) -> Result<Vec<Acknowledgement>, String> {
    let mut previous_last: Option<i64> = None;
    let max_type = if renew_allowed {
        ACK_RENEW
    } else {
        ACK_RENEW - 1
    };
    let mut out = Vec::with_capacity(batches.len());
    for (first, last, types) in batches {
        if first > last {
            return Err("First offset is greater than last offset".into());
        }
        if previous_last.is_some_and(|p| *first < p) {
            return Err("Acknowledgement batches are not in ascending offset order".into());
        }
        previous_last = Some(*last);
        let span = last.checked_sub(*first).and_then(|d| d.checked_add(1));
        if types.is_empty() || (types.len() != 1 && span != Some(types.len() as i64)) {
            return Err("Invalid number of acknowledge types".into());
        }
        if types.iter().any(|t| !(0..=max_type).contains(t)) {
            return Err("Invalid acknowledge type".into());
        }
        out.push(Acknowledgement {
            first_offset: *first,
            last_offset: *last,
            types: types.clone(),
        });
    }
    Ok(out)
}

/// Settles `member`'s acknowledgements of one partition of `group` (RENEW among them when
/// `renew` is set: v2's IsRenewAck), durable before it returns.
#[allow(clippy::too_many_arguments)]
pub async fn acknowledge(
    broker: &Broker,
    ctx: &RequestContext,
    group: &str,
    member: &str,
    topic_id: Uuid,
    partition: i32,
    batches: &[(i64, i64, Vec<i8>)],
    renew: bool,
    settings: &ShareGroupSettings,
) -> Result<(), Outcome> {
    if let Err(e) = share_partition_log(broker, ctx, topic_id, partition) {
        return Err((e, None));
    }
    if batches.is_empty() {
        return Ok(());
    }
    let acks = validate(batches, renew).map_err(|m| (ResponseError::InvalidRequest, Some(m)))?;
    let key = SharePartitionKey {
        group: group.to_string(),
        topic_id,
        partition,
    };
    // As in Kafka, a share-partition no fetch has loaded here cannot be acknowledged.
    let Some(entry) = broker.shares.existing(&key) else {
        return Err((ResponseError::UnknownTopicOrPartition, None));
    };
    broker
        .shares
        .acknowledge(&entry, member, &acks, settings)
        .await
        .map_err(partition_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_body_is_a_v1_body_with_the_new_fields_cut_out() {
        // Group "g", null member id, 8 bytes of fixed fields, 2 bytes of v2 fields, the rest.
        let body = Bytes::from_static(&[2, b'g', 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let (v1, extra) = split_v2(&body, 8, 2).unwrap();
        assert_eq!(&v1[..], &[2, b'g', 0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12]);
        assert_eq!(&extra[..], &[9, 10]);
        assert!(split_v2(&body.slice(..8), 8, 2).is_none());
        assert!(split_v2(
            &Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 1]),
            0,
            0
        )
        .is_none());
    }

    #[test]
    fn acknowledgement_batches_are_validated_as_kafka_does() {
        assert!(validate(&[(0, 4, vec![1]), (5, 6, vec![1, 2])], false).is_ok());
        assert!(validate(&[(5, 4, vec![1])], false).is_err());
        assert!(validate(&[(5, 6, vec![1]), (0, 4, vec![1])], false).is_err());
        assert!(validate(&[(0, 4, vec![1, 2])], false).is_err());
        assert!(validate(&[(0, 4, vec![])], false).is_err());
        assert!(validate(&[(0, 0, vec![4])], false).is_err());
        assert!(validate(&[(0, 0, vec![4])], true).is_ok());
        assert!(validate(&[(0, 0, vec![-1])], true).is_err());
        // A hostile span overflows nothing.
        assert!(validate(&[(i64::MIN, i64::MAX, vec![1, 1])], false).is_err());
    }
}
