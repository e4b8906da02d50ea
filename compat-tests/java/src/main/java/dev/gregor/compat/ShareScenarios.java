package dev.gregor.compat;

import static dev.gregor.compat.Env.check;
import static dev.gregor.compat.Env.checkEq;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ListShareGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ShareGroupDescription;
import org.apache.kafka.clients.admin.ShareMemberDescription;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Share groups (KIP-932, KafkaShareConsumer): records shared out among members and each
 * delivered once, releases redelivered with a higher delivery count until the delivery limit
 * archives them, and the share group admin APIs.
 */
final class ShareScenarios {
    private ShareScenarios() {}

    static List<Main.Scenario> all() {
        return List.of(
                new Main.Scenario("share_group_consume", true, 180, env -> served(env, ShareScenarios::consume)),
                new Main.Scenario("share_group_redelivery", true, 180,
                        env -> served(env, ShareScenarios::redelivery)),
                new Main.Scenario("share_group_admin", false, 180, env -> served(env, ShareScenarios::admin)));
    }

    /** Runs {@code body} if the broker serves share groups (finalizes share.version), else skips. */
    static void served(Env env, Main.Body body) throws Exception {
        if (!env.admin().describeFeatures().featureMetadata().get().finalizedFeatures().containsKey("share.version")) {
            throw new Main.Skip("the broker does not serve share groups (no share.version: group.share.enable is off,"
                    + " as in Gregor's cluster mode)");
        }
        body.run(env);
    }

    /** share.auto.offset.reset=earliest for the group: it starts at the log's start. */
    static void earliest(Env env, String group) throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.GROUP, group);
        AlterConfigOp set = new AlterConfigOp(new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET);
        env.admin().incrementalAlterConfigs(Map.of(r, List.of(set))).all().get();
    }

    static KafkaShareConsumer<String, String> consumer(Env env, String group, boolean explicit) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, env.bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        if (explicit) {
            p.put(ConsumerConfig.SHARE_ACKNOWLEDGEMENT_MODE_CONFIG, "explicit");
        }
        return env.own(new KafkaShareConsumer<>(p));
    }

    static ShareGroupDescription describe(Env env, String group) throws Exception {
        return env.admin().describeShareGroups(List.of(group)).all().get().get(group);
    }

    /**
     * Two members of one share group consume a topic of three partitions together: every
     * record is delivered exactly once (delivery count 1), both members get records, the
     * group is described Stable with both members and every partition assigned, and once all
     * is acknowledged a new member gets nothing. (The start offsets listed are at most the
     * ends: Kafka reports the start offset a partition's last state write began from, Gregor
     * the one it moved to.)
     */
    static void consume(Env env) throws Exception {
        String topic = env.name("t");
        String group = env.name("g");
        int partitions = 3, perPartition = 100;
        env.createTopic(topic, partitions, null);
        earliest(env, group);
        KafkaShareConsumer<String, String> a = consumer(env, group, false);
        KafkaShareConsumer<String, String> b = consumer(env, group, false);
        a.subscribe(Set.of(topic));
        b.subscribe(Set.of(topic));
        // Both join, and both know their assignment (their epochs are the group's), before
        // there is anything to consume.
        long joinBy = System.currentTimeMillis() + 60_000;
        while (System.currentTimeMillis() < joinBy) {
            a.poll(Duration.ofMillis(100));
            b.poll(Duration.ofMillis(100));
            try {
                ShareGroupDescription d = describe(env, group);
                if (d.members().size() == 2 && d.members().stream().allMatch(
                        m -> m.memberEpoch() == d.groupEpoch() && !m.assignment().topicPartitions().isEmpty())) {
                    break;
                }
            } catch (java.util.concurrent.ExecutionException e) {
                // Not created until the first heartbeat is answered.
                check(e.getCause() instanceof org.apache.kafka.common.errors.GroupIdNotFoundException, "describe: " + e.getCause());
            }
        }
        // The group's view is ahead of the clients': a member applies the assignment in its
        // heartbeat answer on a later poll, and until then fetches the partitions it had
        // (seen here as one member taking all 300 records when it joined first). Polling on
        // for a second lets both apply it before there is anything to fetch.
        long settle = System.currentTimeMillis() + 1_000;
        while (System.currentTimeMillis() < settle) {
            a.poll(Duration.ofMillis(100));
            b.poll(Duration.ofMillis(100));
        }
        ConsumerScenarios.produce(env, topic, partitions, perPartition, System.currentTimeMillis());
        Map<String, Integer> seen = new ConcurrentHashMap<>();
        Map<String, Integer> byMember = new HashMap<>();
        long deadline = System.currentTimeMillis() + 90_000;
        while (seen.size() < partitions * perPartition && System.currentTimeMillis() < deadline) {
            for (Map.Entry<String, KafkaShareConsumer<String, String>> c : Map.of("a", a, "b", b).entrySet()) {
                for (ConsumerRecord<String, String> r : c.getValue().poll(Duration.ofMillis(200))) {
                    seen.merge(r.partition() + "/" + r.offset(), 1, Integer::sum);
                    byMember.merge(c.getKey(), 1, Integer::sum);
                    checkEq(Short.valueOf((short) 1), r.deliveryCount().orElse((short) 0), "delivery count of " + r.offset());
                }
                c.getValue().commitSync();
            }
        }
        checkEq(partitions * perPartition, seen.size(), "records delivered to the group");
        for (Map.Entry<String, Integer> e : seen.entrySet()) {
            checkEq(1, e.getValue(), "record " + e.getKey() + " delivered once");
        }
        // With three partitions shared out between two members, each fetches from its own.
        checkEq(2, byMember.size(), "members that got records " + byMember);
        ShareGroupDescription d = describe(env, group);
        checkEq(GroupState.STABLE, d.groupState(), "group state");
        checkEq(2, d.members().size(), "members described");
        int assigned = 0;
        for (ShareMemberDescription m : d.members()) {
            assigned += m.assignment().topicPartitions().size();
        }
        check(assigned >= partitions, "every partition assigned: " + assigned);
        Map<TopicPartition, OffsetAndMetadata> offsets = env.admin()
                .listShareGroupOffsets(Map.of(group, new ListShareGroupOffsetsSpec()))
                .partitionsToOffsetAndMetadata(group).get();
        for (int p = 0; p < partitions; p++) {
            OffsetAndMetadata o = offsets.get(new TopicPartition(topic, p));
            check(o != null, "start offset of partition " + p + " listed: " + offsets);
            check(o.offset() >= 0 && o.offset() <= perPartition, "start offset of partition " + p + ": " + o.offset());
        }
        a.close();
        b.close();
        checkEq(GroupState.EMPTY, describe(env, group).groupState(), "group state after both left");
        checkEq(0, drain(env, group, topic), "records delivered again to a new member");
    }

    /** What a new member of `group` gets from `topic` in a few seconds (acknowledging it). */
    static int drain(Env env, String group, String topic) {
        try (KafkaShareConsumer<String, String> c = consumer(env, group, false)) {
            c.subscribe(Set.of(topic));
            int got = 0;
            long until = System.currentTimeMillis() + 5_000;
            while (System.currentTimeMillis() < until) {
                got += c.poll(Duration.ofMillis(200)).count();
                c.commitSync();
            }
            return got;
        }
    }

    /**
     * Explicit acknowledgement: released records come back with a higher delivery count,
     * rejected ones never do, and a record released on every delivery is archived after
     * group.share.delivery.count.limit (5) deliveries.
     */
    static void redelivery(Env env) throws Exception {
        String topic = env.name("t");
        String group = env.name("g");
        env.createTopic(topic, 1, null);
        earliest(env, group);
        ConsumerScenarios.produce(env, topic, 1, 10, System.currentTimeMillis());
        KafkaShareConsumer<String, String> c = consumer(env, group, true);
        c.subscribe(Set.of(topic));
        // Offsets 0-3 accepted, 4-5 rejected, 6-9 released on every delivery.
        Map<Long, Integer> deliveries = new HashMap<>();
        Map<Long, Short> lastCount = new HashMap<>();
        long deadline = System.currentTimeMillis() + 90_000;
        long idleSince = System.currentTimeMillis();
        while (System.currentTimeMillis() < deadline && System.currentTimeMillis() - idleSince < 5_000) {
            var records = c.poll(Duration.ofMillis(200));
            if (!records.isEmpty()) {
                idleSince = System.currentTimeMillis();
            }
            for (ConsumerRecord<String, String> r : records) {
                deliveries.merge(r.offset(), 1, Integer::sum);
                short count = r.deliveryCount().orElse((short) 0);
                checkEq(Short.valueOf((short) (int) deliveries.get(r.offset())), count,
                        "delivery count of offset " + r.offset());
                lastCount.put(r.offset(), count);
                AcknowledgeType type = r.offset() < 4 ? AcknowledgeType.ACCEPT
                        : r.offset() < 6 ? AcknowledgeType.REJECT : AcknowledgeType.RELEASE;
                c.acknowledge(r, type);
            }
            c.commitSync();
        }
        for (long o = 0; o < 6; o++) {
            checkEq(1, deliveries.getOrDefault(o, 0), "deliveries of accepted or rejected offset " + o);
        }
        for (long o = 6; o < 10; o++) {
            checkEq(5, deliveries.getOrDefault(o, 0), "deliveries of released offset " + o + " (the limit)");
        }
        c.close();
        // Everything is settled: accepted, rejected, or archived at the limit.
        Map<TopicPartition, OffsetAndMetadata> offsets = env.admin()
                .listShareGroupOffsets(Map.of(group, new ListShareGroupOffsetsSpec()))
                .partitionsToOffsetAndMetadata(group).get();
        long start = offsets.get(new TopicPartition(topic, 0)).offset();
        check(start >= 6 && start <= 10, "start offset after the limit archived the rest: " + start);
        checkEq(0, drain(env, group, topic), "records delivered after the limit");
    }

    /**
     * The share group admin APIs: an empty group's start offsets are altered (and a group
     * created by it), a member then starts there; offsets of a group with members cannot be
     * altered; deleteShareGroupOffsets and deleteShareGroups remove state and group.
     */
    static void admin(Env env) throws Exception {
        String topic = env.name("t");
        String group = env.name("g");
        env.createTopic(topic, 1, null);
        ConsumerScenarios.produce(env, topic, 1, 20, System.currentTimeMillis());
        TopicPartition tp = new TopicPartition(topic, 0);
        env.admin().alterShareGroupOffsets(group, Map.of(tp, 15L)).all().get();
        checkEq(GroupState.EMPTY, describe(env, group).groupState(), "a group created by alterShareGroupOffsets");
        Map<TopicPartition, OffsetAndMetadata> offsets = env.admin()
                .listShareGroupOffsets(Map.of(group, new ListShareGroupOffsetsSpec()))
                .partitionsToOffsetAndMetadata(group).get();
        checkEq(15L, offsets.get(tp).offset(), "altered start offset");
        KafkaShareConsumer<String, String> c = consumer(env, group, false);
        c.subscribe(Set.of(topic));
        Map<Long, Integer> got = new HashMap<>();
        long deadline = System.currentTimeMillis() + 60_000;
        while (got.size() < 5 && System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                got.merge(r.offset(), 1, Integer::sum);
            }
            c.commitSync();
        }
        checkEq(Set.of(15L, 16L, 17L, 18L, 19L), got.keySet(), "offsets consumed from the altered start");
        // Refused while the group has a member (NON_EMPTY_GROUP; the 4.1 admin client does not
        // report top-level errors of AlterShareGroupOffsets (4.2 does), so what is checked is
        // that nothing changed).
        try {
            env.admin().alterShareGroupOffsets(group, Map.of(tp, 0L)).all().get();
        } catch (java.util.concurrent.ExecutionException e) {
            check(e.getCause() instanceof GroupNotEmptyException, "alter with a member: " + e.getCause());
        }
        offsets = env.admin()
                .listShareGroupOffsets(Map.of(group, new ListShareGroupOffsetsSpec()))
                .partitionsToOffsetAndMetadata(group).get();
        check(offsets.get(tp).offset() >= 15, "start offset after an alter refused for a group with a member: " + offsets.get(tp));
        c.close();
        env.admin().deleteShareGroupOffsets(group, Set.of(topic)).all().get();
        offsets = env.admin()
                .listShareGroupOffsets(Map.of(group, new ListShareGroupOffsetsSpec()))
                .partitionsToOffsetAndMetadata(group).get();
        check(offsets.get(tp) == null, "no offset after deleteShareGroupOffsets: " + offsets);
        env.admin().deleteShareGroups(List.of(group)).all().get();
        var listed = env.admin().listGroups().all().get();
        check(listed.stream().noneMatch(g -> g.groupId().equals(group)), "deleted group not listed");
    }
}
