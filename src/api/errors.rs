//! The one place where Gregor's typed errors become Kafka error codes.

use kafka_protocol::ResponseError;

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
        TopicError::Io { .. } | TopicError::Metadata { .. } | TopicError::Checkpoint(_) => {
            ResponseError::KafkaStorageError
        }
    }
}
