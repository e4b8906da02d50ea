package dev.gregor.compat;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor;
import org.apache.kafka.clients.consumer.internals.ConsumerProtocol;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.message.AddOffsetsToTxnRequestData;
import org.apache.kafka.common.message.AddPartitionsToTxnRequestData;
import org.apache.kafka.common.message.AlterConfigsRequestData;
import org.apache.kafka.common.message.AlterUserScramCredentialsRequestData;
import org.apache.kafka.common.message.DescribeUserScramCredentialsRequestData;
import org.apache.kafka.common.message.DescribeUserScramCredentialsResponseData;
import org.apache.kafka.common.message.SaslAuthenticateRequestData;
import org.apache.kafka.common.message.SaslHandshakeRequestData;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.CreatePartitionsRequestData;
import org.apache.kafka.common.message.CreateTopicsRequestData;
import org.apache.kafka.common.message.CreateTopicsResponseData;
import org.apache.kafka.common.message.DeleteGroupsRequestData;
import org.apache.kafka.common.message.DeleteRecordsRequestData;
import org.apache.kafka.common.message.DeleteTopicsRequestData;
import org.apache.kafka.common.message.DescribeClusterRequestData;
import org.apache.kafka.common.message.DescribeConfigsRequestData;
import org.apache.kafka.common.message.DescribeGroupsRequestData;
import org.apache.kafka.common.message.DescribeLogDirsRequestData;
import org.apache.kafka.common.message.DescribeProducersRequestData;
import org.apache.kafka.common.message.DescribeTopicPartitionsRequestData;
import org.apache.kafka.common.message.DescribeTransactionsRequestData;
import org.apache.kafka.common.message.ElectLeadersRequestData;
import org.apache.kafka.common.message.EndTxnRequestData;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FindCoordinatorRequestData;
import org.apache.kafka.common.message.FindCoordinatorResponseData;
import org.apache.kafka.common.message.HeartbeatRequestData;
import org.apache.kafka.common.message.IncrementalAlterConfigsRequestData;
import org.apache.kafka.common.message.InitProducerIdRequestData;
import org.apache.kafka.common.message.InitProducerIdResponseData;
import org.apache.kafka.common.message.JoinGroupRequestData;
import org.apache.kafka.common.message.JoinGroupResponseData;
import org.apache.kafka.common.message.LeaveGroupRequestData;
import org.apache.kafka.common.message.ListGroupsRequestData;
import org.apache.kafka.common.message.ListOffsetsRequestData;
import org.apache.kafka.common.message.ListTransactionsRequestData;
import org.apache.kafka.common.message.MetadataRequestData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.OffsetCommitRequestData;
import org.apache.kafka.common.message.OffsetDeleteRequestData;
import org.apache.kafka.common.message.OffsetFetchRequestData;
import org.apache.kafka.common.message.OffsetForLeaderEpochRequestData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.SyncGroupRequestData;
import org.apache.kafka.common.message.TxnOffsetCommitRequestData;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.record.MemoryRecords;
import org.apache.kafka.common.record.SimpleRecord;

/** The scripted client sessions of the differential runner: what a client sends, step by step. */
final class Sessions {
    private Sessions() {}

    static List<Differential.Session> all() {
        return List.of(apiVersions(), metadata(), createTopics(), produce(), fetchAndOffsets(), groups(),
                transactions(), configs(), admin(), scram(), badRequests());
    }

    // ---- building blocks ----

    static Differential.NamedStep step(String name, Differential.Step s) {
        return new Differential.NamedStep(name, s);
    }

    static Differential.Session session(String name, Differential.NamedStep... steps) {
        return new Differential.Session(name, List.of(steps));
    }

    static short v(int version) {
        return (short) version;
    }

    static boolean anyRetriable(ApiMessage m) {
        return Differential.retriable(errorOf(m));
    }

    /** The first non-zero error code anywhere in a response (top level or nested), via its JSON form. */
    static short errorOf(ApiMessage m) {
        return firstError(JsonDiff.toJson(m, m.highestSupportedVersion()));
    }

    private static short firstError(com.fasterxml.jackson.databind.JsonNode n) {
        if (n.isObject()) {
            var code = n.get("errorCode");
            if (code != null && code.asInt() != 0) {
                return (short) code.asInt();
            }
            for (var it = n.elements(); it.hasNext(); ) {
                short e = firstError(it.next());
                if (e != 0) {
                    return e;
                }
            }
        } else if (n.isArray()) {
            for (var c : n) {
                short e = firstError(c);
                if (e != 0) {
                    return e;
                }
            }
        }
        return 0;
    }

    static CreateTopicsRequestData.CreatableTopic newTopic(String name, int partitions, int rf, String... configs) {
        var t = new CreateTopicsRequestData.CreatableTopic().setName(name).setNumPartitions(partitions)
                .setReplicationFactor((short) rf);
        var cc = new CreateTopicsRequestData.CreatableTopicConfigCollection();
        for (int i = 0; i < configs.length; i += 2) {
            cc.add(new CreateTopicsRequestData.CreatableTopicConfig().setName(configs[i]).setValue(configs[i + 1]));
        }
        return t.setConfigs(cc);
    }

    static CreateTopicsRequestData createTopics(CreateTopicsRequestData.CreatableTopic... topics) {
        var c = new CreateTopicsRequestData.CreatableTopicCollection();
        for (var t : topics) {
            c.add(t);
        }
        return new CreateTopicsRequestData().setTopics(c).setTimeoutMs(10_000);
    }

    /** Creates a topic and waits until Metadata shows a leader for every partition (not compared). */
    static Object createAndAwait(Differential.Ctx c, String name, int partitions, String... configs) throws Exception {
        Wire.Answer a = c.wire.send(createTopics(newTopic(name, partitions, 1, configs)), v(7));
        var created = ((CreateTopicsResponseData) a.body()).topics().find(name);
        c.vars.put("id:" + name, created.topicId());
        c.until(metadataFor(name), v(12), m -> {
            var t = ((MetadataResponseData) m).topics().iterator().next();
            return t.errorCode() != 0 || t.partitions().size() < partitions
                    || t.partitions().stream().anyMatch(p -> p.errorCode() != 0 || p.leaderId() < 0);
        });
        // Metadata may name a leader before that broker leads: wait until each partition answers.
        for (int p = 0; p < partitions; p++) {
            c.until(listOffsets(name, p, -1, 0), v(7), Sessions::anyRetriable);
        }
        return a;
    }

    /** A step whose answer is not compared: it only waits until a broker is ready for the next. */
    static Differential.NamedStep settle(String name, Differential.Step s) {
        return step(name, c -> {
            s.run(c);
            return "(settled)";
        });
    }

    static MetadataRequestData metadataFor(String... names) {
        List<MetadataRequestData.MetadataRequestTopic> ts = new ArrayList<>();
        for (String n : names) {
            ts.add(new MetadataRequestData.MetadataRequestTopic().setName(n));
        }
        return new MetadataRequestData().setTopics(ts).setAllowAutoTopicCreation(false);
    }

    static final long T0 = 1_700_000_000_000L;

    static MemoryRecords records(int n, long firstTimestamp) {
        SimpleRecord[] rs = new SimpleRecord[n];
        for (int i = 0; i < n; i++) {
            rs[i] = new SimpleRecord(firstTimestamp + i, ("k" + i).getBytes(StandardCharsets.UTF_8),
                    ("v" + i).getBytes(StandardCharsets.UTF_8),
                    new RecordHeader[] {new RecordHeader("h", ("x" + i).getBytes(StandardCharsets.UTF_8))});
        }
        return MemoryRecords.withRecords(Compression.NONE, rs);
    }

    /** Five keyed records, except those at {@code without} (a compacted topic refuses those). */
    static MemoryRecords keyless(long firstTimestamp, int... without) {
        SimpleRecord[] rs = new SimpleRecord[5];
        for (int i = 0; i < rs.length; i++) {
            final int at = i;
            boolean noKey = Arrays.stream(without).anyMatch(w -> w == at);
            rs[i] = new SimpleRecord(firstTimestamp + i, noKey ? null : ("k" + i).getBytes(StandardCharsets.UTF_8),
                    ("v" + i).getBytes(StandardCharsets.UTF_8));
        }
        return MemoryRecords.withRecords(Compression.NONE, rs);
    }

    static MemoryRecords idempotent(long pid, short epoch, int seq, int n) {
        SimpleRecord[] rs = new SimpleRecord[n];
        for (int i = 0; i < n; i++) {
            rs[i] = new SimpleRecord(T0 + i, null, ("i" + (seq + i)).getBytes(StandardCharsets.UTF_8));
        }
        return MemoryRecords.withIdempotentRecords(Compression.NONE, pid, epoch, seq, rs);
    }

    static MemoryRecords transactional(long pid, short epoch, int seq, int n) {
        SimpleRecord[] rs = new SimpleRecord[n];
        for (int i = 0; i < n; i++) {
            rs[i] = new SimpleRecord(T0 + i, null, ("t" + (seq + i)).getBytes(StandardCharsets.UTF_8));
        }
        return MemoryRecords.withTransactionalRecords(Compression.NONE, pid, epoch, seq, rs);
    }

    static ProduceRequestData produceTo(String topic, int partition, MemoryRecords records, int acks, String txnId) {
        var tc = new ProduceRequestData.TopicProduceDataCollection();
        tc.add(new ProduceRequestData.TopicProduceData().setName(topic).setPartitionData(List.of(
                new ProduceRequestData.PartitionProduceData().setIndex(partition).setRecords(records))));
        return new ProduceRequestData().setAcks((short) acks).setTimeoutMs(10_000).setTopicData(tc).setTransactionalId(txnId);
    }

    static ProduceRequestData produceTo(String topic, int partition, MemoryRecords records) {
        return produceTo(topic, partition, records, -1, null);
    }

    static FetchRequestData fetch(String topic, Uuid id, int partition, long offset, int isolation, int maxBytes, int leaderEpoch) {
        return new FetchRequestData().setReplicaId(-1).setMaxWaitMs(100).setMinBytes(1).setMaxBytes(maxBytes)
                .setIsolationLevel((byte) isolation).setSessionId(0).setSessionEpoch(-1)
                .setTopics(List.of(new FetchRequestData.FetchTopic().setTopic(topic).setTopicId(id == null ? Uuid.ZERO_UUID : id)
                        .setPartitions(List.of(new FetchRequestData.FetchPartition().setPartition(partition)
                                .setFetchOffset(offset).setPartitionMaxBytes(maxBytes).setCurrentLeaderEpoch(leaderEpoch)
                                .setLogStartOffset(-1)))));
    }

    static ListOffsetsRequestData listOffsets(String topic, int partition, long timestamp, int isolation) {
        return new ListOffsetsRequestData().setReplicaId(-1).setIsolationLevel((byte) isolation).setTopics(List.of(
                new ListOffsetsRequestData.ListOffsetsTopic().setName(topic).setPartitions(List.of(
                        new ListOffsetsRequestData.ListOffsetsPartition().setPartitionIndex(partition).setTimestamp(timestamp)
                                .setCurrentLeaderEpoch(-1)))));
    }

    static FindCoordinatorRequestData findCoordinator(int type, String key) {
        return new FindCoordinatorRequestData().setKeyType((byte) type).setCoordinatorKeys(List.of(key));
    }

    /** Waits for the coordinator of {@code key} (Kafka creates its internal topic on first use). */
    static Object awaitCoordinator(Differential.Ctx c, int type, String key) throws Exception {
        return c.until(findCoordinator(type, key), v(4), m -> ((FindCoordinatorResponseData) m).coordinators().stream()
                .anyMatch(k -> Differential.retriable(k.errorCode())));
    }

    static byte[] subscription(String... topics) {
        ByteBuffer b = ConsumerProtocol.serializeSubscription(new ConsumerPartitionAssignor.Subscription(Arrays.asList(topics)));
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    static byte[] assignment(TopicPartition... tps) {
        ByteBuffer b = ConsumerProtocol.serializeAssignment(new ConsumerPartitionAssignor.Assignment(Arrays.asList(tps)));
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    static JoinGroupRequestData join(String group, String memberId, String protocolType, int sessionTimeout, byte[] metadata) {
        var protocols = new JoinGroupRequestData.JoinGroupRequestProtocolCollection();
        protocols.add(new JoinGroupRequestData.JoinGroupRequestProtocol().setName("range").setMetadata(metadata));
        return new JoinGroupRequestData().setGroupId(group).setSessionTimeoutMs(sessionTimeout).setRebalanceTimeoutMs(10_000)
                .setMemberId(memberId).setProtocolType(protocolType).setProtocols(protocols);
    }

    static OffsetCommitRequestData commit(String group, int generation, String member, String topic, int partition, long offset) {
        return new OffsetCommitRequestData().setGroupId(group).setGenerationIdOrMemberEpoch(generation).setMemberId(member)
                .setTopics(List.of(new OffsetCommitRequestData.OffsetCommitRequestTopic().setName(topic).setPartitions(List.of(
                        new OffsetCommitRequestData.OffsetCommitRequestPartition().setPartitionIndex(partition)
                                .setCommittedOffset(offset).setCommittedMetadata("m" + offset).setCommittedLeaderEpoch(-1)))));
    }

    static OffsetFetchRequestData offsetFetch(String group, String topic, boolean requireStable) {
        var g = new OffsetFetchRequestData.OffsetFetchRequestGroup().setGroupId(group).setTopics(topic == null ? null
                : List.of(new OffsetFetchRequestData.OffsetFetchRequestTopics().setName(topic).setPartitionIndexes(List.of(0, 1))));
        return new OffsetFetchRequestData().setGroups(List.of(g)).setRequireStable(requireStable);
    }

    static DescribeConfigsRequestData describeConfigs(int type, String name, List<String> keys, boolean synonyms) {
        return new DescribeConfigsRequestData().setIncludeSynonyms(synonyms).setIncludeDocumentation(synonyms)
                .setResources(List.of(new DescribeConfigsRequestData.DescribeConfigsResource().setResourceType((byte) type)
                        .setResourceName(name).setConfigurationKeys(keys)));
    }

    static IncrementalAlterConfigsRequestData incremental(int type, String name, boolean validateOnly, Object... ops) {
        var cs = new IncrementalAlterConfigsRequestData.AlterableConfigCollection();
        for (int i = 0; i < ops.length; i += 3) {
            cs.add(new IncrementalAlterConfigsRequestData.AlterableConfig().setName((String) ops[i])
                    .setConfigOperation(((Integer) ops[i + 1]).byteValue()).setValue((String) ops[i + 2]));
        }
        var rs = new IncrementalAlterConfigsRequestData.AlterConfigsResourceCollection();
        rs.add(new IncrementalAlterConfigsRequestData.AlterConfigsResource().setResourceType((byte) type).setResourceName(name)
                .setConfigs(cs));
        return new IncrementalAlterConfigsRequestData().setResources(rs).setValidateOnly(validateOnly);
    }

    // ---- the sessions ----

    /** ApiVersions at each version, and at one beyond (KIP-511's v0 fallback). */
    static Differential.Session apiVersions() {
        return session("api_versions",
                step("v0", c -> c.wire.send(new ApiVersionsRequestData(), v(0))),
                step("v2", c -> c.wire.send(new ApiVersionsRequestData(), v(2))),
                step("v3", c -> c.wire.send(new ApiVersionsRequestData().setClientSoftwareName("gregor-diff")
                        .setClientSoftwareVersion("1.0"), v(3))),
                step("v4", c -> c.wire.send(new ApiVersionsRequestData().setClientSoftwareName("gregor-diff")
                        .setClientSoftwareVersion("1.0"), v(4))),
                step("v3_bad_software_name", c -> c.wire.send(new ApiVersionsRequestData().setClientSoftwareName("bad name!")
                        .setClientSoftwareVersion("1.0"), v(3))),
                step("v99_unsupported", c -> c.wire.send(new ApiVersionsRequestData(), v(99), v(0))));
    }

    static Differential.Session metadata() {
        return session("metadata",
                step("create", c -> createAndAwait(c, c.name("md"), 3)),
                step("v12_named", c -> c.wire.send(metadataFor(c.name("md")), v(12))),
                step("v12_unknown_no_autocreate", c -> c.wire.send(metadataFor(c.name("nothere")), v(12))),
                step("v12_invalid_name", c -> c.wire.send(metadataFor("bad/name").setAllowAutoTopicCreation(true), v(12))),
                step("v12_autocreate_first", c -> c.wire.send(metadataFor(c.name("auto")).setAllowAutoTopicCreation(true), v(12))),
                step("v12_autocreate_settled", c -> c.until(metadataFor(c.name("auto")), v(12), Sessions::anyRetriable)),
                step("v12_by_topic_id", c -> c.wire.send(new MetadataRequestData().setTopics(List.of(
                        new MetadataRequestData.MetadataRequestTopic().setTopicId(c.get("id:" + c.name("md"))))), v(12))),
                step("v10_authorized_operations", c -> c.wire.send(metadataFor(c.name("md"))
                        .setIncludeTopicAuthorizedOperations(true), v(10))),
                step("v8_cluster_authorized_operations", c -> c.wire.send(metadataFor(c.name("md"))
                        .setIncludeClusterAuthorizedOperations(true), v(8))),
                step("v1_named", c -> c.wire.send(metadataFor(c.name("md")), v(1))),
                step("v0_named", c -> c.wire.send(metadataFor(c.name("md")), v(0))),
                step("v12_empty_list", c -> c.wire.send(new MetadataRequestData().setTopics(List.of()), v(12))));
    }

    static Differential.Session createTopics() {
        return session("create_topics",
                step("v7_with_configs", c -> c.wire.send(createTopics(newTopic(c.name("ct"), 2, 1, "retention.ms", "3600000",
                        "cleanup.policy", "compact")), v(7))),
                step("v7_exists", c -> c.wire.send(createTopics(newTopic(c.name("ct"), 2, 1)), v(7))),
                step("v7_rf3", c -> c.wire.send(createTopics(newTopic(c.name("rf3"), 1, 3)), v(7))),
                step("v7_zero_partitions", c -> c.wire.send(createTopics(newTopic(c.name("zero"), 0, 1)), v(7))),
                step("v7_bad_config_value", c -> c.wire.send(createTopics(newTopic(c.name("badv"), 1, 1, "retention.ms", "soon")), v(7))),
                step("v7_unknown_config", c -> c.wire.send(createTopics(newTopic(c.name("unk"), 1, 1, "no.such.config", "1")), v(7))),
                step("v7_bad_enum_config", c -> c.wire.send(createTopics(newTopic(c.name("enum"), 1, 1, "cleanup.policy", "sometimes")), v(7))),
                step("v7_invalid_name", c -> c.wire.send(createTopics(newTopic("bad/name", 1, 1)), v(7))),
                step("v7_dot_name", c -> c.wire.send(createTopics(newTopic("..", 1, 1)), v(7))),
                step("v7_long_name", c -> c.wire.send(createTopics(newTopic("x".repeat(250), 1, 1)), v(7))),
                step("v7_validate_only", c -> c.wire.send(createTopics(newTopic(c.name("vo"), 4, 1)).setValidateOnly(true), v(7))),
                step("v7_validate_only_not_created", c -> c.wire.send(metadataFor(c.name("vo")), v(12))),
                step("v7_duplicate_in_request", c -> c.wire.send(createTopics(newTopic(c.name("dup"), 1, 1),
                        newTopic(c.name("dup"), 1, 1)), v(7))),
                step("v7_defaults", c -> c.wire.send(createTopics(newTopic(c.name("defaults"), -1, -1)), v(7))),
                step("v7_assignment", c -> {
                    var t = newTopic(c.name("assigned"), -1, -1);
                    var as = new CreateTopicsRequestData.CreatableReplicaAssignmentCollection();
                    as.add(new CreateTopicsRequestData.CreatableReplicaAssignment().setPartitionIndex(0).setBrokerIds(List.of(1)));
                    as.add(new CreateTopicsRequestData.CreatableReplicaAssignment().setPartitionIndex(1).setBrokerIds(List.of(1)));
                    return c.wire.send(createTopics(t.setAssignments(as)), v(7));
                }),
                step("v7_assignment_unknown_broker", c -> {
                    var t = newTopic(c.name("assigned2"), -1, -1);
                    var as = new CreateTopicsRequestData.CreatableReplicaAssignmentCollection();
                    as.add(new CreateTopicsRequestData.CreatableReplicaAssignment().setPartitionIndex(0).setBrokerIds(List.of(7)));
                    return c.wire.send(createTopics(t.setAssignments(as)), v(7));
                }),
                step("v4_non_flexible", c -> c.wire.send(createTopics(newTopic(c.name("v4"), 1, 1)), v(4))),
                step("v2_oldest", c -> c.wire.send(createTopics(newTopic(c.name("v2"), 1, 1)), v(2))));
    }

    static Differential.Session produce() {
        return session("produce",
                step("create", c -> createAndAwait(c, c.name("p"), 2)),
                step("create_small", c -> createAndAwait(c, c.name("small"), 1, "max.message.bytes", "200")),
                step("v9_first", c -> c.wire.send(produceTo(c.name("p"), 0, records(3, T0)), v(9))),
                step("v9_second", c -> c.wire.send(produceTo(c.name("p"), 0, records(2, T0 + 3)), v(9))),
                step("v3_oldest", c -> c.wire.send(produceTo(c.name("p"), 1, records(1, T0)), v(3))),
                step("v12_newest_by_name", c -> c.wire.send(produceTo(c.name("p"), 1, records(1, T0 + 1)), v(12))),
                step("v13_by_topic_id", c -> {
                    var req = produceTo(c.name("p"), 1, records(1, T0 + 2));
                    req.topicData().iterator().next().setName("").setTopicId(c.get("id:" + c.name("p")));
                    return c.wire.send(req, v(13));
                }),
                step("v13_unknown_topic_id", c -> {
                    var req = produceTo(c.name("p"), 1, records(1, T0 + 2));
                    req.topicData().iterator().next().setName("").setTopicId(Uuid.randomUuid());
                    return c.wire.send(req, v(13));
                }),
                step("v9_unknown_partition", c -> c.wire.send(produceTo(c.name("p"), 9, records(1, T0)), v(9))),
                step("v9_unknown_topic", c -> c.wire.send(produceTo(c.name("nothere"), 0, records(1, T0)), v(9))),
                step("v9_acks_2", c -> c.wire.send(produceTo(c.name("p"), 0, records(1, T0), 2, null), v(9))),
                step("v9_corrupt_crc", c -> {
                    MemoryRecords r = records(2, T0);
                    ByteBuffer b = r.buffer().duplicate();
                    b.put(b.limit() - 1, (byte) (b.get(b.limit() - 1) ^ 0x5a));
                    return c.wire.send(produceTo(c.name("p"), 0, MemoryRecords.readableRecords(b)), v(9));
                }),
                step("v9_too_large", c -> c.wire.send(produceTo(c.name("small"), 0, records(40, T0)), v(9))),
                step("v9_after_refusals", c -> c.wire.send(produceTo(c.name("p"), 0, records(1, T0 + 5)), v(9))),
                step("create_compacted", c -> createAndAwait(c, c.name("compacted"), 1, "cleanup.policy", "compact")),
                step("v9_compacted_keyless", c -> c.wire.send(produceTo(c.name("compacted"), 0, keyless(T0, 1, 2, 4)), v(9))),
                step("v3_compacted_keyless", c -> c.wire.send(produceTo(c.name("compacted"), 0, keyless(T0, 0)), v(3))),
                step("v9_compacted_keyed", c -> c.wire.send(produceTo(c.name("compacted"), 0, records(2, T0)), v(9))),
                step("init_producer_id", c -> {
                    Wire.Answer a = c.until(new InitProducerIdRequestData().setTransactionalId(null)
                            .setTransactionTimeoutMs(60_000).setProducerId(-1).setProducerEpoch((short) -1), v(4),
                            Sessions::anyRetriable);
                    var r = (InitProducerIdResponseData) a.body();
                    c.vars.put("pid", r.producerId());
                    c.vars.put("epoch", r.producerEpoch());
                    return a;
                }),
                step("idempotent_seq0", c -> c.wire.send(produceTo(c.name("p"), 1,
                        idempotent(c.get("pid"), c.get("epoch"), 0, 3)), v(9))),
                step("idempotent_duplicate", c -> c.wire.send(produceTo(c.name("p"), 1,
                        idempotent(c.get("pid"), c.get("epoch"), 0, 3)), v(9))),
                step("idempotent_seq3", c -> c.wire.send(produceTo(c.name("p"), 1,
                        idempotent(c.get("pid"), c.get("epoch"), 3, 2)), v(9))),
                step("idempotent_gap", c -> c.wire.send(produceTo(c.name("p"), 1,
                        idempotent(c.get("pid"), c.get("epoch"), 9, 1)), v(9))),
                step("idempotent_stale_duplicate", c -> c.wire.send(produceTo(c.name("p"), 1,
                        idempotent(c.get("pid"), c.get("epoch"), 1, 1)), v(9))),
                step("idempotent_new_epoch_seq0", c -> c.wire.send(produceTo(c.name("p"), 1,
                        idempotent(c.get("pid"), (short) ((short) c.get("epoch") + 1), 0, 1)), v(9))),
                step("idempotent_old_epoch", c -> c.wire.send(produceTo(c.name("p"), 1,
                        idempotent(c.get("pid"), c.get("epoch"), 5, 1)), v(9))),
                step("idempotent_new_epoch_seq5", c -> c.wire.send(produceTo(c.name("p"), 0,
                        idempotent(c.get("pid"), (short) ((short) c.get("epoch") + 3), 5, 1)), v(9))),
                step("idempotent_unknown_pid", c -> c.wire.send(produceTo(c.name("p"), 0,
                        idempotent(987_654_321L, (short) 0, 7, 1)), v(9))),
                step("transactional_without_txn", c -> c.wire.send(produceTo(c.name("p"), 0,
                        transactional(c.get("pid"), c.get("epoch"), 0, 1), -1, "no-such-txn"), v(9))),
                step("acks0_then_metadata", c -> {
                    // acks=0 gets no answer; the next request on the connection is answered normally.
                    c.wire.sendRaw(rawProduceAcks0(c));
                    return c.wire.send(metadataFor(c.name("p")), v(12));
                }));
    }

    private static byte[] rawProduceAcks0(Differential.Ctx c) {
        var req = produceTo(c.name("p"), 0, records(1, T0 + 6), 0, null);
        var header = new org.apache.kafka.common.message.RequestHeaderData().setRequestApiKey((short) 0)
                .setRequestApiVersion((short) 9).setClientId("gregor-differential").setCorrelationId(1_000_000);
        var cache = new org.apache.kafka.common.protocol.ObjectSerializationCache();
        int size = header.size(cache, (short) 2) + req.size(cache, (short) 9);
        ByteBuffer b = ByteBuffer.allocate(4 + size);
        b.putInt(size);
        var w = new org.apache.kafka.common.protocol.ByteBufferAccessor(b);
        header.write(w, cache, (short) 2);
        req.write(w, cache, (short) 9);
        // Nothing comes back for acks=0: write without waiting for an answer.
        return b.array();
    }

    static Differential.Session fetchAndOffsets() {
        return session("fetch_offsets",
                step("create", c -> createAndAwait(c, c.name("f"), 2)),
                step("produce_a", c -> c.wire.send(produceTo(c.name("f"), 0, records(3, T0)), v(9))),
                step("produce_b", c -> c.wire.send(produceTo(c.name("f"), 0, records(2, T0 + 100)), v(9))),
                step("produce_c", c -> c.wire.send(produceTo(c.name("f"), 0, records(1, T0 + 50)), v(9))),
                step("v12_from_0", c -> c.wire.send(fetch(c.name("f"), null, 0, 0, 0, 1 << 20, -1), v(12))),
                step("v12_from_middle_of_batch", c -> c.wire.send(fetch(c.name("f"), null, 0, 1, 0, 1 << 20, -1), v(12))),
                step("v12_at_end", c -> c.wire.send(fetch(c.name("f"), null, 0, 6, 0, 1 << 20, -1).setMaxWaitMs(10), v(12))),
                step("v12_out_of_range", c -> c.wire.send(fetch(c.name("f"), null, 0, 100, 0, 1 << 20, -1), v(12))),
                step("v12_negative_offset", c -> c.wire.send(fetch(c.name("f"), null, 0, -5, 0, 1 << 20, -1), v(12))),
                step("v12_unknown_partition", c -> c.wire.send(fetch(c.name("f"), null, 7, 0, 0, 1 << 20, -1), v(12))),
                step("v12_unknown_topic", c -> c.wire.send(fetch(c.name("nothere"), null, 0, 0, 0, 1 << 20, -1), v(12))),
                step("v12_tiny_max_bytes", c -> c.wire.send(fetch(c.name("f"), null, 0, 0, 0, 10, -1), v(12))),
                step("v12_future_leader_epoch", c -> c.wire.send(fetch(c.name("f"), null, 0, 0, 0, 1 << 20, 5), v(12))),
                step("v12_current_leader_epoch", c -> c.wire.send(fetch(c.name("f"), null, 0, 0, 0, 1 << 20, 0), v(12))),
                step("v13_by_topic_id", c -> c.wire.send(fetch("", c.get("id:" + c.name("f")), 0, 0, 0, 1 << 20, -1), v(13))),
                step("v13_unknown_topic_id", c -> c.wire.send(fetch("", Uuid.randomUuid(), 0, 0, 0, 1 << 20, -1), v(13))),
                step("v4_oldest", c -> c.wire.send(fetch(c.name("f"), null, 0, 0, 0, 1 << 20, -1), v(4))),
                step("v17_newest", c -> c.wire.send(fetch("", c.get("id:" + c.name("f")), 0, 0, 0, 1 << 20, -1), v(17))),
                step("v12_new_fetch_session", c -> c.wire.send(fetch(c.name("f"), null, 0, 0, 0, 1 << 20, -1)
                        .setSessionEpoch(0), v(12))),
                step("v12_empty_partition", c -> c.wire.send(fetch(c.name("f"), null, 1, 0, 0, 1 << 20, -1).setMaxWaitMs(10), v(12))),
                step("list_offsets_earliest", c -> c.wire.send(listOffsets(c.name("f"), 0, -2, 0), v(7))),
                step("list_offsets_latest", c -> c.wire.send(listOffsets(c.name("f"), 0, -1, 0), v(7))),
                step("list_offsets_max_timestamp", c -> c.wire.send(listOffsets(c.name("f"), 0, -3, 0), v(7))),
                step("list_offsets_timestamp", c -> c.wire.send(listOffsets(c.name("f"), 0, T0 + 60, 0), v(7))),
                step("list_offsets_future_timestamp", c -> c.wire.send(listOffsets(c.name("f"), 0, T0 + 1_000_000, 0), v(7))),
                step("list_offsets_earliest_local", c -> c.wire.send(listOffsets(c.name("f"), 0, -4, 0), v(8))),
                step("list_offsets_latest_tiered", c -> c.wire.send(listOffsets(c.name("f"), 0, -5, 0), v(9))),
                step("list_offsets_bad_negative", c -> c.wire.send(listOffsets(c.name("f"), 0, -9, 0), v(7))),
                step("list_offsets_empty_partition", c -> c.wire.send(listOffsets(c.name("f"), 1, -3, 0), v(7))),
                step("list_offsets_unknown_partition", c -> c.wire.send(listOffsets(c.name("f"), 9, -1, 0), v(7))),
                step("list_offsets_v1", c -> c.wire.send(listOffsets(c.name("f"), 0, -1, 0), v(1))),
                step("list_offsets_v10", c -> c.wire.send(listOffsets(c.name("f"), 0, -1, 0).setTimeoutMs(1000), v(10))),
                step("offset_for_leader_epoch_0", c -> c.wire.send(leaderEpoch(c.name("f"), 0, 0), v(4))),
                step("offset_for_leader_epoch_5", c -> c.wire.send(leaderEpoch(c.name("f"), 0, 5), v(4))),
                step("offset_for_leader_epoch_unknown_partition", c -> c.wire.send(leaderEpoch(c.name("f"), 9, 0), v(4))),
                step("delete_records", c -> c.wire.send(deleteRecords(c.name("f"), 0, 2), v(2))),
                step("delete_records_beyond_end", c -> c.wire.send(deleteRecords(c.name("f"), 0, 100), v(2))),
                step("delete_records_to_hw", c -> c.wire.send(deleteRecords(c.name("f"), 1, -1), v(2))),
                step("delete_records_unknown_partition", c -> c.wire.send(deleteRecords(c.name("f"), 9, 0), v(2))),
                step("list_offsets_earliest_after_delete", c -> c.wire.send(listOffsets(c.name("f"), 0, -2, 0), v(7))),
                step("fetch_below_log_start", c -> c.wire.send(fetch(c.name("f"), null, 0, 0, 0, 1 << 20, -1), v(12))));
    }

    static OffsetForLeaderEpochRequestData leaderEpoch(String topic, int partition, int epoch) {
        var ts = new OffsetForLeaderEpochRequestData.OffsetForLeaderTopicCollection();
        ts.add(new OffsetForLeaderEpochRequestData.OffsetForLeaderTopic().setTopic(topic).setPartitions(List.of(
                new OffsetForLeaderEpochRequestData.OffsetForLeaderPartition().setPartition(partition).setLeaderEpoch(epoch)
                        .setCurrentLeaderEpoch(-1))));
        return new OffsetForLeaderEpochRequestData().setReplicaId(-1).setTopics(ts);
    }

    static DeleteRecordsRequestData deleteRecords(String topic, int partition, long offset) {
        return new DeleteRecordsRequestData().setTimeoutMs(10_000).setTopics(List.of(new DeleteRecordsRequestData.DeleteRecordsTopic()
                .setName(topic).setPartitions(List.of(new DeleteRecordsRequestData.DeleteRecordsPartition()
                        .setPartitionIndex(partition).setOffset(offset)))));
    }

    static Differential.Session groups() {
        return session("groups",
                step("create", c -> createAndAwait(c, c.name("g"), 2)),
                step("find_coordinator_v4", c -> awaitCoordinator(c, 0, c.name("grp"))),
                settle("coordinators_loaded", c -> {
                    // Kafka names the coordinator before it has loaded the group's partition
                    // (group operations answer NOT_COORDINATOR until then).
                    for (String g : List.of("grp", "grp2", "solo", "nogroup")) {
                        awaitCoordinator(c, 0, c.name(g));
                        c.until(offsetFetch(c.name(g), null, false), v(9), Sessions::anyRetriable);
                    }
                    return null;
                }),
                step("find_coordinator_v3", c -> c.wire.send(new FindCoordinatorRequestData().setKey(c.name("grp")).setKeyType((byte) 0), v(3))),
                step("find_coordinator_v0", c -> c.wire.send(new FindCoordinatorRequestData().setKey(c.name("grp")), v(0))),
                step("find_coordinator_bad_type", c -> c.wire.send(findCoordinator(5, c.name("grp")), v(4))),
                step("join_without_member_id", c -> {
                    Wire.Answer a = c.wire.send(join(c.name("grp"), "", "consumer", 10_000, subscription(c.name("g"))), v(9));
                    c.vars.put("member", ((JoinGroupResponseData) a.body()).memberId());
                    return a;
                }),
                step("join_with_member_id", c -> {
                    Wire.Answer a = c.wire.send(join(c.name("grp"), c.get("member"), "consumer", 10_000, subscription(c.name("g"))), v(9));
                    c.vars.put("generation", ((JoinGroupResponseData) a.body()).generationId());
                    return a;
                }),
                step("sync", c -> c.wire.send(new SyncGroupRequestData().setGroupId(c.name("grp")).setGenerationId(c.get("generation"))
                        .setMemberId(c.get("member")).setProtocolType("consumer").setProtocolName("range")
                        .setAssignments(List.of(new SyncGroupRequestData.SyncGroupRequestAssignment().setMemberId(c.get("member"))
                                .setAssignment(assignment(new TopicPartition(c.name("g"), 0), new TopicPartition(c.name("g"), 1))))), v(5))),
                step("heartbeat", c -> c.wire.send(heartbeat(c.name("grp"), c.get("generation"), c.get("member")), v(4))),
                step("heartbeat_bad_generation", c -> c.wire.send(heartbeat(c.name("grp"), 99, c.get("member")), v(4))),
                step("heartbeat_unknown_member", c -> c.wire.send(heartbeat(c.name("grp"), c.get("generation"), "nobody"), v(4))),
                step("heartbeat_unknown_group", c -> c.wire.send(heartbeat(c.name("nogroup"), 1, "nobody"), v(4))),
                step("join_other_protocol_type", c -> c.wire.send(join(c.name("grp"), "", "connect", 10_000, new byte[0]), v(4))),
                step("join_session_timeout_too_small", c -> c.wire.send(join(c.name("grp2"), "", "consumer", 1000, subscription(c.name("g"))), v(9))),
                step("join_empty_group_id", c -> c.wire.send(join("", "", "consumer", 10_000, subscription(c.name("g"))), v(9))),
                step("commit", c -> c.wire.send(commit(c.name("grp"), c.get("generation"), c.get("member"), c.name("g"), 0, 5), v(9))),
                step("commit_bad_generation", c -> c.wire.send(commit(c.name("grp"), 42, c.get("member"), c.name("g"), 0, 6), v(9))),
                step("commit_unknown_member", c -> c.wire.send(commit(c.name("grp"), c.get("generation"), "nobody", c.name("g"), 0, 6), v(9))),
                step("commit_unknown_partition", c -> c.wire.send(commit(c.name("grp"), c.get("generation"), c.get("member"), c.name("g"), 7, 1), v(9))),
                step("commit_unknown_topic", c -> c.wire.send(commit(c.name("grp"), c.get("generation"), c.get("member"), c.name("nothere"), 0, 1), v(9))),
                step("commit_standalone_v2", c -> c.wire.send(commit(c.name("solo"), -1, "", c.name("g"), 1, 7), v(2))),
                step("commit_standalone_v9", c -> c.wire.send(commit(c.name("solo"), -1, "", c.name("g"), 0, 8), v(9))),
                step("commit_too_large_metadata", c -> {
                    var req = commit(c.name("solo"), -1, "", c.name("g"), 0, 9);
                    req.topics().get(0).partitions().get(0).setCommittedMetadata("m".repeat(5000));
                    return c.wire.send(req, v(9));
                }),
                step("offset_fetch_v9", c -> c.wire.send(offsetFetch(c.name("grp"), c.name("g"), false), v(9))),
                step("offset_fetch_v9_all", c -> c.wire.send(offsetFetch(c.name("solo"), null, false), v(9))),
                step("offset_fetch_v9_unknown_group", c -> c.wire.send(offsetFetch(c.name("nogroup"), c.name("g"), false), v(9))),
                step("offset_fetch_v7_stable", c -> c.wire.send(new OffsetFetchRequestData().setGroupId(c.name("grp"))
                        .setTopics(List.of(new OffsetFetchRequestData.OffsetFetchRequestTopic().setName(c.name("g"))
                                .setPartitionIndexes(List.of(0, 1)))).setRequireStable(true), v(7))),
                step("offset_fetch_v1", c -> c.wire.send(new OffsetFetchRequestData().setGroupId(c.name("solo"))
                        .setTopics(List.of(new OffsetFetchRequestData.OffsetFetchRequestTopic().setName(c.name("g"))
                                .setPartitionIndexes(List.of(0, 1)))), v(1))),
                step("describe_groups", c -> c.wire.send(new DescribeGroupsRequestData().setGroups(List.of(c.name("grp"),
                        c.name("solo"), c.name("nogroup"))), v(5))),
                step("describe_groups_v0", c -> c.wire.send(new DescribeGroupsRequestData().setGroups(List.of(c.name("grp"))), v(0))),
                step("list_groups_stable", c -> c.wire.send(new ListGroupsRequestData().setStatesFilter(List.of("Stable")), v(4))),
                step("list_groups_v5_types", c -> c.wire.send(new ListGroupsRequestData().setTypesFilter(List.of("classic")), v(5))),
                step("offset_delete_subscribed", c -> c.wire.send(offsetDelete(c.name("grp"), c.name("g"), 0), v(0))),
                step("offset_delete_unknown_group", c -> c.wire.send(offsetDelete(c.name("nogroup"), c.name("g"), 0), v(0))),
                step("delete_live_group", c -> c.wire.send(new DeleteGroupsRequestData().setGroupsNames(List.of(c.name("grp"))), v(2))),
                step("leave", c -> c.wire.send(new LeaveGroupRequestData().setGroupId(c.name("grp")).setMembers(List.of(
                        new LeaveGroupRequestData.MemberIdentity().setMemberId(c.get("member")))), v(5))),
                step("leave_unknown_member", c -> c.wire.send(new LeaveGroupRequestData().setGroupId(c.name("grp")).setMembers(List.of(
                        new LeaveGroupRequestData.MemberIdentity().setMemberId("nobody"))), v(5))),
                step("describe_after_leave", c -> c.wire.send(new DescribeGroupsRequestData().setGroups(List.of(c.name("grp"))), v(5))),
                step("offset_delete_after_leave", c -> c.wire.send(offsetDelete(c.name("grp"), c.name("g"), 0), v(0))),
                step("offset_fetch_after_delete", c -> c.wire.send(offsetFetch(c.name("grp"), c.name("g"), false), v(9))),
                step("delete_groups", c -> c.wire.send(new DeleteGroupsRequestData().setGroupsNames(List.of(c.name("grp"),
                        c.name("nogroup"))), v(2))),
                step("list_groups_after_delete", c -> c.wire.send(new ListGroupsRequestData(), v(4))));
    }

    static HeartbeatRequestData heartbeat(String group, int generation, String member) {
        return new HeartbeatRequestData().setGroupId(group).setGenerationId(generation).setMemberId(member);
    }

    static OffsetDeleteRequestData offsetDelete(String group, String topic, int partition) {
        var ts = new OffsetDeleteRequestData.OffsetDeleteRequestTopicCollection();
        ts.add(new OffsetDeleteRequestData.OffsetDeleteRequestTopic().setName(topic).setPartitions(List.of(
                new OffsetDeleteRequestData.OffsetDeleteRequestPartition().setPartitionIndex(partition))));
        return new OffsetDeleteRequestData().setGroupId(group).setTopics(ts);
    }

    static AddPartitionsToTxnRequestData addPartitions(String txn, long pid, short epoch, String topic, int partition) {
        var ts = new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopicCollection();
        ts.add(new AddPartitionsToTxnRequestData.AddPartitionsToTxnTopic().setName(topic).setPartitions(List.of(partition)));
        return new AddPartitionsToTxnRequestData().setV3AndBelowTransactionalId(txn).setV3AndBelowProducerId(pid)
                .setV3AndBelowProducerEpoch(epoch).setV3AndBelowTopics(ts);
    }

    static EndTxnRequestData endTxn(String txn, long pid, short epoch, boolean commit) {
        return new EndTxnRequestData().setTransactionalId(txn).setProducerId(pid).setProducerEpoch(epoch).setCommitted(commit);
    }

    static Differential.Session transactions() {
        return session("transactions",
                step("create", c -> createAndAwait(c, c.name("tx"), 2)),
                step("find_txn_coordinator", c -> awaitCoordinator(c, 1, c.name("txn"))),
                step("init_producer_id", c -> {
                    Wire.Answer a = c.until(new InitProducerIdRequestData().setTransactionalId(c.name("txn"))
                            .setTransactionTimeoutMs(60_000).setProducerId(-1).setProducerEpoch((short) -1), v(4), Sessions::anyRetriable);
                    var r = (InitProducerIdResponseData) a.body();
                    c.vars.put("pid", r.producerId());
                    c.vars.put("epoch", r.producerEpoch());
                    return a;
                }),
                step("init_producer_id_timeout_too_large", c -> c.wire.send(new InitProducerIdRequestData()
                        .setTransactionalId(c.name("txn2")).setTransactionTimeoutMs(100_000_000).setProducerId(-1)
                        .setProducerEpoch((short) -1), v(4))),
                step("describe_empty", c -> c.wire.send(new DescribeTransactionsRequestData()
                        .setTransactionalIds(List.of(c.name("txn"), c.name("nosuchtxn"))), v(0))),
                step("add_partitions", c -> c.wire.send(addPartitions(c.name("txn"), c.get("pid"), c.get("epoch"), c.name("tx"), 0), v(3))),
                step("add_partitions_unknown_partition", c -> c.wire.send(addPartitions(c.name("txn"), c.get("pid"), c.get("epoch"),
                        c.name("tx"), 9), v(3))),
                step("add_partitions_wrong_pid", c -> c.wire.send(addPartitions(c.name("txn"), 424_242L, c.get("epoch"), c.name("tx"), 0), v(3))),
                step("add_partitions_old_epoch", c -> c.wire.send(addPartitions(c.name("txn"), c.get("pid"),
                        (short) ((short) c.get("epoch") - 1), c.name("tx"), 0), v(3))),
                step("produce_transactional", c -> c.wire.send(produceTo(c.name("tx"), 0,
                        transactional(c.get("pid"), c.get("epoch"), 0, 3), -1, c.name("txn")), v(9))),
                step("produce_to_unadded_partition", c -> c.wire.send(produceTo(c.name("tx"), 1,
                        transactional(c.get("pid"), c.get("epoch"), 0, 1), -1, c.name("txn")), v(9))),
                step("fetch_read_committed_open", c -> c.wire.send(fetch(c.name("tx"), null, 0, 0, 1, 1 << 20, -1).setMaxWaitMs(10), v(12))),
                step("list_offsets_read_committed_open", c -> c.wire.send(listOffsets(c.name("tx"), 0, -1, 1), v(7))),
                step("describe_ongoing", c -> c.wire.send(new DescribeTransactionsRequestData()
                        .setTransactionalIds(List.of(c.name("txn"))), v(0))),
                step("list_transactions", c -> c.wire.send(new ListTransactionsRequestData(), v(1))),
                step("list_transactions_ongoing", c -> c.wire.send(new ListTransactionsRequestData()
                        .setStateFilters(List.of("Ongoing")), v(1))),
                step("list_transactions_duration", c -> c.wire.send(new ListTransactionsRequestData()
                        .setDurationFilter(3_600_000L), v(1))),
                step("describe_producers", c -> c.wire.send(new DescribeProducersRequestData().setTopics(List.of(
                        new DescribeProducersRequestData.TopicRequest().setName(c.name("tx")).setPartitionIndexes(List.of(0, 1, 9)))), v(0))),
                settle("group_coordinator_loaded", c -> {
                    awaitCoordinator(c, 0, c.name("txgroup"));
                    return c.until(offsetFetch(c.name("txgroup"), null, false), v(9), Sessions::anyRetriable);
                }),
                step("add_offsets", c -> c.until(new AddOffsetsToTxnRequestData().setTransactionalId(c.name("txn"))
                        .setProducerId(c.get("pid")).setProducerEpoch(c.get("epoch")).setGroupId(c.name("txgroup")), v(3),
                        Sessions::anyRetriable)),
                step("find_group_coordinator", c -> awaitCoordinator(c, 0, c.name("txgroup"))),
                step("txn_offset_commit", c -> c.wire.send(new TxnOffsetCommitRequestData().setTransactionalId(c.name("txn"))
                        .setGroupId(c.name("txgroup")).setProducerId(c.get("pid")).setProducerEpoch(c.get("epoch"))
                        .setGenerationId(-1).setMemberId("").setTopics(List.of(new TxnOffsetCommitRequestData.TxnOffsetCommitRequestTopic()
                                .setName(c.name("tx")).setPartitions(List.of(new TxnOffsetCommitRequestData.TxnOffsetCommitRequestPartition()
                                        .setPartitionIndex(0).setCommittedOffset(2).setCommittedLeaderEpoch(-1)
                                        .setCommittedMetadata("txn"))))), v(3))),
                step("offset_fetch_pending", c -> c.wire.send(offsetFetch(c.name("txgroup"), c.name("tx"), true), v(9))),
                step("end_txn_wrong_epoch", c -> c.wire.send(endTxn(c.name("txn"), c.get("pid"),
                        (short) ((short) c.get("epoch") + 5), true), v(3))),
                step("end_txn_commit", c -> c.until(endTxn(c.name("txn"), c.get("pid"), c.get("epoch"), true), v(3), Sessions::anyRetriable)),
                step("describe_after_commit", c -> c.until(new DescribeTransactionsRequestData()
                        .setTransactionalIds(List.of(c.name("txn"))), v(0), m -> JsonDiff.toJson(m, (short) 0).toString()
                        .contains("PrepareCommit"))),
                step("end_txn_commit_again", c -> c.wire.send(endTxn(c.name("txn"), c.get("pid"), c.get("epoch"), true), v(3))),
                step("end_txn_abort_after_commit", c -> c.wire.send(endTxn(c.name("txn"), c.get("pid"), c.get("epoch"), false), v(3))),
                step("offset_fetch_committed", c -> c.until(offsetFetch(c.name("txgroup"), c.name("tx"), true), v(9), Sessions::anyRetriable)),
                step("fetch_read_committed_done", c -> c.wire.send(fetch(c.name("tx"), null, 0, 0, 1, 1 << 20, -1), v(12))),
                step("abort_round_add", c -> c.wire.send(addPartitions(c.name("txn"), c.get("pid"), c.get("epoch"), c.name("tx"), 0), v(3))),
                step("abort_round_produce", c -> c.wire.send(produceTo(c.name("tx"), 0,
                        transactional(c.get("pid"), c.get("epoch"), 3, 2), -1, c.name("txn")), v(9))),
                step("abort_round_end", c -> c.until(endTxn(c.name("txn"), c.get("pid"), c.get("epoch"), false), v(3), Sessions::anyRetriable)),
                step("fetch_read_committed_aborted", c -> c.until(fetch(c.name("tx"), null, 0, 0, 1, 1 << 20, -1), v(12),
                        m -> JsonDiff.toJson(m, (short) 12).toString().contains("\"lastStableOffset\":4"))),
                step("fetch_read_uncommitted", c -> c.wire.send(fetch(c.name("tx"), null, 0, 0, 0, 1 << 20, -1), v(12))),
                step("end_txn_no_transaction", c -> c.wire.send(endTxn(c.name("txn"), c.get("pid"), c.get("epoch"), true), v(3))),
                step("init_producer_id_again", c -> c.until(new InitProducerIdRequestData().setTransactionalId(c.name("txn"))
                        .setTransactionTimeoutMs(60_000).setProducerId(-1).setProducerEpoch((short) -1), v(4), Sessions::anyRetriable)),
                step("end_txn_fenced", c -> c.wire.send(endTxn(c.name("txn"), c.get("pid"), c.get("epoch"), true), v(3))),
                step("end_txn_unknown_txn", c -> c.wire.send(endTxn(c.name("nosuchtxn"), 1, (short) 0, true), v(3))));
    }

    static Differential.Session configs() {
        return session("configs",
                step("create", c -> createAndAwait(c, c.name("cfg"), 1, "retention.ms", "86400000", "max.message.bytes", "100000")),
                step("describe_topic_all", c -> c.wire.send(describeConfigs(2, c.name("cfg"), null, true), v(4))),
                step("describe_topic_keys", c -> c.wire.send(describeConfigs(2, c.name("cfg"),
                        List.of("retention.ms", "segment.bytes", "no.such.key"), false), v(4))),
                step("describe_topic_v1", c -> c.wire.send(describeConfigs(2, c.name("cfg"), List.of("retention.ms", "cleanup.policy"), true), v(1))),
                step("describe_unknown_topic", c -> c.wire.send(describeConfigs(2, c.name("nothere"), null, false), v(4))),
                step("describe_broker_keys", c -> c.wire.send(describeConfigs(4, "1", List.of("num.partitions", "log.retention.ms",
                        "auto.create.topics.enable", "message.max.bytes", "log.segment.bytes", "default.replication.factor",
                        "log.cleanup.policy", "offsets.retention.minutes", "group.initial.rebalance.delay.ms"), true), v(4))),
                step("describe_other_broker", c -> c.wire.send(describeConfigs(4, "7", List.of("num.partitions"), false), v(4))),
                step("describe_bad_resource_type", c -> c.wire.send(describeConfigs(9, "x", null, false), v(4))),
                step("incremental_set", c -> c.wire.send(incremental(2, c.name("cfg"), false, "retention.ms", 0, "7200000",
                        "cleanup.policy", 0, "compact,delete"), v(1))),
                step("incremental_delete", c -> c.wire.send(incremental(2, c.name("cfg"), false, "max.message.bytes", 1, null), v(1))),
                step("incremental_append", c -> c.wire.send(incremental(2, c.name("cfg"), false,
                        "leader.replication.throttled.replicas", 2, "0:1"), v(1))),
                step("incremental_subtract", c -> c.wire.send(incremental(2, c.name("cfg"), false, "cleanup.policy", 3, "delete"), v(1))),
                step("incremental_append_not_list", c -> c.wire.send(incremental(2, c.name("cfg"), false, "retention.ms", 2, "1"), v(1))),
                step("incremental_bad_value", c -> c.wire.send(incremental(2, c.name("cfg"), false, "retention.ms", 0, "later"), v(1))),
                step("incremental_unknown_key", c -> c.wire.send(incremental(2, c.name("cfg"), false, "no.such.key", 0, "1"), v(1))),
                step("incremental_validate_only", c -> c.wire.send(incremental(2, c.name("cfg"), true, "retention.ms", 0, "1000"), v(1))),
                step("incremental_duplicate_key", c -> c.wire.send(incremental(2, c.name("cfg"), false, "retention.ms", 0, "1000",
                        "retention.ms", 0, "2000"), v(1))),
                step("incremental_unknown_topic", c -> c.wire.send(incremental(2, c.name("nothere"), false, "retention.ms", 0, "1000"), v(1))),
                step("describe_after_incremental", c -> c.wire.send(describeConfigs(2, c.name("cfg"),
                        List.of("retention.ms", "cleanup.policy", "max.message.bytes", "leader.replication.throttled.replicas"), true), v(4))),
                step("alter_configs_legacy", c -> {
                    var cs = new AlterConfigsRequestData.AlterableConfigCollection();
                    cs.add(new AlterConfigsRequestData.AlterableConfig().setName("segment.ms").setValue("600000"));
                    var rs = new AlterConfigsRequestData.AlterConfigsResourceCollection();
                    rs.add(new AlterConfigsRequestData.AlterConfigsResource().setResourceType((byte) 2).setResourceName(c.name("cfg"))
                            .setConfigs(cs));
                    return c.wire.send(new AlterConfigsRequestData().setResources(rs), v(2));
                }),
                step("describe_after_legacy_alter", c -> c.wire.send(describeConfigs(2, c.name("cfg"),
                        List.of("retention.ms", "segment.ms", "cleanup.policy"), false), v(4))),
                step("incremental_broker", c -> c.wire.send(incremental(4, "1", true, "log.cleaner.threads", 0, "2"), v(1))),
                step("incremental_broker_static", c -> c.wire.send(incremental(4, "1", true, "num.partitions", 0, "2"), v(1))));
    }

    static AlterUserScramCredentialsRequestData.ScramCredentialUpsertion upsert(String user, int mechanism, int iterations) {
        return new AlterUserScramCredentialsRequestData.ScramCredentialUpsertion().setName(user)
                .setMechanism((byte) mechanism).setIterations(iterations)
                .setSalt("a salt of sixteen".getBytes(StandardCharsets.UTF_8)).setSaltedPassword(new byte[32]);
    }

    static AlterUserScramCredentialsRequestData.ScramCredentialDeletion deletion(String user, int mechanism) {
        return new AlterUserScramCredentialsRequestData.ScramCredentialDeletion().setName(user)
                .setMechanism((byte) mechanism);
    }

    static DescribeUserScramCredentialsRequestData describeScram(String... users) {
        var r = new DescribeUserScramCredentialsRequestData();
        if (users.length == 0) {
            return r.setUsers(null);
        }
        List<DescribeUserScramCredentialsRequestData.UserName> names = new ArrayList<>();
        for (String u : users) {
            names.add(new DescribeUserScramCredentialsRequestData.UserName().setName(u));
        }
        return r.setUsers(names);
    }

    /** SASL APIs on a plaintext listener, and SCRAM credentials managed through the API (KIP-554). */
    static Differential.Session scram() {
        return session("scram",
                step("sasl_handshake_on_plaintext", c -> c.wire.send(new SaslHandshakeRequestData().setMechanism("PLAIN"), v(1))),
                step("sasl_authenticate_on_plaintext", c -> c.wire.send(new SaslAuthenticateRequestData()
                        .setAuthBytes(new byte[0]), v(2))),
                step("describe_none", c -> c.wire.send(describeScram(), v(0))),
                step("upsert", c -> c.wire.send(new AlterUserScramCredentialsRequestData()
                        .setUpsertions(List.of(upsert(c.name("u1"), 1, 4096), upsert(c.name("u1b"), 2, 8192))), v(0))),
                step("too_few_iterations", c -> c.wire.send(new AlterUserScramCredentialsRequestData()
                        .setUpsertions(List.of(upsert(c.name("u2"), 1, 100))), v(0))),
                step("unknown_mechanism", c -> c.wire.send(new AlterUserScramCredentialsRequestData()
                        .setUpsertions(List.of(upsert(c.name("u3"), 0, 4096))), v(0))),
                step("too_many_iterations", c -> c.wire.send(new AlterUserScramCredentialsRequestData()
                        .setUpsertions(List.of(upsert(c.name("u5"), 1, 20000))), v(0))),
                step("delete_missing", c -> c.wire.send(new AlterUserScramCredentialsRequestData()
                        .setDeletions(List.of(deletion(c.name("u4"), 1))), v(0))),
                step("same_credential_twice", c -> c.wire.send(new AlterUserScramCredentialsRequestData()
                        .setUpsertions(List.of(upsert(c.name("u6"), 1, 4096), upsert(c.name("u6"), 1, 8192))), v(0))),
                step("delete_missing_and_upsert", c -> c.wire.send(new AlterUserScramCredentialsRequestData()
                        .setUpsertions(List.of(upsert(c.name("u7"), 1, 4096)))
                        .setDeletions(List.of(deletion(c.name("u7"), 2))), v(0))),
                step("describe_named", c -> c.until(describeScram(c.name("u1"), c.name("nobody")), v(0),
                        m -> ((DescribeUserScramCredentialsResponseData) m).results().get(0).errorCode() != 0)),
                step("describe_twice", c -> c.wire.send(describeScram(c.name("u1"), c.name("u1")), v(0))),
                step("delete", c -> c.wire.send(new AlterUserScramCredentialsRequestData()
                        .setDeletions(List.of(deletion(c.name("u1"), 1))), v(0))),
                step("describe_deleted", c -> c.until(describeScram(c.name("u1")), v(0),
                        m -> ((DescribeUserScramCredentialsResponseData) m).results().get(0).errorCode() == 0)));
    }

    static Differential.Session admin() {
        return session("admin",
                step("create", c -> createAndAwait(c, c.name("adm"), 1)),
                step("create_partitions_grow", c -> c.wire.send(createPartitions(c.name("adm"), 3, false), v(3))),
                step("create_partitions_same", c -> c.wire.send(createPartitions(c.name("adm"), 3, false), v(3))),
                step("create_partitions_shrink", c -> c.wire.send(createPartitions(c.name("adm"), 2, false), v(3))),
                step("create_partitions_validate_only", c -> c.wire.send(createPartitions(c.name("adm"), 5, true), v(3))),
                step("create_partitions_unknown", c -> c.wire.send(createPartitions(c.name("nothere"), 2, false), v(3))),
                step("create_partitions_bad_assignment", c -> {
                    var req = createPartitions(c.name("adm"), 4, false);
                    req.topics().iterator().next().setAssignments(List.of(
                            new CreatePartitionsRequestData.CreatePartitionsAssignment().setBrokerIds(List.of(7))));
                    return c.wire.send(req, v(3));
                }),
                step("metadata_after_grow", c -> c.until(metadataFor(c.name("adm")), v(12), m -> ((MetadataResponseData) m).topics()
                        .iterator().next().partitions().size() < 3)),
                step("describe_topic_partitions_named", c -> c.wire.send(describeTopicPartitions(100, null,
                        c.name("adm"), c.name("nothere"), "bad/name"), v(0))),
                step("describe_topic_partitions_paged", c -> c.wire.send(describeTopicPartitions(2, null,
                        c.name("adm"), c.name("md")), v(0))),
                step("describe_topic_partitions_cursor", c -> c.wire.send(describeTopicPartitions(2,
                        new DescribeTopicPartitionsRequestData.Cursor().setTopicName(c.name("adm")).setPartitionIndex(2),
                        c.name("adm"), c.name("md")), v(0))),
                step("describe_topic_partitions_bad_cursor", c -> c.wire.send(describeTopicPartitions(2,
                        new DescribeTopicPartitionsRequestData.Cursor().setTopicName(c.name("zzz")).setPartitionIndex(0),
                        c.name("adm")), v(0))),
                step("list_transactions_pattern", c -> c.wire.send(new ListTransactionsRequestData()
                        .setTransactionalIdPattern("diff-txn-.*"), v(2))),
                step("list_transactions_bad_pattern", c -> c.wire.send(new ListTransactionsRequestData()
                        .setTransactionalIdPattern("diff-(txn"), v(2))),
                step("describe_log_dirs_topic", c -> {
                    var ts = new DescribeLogDirsRequestData.DescribableLogDirTopicCollection();
                    ts.add(new DescribeLogDirsRequestData.DescribableLogDirTopic().setTopic(c.name("adm")).setPartitions(List.of(0, 1, 9)));
                    return c.wire.send(new DescribeLogDirsRequestData().setTopics(ts), v(4));
                }),
                step("describe_log_dirs_v1", c -> {
                    var ts = new DescribeLogDirsRequestData.DescribableLogDirTopicCollection();
                    ts.add(new DescribeLogDirsRequestData.DescribableLogDirTopic().setTopic(c.name("adm")).setPartitions(List.of(0)));
                    return c.wire.send(new DescribeLogDirsRequestData().setTopics(ts), v(1));
                }),
                step("describe_cluster", c -> c.wire.send(new DescribeClusterRequestData().setIncludeClusterAuthorizedOperations(false), v(1))),
                step("describe_cluster_authorized_operations", c -> c.wire.send(new DescribeClusterRequestData()
                        .setIncludeClusterAuthorizedOperations(true), v(0))),
                step("describe_cluster_controllers", c -> c.wire.send(new DescribeClusterRequestData().setEndpointType((byte) 2), v(1))),
                step("describe_cluster_v2", c -> c.wire.send(new DescribeClusterRequestData().setEndpointType((byte) 1)
                        .setIncludeFencedBrokers(true), v(2))),
                step("elect_leaders", c -> {
                    var ps = new ElectLeadersRequestData.TopicPartitionsCollection();
                    ps.add(new ElectLeadersRequestData.TopicPartitions().setTopic(c.name("adm")).setPartitions(List.of(0, 9)));
                    return c.wire.send(new ElectLeadersRequestData().setElectionType((byte) 0).setTopicPartitions(ps).setTimeoutMs(5000), v(2));
                }),
                step("elect_leaders_all", c -> c.wire.send(new ElectLeadersRequestData().setElectionType((byte) 1)
                        .setTopicPartitions(null).setTimeoutMs(5000), v(2))),
                step("describe_producers_none", c -> c.wire.send(new DescribeProducersRequestData().setTopics(List.of(
                        new DescribeProducersRequestData.TopicRequest().setName(c.name("adm")).setPartitionIndexes(List.of(0)))), v(0))),
                step("delete_topics_unknown_name", c -> c.wire.send(new DeleteTopicsRequestData().setTimeoutMs(10_000).setTopics(List.of(
                        new DeleteTopicsRequestData.DeleteTopicState().setName(c.name("nothere")))), v(6))),
                step("delete_topics_unknown_id", c -> c.wire.send(new DeleteTopicsRequestData().setTimeoutMs(10_000).setTopics(List.of(
                        new DeleteTopicsRequestData.DeleteTopicState().setTopicId(Uuid.randomUuid()))), v(6))),
                step("delete_topics_name_and_id", c -> c.wire.send(new DeleteTopicsRequestData().setTimeoutMs(10_000).setTopics(List.of(
                        new DeleteTopicsRequestData.DeleteTopicState().setName(c.name("adm")).setTopicId(c.get("id:" + c.name("adm"))))), v(6))),
                step("delete_topics_by_id", c -> c.wire.send(new DeleteTopicsRequestData().setTimeoutMs(10_000).setTopics(List.of(
                        new DeleteTopicsRequestData.DeleteTopicState().setTopicId(c.get("id:" + c.name("adm"))))), v(6))),
                step("delete_topics_v1_by_name", c -> c.wire.send(new DeleteTopicsRequestData().setTimeoutMs(10_000)
                        .setTopicNames(List.of(c.name("nothere"))), v(1))),
                // Last: by now the group sessions made the internal topic exist on both.
                step("create_internal_topic", c -> c.wire.send(createTopics(newTopic("__consumer_offsets", 1, 1)), v(7))),
                step("metadata_after_delete", c -> c.until(metadataFor(c.name("adm")), v(12), m -> ((MetadataResponseData) m).topics()
                        .iterator().next().errorCode() == 0)));
    }

    static DescribeTopicPartitionsRequestData describeTopicPartitions(int limit,
            DescribeTopicPartitionsRequestData.Cursor cursor, String... topics) {
        List<DescribeTopicPartitionsRequestData.TopicRequest> ts = new ArrayList<>();
        for (String t : topics) {
            ts.add(new DescribeTopicPartitionsRequestData.TopicRequest().setName(t));
        }
        return new DescribeTopicPartitionsRequestData().setTopics(ts).setResponsePartitionLimit(limit).setCursor(cursor);
    }

    static CreatePartitionsRequestData createPartitions(String topic, int count, boolean validateOnly) {
        var ts = new CreatePartitionsRequestData.CreatePartitionsTopicCollection();
        ts.add(new CreatePartitionsRequestData.CreatePartitionsTopic().setName(topic).setCount(count).setAssignments(null));
        return new CreatePartitionsRequestData().setTopics(ts).setTimeoutMs(10_000).setValidateOnly(validateOnly);
    }

    /** Requests a client cannot normally send: what each broker does with them (answer or close). */
    static Differential.Session badRequests() {
        return session("bad_requests",
                step("unknown_api_key", c -> closedOrAnswered(c, header(9999, 0, 1))),
                step("metadata_v99", c -> closedOrAnswered(c, header(3, 99, 2))),
                step("missing_body", c -> closedOrAnswered(c, header(3, 1, 3))),
                step("negative_array", c -> {
                    // Metadata v1: topics array of length -2.
                    ByteBuffer b = ByteBuffer.allocate(4 + 8 + 2 + 4);
                    b.putInt(8 + 2 + 4).putShort((short) 3).putShort((short) 1).putInt(4).putShort((short) -1).putInt(-2);
                    return closedOrAnswered(c, b.array(), -1);
                }),
                step("still_serving", c -> {
                    c.reconnect();
                    return c.wire.send(new ApiVersionsRequestData(), v(0));
                }));
    }

    /** A request header (size prefix, api key, version, correlation id, null client id) with no body. */
    static byte[] header(int key, int version, int correlation) {
        ByteBuffer b = ByteBuffer.allocate(4 + 10);
        b.putInt(10).putShort((short) key).putShort((short) version).putInt(correlation).putShort((short) -1);
        return b.array();
    }

    static Object closedOrAnswered(Differential.Ctx c, byte[] frame) throws Exception {
        return closedOrAnswered(c, frame, -1);
    }

    /** Sends a raw frame on a fresh connection; "(closed)" if the broker closed it, else the error code it sent. */
    static Object closedOrAnswered(Differential.Ctx c, byte[] frame, int fixSize) throws Exception {
        c.reconnect();
        if (fixSize >= 0) {
            ByteBuffer.wrap(frame).putInt(0, fixSize);
        }
        byte[] answer = c.wire.sendRaw(frame);
        if (answer == null) {
            return "(closed)";
        }
        return "(answered " + answer.length + " bytes)";
    }
}
