package dev.gregor.compat;

import static dev.gregor.compat.Env.check;
import static dev.gregor.compat.Env.checkEq;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;

/**
 * Consumer groups: eager and cooperative rebalances of the classic protocol, the KIP-848
 * consumer protocol (group.protocol=consumer, the broker assigns), commits, seeks.
 */
final class ConsumerScenarios {
    private ConsumerScenarios() {}

    static List<Main.Scenario> all() {
        return List.of(
                new Main.Scenario("group_eager_rebalance", false, 180, env -> rebalance(env, RangeAssignor.class.getName(), false)),
                new Main.Scenario("group_cooperative_rebalance", true, 180,
                        env -> rebalance(env, CooperativeStickyAssignor.class.getName(), true)),
                new Main.Scenario("group_consumer_protocol_rebalance", true, 180,
                        env -> rebalance(env, "consumer:uniform", true)),
                new Main.Scenario("group_online_migration", false, 180, ConsumerScenarios::onlineMigration),
                new Main.Scenario("consumer_commit_seek_times", false, 120, ConsumerScenarios::commitSeekTimes));
    }

    static void produce(Env env, String topic, int partitions, int perPartition, long timestampBase) throws Exception {
        try (KafkaProducer<String, String> p = new KafkaProducer<>(env.producerProps())) {
            for (int i = 0; i < perPartition; i++) {
                for (int part = 0; part < partitions; part++) {
                    p.send(new ProducerRecord<>(topic, part, timestampBase + i, "k" + i, part + ":" + i));
                }
            }
            p.flush();
        }
    }

    /**
     * One member consumes half the topic and commits; a second member joins, the group
     * rebalances, and together they consume the rest. Every record is processed exactly once
     * (each member commits what it processed before giving a partition up), each member ends
     * up with half the partitions, and for the cooperative protocol a partition that stays
     * with its owner is never revoked. An assignor "consumer:NAME" runs the group on the
     * KIP-848 protocol with the broker's assignor NAME, which is incremental too; the admin
     * client then describes it with ConsumerGroupDescribe.
     */
    static void rebalance(Env env, String assignor, boolean cooperative) throws Exception {
        String topic = env.name("t");
        int partitions = 6, perPartition = 100;
        env.createTopic(topic, partitions, null);
        produce(env, topic, partitions, perPartition, System.currentTimeMillis());
        String group = env.name("g");
        Map<String, Integer> processed = new ConcurrentHashMap<>();
        Member a = new Member(env, group, topic, assignor, processed);
        // A alone: it owns all six partitions; let it process a part of the records.
        while (processed.size() < partitions * perPartition / 3) {
            a.poll();
        }
        Member b = new Member(env, group, topic, assignor, processed);
        long deadline = System.currentTimeMillis() + 90_000;
        while ((processed.size() < partitions * perPartition || a.owned.size() + b.owned.size() < partitions
                || a.owned.isEmpty() || b.owned.isEmpty()) && System.currentTimeMillis() < deadline) {
            a.poll();
            b.poll();
        }
        checkEq(partitions * perPartition, processed.size(), "records processed by the group");
        for (Map.Entry<String, Integer> e : processed.entrySet()) {
            checkEq(1, e.getValue(), "record " + e.getKey() + " processed once");
        }
        checkEq(partitions / 2, a.owned.size(), "first member's share after the rebalance");
        checkEq(partitions / 2, b.owned.size(), "second member's share after the rebalance");
        Set<TopicPartition> both = new HashSet<>(a.owned);
        both.retainAll(b.owned);
        check(both.isEmpty(), "no partition is owned twice: " + both);
        if (cooperative) {
            // Incremental: the first member gave up only the partitions that moved.
            checkEq(partitions / 2, a.revoked.size(), "partitions the first member revoked");
            Set<TopicPartition> kept = new HashSet<>(a.owned);
            kept.retainAll(a.revoked);
            check(kept.isEmpty(), "a partition the first member kept was never revoked");
        } else {
            check(a.revoked.size() == partitions, "eager: the first member revoked everything it had");
        }
        if (assignor.startsWith("consumer:")) {
            ConsumerGroupDescription d = env.admin().describeConsumerGroups(List.of(group)).all().get().get(group);
            checkEq(GroupType.CONSUMER, d.type(), "group type");
            checkEq(2, d.members().size(), "members described");
            checkEq(assignor.substring("consumer:".length()), d.partitionAssignor(), "assignor described");
            int described = 0;
            for (MemberDescription m : d.members()) {
                described += m.assignment().topicPartitions().size();
            }
            checkEq(partitions, described, "partitions described as assigned");
        }
        a.consumer.commitSync();
        b.consumer.commitSync();
        // The committed offsets are the partitions' ends, as seen by a third party.
        Map<TopicPartition, OffsetAndMetadata> committed = env.admin().listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get();
        checkEq(partitions, committed.size(), "partitions with a committed offset");
        for (OffsetAndMetadata om : committed.values()) {
            checkEq((long) perPartition, om.offset(), "committed offset");
        }
    }

    /**
     * Online migration (group.consumer.migration.policy=bidirectional, Kafka's default): a
     * classic member consumes a third of the topic; a consumer-protocol member joins and the
     * group becomes a consumer group, both members sharing the partitions; when the
     * consumer-protocol member leaves, the group is classic again and the classic member
     * takes everything. Every record is processed exactly once.
     */
    static void onlineMigration(Env env) throws Exception {
        String topic = env.name("t");
        int partitions = 4, perPartition = 150;
        env.createTopic(topic, partitions, null);
        produce(env, topic, partitions, perPartition, System.currentTimeMillis());
        String group = env.name("g");
        Map<String, Integer> processed = new ConcurrentHashMap<>();
        Member a = new Member(env, group, topic, RangeAssignor.class.getName(), processed);
        while (processed.size() < partitions * perPartition / 3) {
            a.poll();
        }
        checkEq(GroupType.CLASSIC, env.admin().describeConsumerGroups(List.of(group)).all().get().get(group).type(),
                "a classic group first");
        Member b = new Member(env, group, topic, "consumer:uniform", processed);
        long deadline = System.currentTimeMillis() + 90_000;
        while ((processed.size() < partitions * perPartition * 2 / 3 || a.owned.isEmpty() || b.owned.isEmpty())
                && System.currentTimeMillis() < deadline) {
            a.poll();
            b.poll();
        }
        check(!a.owned.isEmpty() && !b.owned.isEmpty(), "both members own partitions: " + a.owned + " " + b.owned);
        Set<TopicPartition> both = new HashSet<>(a.owned);
        both.retainAll(b.owned);
        check(both.isEmpty(), "no partition is owned twice: " + both);
        ConsumerGroupDescription d = env.admin().describeConsumerGroups(List.of(group)).all().get().get(group);
        checkEq(GroupType.CONSUMER, d.type(), "upgraded when the consumer-protocol member joined");
        checkEq(2, d.members().size(), "members described");
        b.consumer.commitSync();
        b.consumer.close();
        deadline = System.currentTimeMillis() + 90_000;
        while ((processed.size() < partitions * perPartition || a.owned.size() < partitions)
                && System.currentTimeMillis() < deadline) {
            a.poll();
        }
        checkEq(partitions, a.owned.size(), "the classic member owns everything again");
        checkEq(partitions * perPartition, processed.size(), "records processed by the group");
        for (Map.Entry<String, Integer> e : processed.entrySet()) {
            checkEq(1, e.getValue(), "record " + e.getKey() + " processed once");
        }
        d = env.admin().describeConsumerGroups(List.of(group)).all().get().get(group);
        checkEq(GroupType.CLASSIC, d.type(), "downgraded when the consumer-protocol member left");
    }

    /** A group member driven by the scenario's thread. */
    static final class Member implements ConsumerRebalanceListener {
        final KafkaConsumer<String, String> consumer;
        final Set<TopicPartition> owned = new HashSet<>();
        final List<TopicPartition> revoked = new ArrayList<>();
        final Map<String, Integer> processed;
        final Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();

        Member(Env env, String group, String topic, String assignor, Map<String, Integer> processed) {
            Properties p = env.consumerProps(group);
            if (assignor.startsWith("consumer:")) {
                p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
                p.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, assignor.substring("consumer:".length()));
            } else {
                p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
            }
            p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "20");
            consumer = env.consumer(p);
            this.processed = processed;
            consumer.subscribe(List.of(topic), this);
        }

        void poll() {
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                processed.merge(r.partition() + "@" + r.offset(), 1, Integer::sum);
                pending.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
            }
            if (!pending.isEmpty()) {
                consumer.commitSync(pending);
                pending.clear();
            }
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            // Commit what was processed before the partitions go (at-least-once becomes exactly once).
            if (!pending.isEmpty()) {
                consumer.commitSync(pending);
                pending.clear();
            }
            revoked.addAll(partitions);
            owned.removeAll(partitions);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            owned.addAll(partitions);
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            owned.removeAll(partitions);
        }
    }

    /**
     * Commits with metadata and reads them back; position after seek, seekToBeginning and
     * seekToEnd; beginningOffsets/endOffsets; offsetsForTimes finds the first record at or
     * after a timestamp, and null beyond the last.
     */
    static void commitSeekTimes(Env env) throws Exception {
        String topic = env.name("t");
        env.createTopic(topic, 2, null);
        long base = 1_700_000_000_000L;
        produce(env, topic, 2, 50, base);
        String group = env.name("g");
        KafkaConsumer<String, String> c = env.consumer(env.consumerProps(group));
        TopicPartition p0 = new TopicPartition(topic, 0), p1 = new TopicPartition(topic, 1);
        c.assign(List.of(p0, p1));
        checkEq(Map.of(p0, 0L, p1, 0L), c.beginningOffsets(List.of(p0, p1)), "beginning offsets");
        checkEq(Map.of(p0, 50L, p1, 50L), c.endOffsets(List.of(p0, p1)), "end offsets");
        checkEq(null, c.committed(Set.of(p0)).get(p0), "nothing committed yet");
        c.commitSync(Map.of(p0, new OffsetAndMetadata(17, "seventeen"), p1, new OffsetAndMetadata(3)));
        Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.of(p0, p1));
        checkEq(17L, committed.get(p0).offset(), "committed offset p0");
        checkEq("seventeen", committed.get(p0).metadata(), "committed metadata p0");
        checkEq(3L, committed.get(p1).offset(), "committed offset p1");
        // A new consumer of the same group starts at the committed offsets.
        c.close();
        KafkaConsumer<String, String> d = env.consumer(env.consumerProps(group));
        d.assign(List.of(p0));
        AtomicInteger first = new AtomicInteger(-1);
        long deadline = System.currentTimeMillis() + 30_000;
        while (first.get() < 0 && System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, String> r : d.poll(Duration.ofMillis(200))) {
                if (first.get() < 0) {
                    first.set((int) r.offset());
                }
            }
        }
        checkEq(17, first.get(), "first offset consumed after the commit");
        d.seek(p0, 42);
        checkEq(42L, d.position(p0), "position after seek");
        d.seekToBeginning(List.of(p0));
        checkEq(0L, d.position(p0), "position after seekToBeginning");
        d.seekToEnd(List.of(p0));
        checkEq(50L, d.position(p0), "position after seekToEnd");
        Map<TopicPartition, OffsetAndTimestamp> times = d.offsetsForTimes(Map.of(p0, base + 10, p1, base + 10_000));
        checkEq(10L, times.get(p0).offset(), "offsetsForTimes: first record at the timestamp");
        checkEq(base + 10, times.get(p0).timestamp(), "offsetsForTimes: its timestamp");
        checkEq(null, times.get(p1), "offsetsForTimes beyond the last record");
    }
}
