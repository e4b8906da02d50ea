//! The error codes in each answer, for the `kafka_network_requestmetrics_errors` metric
//! (Kafka's `AbstractResponse.errorCounts`): every response type names where its codes
//! are, top-level and per topic, partition, group or resource. A handler's response type
//! must be listed here, or its handler does not compile.

use kafka_protocol::messages::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, AlterConfigsResponse,
    AlterShareGroupOffsetsResponse, AlterUserScramCredentialsResponse, ApiVersionsResponse,
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, CreateAclsResponse,
    CreatePartitionsResponse, CreateTopicsResponse, DeleteAclsResponse, DeleteGroupsResponse,
    DeleteRecordsResponse, DeleteShareGroupOffsetsResponse, DeleteTopicsResponse,
    DescribeAclsResponse, DescribeClusterResponse, DescribeConfigsResponse, DescribeGroupsResponse,
    DescribeLogDirsResponse, DescribeProducersResponse, DescribeShareGroupOffsetsResponse,
    DescribeTopicPartitionsResponse, DescribeTransactionsResponse,
    DescribeUserScramCredentialsResponse, ElectLeadersResponse, EndTxnResponse, FetchResponse,
    FindCoordinatorResponse, HeartbeatResponse, IncrementalAlterConfigsResponse,
    InitProducerIdResponse, JoinGroupResponse, LeaveGroupResponse, ListGroupsResponse,
    ListOffsetsResponse, ListTransactionsResponse, MetadataResponse, OffsetCommitResponse,
    OffsetDeleteResponse, OffsetFetchResponse, OffsetForLeaderEpochResponse, ProduceResponse,
    SaslAuthenticateResponse, SaslHandshakeResponse, ShareAcknowledgeResponse, ShareFetchResponse,
    ShareGroupDescribeResponse, ShareGroupHeartbeatResponse, SyncGroupResponse,
    TxnOffsetCommitResponse,
};

/// Calls `f` with every error code in an answer (0 included; the metric skips it).
pub trait ErrorCodes {
    fn error_codes(&self, f: &mut dyn FnMut(i16));
}

/// `error_codes!(Type => |r, f| body)`: implements [`ErrorCodes`] with `body`.
macro_rules! error_codes {
    ($($ty:ty => |$r:ident, $f:ident| $body:expr),* $(,)?) => {
        $(
            impl ErrorCodes for $ty {
                fn error_codes(&self, $f: &mut dyn FnMut(i16)) {
                    let $r = self;
                    $body
                }
            }
        )*
    };
}

error_codes! {
    ProduceResponse => |r, f| for t in &r.responses {
        for p in &t.partition_responses { f(p.error_code) }
    },
    FetchResponse => |r, f| {
        f(r.error_code);
        for t in &r.responses { for p in &t.partitions { f(p.error_code) } }
    },
    ListOffsetsResponse => |r, f| for t in &r.topics {
        for p in &t.partitions { f(p.error_code) }
    },
    MetadataResponse => |r, f| {
        f(r.error_code);
        for t in &r.topics {
            f(t.error_code);
            for p in &t.partitions { f(p.error_code) }
        }
    },
    ApiVersionsResponse => |r, f| f(r.error_code),
    CreateTopicsResponse => |r, f| for t in &r.topics { f(t.error_code) },
    DeleteTopicsResponse => |r, f| for t in &r.responses { f(t.error_code) },
    OffsetForLeaderEpochResponse => |r, f| for t in &r.topics {
        for p in &t.partitions { f(p.error_code) }
    },
    FindCoordinatorResponse => |r, f| {
        f(r.error_code);
        for c in &r.coordinators { f(c.error_code) }
    },
    JoinGroupResponse => |r, f| f(r.error_code),
    SyncGroupResponse => |r, f| f(r.error_code),
    HeartbeatResponse => |r, f| f(r.error_code),
    LeaveGroupResponse => |r, f| {
        f(r.error_code);
        for m in &r.members { f(m.error_code) }
    },
    OffsetCommitResponse => |r, f| for t in &r.topics {
        for p in &t.partitions { f(p.error_code) }
    },
    OffsetFetchResponse => |r, f| {
        f(r.error_code);
        for t in &r.topics { for p in &t.partitions { f(p.error_code) } }
        for g in &r.groups {
            f(g.error_code);
            for t in &g.topics { for p in &t.partitions { f(p.error_code) } }
        }
    },
    ListGroupsResponse => |r, f| f(r.error_code),
    ConsumerGroupHeartbeatResponse => |r, f| f(r.error_code),
    ConsumerGroupDescribeResponse => |r, f| for g in &r.groups { f(g.error_code) },
    ShareGroupHeartbeatResponse => |r, f| f(r.error_code),
    ShareGroupDescribeResponse => |r, f| for g in &r.groups { f(g.error_code) },
    ShareFetchResponse => |r, f| {
        f(r.error_code);
        for t in &r.responses {
            for p in &t.partitions {
                f(p.error_code);
                f(p.acknowledge_error_code);
            }
        }
    },
    ShareAcknowledgeResponse => |r, f| {
        f(r.error_code);
        for t in &r.responses { for p in &t.partitions { f(p.error_code) } }
    },
    DescribeShareGroupOffsetsResponse => |r, f| for g in &r.groups {
        f(g.error_code);
        for t in &g.topics { for p in &t.partitions { f(p.error_code) } }
    },
    AlterShareGroupOffsetsResponse => |r, f| {
        f(r.error_code);
        for t in &r.responses { for p in &t.partitions { f(p.error_code) } }
    },
    DeleteShareGroupOffsetsResponse => |r, f| {
        f(r.error_code);
        for t in &r.responses { f(t.error_code) }
    },
    DescribeGroupsResponse => |r, f| for g in &r.groups { f(g.error_code) },
    DeleteGroupsResponse => |r, f| for g in &r.results { f(g.error_code) },
    OffsetDeleteResponse => |r, f| {
        f(r.error_code);
        for t in &r.topics { for p in &t.partitions { f(p.error_code) } }
    },
    DescribeConfigsResponse => |r, f| for c in &r.results { f(c.error_code) },
    DescribeAclsResponse => |r, f| f(r.error_code),
    CreateAclsResponse => |r, f| for c in &r.results { f(c.error_code) },
    DeleteAclsResponse => |r, f| for c in &r.filter_results { f(c.error_code) },
    AlterConfigsResponse => |r, f| for c in &r.responses { f(c.error_code) },
    IncrementalAlterConfigsResponse => |r, f| for c in &r.responses { f(c.error_code) },
    CreatePartitionsResponse => |r, f| for c in &r.results { f(c.error_code) },
    DeleteRecordsResponse => |r, f| for t in &r.topics {
        for p in &t.partitions { f(p.error_code) }
    },
    DescribeLogDirsResponse => |r, f| {
        f(r.error_code);
        for d in &r.results { f(d.error_code) }
    },
    DescribeClusterResponse => |r, f| f(r.error_code),
    DescribeProducersResponse => |r, f| for t in &r.topics {
        for p in &t.partitions { f(p.error_code) }
    },
    ElectLeadersResponse => |r, f| {
        f(r.error_code);
        for t in &r.replica_election_results { for p in &t.partition_result { f(p.error_code) } }
    },
    InitProducerIdResponse => |r, f| f(r.error_code),
    AddPartitionsToTxnResponse => |r, f| {
        f(r.error_code);
        for t in &r.results_by_topic_v3_and_below {
            for p in &t.results_by_partition { f(p.partition_error_code) }
        }
        for x in &r.results_by_transaction {
            for t in &x.topic_results { for p in &t.results_by_partition { f(p.partition_error_code) } }
        }
    },
    AddOffsetsToTxnResponse => |r, f| f(r.error_code),
    TxnOffsetCommitResponse => |r, f| for t in &r.topics {
        for p in &t.partitions { f(p.error_code) }
    },
    EndTxnResponse => |r, f| f(r.error_code),
    DescribeTransactionsResponse => |r, f| for t in &r.transaction_states { f(t.error_code) },
    ListTransactionsResponse => |r, f| f(r.error_code),
    DescribeTopicPartitionsResponse => |r, f| for t in &r.topics {
        f(t.error_code);
        for p in &t.partitions { f(p.error_code) }
    },
    SaslHandshakeResponse => |r, f| f(r.error_code),
    SaslAuthenticateResponse => |r, f| f(r.error_code),
    DescribeUserScramCredentialsResponse => |r, f| {
        f(r.error_code);
        for u in &r.results { f(u.error_code) }
    },
    AlterUserScramCredentialsResponse => |r, f| for u in &r.results { f(u.error_code) },
}
