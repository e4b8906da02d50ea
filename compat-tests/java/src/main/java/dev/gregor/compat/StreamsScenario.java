package dev.gregor.compat;

import static dev.gregor.compat.Env.check;
import static dev.gregor.compat.Env.checkEq;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

/**
 * Kafka Streams, exactly-once v2: a grouped count into a persistent (RocksDB) store behind a
 * repartition. The application is stopped, its local state wiped, records are added, and on
 * restart the store restored from its changelog plus the new records gives exactly the right
 * counts; the repartition topic is purged (DeleteRecords) as Streams commits.
 */
final class StreamsScenario {
    private StreamsScenario() {}

    static final int COLORS = 7;

    static List<Main.Scenario> all() {
        return List.of(new Main.Scenario("streams_eos_count_restore", false, 300, StreamsScenario::run),
                new Main.Scenario("streams_restore_from_compacted_changelog", false, 300,
                        StreamsScenario::runCompacted));
    }

    /**
     * The same count, its changelog rolled every 100 ms and due for cleaning at 1 % dirty: the
     * broker's log cleaner compacts the transactional changelog while the application is
     * down (waited for: fewer records than before), and the restore from what compaction
     * left gives exactly the counts.
     */
    static void runCompacted(Env env) throws Exception {
        String in = env.name("in"), out = env.name("out"), app = env.name("app");
        env.createTopic(in, 3, null);
        env.createTopic(out, 3, null);
        Map<String, String> changelog = Map.of("segment.ms", "100", "min.cleanable.dirty.ratio", "0.01");
        Path state = Files.createTempDirectory("gregor-streams-");
        try {
            AtomicLong restored = new AtomicLong();
            KafkaStreams first = start(env, app, in, out, state, restored, changelog);
            try {
                // In rounds, so that the changelog gets many updates of each key over many segments.
                for (int round = 0; round < 10; round++) {
                    produce(env, in, round * 300, 300);
                    awaitCounts(first, expected((round + 1) * 300), 120_000);
                    Thread.sleep(150);
                }
            } finally {
                first.close(java.time.Duration.ofSeconds(30));
            }
            String topic = app + "-counts-changelog";
            long before = countRecords(env, topic);
            long after = before;
            long deadline = System.currentTimeMillis() + 120_000;
            while (after >= before && System.currentTimeMillis() < deadline) {
                Thread.sleep(1000);
                after = countRecords(env, topic);
            }
            check(after < before, "the changelog was compacted: " + before + " records, then " + after);

            deleteTree(state);
            Files.createDirectories(state);
            produce(env, in, 3000, 1000);
            KafkaStreams second = start(env, app, in, out, state, restored, changelog);
            try {
                awaitCounts(second, expected(4000), 120_000);
            } finally {
                second.close(java.time.Duration.ofSeconds(30));
            }
            check(restored.get() > 0, "the store was restored from its compacted changelog");
            checkEq(expected(4000), lastCounts(env, out), "last committed count per color in the output topic");
        } finally {
            deleteTree(state);
        }
    }

    /** Records (read_committed) in all partitions of {@code topic}, read to its end. */
    static long countRecords(Env env, String topic) throws Exception {
        int partitions = env.admin().describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
        Properties p = env.consumerProps(null);
        p.put("key.deserializer", org.apache.kafka.common.serialization.ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", org.apache.kafka.common.serialization.ByteArrayDeserializer.class.getName());
        p.put("isolation.level", "read_committed");
        long n = 0;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new java.util.ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            long deadline = System.currentTimeMillis() + 30_000;
            while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp)) && System.currentTimeMillis() < deadline) {
                n += c.poll(java.time.Duration.ofMillis(200)).count();
            }
        }
        return n;
    }

    static void run(Env env) throws Exception {
        String in = env.name("in"), out = env.name("out"), app = env.name("app");
        env.createTopic(in, 3, null);
        env.createTopic(out, 3, null);
        Path state = Files.createTempDirectory("gregor-streams-");
        try {
            produce(env, in, 0, 3000);
            AtomicLong restored = new AtomicLong();
            KafkaStreams first = start(env, app, in, out, state, restored, Map.of());
            try {
                awaitCounts(first, expected(3000), 120_000);
                awaitRepartitionPurged(env, app, 60_000);
            } finally {
                first.close(java.time.Duration.ofSeconds(30));
            }
            checkEq(0L, restored.get(), "nothing to restore on the first run");

            deleteTree(state);
            Files.createDirectories(state);
            produce(env, in, 3000, 1000);
            KafkaStreams second = start(env, app, in, out, state, restored, Map.of());
            try {
                awaitCounts(second, expected(4000), 120_000);
            } finally {
                second.close(java.time.Duration.ofSeconds(30));
            }
            check(restored.get() > 0, "the store was restored from its changelog");

            // The output topic's last committed value per key agrees with the store.
            checkEq(expected(4000), lastCounts(env, out), "last committed count per color in the output topic");
        } finally {
            deleteTree(state);
        }
    }

    /** The last committed count per key in the output topic, read to its end. */
    static Map<String, Long> lastCounts(Env env, String topic) {
        Properties p = env.consumerProps(null);
        p.put("value.deserializer", LongDeserializer.class.getName());
        p.put("isolation.level", "read_committed");
        Map<String, Long> last = new TreeMap<>();
        try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1),
                    new TopicPartition(topic, 2));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            long deadline = System.currentTimeMillis() + 30_000;
            while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp)) && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, Long> r : c.poll(java.time.Duration.ofMillis(200))) {
                    last.put(r.key(), r.value());
                }
            }
        }
        return last;
    }

    static void produce(Env env, String topic, int from, int n) throws Exception {
        try (KafkaProducer<String, String> p = new KafkaProducer<>(env.producerProps())) {
            for (int i = from; i < from + n; i++) {
                p.send(new ProducerRecord<>(topic, "user-" + (i % 100), color(i)));
            }
            p.flush();
        }
    }

    static String color(int i) {
        return "color-" + (i % COLORS);
    }

    static Map<String, Long> expected(int n) {
        Map<String, Long> m = new TreeMap<>();
        for (int i = 0; i < n; i++) {
            m.merge(color(i), 1L, Long::sum);
        }
        return m;
    }

    static KafkaStreams start(Env env, String app, String in, String out, Path state, AtomicLong restored,
            Map<String, String> changelogConfigs) {
        StreamsBuilder b = new StreamsBuilder();
        Materialized<String, Long, KeyValueStore<Bytes, byte[]>> store = Materialized.as("counts");
        if (!changelogConfigs.isEmpty()) {
            store = store.withLoggingEnabled(changelogConfigs);
        }
        b.<String, String>stream(in)
                .groupBy((user, color) -> color)
                .count(store)
                .toStream()
                .to(out, Produced.with(Serdes.String(), Serdes.Long()));
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, env.bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.STATE_DIR_CONFIG, state.toString());
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "100");
        p.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, "500");
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
        KafkaStreams streams = new KafkaStreams(b.build(), p);
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {}

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {
                restored.addAndGet(n);
            }

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long total) {}
        });
        streams.start();
        return streams;
    }

    /** Waits until the store holds exactly {@code want}; fails with what it last saw. */
    static void awaitCounts(KafkaStreams streams, Map<String, Long> want, long timeoutMs) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        Map<String, Long> seen = Map.of();
        while (System.currentTimeMillis() < deadline) {
            if (streams.state() == KafkaStreams.State.ERROR) {
                throw new AssertionError("the Streams application failed");
            }
            if (streams.state() == KafkaStreams.State.RUNNING) {
                try {
                    ReadOnlyKeyValueStore<String, Long> store = streams.store(
                            StoreQueryParameters.fromNameAndType("counts", QueryableStoreTypes.keyValueStore()));
                    Map<String, Long> now = new TreeMap<>();
                    try (KeyValueIterator<String, Long> it = store.all()) {
                        it.forEachRemaining(kv -> now.put(kv.key, kv.value));
                    }
                    seen = now;
                    if (now.equals(want)) {
                        return;
                    }
                } catch (org.apache.kafka.streams.errors.InvalidStateStoreException e) {
                    // Rebalancing or restoring: not queryable yet.
                }
            }
            Thread.sleep(200);
        }
        throw new AssertionError("store counts: expected " + want + ", last seen " + seen);
    }

    /** Streams deletes consumed repartition records (DeleteRecords) after it commits. */
    static void awaitRepartitionPurged(Env env, String app, long timeoutMs) throws Exception {
        var admin = env.admin();
        String repartition = admin.listTopics().names().get().stream()
                .filter(t -> t.startsWith(app) && t.endsWith("-repartition")).findFirst()
                .orElseThrow(() -> new AssertionError("no repartition topic for " + app));
        int partitions = admin.describeTopics(List.of(repartition)).allTopicNames().get().get(repartition).partitions().size();
        long deadline = System.currentTimeMillis() + timeoutMs;
        Map<TopicPartition, OffsetSpec> earliest = new HashMap<>();
        for (int i = 0; i < partitions; i++) {
            earliest.put(new TopicPartition(repartition, i), OffsetSpec.earliest());
        }
        long purged = 0;
        while (System.currentTimeMillis() < deadline) {
            purged = 0;
            for (var e : admin.listOffsets(earliest).all().get().values()) {
                purged += e.offset();
            }
            if (purged > 0) {
                return;
            }
            Thread.sleep(250);
        }
        throw new AssertionError("the repartition topic " + repartition + " was never purged");
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(p)) {
            for (Path q : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(q);
            }
        }
    }
}
