package dev.gregor.compat;

import static dev.gregor.compat.Sessions.createAndAwait;
import static dev.gregor.compat.Sessions.describeConfigs;
import static dev.gregor.compat.Sessions.fetch;
import static dev.gregor.compat.Sessions.findCoordinator;
import static dev.gregor.compat.Sessions.incremental;
import static dev.gregor.compat.Sessions.join;
import static dev.gregor.compat.Sessions.listOffsets;
import static dev.gregor.compat.Sessions.newTopic;
import static dev.gregor.compat.Sessions.produceTo;
import static dev.gregor.compat.Sessions.records;
import static dev.gregor.compat.Sessions.session;
import static dev.gregor.compat.Sessions.settle;
import static dev.gregor.compat.Sessions.step;
import static dev.gregor.compat.Sessions.subscription;
import static dev.gregor.compat.Sessions.v;
import static dev.gregor.compat.Sessions.T0;

import java.util.ArrayList;
import java.util.List;

import org.apache.kafka.common.message.AddPartitionsToTxnRequestData;
import org.apache.kafka.common.message.AlterUserScramCredentialsRequestData;
import org.apache.kafka.common.message.CreateAclsRequestData;
import org.apache.kafka.common.message.CreatePartitionsRequestData;
import org.apache.kafka.common.message.DeleteAclsRequestData;
import org.apache.kafka.common.message.DeleteRecordsRequestData;
import org.apache.kafka.common.message.DeleteTopicsRequestData;
import org.apache.kafka.common.message.DescribeAclsRequestData;
import org.apache.kafka.common.message.DescribeAclsResponseData;
import org.apache.kafka.common.message.DescribeClusterRequestData;
import org.apache.kafka.common.message.DescribeGroupsRequestData;
import org.apache.kafka.common.message.DescribeLogDirsRequestData;
import org.apache.kafka.common.message.DescribeProducersRequestData;
import org.apache.kafka.common.message.DescribeTransactionsRequestData;
import org.apache.kafka.common.message.DescribeUserScramCredentialsRequestData;
import org.apache.kafka.common.message.ElectLeadersRequestData;
import org.apache.kafka.common.message.InitProducerIdRequestData;
import org.apache.kafka.common.message.InitProducerIdResponseData;
import org.apache.kafka.common.message.ListGroupsRequestData;
import org.apache.kafka.common.message.ListTransactionsRequestData;
import org.apache.kafka.common.message.MetadataRequestData;
import org.apache.kafka.common.message.OffsetCommitRequestData;
import org.apache.kafka.common.message.OffsetFetchRequestData;

/**
 * The sessions of the secure differential run: brokers with the StandardAuthorizer and a
 * SASL_PLAINTEXT listener (users admin, a super user, and alice), answers compared as in
 * {@link Sessions}. Alice may WRITE topic PRE.orders, READ every topic under PRE. except
 * PRE.other (a DENY), READ groups under GRP., WRITE transactional id TXN; nothing else.
 */
final class SecureSessions {
    private SecureSessions() {}

    static List<Differential.Session> all() {
        return List.of(acls());
    }

    // Kafka's codes.
    static final byte TOPIC = 2, GROUP = 3, CLUSTER = 4, TRANSACTIONAL_ID = 5;
    static final byte ANY = 1, MATCH = 2, LITERAL = 3, PREFIXED = 4;
    static final byte ALL = 2, READ = 3, WRITE = 4, CREATE = 5;
    static final byte DENY = 2, ALLOW = 3;

    static CreateAclsRequestData.AclCreation acl(byte type, String name, byte pattern, String principal, byte op, byte permission) {
        return new CreateAclsRequestData.AclCreation().setResourceType(type).setResourceName(name)
                .setResourcePatternType(pattern).setPrincipal(principal).setHost("*").setOperation(op)
                .setPermissionType(permission);
    }

    static CreateAclsRequestData createAcls(CreateAclsRequestData.AclCreation... creations) {
        return new CreateAclsRequestData().setCreations(List.of(creations));
    }

    static DescribeAclsRequestData describeAcls(byte type, String name, byte pattern, String principal) {
        return new DescribeAclsRequestData().setResourceTypeFilter(type).setResourceNameFilter(name)
                .setPatternTypeFilter(pattern).setPrincipalFilter(principal).setHostFilter(null)
                .setOperation(ANY).setPermissionType(ANY);
    }

    static MetadataRequestData metadata(boolean autoCreate, String... names) {
        List<MetadataRequestData.MetadataRequestTopic> ts = null;
        if (names.length > 0) {
            ts = new ArrayList<>();
            for (String n : names) {
                ts.add(new MetadataRequestData.MetadataRequestTopic().setName(n));
            }
        }
        return new MetadataRequestData().setTopics(ts).setAllowAutoTopicCreation(autoCreate)
                .setIncludeTopicAuthorizedOperations(true);
    }

    static OffsetCommitRequestData simpleCommit(String group, String topic) {
        return new OffsetCommitRequestData().setGroupId(group).setGenerationIdOrMemberEpoch(-1).setMemberId("")
                .setTopics(List.of(new OffsetCommitRequestData.OffsetCommitRequestTopic().setName(topic).setPartitions(List.of(
                        new OffsetCommitRequestData.OffsetCommitRequestPartition().setPartitionIndex(0)
                                .setCommittedOffset(1).setCommittedMetadata("m").setCommittedLeaderEpoch(-1)))));
    }

    static InitProducerIdRequestData initPid(String txn) {
        return new InitProducerIdRequestData().setTransactionalId(txn).setTransactionTimeoutMs(60_000)
                .setProducerId(-1).setProducerEpoch((short) -1);
    }

    static Differential.Session acls() {
        return session("acls",
                step("login_admin", c -> c.login("admin")),
                settle("create_orders", c -> createAndAwait(c, c.name("pre") + ".orders", 1)),
                settle("create_other", c -> createAndAwait(c, c.name("pre") + ".other", 1)),
                settle("create_secret", c -> createAndAwait(c, c.name("sec"), 1)),
                step("create_acls", c -> c.wire.send(createAcls(
                        acl(TOPIC, c.name("pre") + ".orders", LITERAL, "User:alice", WRITE, ALLOW),
                        acl(TOPIC, c.name("pre") + ".", PREFIXED, "User:alice", READ, ALLOW),
                        acl(TOPIC, c.name("pre") + ".other", LITERAL, "User:alice", READ, DENY),
                        acl(GROUP, c.name("grp") + ".", PREFIXED, "User:alice", READ, ALLOW),
                        acl(TRANSACTIONAL_ID, c.name("txn"), LITERAL, "User:alice", WRITE, ALLOW),
                        acl(TOPIC, c.name("mk") + ".", PREFIXED, "User:alice", CREATE, ALLOW)), v(3))),
                step("create_acls_invalid", c -> c.wire.send(createAcls(
                        acl(CLUSTER, "other-cluster", LITERAL, "User:alice", ALL, ALLOW),
                        acl(TOPIC, "", LITERAL, "User:alice", ALL, ALLOW),
                        acl(TOPIC, c.name("x"), LITERAL, "alice", ALL, ALLOW)), v(3))),
                step("create_acls_duplicate", c -> c.wire.send(createAcls(
                        acl(TOPIC, c.name("pre") + ".orders", LITERAL, "User:alice", WRITE, ALLOW)), v(2))),
                // ACLs reach Kafka's authorizer through its metadata log: wait until all show.
                step("describe_acls_prefix", c -> c.until(describeAcls(ANY, null, ANY, "User:alice"), v(3),
                        m -> ((DescribeAclsResponseData) m).resources().size() < 6)),
                step("describe_acls_match", c -> c.wire.send(describeAcls(TOPIC, c.name("pre") + ".orders", MATCH, null), v(3))),
                step("describe_acls_literal", c -> c.wire.send(describeAcls(TOPIC, c.name("pre") + ".orders", LITERAL, null), v(1))),
                step("describe_acls_unknown_pattern", c -> c.wire.send(describeAcls(TOPIC, null, (byte) 9, null), v(3))),

                step("login_alice", c -> c.login("alice")),
                step("create_acls_denied", c -> c.wire.send(createAcls(
                        acl(TOPIC, c.name("sec"), LITERAL, "User:alice", ALL, ALLOW)), v(3))),
                step("describe_acls_denied", c -> c.wire.send(describeAcls(ANY, null, ANY, null), v(3))),
                step("delete_acls_denied", c -> c.wire.send(new DeleteAclsRequestData().setFilters(List.of(
                        new DeleteAclsRequestData.DeleteAclsFilter().setResourceTypeFilter(ANY).setPatternTypeFilter(ANY)
                                .setOperation(ANY).setPermissionType(ANY))), v(3))),
                step("metadata_all", c -> c.wire.send(metadata(false), v(12))),
                step("metadata_named", c -> c.wire.send(metadata(true, c.name("pre") + ".orders", c.name("pre") + ".other",
                        c.name("sec"), c.name("pre") + ".new", c.name("nothing")), v(12))),
                step("metadata_invalid_and_internal_names", c -> c.wire.send(metadata(true, "bad/name",
                        "__transaction_state"), v(12))),
                step("metadata_cluster_operations", c -> c.wire.send(new MetadataRequestData().setTopics(List.of())
                        .setIncludeClusterAuthorizedOperations(true), v(10))),
                step("produce_allowed", c -> c.wire.send(produceTo(c.name("pre") + ".orders", 0, records(1, T0)), v(9))),
                step("produce_no_write", c -> c.wire.send(produceTo(c.name("pre") + ".other", 0, records(1, T0)), v(9))),
                step("produce_secret", c -> c.wire.send(produceTo(c.name("sec"), 0, records(1, T0)), v(9))),
                step("produce_unknown_topic", c -> c.wire.send(produceTo(c.name("nothing"), 0, records(1, T0)), v(9))),
                step("produce_transactional_denied", c -> c.wire.send(produceTo(c.name("pre") + ".orders", 0, records(1, T0), -1,
                        c.name("txn-no")), v(9))),
                step("produce_transactional_batch_denied", c -> c.wire.send(produceTo(c.name("pre") + ".orders", 0,
                        Sessions.transactional(1000, (short) 0, 0, 1), -1, c.name("txn-no")), v(9))),
                step("produce_transactional_batch_without_id", c -> c.wire.send(produceTo(c.name("pre") + ".orders", 0,
                        Sessions.transactional(1000, (short) 0, 0, 1), -1, null), v(9))),
                step("fetch_allowed", c -> c.wire.send(fetch(c.name("pre") + ".orders", null, 0, 0, 0, 1 << 20, -1), v(12))),
                step("fetch_denied", c -> c.wire.send(fetch(c.name("pre") + ".other", null, 0, 0, 0, 1 << 20, -1), v(12))),
                step("list_offsets_denied", c -> c.wire.send(listOffsets(c.name("sec"), 0, -1, 0), v(7))),
                step("find_group_allowed", c -> c.until(findCoordinator(0, c.name("grp") + ".a"), v(4), Sessions::anyRetriable)),
                step("find_group_denied", c -> c.wire.send(findCoordinator(0, c.name("nogrp")), v(4))),
                step("find_txn_allowed", c -> c.until(findCoordinator(1, c.name("txn")), v(4), Sessions::anyRetriable)),
                step("find_txn_denied", c -> c.wire.send(findCoordinator(1, c.name("txn-no")), v(4))),
                step("join_denied", c -> c.wire.send(join(c.name("nogrp"), "", "consumer", 10_000,
                        subscription(c.name("pre") + ".orders")), v(9))),
                step("commit_group_denied", c -> c.wire.send(simpleCommit(c.name("nogrp"), c.name("pre") + ".orders"), v(8))),
                step("commit_topic_denied", c -> c.until(simpleCommit(c.name("grp") + ".a", c.name("sec")), v(8),
                        Sessions::anyRetriable)),
                step("commit_allowed", c -> c.until(simpleCommit(c.name("grp") + ".a", c.name("pre") + ".orders"), v(8),
                        Sessions::anyRetriable)),
                step("offset_fetch_named", c -> c.wire.send(new OffsetFetchRequestData().setGroups(List.of(
                        new OffsetFetchRequestData.OffsetFetchRequestGroup().setGroupId(c.name("grp") + ".a").setTopics(List.of(
                                new OffsetFetchRequestData.OffsetFetchRequestTopics().setName(c.name("pre") + ".orders")
                                        .setPartitionIndexes(List.of(0)),
                                new OffsetFetchRequestData.OffsetFetchRequestTopics().setName(c.name("sec"))
                                        .setPartitionIndexes(List.of(0)))),
                        new OffsetFetchRequestData.OffsetFetchRequestGroup().setGroupId(c.name("nogrp")).setTopics(null))), v(9))),
                step("describe_groups", c -> c.wire.send(new DescribeGroupsRequestData().setGroups(List.of(
                        c.name("grp") + ".a", c.name("nogrp"))).setIncludeAuthorizedOperations(true), v(5))),
                step("list_groups", c -> c.wire.send(new ListGroupsRequestData(), v(4))),
                step("init_pid_idempotent", c -> c.until(initPid(null), v(4),
                        m -> Differential.retriable(((InitProducerIdResponseData) m).errorCode()))),
                step("init_pid_txn_denied", c -> c.wire.send(initPid(c.name("txn-no")), v(4))),
                step("init_pid_txn_allowed", c -> c.until(initPid(c.name("txn")), v(4),
                        m -> Differential.retriable(((InitProducerIdResponseData) m).errorCode()))),
                step("describe_configs_topic", c -> c.wire.send(describeConfigs(2, c.name("pre") + ".orders", null, false), v(4))),
                step("describe_configs_broker", c -> c.wire.send(describeConfigs(4, "1", null, false), v(4))),
                step("alter_configs_topic", c -> c.wire.send(incremental(2, c.name("pre") + ".orders", false,
                        "retention.ms", 0, "1000"), v(1))),
                step("create_topics_denied", c -> c.wire.send(Sessions.createTopics(newTopic(c.name("pre") + ".made", 1, 1)), v(7))),
                step("create_topics_not_describable", c -> c.wire.send(Sessions.createTopics(
                        newTopic(c.name("mk") + ".t", 1, 1)), v(7))),
                step("delete_topics_by_id_denied", c -> c.wire.send(new DeleteTopicsRequestData().setTimeoutMs(10_000)
                        .setTopics(List.of(new DeleteTopicsRequestData.DeleteTopicState().setTopicId(
                                c.get("id:" + c.name("sec"))))), v(6))),
                step("delete_topics_by_id_describable", c -> c.wire.send(new DeleteTopicsRequestData().setTimeoutMs(10_000)
                        .setTopics(List.of(new DeleteTopicsRequestData.DeleteTopicState().setTopicId(
                                c.get("id:" + c.name("pre") + ".orders")))), v(6))),
                step("delete_topics_unknown_describable", c -> c.wire.send(new DeleteTopicsRequestData().setTimeoutMs(10_000)
                        .setTopics(List.of(new DeleteTopicsRequestData.DeleteTopicState().setName(c.name("pre") + ".gone"))), v(6))),
                step("delete_topics_denied", c -> c.wire.send(new DeleteTopicsRequestData().setTimeoutMs(10_000).setTopics(List.of(
                        new DeleteTopicsRequestData.DeleteTopicState().setName(c.name("sec")))), v(6))),
                step("create_partitions_denied", c -> {
                    var ts = new CreatePartitionsRequestData.CreatePartitionsTopicCollection();
                    ts.add(new CreatePartitionsRequestData.CreatePartitionsTopic().setName(c.name("pre") + ".orders").setCount(2)
                            .setAssignments(null));
                    return c.wire.send(new CreatePartitionsRequestData().setTopics(ts).setTimeoutMs(10_000), v(3));
                }),
                step("delete_records_denied", c -> c.wire.send(new DeleteRecordsRequestData().setTimeoutMs(10_000).setTopics(List.of(
                        new DeleteRecordsRequestData.DeleteRecordsTopic().setName(c.name("pre") + ".orders").setPartitions(List.of(
                                new DeleteRecordsRequestData.DeleteRecordsPartition().setPartitionIndex(0).setOffset(0))))), v(2))),
                step("describe_log_dirs_denied", c -> c.wire.send(new DescribeLogDirsRequestData().setTopics(null), v(4))),
                step("describe_cluster_operations", c -> c.wire.send(new DescribeClusterRequestData()
                        .setIncludeClusterAuthorizedOperations(true), v(1))),
                step("elect_leaders_denied", c -> {
                    var ps = new ElectLeadersRequestData.TopicPartitionsCollection();
                    ps.add(new ElectLeadersRequestData.TopicPartitions().setTopic(c.name("pre") + ".orders").setPartitions(List.of(0)));
                    return c.wire.send(new ElectLeadersRequestData().setElectionType((byte) 0).setTopicPartitions(ps)
                            .setTimeoutMs(5000), v(2));
                }),
                step("describe_scram_denied", c -> c.wire.send(new DescribeUserScramCredentialsRequestData().setUsers(List.of(
                        new DescribeUserScramCredentialsRequestData.UserName().setName("bob"))), v(0))),
                step("alter_scram_denied", c -> c.wire.send(new AlterUserScramCredentialsRequestData().setDeletions(List.of(
                        new AlterUserScramCredentialsRequestData.ScramCredentialDeletion().setName("bob").setMechanism((byte) 1))), v(0))),
                step("list_transactions", c -> c.wire.send(new ListTransactionsRequestData(), v(1))),
                step("describe_transactions", c -> c.wire.send(new DescribeTransactionsRequestData().setTransactionalIds(List.of(
                        c.name("txn"), c.name("txn-no"))), v(0))),
                step("add_partitions_internal_topic", c -> {
                    var ts = new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopicCollection();
                    ts.add(new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic().setName("__consumer_offsets")
                            .setPartitions(List.of(0)));
                    ts.add(new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic().setName(c.name("pre") + ".orders")
                            .setPartitions(List.of(0)));
                    return c.wire.send(new AddPartitionsToTxnRequestData().setV3AndBelowTransactionalId(c.name("txn"))
                            .setV3AndBelowProducerId(0).setV3AndBelowProducerEpoch((short) 0).setV3AndBelowTopics(ts), v(3));
                }),
                step("describe_producers_denied", c -> c.wire.send(new DescribeProducersRequestData().setTopics(List.of(
                        new DescribeProducersRequestData.TopicRequest().setName(c.name("sec")).setPartitionIndexes(List.of(0)))), v(0))),

                step("login_admin_again", c -> c.login("admin")),
                step("delete_acls", c -> c.wire.send(new DeleteAclsRequestData().setFilters(List.of(
                        new DeleteAclsRequestData.DeleteAclsFilter().setResourceTypeFilter(TOPIC)
                                .setResourceNameFilter(c.name("pre") + ".other").setPatternTypeFilter(LITERAL)
                                .setPrincipalFilter("User:alice").setHostFilter(null).setOperation(ANY).setPermissionType(DENY),
                        new DeleteAclsRequestData.DeleteAclsFilter().setResourceTypeFilter(GROUP)
                                .setResourceNameFilter(null).setPatternTypeFilter(ANY)
                                .setPrincipalFilter(null).setHostFilter(null).setOperation(ANY).setPermissionType(ANY))), v(3))),
                step("describe_acls_after_delete", c -> c.until(describeAcls(ANY, null, ANY, "User:alice"), v(3),
                        m -> ((DescribeAclsResponseData) m).resources().size() > 3)));
    }
}
