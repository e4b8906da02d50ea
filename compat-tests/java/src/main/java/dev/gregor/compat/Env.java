package dev.gregor.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** What a scenario works with: the bootstrap address, unique names and clients it closes after it. */
final class Env implements AutoCloseable {
    final String bootstrap;
    private final String run;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private Admin admin;

    Env(String bootstrap, String scenario) {
        this.bootstrap = bootstrap;
        this.run = scenario.replace('_', '-') + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    /** A name unique to this run: {@code java-<scenario>-<random>-<suffix>}. */
    String name(String suffix) {
        return "java-" + run + "-" + suffix;
    }

    synchronized Admin admin() {
        if (admin == null) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
            admin = own(Admin.create(p));
        }
        return admin;
    }

    Properties producerProps() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        return p;
    }

    KafkaProducer<String, String> producer(Properties p) {
        return own(new KafkaProducer<>(p));
    }

    Properties consumerProps(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        return p;
    }

    KafkaConsumer<String, String> consumer(Properties p) {
        return own(new KafkaConsumer<>(p));
    }

    <T extends AutoCloseable> T own(T c) {
        synchronized (owned) {
            owned.add(c);
        }
        return c;
    }

    void createTopic(String topic, int partitions, Map<String, String> configs) throws Exception {
        NewTopic t = new NewTopic(topic, partitions, (short) 1);
        if (configs != null) {
            t.configs(configs);
        }
        admin().createTopics(List.of(t)).all().get();
    }

    /**
     * Reads every partition of a topic from its start to its end offset as the consumer's
     * isolation level sees it (the last stable offset for read_committed), without a group.
     */
    List<ConsumerRecord<String, String>> readAll(String topic, int partitions, Properties extra) throws Exception {
        Properties p = consumerProps(null);
        if (extra != null) {
            p.putAll(extra);
        }
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            List<ConsumerRecord<String, String>> out = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 60_000;
            while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp)) && System.currentTimeMillis() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            return out;
        }
    }

    /** The end offsets of every partition of a topic, through a short-lived consumer. */
    Map<TopicPartition, Long> endOffsets(String topic, int partitions, String isolation) {
        Properties p = consumerProps(null);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            return new HashMap<>(c.endOffsets(tps));
        }
    }

    static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    static void checkEq(Object expected, Object actual, String what) {
        if (expected == null ? actual != null : !expected.equals(actual)) {
            throw new AssertionError(what + ": expected " + expected + ", got " + actual);
        }
    }

    /** Runs {@code f} and returns the cause it failed with; fails the scenario if it succeeded. */
    static Throwable failure(Callable f, String what) throws InterruptedException {
        try {
            f.call();
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (RuntimeException e) {
            return e;
        } catch (InterruptedException e) {
            throw e;
        } catch (Exception e) {
            return e;
        }
        throw new AssertionError(what + ": expected a failure, but it succeeded");
    }

    /** Fails unless {@code t} is an instance of {@code type}. */
    static void checkFails(Class<? extends Throwable> type, Throwable t, String what) {
        if (!type.isInstance(t)) {
            throw new AssertionError(what + ": expected " + type.getSimpleName() + ", got " + t, t);
        }
    }

    @FunctionalInterface
    interface Callable {
        void call() throws Exception;
    }

    static <T> T last(Collection<T> c) {
        T last = null;
        for (T t : c) {
            last = t;
        }
        return last;
    }

    @Override
    public void close() {
        List<AutoCloseable> all;
        synchronized (owned) {
            all = new ArrayList<>(owned);
            owned.clear();
        }
        for (int i = all.size() - 1; i >= 0; i--) {
            try {
                AutoCloseable c = all.get(i);
                if (c instanceof KafkaConsumer<?, ?> kc) {
                    kc.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(Duration.ofSeconds(5)));
                } else if (c instanceof KafkaProducer<?, ?> kp) {
                    kp.close(Duration.ofSeconds(5));
                } else if (c instanceof Admin a) {
                    a.close(Duration.ofSeconds(5));
                } else {
                    c.close();
                }
            } catch (Exception e) {
                // A client that fails to close does not change the scenario's verdict.
            }
        }
    }
}
