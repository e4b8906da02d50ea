//! What the group and transaction coordinators refuse, in their own type. Each variant is
//! named after the Kafka error it becomes; `api/errors.rs` is where it becomes a code, so
//! the coordinators know nothing of the wire.

/// A coordinator's refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorError {
    // Groups: membership and rebalance.
    InvalidGroupId,
    GroupIdNotFound,
    NonEmptyGroup,
    UnknownMemberId,
    MemberIdRequired,
    FencedInstanceId,
    IllegalGeneration,
    RebalanceInProgress,
    InconsistentGroupProtocol,
    InvalidSessionTimeout,
    GroupMaxSizeReached,
    // Consumer groups (KIP-848).
    FencedMemberEpoch,
    StaleMemberEpoch,
    UnreleasedInstanceId,
    UnsupportedAssignor,
    InvalidRegularExpression,
    UnsupportedVersion,
    // Committed offsets.
    OffsetMetadataTooLarge,
    GroupSubscribedToTopic,
    UnknownTopicOrPartition,
    // Transactions.
    InvalidTransactionTimeout,
    InvalidTxnState,
    InvalidProducerIdMapping,
    InvalidProducerEpoch,
    ProducerFenced,
    ConcurrentTransactions,
    OperationNotAttempted,
    // Either coordinator.
    CoordinatorNotAvailable,
    /// Cluster mode: another broker leads the group's `__consumer_offsets` partition.
    NotCoordinator,
    /// Cluster mode: this broker is loading the group's partition after taking it over.
    CoordinatorLoadInProgress,
    InvalidRequest,
    /// Writing the coordinator's internal topic failed (the cause is logged where it
    /// happened). Answered as NOT_COORDINATOR, as Kafka does.
    KafkaStorageError,
    UnknownServerError,
}

impl std::fmt::Display for CoordinatorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for CoordinatorError {}
