package dev.gregor.compat;

import static dev.gregor.compat.Env.check;
import static dev.gregor.compat.Env.checkEq;
import static dev.gregor.compat.Env.checkFails;
import static dev.gregor.compat.Env.failure;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/** The Admin client: topics, partitions, configs, records, offsets, groups, producers, log dirs, cluster. */
final class AdminScenarios {
    private AdminScenarios() {}

    static List<Main.Scenario> all() {
        return List.of(
                new Main.Scenario("admin_topics", true, 120, AdminScenarios::topics),
                new Main.Scenario("admin_configs", false, 120, AdminScenarios::configs),
                new Main.Scenario("admin_records_offsets", false, 120, AdminScenarios::recordsAndOffsets),
                new Main.Scenario("admin_groups", false, 180, AdminScenarios::groups),
                new Main.Scenario("admin_group_configs", true, 60, AdminScenarios::groupConfigs),
                new Main.Scenario("admin_producers", false, 120, AdminScenarios::producers),
                new Main.Scenario("admin_cluster_log_dirs", false, 120, AdminScenarios::clusterAndLogDirs));
    }

    /** Create (with configs), list, describe, grow, delete; and the refusals Kafka gives. */
    static void topics(Env env) throws Exception {
        var admin = env.admin();
        String topic = env.name("t");
        NewTopic nt = new NewTopic(topic, 3, (short) 1).configs(Map.of("retention.ms", "3600000", "cleanup.policy", "delete"));
        var created = admin.createTopics(List.of(nt));
        created.all().get();
        checkEq(3, created.numPartitions(topic).get(), "partitions in the CreateTopics answer");
        checkEq(1, created.replicationFactor(topic).get(), "replication factor in the CreateTopics answer");
        check(created.topicId(topic).get() != null, "the CreateTopics answer carries a topic id");
        Config createdConfig = created.config(topic).get();
        checkEq("3600000", createdConfig.get("retention.ms").value(), "retention.ms in the CreateTopics answer");
        checkEq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, createdConfig.get("retention.ms").source(), "its source");

        check(admin.listTopics().names().get().contains(topic), "the new topic is listed");
        check(!admin.listTopics().names().get().contains("__consumer_offsets"), "internal topics are not listed by default");
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        checkEq(3, d.partitions().size(), "partitions described");
        checkEq(created.topicId(topic).get(), d.topicId(), "the described topic id is the created one");
        for (var p : d.partitions()) {
            check(p.leader() != null && p.leader().id() >= 0, "partition " + p.partition() + " has a leader");
            checkEq(1, p.replicas().size(), "replicas of partition " + p.partition());
            checkEq(1, p.isr().size(), "in-sync replicas of partition " + p.partition());
        }
        var byId = admin.describeTopics(org.apache.kafka.common.TopicCollection.ofTopicIds(List.of(d.topicId())))
                .allTopicIds().get().get(d.topicId());
        checkEq(topic, byId.name(), "describe by topic id");

        checkFails(TopicExistsException.class, failure(() -> env.createTopic(topic, 1, null), "create twice"), "create twice");
        checkFails(InvalidReplicationFactorException.class,
                failure(() -> admin.createTopics(List.of(new NewTopic(env.name("rf3"), 1, (short) 3))).all().get(), "RF 3"),
                "replication factor 3 on one broker");
        checkFails(InvalidConfigurationException.class,
                failure(() -> env.createTopic(env.name("badcfg"), 1, Map.of("cleanup.policy", "sometimes")), "bad config"),
                "an invalid config value");
        checkFails(InvalidConfigurationException.class,
                failure(() -> env.createTopic(env.name("unknowncfg"), 1, Map.of("no.such.config", "1")), "unknown config"),
                "an unknown config");
        checkFails(InvalidPartitionsException.class,
                failure(() -> env.createTopic(env.name("zero"), 0, null), "0 partitions"), "zero partitions");

        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get();
        checkEq(5, admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size(),
                "partitions after CreatePartitions");
        checkFails(InvalidPartitionsException.class,
                failure(() -> admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all().get(), "shrink"),
                "shrinking a topic");

        admin.deleteTopics(List.of(topic)).all().get();
        long deadline = System.currentTimeMillis() + 20_000;
        while (admin.listTopics().names().get().contains(topic) && System.currentTimeMillis() < deadline) {
            Thread.sleep(100);
        }
        check(!admin.listTopics().names().get().contains(topic), "the deleted topic is gone");
        checkFails(UnknownTopicOrPartitionException.class,
                failure(() -> admin.deleteTopics(List.of(env.name("never"))).all().get(), "delete unknown"),
                "deleting an unknown topic");
    }

    /** DescribeConfigs with sources and synonyms; IncrementalAlterConfigs SET, DELETE, APPEND. */
    static void configs(Env env) throws Exception {
        var admin = env.admin();
        String topic = env.name("t");
        env.createTopic(topic, 1, Map.of("retention.ms", "86400000"));
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config c = admin.describeConfigs(List.of(res), new DescribeConfigsOptions().includeSynonyms(true).includeDocumentation(true))
                .all().get().get(res);
        ConfigEntry retention = c.get("retention.ms");
        checkEq("86400000", retention.value(), "retention.ms");
        checkEq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source(), "retention.ms source");
        checkEq(ConfigEntry.ConfigType.LONG, retention.type(), "retention.ms type");
        check(!retention.synonyms().isEmpty(), "retention.ms has synonyms: " + retention.synonyms());
        checkEq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.synonyms().get(0).source(), "first synonym is the topic's");
        check(retention.documentation() != null && !retention.documentation().isEmpty(), "documentation is included");
        ConfigEntry segment = c.get("segment.bytes");
        check(segment != null && segment.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                "segment.bytes is described and not a topic override");
        checkEq("delete", c.get("cleanup.policy").value(), "cleanup.policy default");

        admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE),
                new AlterConfigOp(new ConfigEntry("max.message.bytes", "500000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND)))).all().get();
        c = admin.describeConfigs(List.of(res)).all().get().get(res);
        check(c.get("retention.ms").source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "retention.ms override deleted");
        checkEq("500000", c.get("max.message.bytes").value(), "max.message.bytes set");
        checkEq(Set.of("delete", "compact"), Set.of(c.get("cleanup.policy").value().split(",")), "cleanup.policy appended");

        checkFails(InvalidConfigurationException.class, failure(() -> admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("max.message.bytes", "lots"), AlterConfigOp.OpType.SET)))).all().get(),
                "bad value"), "a bad value");
        // validateOnly changes nothing.
        admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(new ConfigEntry("max.message.bytes", "1234"),
                AlterConfigOp.OpType.SET))), new org.apache.kafka.clients.admin.AlterConfigsOptions().validateOnly(true)).all().get();
        checkEq("500000", admin.describeConfigs(List.of(res)).all().get().get(res).get("max.message.bytes").value(),
                "validateOnly left the value alone");

        // The broker's own configs.
        Node node = admin.describeCluster().nodes().get().iterator().next();
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, Integer.toString(node.id()));
        Config bc = admin.describeConfigs(List.of(broker)).all().get().get(broker);
        check(bc.get("log.retention.hours") != null || bc.get("log.retention.ms") != null, "broker retention is described");
        check(bc.get("num.partitions") != null, "num.partitions is described");
    }

    /** DeleteRecords moves the start offset; ListOffsets earliest/latest/timestamp/max-timestamp. */
    static void recordsAndOffsets(Env env) throws Exception {
        var admin = env.admin();
        String topic = env.name("t");
        env.createTopic(topic, 1, null);
        long base = 1_700_000_000_000L;
        try (KafkaProducer<String, String> p = new KafkaProducer<>(env.producerProps())) {
            for (int i = 0; i < 100; i++) {
                // Timestamps rise, except one record in the middle with the largest of all.
                long ts = i == 60 ? base + 1_000_000 : base + i;
                p.send(new ProducerRecord<>(topic, 0, ts, "k", "v" + i));
            }
            p.flush();
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        checkEq(0L, offset(admin, tp, OffsetSpec.earliest()), "earliest");
        checkEq(100L, offset(admin, tp, OffsetSpec.latest()), "latest");
        checkEq(30L, offset(admin, tp, OffsetSpec.forTimestamp(base + 30)), "for timestamp");
        checkEq(60L, offset(admin, tp, OffsetSpec.maxTimestamp()), "max timestamp");
        ListOffsetsResult.ListOffsetsResultInfo none = admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(base + 2_000_000)))
                .partitionResult(tp).get();
        checkEq(-1L, none.offset(), "no record at or after a future timestamp");

        var deleted = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(40))).lowWatermarks().get(tp).get();
        checkEq(40L, deleted.lowWatermark(), "low watermark after DeleteRecords");
        checkEq(40L, offset(admin, tp, OffsetSpec.earliest()), "earliest after DeleteRecords");
        List<ConsumerRecord<String, String>> rest = env.readAll(topic, 1, null);
        checkEq(60, rest.size(), "records left");
        checkEq(40L, rest.get(0).offset(), "first offset read after DeleteRecords");
        checkFails(org.apache.kafka.common.errors.OffsetOutOfRangeException.class,
                failure(() -> admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(1000))).all().get(), "beyond end"),
                "DeleteRecords beyond the high watermark");
    }

    static long offset(org.apache.kafka.clients.admin.Admin admin, TopicPartition tp, OffsetSpec spec) throws Exception {
        return admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get().offset();
    }

    /** Groups as an operator sees them: list, describe, offsets (list, alter, delete), delete. */
    static void groups(Env env) throws Exception {
        var admin = env.admin();
        String topic = env.name("t");
        env.createTopic(topic, 2, null);
        ConsumerScenarios.produce(env, topic, 2, 10, System.currentTimeMillis());
        String group = env.name("g");
        Properties props = env.consumerProps(group);
        props.put("client.id", "scenario-member");
        KafkaConsumer<String, String> c = env.consumer(props);
        c.subscribe(List.of(topic));
        int seen = 0;
        long deadline = System.currentTimeMillis() + 60_000;
        while (seen < 20 && System.currentTimeMillis() < deadline) {
            seen += c.poll(Duration.ofMillis(200)).count();
        }
        checkEq(20, seen, "records consumed by the member");
        c.commitSync();

        Collection<GroupListing> listed = admin.listGroups().all().get();
        GroupListing mine = listed.stream().filter(g -> g.groupId().equals(group)).findFirst().orElse(null);
        check(mine != null, "the group is listed: " + listed);
        checkEq(java.util.Optional.of(GroupType.CLASSIC), mine.type(), "group type");
        checkEq("consumer", mine.protocol(), "protocol type");
        check(admin.listConsumerGroups().all().get().stream().anyMatch(g -> g.groupId().equals(group)), "listed as a consumer group");

        ConsumerGroupDescription desc = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        checkEq(GroupState.STABLE, desc.groupState(), "group state");
        checkEq(1, desc.members().size(), "members");
        var member = desc.members().iterator().next();
        checkEq("scenario-member", member.clientId(), "member client id");
        checkEq(Set.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1)), member.assignment().topicPartitions(),
                "member assignment");
        checkEq("range", desc.partitionAssignor(), "assignor (the first the member offers)");
        check(desc.coordinator() != null && desc.coordinator().id() >= 0, "coordinator described");

        Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        checkEq(10L, offsets.get(new TopicPartition(topic, 0)).offset(), "committed offset p0");

        checkFails(GroupNotEmptyException.class, failure(() -> admin.deleteConsumerGroups(List.of(group)).all().get(),
                "delete a live group"), "deleting a group with members");
        // Kafka refuses to alter the offsets of a group with live members.
        check(failure(() -> admin.alterConsumerGroupOffsets(group, Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)))
                .all().get(), "alter a live group") instanceof org.apache.kafka.common.errors.UnknownMemberIdException,
                "altering the offsets of a live group fails with UNKNOWN_MEMBER_ID");
        c.close();

        admin.alterConsumerGroupOffsets(group, Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(3, "reset"))).all().get();
        offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        checkEq(3L, offsets.get(new TopicPartition(topic, 0)).offset(), "offset after alter");
        checkEq("reset", offsets.get(new TopicPartition(topic, 0)).metadata(), "metadata after alter");
        desc = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        checkEq(GroupState.EMPTY, desc.groupState(), "state of a group without members");

        admin.deleteConsumerGroupOffsets(group, Set.of(new TopicPartition(topic, 1))).all().get();
        offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        check(!offsets.containsKey(new TopicPartition(topic, 1)) || offsets.get(new TopicPartition(topic, 1)) == null,
                "offset of p1 deleted: " + offsets);

        admin.deleteConsumerGroups(List.of(group)).all().get();
        check(admin.listGroups().all().get().stream().noneMatch(g -> g.groupId().equals(group)), "deleted group is gone");
        checkFails(org.apache.kafka.common.errors.GroupIdNotFoundException.class,
                failure(() -> admin.deleteConsumerGroups(List.of(group)).all().get(), "delete twice"), "deleting a missing group");
    }

    /** DescribeProducers shows the idempotent producer that wrote to a partition. */
    static void producers(Env env) throws Exception {
        var admin = env.admin();
        String topic = env.name("t");
        env.createTopic(topic, 1, null);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(env.producerProps())) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, 0, "k", "v" + i));
            }
            p.flush();
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        List<ProducerState> states = admin.describeProducers(List.of(tp)).partitionResult(tp).get().activeProducers();
        checkEq(1, states.size(), "active producers");
        ProducerState s = states.get(0);
        check(s.producerId() >= 0, "producer id");
        checkEq(9, s.lastSequence(), "last sequence");
        check(s.lastTimestamp() > 0, "last timestamp");
        checkEq(java.util.OptionalLong.empty(), s.currentTransactionStartOffset(), "no open transaction");
    }

    /** DescribeCluster and DescribeLogDirs. */
    static void clusterAndLogDirs(Env env) throws Exception {
        var admin = env.admin();
        DescribeClusterResult cluster = admin.describeCluster();
        Collection<Node> nodes = cluster.nodes().get();
        checkEq(1, nodes.size(), "brokers");
        Node node = nodes.iterator().next();
        check(cluster.clusterId().get() != null && !cluster.clusterId().get().isEmpty(), "cluster id");
        checkEq(node.id(), cluster.controller().get().id(), "the broker is the controller");
        String host = env.bootstrap.substring(0, env.bootstrap.lastIndexOf(':'));
        checkEq(host, node.host(), "advertised host");

        String topic = env.name("t");
        env.createTopic(topic, 2, null);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(env.producerProps())) {
            for (int i = 0; i < 100; i++) {
                p.send(new ProducerRecord<>(topic, 0, "k", "x".repeat(100)));
            }
            p.flush();
        }
        Map<String, LogDirDescription> dirs = admin.describeLogDirs(List.of(node.id())).allDescriptions().get().get(node.id());
        check(!dirs.isEmpty(), "at least one log dir");
        Map<TopicPartition, Long> sizes = new HashMap<>();
        for (LogDirDescription d : dirs.values()) {
            check(d.error() == null, "log dir without error");
            check(d.totalBytes().isPresent() && d.usableBytes().isPresent(), "total and usable bytes");
            d.replicaInfos().forEach((tp, info) -> sizes.put(tp, info.size()));
        }
        check(sizes.get(new TopicPartition(topic, 0)) > 100 * 100, "partition 0's size counts its records: " + sizes);
        checkEq(0L, sizes.get(new TopicPartition(topic, 1)), "empty partition 1");
        Set<String> ids = dirs.keySet().stream().collect(Collectors.toSet());
        check(ids.stream().allMatch(p -> p.startsWith("/")), "log dirs are absolute paths: " + ids);
    }

    /**
     * KIP-848 group configs: incrementalAlterConfigs on a GROUP resource sets
     * consumer.session.timeout.ms, describeConfigs shows it as a group config and the other
     * one at the broker's default; values outside the broker's bounds and unknown names are
     * refused; deleting it brings the default back.
     */
    static void groupConfigs(Env env) throws Exception {
        String group = env.name("g");
        ConfigResource resource = new ConfigResource(ConfigResource.Type.GROUP, group);
        var admin = env.admin();
        admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(
                new ConfigEntry("consumer.session.timeout.ms", "50000"), AlterConfigOp.OpType.SET)))).all().get();
        Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
        ConfigEntry session = config.get("consumer.session.timeout.ms");
        checkEq("50000", session.value(), "consumer.session.timeout.ms after SET");
        checkEq(ConfigEntry.ConfigSource.DYNAMIC_GROUP_CONFIG, session.source(), "its source");
        ConfigEntry heartbeat = config.get("consumer.heartbeat.interval.ms");
        checkEq("5000", heartbeat.value(), "consumer.heartbeat.interval.ms (the broker's)");
        checkEq(ConfigEntry.ConfigSource.DEFAULT_CONFIG, heartbeat.source(), "its source");
        checkFails(InvalidConfigurationException.class, failure(
                () -> admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(
                        new ConfigEntry("consumer.session.timeout.ms", "1000"), AlterConfigOp.OpType.SET))))
                        .all().get(), "too small"), "a session timeout below the broker's minimum");
        checkFails(InvalidConfigurationException.class, failure(
                () -> admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(
                        new ConfigEntry("consumer.no.such.config", "1"), AlterConfigOp.OpType.SET))))
                        .all().get(), "unknown"), "an unknown group config");
        admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(
                new ConfigEntry("consumer.session.timeout.ms", ""), AlterConfigOp.OpType.DELETE)))).all().get();
        ConfigEntry back = admin.describeConfigs(List.of(resource)).all().get().get(resource)
                .get("consumer.session.timeout.ms");
        checkEq("45000", back.value(), "consumer.session.timeout.ms after DELETE");
    }
}
