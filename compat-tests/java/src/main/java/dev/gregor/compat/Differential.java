package dev.gregor.compat;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Predicate;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.TextNode;

import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Errors;

/**
 * The differential runner: the same scripted client sessions ({@link Sessions}) go to
 * Apache Kafka and to Gregor, each on its own connection, and every answer is compared field
 * by field after normalising what must differ ({@link JsonDiff#normalise}). Each difference
 * is either explained by a row of the known-differences file (session glob, path regex,
 * reason) or reported as UNEXPLAINED, which fails the run.
 *
 * <pre>Main differential KAFKA_ADDR GREGOR_ADDR KNOWN_TSV OUT_TSV</pre>
 */
final class Differential {
    private Differential() {}

    /** One step of a session: a request built from what earlier steps learned. */
    @FunctionalInterface
    interface Step {
        /** A {@link Wire.Answer}, or a String describing what happened instead (e.g. "(closed)"). */
        Object run(Ctx c) throws Exception;
    }

    record NamedStep(String name, Step step) {}

    record Session(String name, List<NamedStep> steps) {}

    /** What a session knows on one broker: its connection and values saved from earlier answers. */
    static final class Ctx {
        Wire wire;
        final String address;
        final String suffix;
        final Map<String, Object> vars = new HashMap<>();

        /** The SASL PLAIN user of the connection (password: user + "-pw"), or null. */
        String user;

        Ctx(String address, String suffix) throws IOException {
            this.address = address;
            this.suffix = suffix;
            this.wire = new Wire(address);
        }

        /** Continues on a new connection authenticated as {@code user}; returns "(as USER)". */
        String login(String user) throws IOException {
            this.user = user;
            reconnect();
            return "(as " + user + ")";
        }

        /** A name shared by both brokers' runs of a session. */
        String name(String base) {
            return "diff-" + base + "-" + suffix;
        }

        @SuppressWarnings("unchecked")
        <T> T get(String key) {
            return (T) vars.get(key);
        }

        void reconnect() throws IOException {
            wire.close();
            wire = user == null ? new Wire(address) : Wire.plain(address, user, user + "-pw");
        }

        /**
         * Repeats a request while its answer matches {@code retry} (Kafka's retriable
         * start-up states, e.g. a coordinator still loading), at most 15 s; returns the last.
         */
        Wire.Answer until(ApiMessage request, short version, Predicate<ApiMessage> retry) throws Exception {
            long deadline = System.currentTimeMillis() + 15_000;
            Wire.Answer a = wire.send(request, version);
            while (retry.test(a.body()) && System.currentTimeMillis() < deadline) {
                Thread.sleep(100);
                a = wire.send(request, version);
            }
            return a;
        }
    }

    record Known(Pattern session, Pattern path, String reason) {}

    static List<Known> loadKnown(Path file) throws IOException {
        List<Known> known = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            String[] parts = line.split("\t");
            if (parts.length != 3) {
                throw new IllegalArgumentException("known differences: want session<TAB>path regex<TAB>reason: " + line);
            }
            known.add(new Known(Pattern.compile(glob(parts[0])), Pattern.compile(parts[1]), parts[2]));
        }
        return known;
    }

    private static String glob(String g) {
        return "\\Q" + g.replace("*", "\\E.*\\Q") + "\\E";
    }

    /** The normalised answers of one session on one broker, one per step (or the failure). */
    static List<JsonNode> play(Session s, String address, String suffix) {
        List<JsonNode> out = new ArrayList<>();
        Ctx c;
        try {
            c = new Ctx(address, suffix);
        } catch (IOException e) {
            for (NamedStep ignored : s.steps()) {
                out.add(new TextNode("(cannot connect: " + e + ")"));
            }
            return out;
        }
        for (NamedStep step : s.steps()) {
            try {
                Object r = step.step().run(c);
                out.add(r instanceof Wire.Answer a ? JsonDiff.normalise(JsonDiff.toJson(a.body(), a.version()))
                        : new TextNode(String.valueOf(r)));
            } catch (Exception e) {
                out.add(new TextNode("(failed: " + e.getClass().getSimpleName() + ")"));
                try {
                    c.reconnect();
                } catch (IOException again) {
                    // The next step reports its own failure.
                }
            }
        }
        try {
            c.wire.close();
        } catch (IOException ignored) {
            // Closing is best effort.
        }
        return out;
    }

    static int run(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: Main differential|differential-secure KAFKA_ADDR GREGOR_ADDR KNOWN_TSV OUT_TSV");
            return 2;
        }
        // differential-secure: the addresses are SASL_PLAINTEXT listeners of brokers with ACLs.
        List<Session> sessions = args[0].equals("differential-secure") ? SecureSessions.all() : Sessions.all();
        String kafka = args[1], gregor = args[2];
        List<Known> known = loadKnown(Path.of(args[3]));
        String suffix = UUID.randomUUID().toString().substring(0, 6);
        int steps = 0, same = 0, explained = 0, unexplained = 0;
        boolean[] used = new boolean[known.size()];
        try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(Path.of(args[4]), StandardCharsets.UTF_8))) {
            out.println("session\tstep\tpath\tkafka\tgregor\treason");
            for (Session s : sessions) {
                List<JsonNode> k = play(s, kafka, suffix);
                List<JsonNode> g = play(s, gregor, suffix);
                for (int i = 0; i < s.steps().size(); i++) {
                    steps++;
                    String where = s.name() + "/" + s.steps().get(i).name();
                    List<JsonDiff.Difference> diffs = JsonDiff.diff(k.get(i), g.get(i));
                    String dump = System.getenv("DIFF_DUMP");
                    if (dump != null && where.matches(dump)) {
                        System.out.println("KAFKA  " + where + " " + k.get(i));
                        System.out.println("GREGOR " + where + " " + g.get(i));
                    }
                    if (diffs.isEmpty()) {
                        same++;
                        System.out.println("SAME " + where);
                        continue;
                    }
                    boolean allExplained = true;
                    for (JsonDiff.Difference d : diffs) {
                        String reason = null;
                        for (int j = 0; j < known.size(); j++) {
                            Known kn = known.get(j);
                            if (kn.session().matcher(where).matches() && kn.path().matcher(d.path()).find()) {
                                reason = kn.reason();
                                used[j] = true;
                                break;
                            }
                        }
                        allExplained &= reason != null;
                        out.printf("%s\t%s\t%s\t%s\t%s\t%s%n", s.name(), s.steps().get(i).name(), d.path(),
                                clean(d.kafka()), clean(d.gregor()), reason == null ? "UNEXPLAINED" : reason);
                        if (reason == null) {
                            System.out.printf("DIFF %s %s: kafka=%s gregor=%s%n", where, d.path(), d.kafka(), d.gregor());
                        }
                    }
                    if (allExplained) {
                        explained++;
                        System.out.println("KNOWN " + where + " (" + diffs.size() + " known differences)");
                    } else {
                        unexplained++;
                    }
                }
            }
        }
        for (int j = 0; j < known.size(); j++) {
            if (!used[j]) {
                System.out.println("# unused known difference: " + known.get(j).session() + " " + known.get(j).path());
            }
        }
        System.out.printf("%d steps: %d identical, %d with known differences, %d with unexplained differences%n",
                steps, same, explained, unexplained);
        return unexplained == 0 ? 0 : 1;
    }

    private static String clean(String s) {
        return s.replace('\t', ' ').replace('\n', ' ');
    }

    /** True for the error codes Kafka answers while it is still starting something up. */
    static boolean retriable(short code) {
        Errors e = Errors.forCode(code);
        return e == Errors.COORDINATOR_NOT_AVAILABLE || e == Errors.COORDINATOR_LOAD_IN_PROGRESS
                || e == Errors.NOT_COORDINATOR || e == Errors.LEADER_NOT_AVAILABLE
                || e == Errors.UNKNOWN_TOPIC_OR_PARTITION || e == Errors.NOT_LEADER_OR_FOLLOWER
                || e == Errors.CONCURRENT_TRANSACTIONS;
    }
}
