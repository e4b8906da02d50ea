package dev.gregor.compat;

import static dev.gregor.compat.Env.check;
import static dev.gregor.compat.Env.checkEq;
import static dev.gregor.compat.Env.checkFails;
import static dev.gregor.compat.Env.failure;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;

/** The producer: its defaults (idempotent, acks=all, linger 5 ms), each codec, and refusals. */
final class ProducerScenarios {
    private ProducerScenarios() {}

    static List<Main.Scenario> all() {
        return List.of(
                new Main.Scenario("producer_defaults", true, 120, ProducerScenarios::defaults),
                new Main.Scenario("producer_compression", false, 120, ProducerScenarios::compression),
                new Main.Scenario("producer_refusals", false, 120, ProducerScenarios::refusals));
    }

    /**
     * 5,000 keyed records with headers over 3 partitions with the client's defaults (which
     * are idempotent, acks=all): every send acknowledged, offsets dense per partition, the
     * same key always on the same partition, and everything read back exactly as sent.
     */
    static void defaults(Env env) throws Exception {
        String topic = env.name("t");
        env.createTopic(topic, 3, null);
        KafkaProducer<String, String> producer = env.producer(env.producerProps());
        int n = 5000;
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ProducerRecord<String, String> r = new ProducerRecord<>(topic, "key-" + (i % 97), "value-" + i);
            r.headers().add(new RecordHeader("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8)));
            sent.add(producer.send(r));
        }
        producer.flush();
        Map<Integer, List<Long>> offsets = new TreeMap<>();
        Map<String, Integer> partitionOfKey = new HashMap<>();
        for (int i = 0; i < n; i++) {
            RecordMetadata md = sent.get(i).get();
            offsets.computeIfAbsent(md.partition(), p -> new ArrayList<>()).add(md.offset());
            Integer before = partitionOfKey.putIfAbsent("key-" + (i % 97), md.partition());
            check(before == null || before == md.partition(), "a key always lands on one partition");
            check(md.timestamp() > 0, "metadata carries the record's timestamp");
        }
        for (Map.Entry<Integer, List<Long>> e : offsets.entrySet()) {
            List<Long> os = e.getValue();
            for (int i = 0; i < os.size(); i++) {
                checkEq((long) i, os.get(i), "offsets of partition " + e.getKey() + " are 0, 1, 2, ... in send order");
            }
        }
        List<ConsumerRecord<String, String>> got = env.readAll(topic, 3, null);
        checkEq(n, got.size(), "records read back");
        boolean[] seen = new boolean[n];
        for (ConsumerRecord<String, String> r : got) {
            Header h = r.headers().lastHeader("seq");
            check(h != null, "the header came back");
            int i = Integer.parseInt(new String(h.value(), StandardCharsets.UTF_8));
            check(!seen[i], "record " + i + " read once");
            seen[i] = true;
            checkEq("value-" + i, r.value(), "value of record " + i);
            checkEq("key-" + (i % 97), r.key(), "key of record " + i);
            checkEq(partitionOfKey.get(r.key()), r.partition(), "partition of record " + i);
        }
    }

    /** Each codec the client offers, with batches big enough to compress, read back intact. */
    static void compression(Env env) throws Exception {
        for (String codec : List.of("gzip", "snappy", "lz4", "zstd")) {
            String topic = env.name(codec);
            env.createTopic(topic, 1, null);
            Properties p = env.producerProps();
            p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
            int n = 2000;
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < n; i++) {
                    producer.send(new ProducerRecord<>(topic, "k" + i, ("compressible " + codec + " ").repeat(20) + i));
                }
                producer.flush();
            }
            List<ConsumerRecord<String, String>> got = env.readAll(topic, 1, null);
            checkEq(n, got.size(), codec + ": records read back");
            for (int i = 0; i < n; i++) {
                ConsumerRecord<String, String> r = got.get(i);
                checkEq((long) i, r.offset(), codec + ": offset");
                checkEq(("compressible " + codec + " ").repeat(20) + i, r.value(), codec + ": value " + i);
            }
        }
    }

    /** What the broker must refuse, with the exception Kafka's error code maps to. */
    static void refusals(Env env) throws Exception {
        String topic = env.name("small");
        env.createTopic(topic, 1, Map.of("max.message.bytes", "2000"));
        Properties p = env.producerProps();
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "15000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        KafkaProducer<String, String> producer = env.producer(p);
        Throwable tooLarge = failure(() -> producer.send(new ProducerRecord<>(topic, "x".repeat(5000))).get(),
                "a record over the topic's max.message.bytes");
        checkFails(RecordTooLargeException.class, tooLarge, "a record over max.message.bytes");
        // A record that fits still goes through afterwards.
        RecordMetadata ok = producer.send(new ProducerRecord<>(topic, "fits")).get();
        checkEq(0L, ok.offset(), "the first accepted record's offset");
        Throwable badName = failure(() -> producer.send(new ProducerRecord<>("bad/name", "v")).get(),
                "a topic name with '/'");
        checkFails(InvalidTopicException.class, badName, "an invalid topic name");
    }
}
