//! ACLs enforced (issue 16): a broker with `authorizer.class.name` set, a super user who
//! manages ACLs over CreateAcls/DescribeAcls/DeleteAcls, and users whose requests are
//! allowed or refused per API with Kafka's error codes. Raw requests over SASL PLAIN, so
//! each answer's code is checked exactly.

use std::net::TcpStream;
use std::time::Duration;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::raw::{authenticate_plain, batch, exchange, produce_request, transactional_batch};
use crate::support::Broker;

pub(crate) const AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const JAAS: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-pw\" user_alice=\"alice-pw\" user_bob=\"bob-pw\" user_carol=\"carol-pw\";";

// Kafka's codes.
pub(crate) const TOPIC: i8 = 2;
const GROUP: i8 = 3;
pub(crate) const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const MATCH: i8 = 2;
const ANY: i8 = 1;
const ALL: i8 = 2;
const READ: i8 = 3;
pub(crate) const WRITE: i8 = 4;
pub(crate) const DENY: i8 = 2;
const ALLOW: i8 = 3;
pub(crate) const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const SECURITY_DISABLED: i16 = 54;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A connection authenticated as `user`.
fn session(addr: &str, user: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = authenticate_plain(&mut stream, user, &format!("{user}-pw"));
    assert_eq!(auth.error_code, 0, "{user} authenticates");
    stream
}

pub(crate) fn acl(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    operation: i8,
    permission: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

pub(crate) fn create_acls(
    stream: &mut TcpStream,
    creations: Vec<AclCreation>,
) -> CreateAclsResponse {
    exchange(
        stream,
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(creations),
    )
}

fn metadata(stream: &mut TcpStream, topics: Option<&[&str]>) -> MetadataResponse {
    exchange(
        stream,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(s(t)))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(true)
            .with_include_topic_authorized_operations(true),
    )
}

/// Produces one record; with a transactional id, as a transactional batch.
pub(crate) fn produce(stream: &mut TcpStream, topic: &str, transactional_id: Option<&str>) -> i16 {
    let records = match transactional_id {
        Some(_) => transactional_batch(&[b"v"], 4000, 0, 0),
        None => batch(&[b"v"], -1, -1, -1),
    };
    let request = produce_request(topic, records)
        .with_transactional_id(transactional_id.map(|t| TransactionalId(s(t))));
    let response: ProduceResponse = exchange(stream, ApiKey::Produce, 9, &request);
    response.responses[0].partition_responses[0].error_code
}

fn fetch(stream: &mut TcpStream, topic: &str) -> i16 {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(s(topic)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = exchange(stream, ApiKey::Fetch, 12, &request);
    response.responses[0].partitions[0].error_code
}

fn find_group(stream: &mut TcpStream, group: &str) -> i16 {
    let response: FindCoordinatorResponse = exchange(
        stream,
        ApiKey::FindCoordinator,
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![s(group)]),
    );
    response.coordinators[0].error_code
}

fn init_producer_id(stream: &mut TcpStream, transactional_id: Option<&str>) -> i16 {
    let response: InitProducerIdResponse = exchange(
        stream,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(transactional_id.map(|t| TransactionalId(s(t))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    response.error_code
}

fn describe_configs(stream: &mut TcpStream, resource_type: i8, name: &str) -> i16 {
    let response: DescribeConfigsResponse = exchange(
        stream,
        ApiKey::DescribeConfigs,
        4,
        &DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))]),
    );
    response.results[0].error_code
}

fn describe_acls(stream: &mut TcpStream, name: Option<&str>, pattern: i8) -> DescribeAclsResponse {
    exchange(
        stream,
        ApiKey::DescribeAcls,
        3,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(ANY)
            .with_resource_name_filter(name.map(s))
            .with_pattern_type_filter(pattern)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(ANY)
            .with_permission_type(ANY),
    )
}

#[test]
fn acls_decide_every_api_with_kafkas_error_codes_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        "listeners=SASL_PLAINTEXT://127.0.0.1:0",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
        JAAS,
        AUTHORIZER,
        "super.users=User:admin",
        "connection.failed.authentication.delay.ms=0",
        "group.initial.rebalance.delay.ms=0",
    ];
    let broker = Broker::start(dir.path(), &settings);
    let addr = broker.listeners["SASL_PLAINTEXT"].clone();
    let mut admin = session(&addr, "admin");
    let created: CreateTopicsResponse = exchange(
        &mut admin,
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_topics(
                ["orders", "secret"]
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_num_partitions(1)
                            .with_replication_factor(1)
                    })
                    .collect(),
            )
            .with_timeout_ms(10_000),
    );
    assert!(
        created.topics.iter().all(|t| t.error_code == 0),
        "{created:?}"
    );

    // Only a principal with ALTER on the cluster manages ACLs.
    let mut alice = session(&addr, "alice");
    let refused = create_acls(
        &mut alice,
        vec![acl(TOPIC, "orders", LITERAL, "User:alice", ALL, ALLOW)],
    );
    assert_eq!(refused.results[0].error_code, CLUSTER_AUTHORIZATION_FAILED);
    let created = create_acls(
        &mut admin,
        vec![
            acl(TOPIC, "orders", LITERAL, "User:alice", WRITE, ALLOW),
            acl(TOPIC, "ord", PREFIXED, "User:alice", READ, ALLOW),
            acl(GROUP, "team-", PREFIXED, "User:alice", READ, ALLOW),
            acl(TOPIC, "*", LITERAL, "User:bob", ALL, ALLOW),
            acl(TOPIC, "orders", LITERAL, "User:bob", READ, DENY),
            // Invalid: the cluster has one name; a principal needs its type.
            acl(4, "other-cluster", LITERAL, "User:alice", ALL, ALLOW),
            acl(TOPIC, "x", LITERAL, "alice", READ, ALLOW),
        ],
    );
    let codes: Vec<i16> = created.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [0, 0, 0, 0, 0, 42, 42], "{created:?}");

    // Metadata: all topics shows only what alice may DESCRIBE (WRITE and READ imply it);
    // a named topic she may not is refused, existing or not, and so is auto-creation.
    let all = metadata(&mut alice, None);
    let names: Vec<&str> = all
        .topics
        .iter()
        .map(|t| t.name.as_ref().unwrap().as_str())
        .collect();
    assert_eq!(names, ["orders"]);
    let write_read_describe = (1 << 3) | (1 << 4) | (1 << 8);
    assert_eq!(
        all.topics[0].topic_authorized_operations,
        write_read_describe
    );
    let named = metadata(&mut alice, Some(&["secret", "brand-new", "orders"]));
    let codes: Vec<i16> = named.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        [TOPIC_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED, 0]
    );

    // Produce and Fetch: WRITE and READ on the topic; DENY beats bob's ALLOW ALL.
    assert_eq!(produce(&mut alice, "orders", None), 0);
    assert_eq!(
        produce(&mut alice, "secret", None),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        produce(&mut alice, "nowhere", None),
        TOPIC_AUTHORIZATION_FAILED,
        "refused before existence is checked"
    );
    // A transactional batch needs WRITE on its transactional id (and to have one).
    assert_eq!(
        produce(&mut alice, "orders", Some("txn")),
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    let without_id = produce_request("orders", transactional_batch(&[b"v"], 4000, 0, 0));
    let response: ProduceResponse = exchange(&mut alice, ApiKey::Produce, 9, &without_id);
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    assert_eq!(fetch(&mut alice, "orders"), 0);
    assert_eq!(fetch(&mut alice, "secret"), TOPIC_AUTHORIZATION_FAILED);
    let mut bob = session(&addr, "bob");
    assert_eq!(fetch(&mut bob, "secret"), 0);
    assert_eq!(fetch(&mut bob, "orders"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(produce(&mut bob, "orders", None), 0);

    // Groups: READ on the group (prefixed) also allows DESCRIBE for FindCoordinator.
    assert_eq!(find_group(&mut alice, "team-a"), 0);
    assert_eq!(find_group(&mut alice, "other"), GROUP_AUTHORIZATION_FAILED);
    let join: JoinGroupResponse = exchange(
        &mut alice,
        ApiKey::JoinGroup,
        9,
        &JoinGroupRequest::default()
            .with_group_id(GroupId(s("other")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("consumer")),
    );
    assert_eq!(join.error_code, GROUP_AUTHORIZATION_FAILED);

    // Producer ids: WRITE on some topic is enough to be idempotent; a transactional id
    // needs WRITE on it; carol, with no ACLs at all, gets neither.
    assert_eq!(init_producer_id(&mut alice, None), 0);
    assert_eq!(
        init_producer_id(&mut alice, Some("txn")),
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    );
    let mut carol = session(&addr, "carol");
    assert_eq!(
        init_producer_id(&mut carol, None),
        CLUSTER_AUTHORIZATION_FAILED
    );
    assert!(metadata(&mut carol, None).topics.is_empty());

    // Configs: DESCRIBE_CONFIGS on the topic, or on the cluster for the broker's.
    assert_eq!(
        describe_configs(&mut alice, 2, "secret"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        describe_configs(&mut alice, 4, "1"),
        CLUSTER_AUTHORIZATION_FAILED
    );
    assert_eq!(describe_configs(&mut admin, 4, "1"), 0);

    // DescribeCluster: the cluster's operations are 0 without DESCRIBE on it.
    let cluster: DescribeClusterResponse = exchange(
        &mut alice,
        ApiKey::DescribeCluster,
        1,
        &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
    );
    assert_eq!(cluster.cluster_authorized_operations, 0);

    // DescribeAcls: MATCH finds what applies to `orders`, grouped per resource pattern.
    let matching = describe_acls(&mut admin, Some("orders"), MATCH);
    let resources: Vec<(String, i8, usize)> = matching
        .resources
        .iter()
        .map(|r| (r.resource_name.to_string(), r.pattern_type, r.acls.len()))
        .collect();
    assert_eq!(
        resources,
        [
            ("*".to_string(), LITERAL, 1),
            ("ord".to_string(), PREFIXED, 1),
            ("orders".to_string(), LITERAL, 2)
        ]
    );
    let refused = describe_acls(&mut alice, None, ANY);
    assert_eq!(refused.error_code, CLUSTER_AUTHORIZATION_FAILED);

    // Durable: after a restart bob is still denied, until DeleteAcls removes the DENY.
    drop((admin, alice, bob, carol));
    let broker = broker.restart_after(Broker::stop, &settings);
    let addr = broker.listeners["SASL_PLAINTEXT"].clone();
    let mut bob = session(&addr, "bob");
    assert_eq!(fetch(&mut bob, "orders"), TOPIC_AUTHORIZATION_FAILED);
    let mut admin = session(&addr, "admin");
    let deleted: DeleteAclsResponse = exchange(
        &mut admin,
        ApiKey::DeleteAcls,
        3,
        &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(s("orders")))
            .with_pattern_type_filter(LITERAL)
            .with_principal_filter(Some(s("User:bob")))
            .with_host_filter(None)
            .with_operation(ANY)
            .with_permission_type(DENY)]),
    );
    let matched = &deleted.filter_results[0].matching_acls;
    assert_eq!(matched.len(), 1, "{deleted:?}");
    assert_eq!(
        (matched[0].operation, matched[0].permission_type),
        (READ, DENY)
    );
    assert_eq!(fetch(&mut bob, "orders"), 0);
    assert_eq!(
        describe_acls(&mut admin, None, ANY)
            .resources
            .iter()
            .map(|r| r.acls.len())
            .sum::<usize>(),
        4
    );
}

#[test]
fn without_an_authorizer_every_request_is_allowed_and_the_acl_apis_say_security_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let mut s = TcpStream::connect(&broker.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let created = create_acls(
        &mut s,
        vec![acl(TOPIC, "t", LITERAL, "User:alice", READ, ALLOW)],
    );
    assert_eq!(created.results[0].error_code, SECURITY_DISABLED);
    assert_eq!(
        created.results[0].error_message.as_deref(),
        Some("No Authorizer is configured.")
    );
    let described = describe_acls(&mut s, None, ANY);
    assert_eq!(described.error_code, SECURITY_DISABLED);
    // Every operation is reported as authorized.
    let all = metadata(&mut s, Some(&["anything"]));
    assert_eq!(all.topics[0].error_code, 0);
    assert_eq!(all.topics[0].topic_authorized_operations, 3576);
}
