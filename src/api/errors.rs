//! The one place where Gregor's typed errors become Kafka error codes.

use kafka_protocol::ResponseError;

use crate::coordinator::CoordinatorError;
use crate::log::producer_state::ProducerError;
use crate::log::record_batch::BatchError;
use crate::log::LogError;
use crate::log_manager::TopicError;

/// Kafka's error code for a log-layer error.
pub fn log_error_code(e: &LogError) -> ResponseError {
    match e {
        LogError::Batch(BatchError::Corrupt(_)) => ResponseError::CorruptMessage,
        LogError::Batch(BatchError::Invalid(_)) => ResponseError::InvalidRecord,
        LogError::Batch(BatchError::TooLarge { .. }) => ResponseError::MessageTooLarge,
        LogError::Producer(ProducerError::StaleEpoch { .. }) => ResponseError::InvalidProducerEpoch,
        LogError::Producer(ProducerError::OutOfOrder { .. }) => {
            ResponseError::OutOfOrderSequenceNumber
        }
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Io { .. } => ResponseError::KafkaStorageError,
        LogError::BatchTooLargeForSegment { .. } => ResponseError::RecordListTooLarge,
        LogError::Closed => ResponseError::NotLeaderOrFollower,
    }
}

/// Kafka's error code for a topic administration error.
pub fn topic_error_code(e: &TopicError) -> ResponseError {
    match e {
        TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
        TopicError::InvalidName(_) => ResponseError::InvalidTopicException,
        TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
        TopicError::UnknownTopic => ResponseError::UnknownTopicOrPartition,
        TopicError::Log(e) => log_error_code(e),
        TopicError::Io { .. }
        | TopicError::Metadata { .. }
        | TopicError::Checkpoint(_)
        | TopicError::Cluster(_) => ResponseError::KafkaStorageError,
    }
}

/// Kafka's error for a coordinator's refusal (the variants carry Kafka's names).
pub fn coordinator_error(e: CoordinatorError) -> ResponseError {
    use CoordinatorError as C;
    match e {
        C::InvalidGroupId => ResponseError::InvalidGroupId,
        C::GroupIdNotFound => ResponseError::GroupIdNotFound,
        C::NonEmptyGroup => ResponseError::NonEmptyGroup,
        C::UnknownMemberId => ResponseError::UnknownMemberId,
        C::MemberIdRequired => ResponseError::MemberIdRequired,
        C::FencedInstanceId => ResponseError::FencedInstanceId,
        C::IllegalGeneration => ResponseError::IllegalGeneration,
        C::RebalanceInProgress => ResponseError::RebalanceInProgress,
        C::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        C::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        C::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        C::FencedMemberEpoch => ResponseError::FencedMemberEpoch,
        C::StaleMemberEpoch => ResponseError::StaleMemberEpoch,
        C::UnreleasedInstanceId => ResponseError::UnreleasedInstanceId,
        C::UnsupportedAssignor => ResponseError::UnsupportedAssignor,
        C::InvalidRegularExpression => ResponseError::InvalidRegularExpression,
        C::UnsupportedVersion => ResponseError::UnsupportedVersion,
        C::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
        C::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        C::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        C::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
        C::InvalidTxnState => ResponseError::InvalidTxnState,
        C::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        C::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
        C::ProducerFenced => ResponseError::ProducerFenced,
        C::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        C::OperationNotAttempted => ResponseError::OperationNotAttempted,
        C::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        C::NotCoordinator => ResponseError::NotCoordinator,
        C::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
        C::InvalidRequest => ResponseError::InvalidRequest,
        // As Kafka's coordinators answer a failed write to their internal topic
        // (GroupCoordinatorService and TransactionStateManager): the client looks the
        // coordinator up again and retries.
        C::KafkaStorageError => ResponseError::NotCoordinator,
        C::UnknownServerError => ResponseError::UnknownServerError,
    }
}

/// The error code of a coordinator outcome: 0 for success.
pub fn coordinator_code(outcome: Result<(), CoordinatorError>) -> i16 {
    outcome.map_or_else(|e| coordinator_error(e).code(), |()| 0)
}

/// The error code of a coordinator answer that carries an optional refusal.
pub fn coordinator_error_code(error: Option<CoordinatorError>) -> i16 {
    error.map_or(0, |e| coordinator_error(e).code())
}

/// `.code()` on a coordinator error, as on a `ResponseError`, for the handlers.
pub trait CoordinatorCode {
    fn code(self) -> i16;
}

impl CoordinatorCode for CoordinatorError {
    fn code(self) -> i16 {
        coordinator_error(self).code()
    }
}
