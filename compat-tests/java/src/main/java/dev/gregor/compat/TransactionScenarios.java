package dev.gregor.compat;

import static dev.gregor.compat.Env.check;
import static dev.gregor.compat.Env.checkEq;
import static dev.gregor.compat.Env.checkFails;
import static dev.gregor.compat.Env.failure;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;

/** Transactions: read_committed visibility, sendOffsetsToTransaction, fencing and the admin view. */
final class TransactionScenarios {
    private TransactionScenarios() {}

    static List<Main.Scenario> all() {
        return List.of(
                new Main.Scenario("txn_read_committed", true, 120, TransactionScenarios::readCommitted),
                new Main.Scenario("txn_consume_transform_produce", false, 180, TransactionScenarios::consumeTransformProduce),
                new Main.Scenario("txn_fencing_and_admin", false, 120, TransactionScenarios::fencingAndAdmin));
    }

    static KafkaProducer<String, String> transactional(Env env, String id) {
        Properties p = env.producerProps();
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "30000");
        KafkaProducer<String, String> producer = env.producer(p);
        producer.initTransactions();
        return producer;
    }

    static Properties isolation(String level) {
        Properties p = new Properties();
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, level);
        return p;
    }

    /**
     * Committed, aborted and committed again: read_committed sees only the committed records;
     * while a transaction is open its end offset stays at the last stable offset.
     */
    static void readCommitted(Env env) throws Exception {
        String topic = env.name("t");
        env.createTopic(topic, 2, null);
        KafkaProducer<String, String> p = transactional(env, env.name("txn"));
        String[][] txns = {{"commit", "a"}, {"abort", "b"}, {"commit", "c"}};
        for (String[] t : txns) {
            p.beginTransaction();
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, i % 2, "k" + i, t[1] + i));
            }
            // abortTransaction drops what is still in the client's buffer: write it first.
            p.flush();
            if (t[0].equals("commit")) {
                p.commitTransaction();
            } else {
                p.abortTransaction();
            }
        }
        // An open transaction holds the last stable offset back.
        Map<TopicPartition, Long> stable = env.endOffsets(topic, 2, "read_committed");
        p.beginTransaction();
        p.send(new ProducerRecord<>(topic, 0, "open", "d0")).get();
        p.send(new ProducerRecord<>(topic, 1, "open", "d1")).get();
        p.flush();
        checkEq(stable, env.endOffsets(topic, 2, "read_committed"), "read_committed end offsets while a transaction is open");
        Map<TopicPartition, Long> uncommitted = env.endOffsets(topic, 2, "read_uncommitted");
        for (TopicPartition tp : stable.keySet()) {
            checkEq(stable.get(tp) + 1, uncommitted.get(tp), "read_uncommitted end offset of " + tp + " includes the open record");
        }
        p.commitTransaction();

        List<ConsumerRecord<String, String>> committed = env.readAll(topic, 2, isolation("read_committed"));
        List<String> values = new ArrayList<>();
        committed.forEach(r -> values.add(r.value()));
        checkEq(22, committed.size(), "read_committed records: " + values);
        check(values.stream().noneMatch(v -> v.startsWith("b")), "no aborted record is read_committed: " + values);
        List<ConsumerRecord<String, String>> all = env.readAll(topic, 2, isolation("read_uncommitted"));
        checkEq(32, all.size(), "read_uncommitted records (aborted ones included, markers not)");
        // Per partition: three transactions of 5 records and a marker, then 1 record and a marker.
        checkEq(Map.of(new TopicPartition(topic, 0), 3 * 6L + 2, new TopicPartition(topic, 1), 3 * 6L + 2),
                env.endOffsets(topic, 2, "read_committed"), "end offsets count the control records");
    }

    /**
     * Read-process-write with the group's offsets in the producer's transaction: one
     * committed round, one aborted round that is then redone; the output has every input
     * record exactly once and the group's committed offset is the input's end.
     */
    static void consumeTransformProduce(Env env) throws Exception {
        String in = env.name("in"), out = env.name("out"), group = env.name("g");
        env.createTopic(in, 1, null);
        env.createTopic(out, 1, null);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(env.producerProps())) {
            for (int i = 0; i < 90; i++) {
                p.send(new ProducerRecord<>(in, "k" + i, Integer.toString(i)));
            }
            p.flush();
        }
        KafkaProducer<String, String> producer = transactional(env, env.name("ctp"));
        Properties cp = env.consumerProps(group);
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "30");
        KafkaConsumer<String, String> consumer = env.consumer(cp);
        consumer.subscribe(List.of(in));
        int round = 0;
        long processedTo = 0;
        long deadline = System.currentTimeMillis() + 90_000;
        while (processedTo < 90 && System.currentTimeMillis() < deadline) {
            ConsumerRecords<String, String> batch = consumer.poll(Duration.ofMillis(200));
            if (batch.isEmpty()) {
                continue;
            }
            producer.beginTransaction();
            Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
            for (ConsumerRecord<String, String> r : batch) {
                producer.send(new ProducerRecord<>(out, r.key(), "x" + r.value()));
                offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
            }
            producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
            if (round++ == 1) {
                producer.abortTransaction();
                // Redo from the last committed offset, as an application does after an abort.
                for (TopicPartition tp : consumer.assignment()) {
                    OffsetAndMetadata c = consumer.committed(java.util.Set.of(tp)).get(tp);
                    consumer.seek(tp, c == null ? 0 : c.offset());
                }
            } else {
                producer.commitTransaction();
                processedTo = Env.last(offsets.values()).offset();
            }
        }
        checkEq(90L, processedTo, "input processed");
        OffsetAndMetadata committed = env.admin().listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get()
                .get(new TopicPartition(in, 0));
        checkEq(90L, committed.offset(), "the group's committed offset");
        List<ConsumerRecord<String, String>> output = env.readAll(out, 1, isolation("read_committed"));
        checkEq(90, output.size(), "output records");
        for (int i = 0; i < 90; i++) {
            checkEq("x" + i, output.get(i).value(), "output record " + i);
        }
    }

    /**
     * A second producer with the same transactional id fences the first; Admin lists and
     * describes an ongoing transaction; Admin.fenceProducers fences a live producer.
     */
    static void fencingAndAdmin(Env env) throws Exception {
        String topic = env.name("t");
        env.createTopic(topic, 1, null);
        String id = env.name("txn");
        KafkaProducer<String, String> first = transactional(env, id);
        first.beginTransaction();
        first.send(new ProducerRecord<>(topic, "k", "first")).get();

        var admin = env.admin();
        Collection<TransactionListing> listings = admin.listTransactions().all().get();
        TransactionListing mine = listings.stream().filter(l -> l.transactionalId().equals(id)).findFirst().orElse(null);
        check(mine != null, "the open transaction is listed: " + listings);
        checkEq(TransactionState.ONGOING, mine.state(), "listed state");
        TransactionDescription d = admin.describeTransactions(List.of(id)).description(id).get();
        checkEq(TransactionState.ONGOING, d.state(), "described state");
        checkEq(java.util.Set.of(new TopicPartition(topic, 0)), d.topicPartitions(), "partitions in the transaction");
        checkEq(30000L, (long) d.transactionTimeoutMs(), "transaction timeout");
        check(d.transactionStartTimeMs().isPresent(), "start time of an ongoing transaction");

        KafkaProducer<String, String> second = transactional(env, id);
        checkFails(ProducerFencedException.class, failure(first::commitTransaction, "commit after being fenced"),
                "the first producer is fenced");
        second.beginTransaction();
        second.send(new ProducerRecord<>(topic, "k", "second")).get();
        second.commitTransaction();
        List<ConsumerRecord<String, String>> got = env.readAll(topic, 1, isolation("read_committed"));
        checkEq(1, got.size(), "only the second producer's record is committed");
        checkEq("second", got.get(0).value(), "committed value");
        checkEq(TransactionState.COMPLETE_COMMIT, admin.describeTransactions(List.of(id)).description(id).get().state(),
                "state after commit");

        second.beginTransaction();
        second.send(new ProducerRecord<>(topic, "k", "third")).get();
        admin.fenceProducers(List.of(id)).all().get();
        Throwable t = failure(second::commitTransaction, "commit after fenceProducers");
        check(t instanceof ProducerFencedException || t instanceof InvalidProducerEpochException,
                "fenceProducers fences the live producer: " + t);
        checkEq(1, env.readAll(topic, 1, isolation("read_committed")).size(), "the fenced transaction is not committed");
    }
}
