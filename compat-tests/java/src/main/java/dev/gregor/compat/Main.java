package dev.gregor.compat;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The Java client scenarios against a running broker (Gregor or Apache Kafka).
 *
 * <pre>
 *   Main scenarios BOOTSTRAP quick|full [NAME...]   run the scenarios (quick: the make-test subset)
 *   Main differential KAFKA GREGOR KNOWN_TSV OUT    the differential runner ({@link Differential})
 * </pre>
 *
 * Prints {@code PASS|FAIL|SKIP name seconds [# reason]} per scenario and a closing
 * {@code N passed, N failed, N skipped}; exits 1 if any scenario failed.
 */
public final class Main {
    /** A named scenario; {@code quick} ones also run in {@code make test}. */
    record Scenario(String name, boolean quick, int timeoutSeconds, Body body) {}

    @FunctionalInterface
    interface Body {
        void run(Env env) throws Exception;
    }

    /** Thrown by a scenario that cannot run here; reported as SKIP with the reason. */
    static final class Skip extends RuntimeException {
        Skip(String reason) {
            super(reason);
        }
    }

    static List<Scenario> all() {
        List<Scenario> s = new ArrayList<>();
        s.addAll(ProducerScenarios.all());
        s.addAll(ConsumerScenarios.all());
        s.addAll(AdminScenarios.all());
        s.addAll(TransactionScenarios.all());
        s.addAll(StreamsScenario.all());
        s.addAll(ShareScenarios.all());
        return s;
    }

    public static void main(String[] args) throws Exception {
        if (args.length >= 2 && args[0].startsWith("differential")) {
            System.exit(Differential.run(args));
        }
        if (args.length < 3 || !args[0].equals("scenarios")) {
            System.err.println("usage: Main scenarios BOOTSTRAP quick|full [NAME...] | Main differential ...");
            System.exit(2);
        }
        String bootstrap = args[1];
        boolean quick = args[2].equals("quick");
        List<String> only = List.of(args).subList(3, args.length);
        Map<String, Scenario> selected = new LinkedHashMap<>();
        for (Scenario sc : all()) {
            if (only.isEmpty() ? (!quick || sc.quick()) : only.contains(sc.name())) {
                selected.put(sc.name(), sc);
            }
        }
        for (String name : only) {
            if (!selected.containsKey(name)) {
                System.err.println("no such scenario: " + name);
                System.exit(2);
            }
        }
        int passed = 0, failed = 0, skipped = 0;
        ExecutorService pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "scenario");
            t.setDaemon(true);
            return t;
        });
        for (Scenario sc : selected.values()) {
            long start = System.nanoTime();
            String word;
            String reason = "";
            Env env = new Env(bootstrap, sc.name());
            Future<?> f = pool.submit(() -> {
                sc.body().run(env);
                return null;
            });
            try {
                f.get(sc.timeoutSeconds(), TimeUnit.SECONDS);
                word = "PASS";
            } catch (TimeoutException e) {
                f.cancel(true);
                word = "FAIL";
                reason = "timeout after " + sc.timeoutSeconds() + " s";
            } catch (java.util.concurrent.ExecutionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof Skip) {
                    word = "SKIP";
                    reason = cause.getMessage();
                } else {
                    word = "FAIL";
                    reason = String.valueOf(cause);
                    cause.printStackTrace(System.err);
                }
            } finally {
                env.close();
            }
            double secs = (System.nanoTime() - start) / 1e9;
            System.out.printf("%s java %s %.1f%s%n", word, sc.name(), secs, reason.isEmpty() ? "" : "  # " + reason.replace('\n', ' '));
            System.out.flush();
            switch (word) {
                case "PASS" -> passed++;
                case "SKIP" -> skipped++;
                default -> failed++;
            }
        }
        System.out.printf("%d passed, %d failed, %d skipped%n", passed, failed, skipped);
        System.exit(failed == 0 ? 0 : 1);
    }
}
