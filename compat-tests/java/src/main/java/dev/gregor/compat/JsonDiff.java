package dev.gregor.compat;

import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;

import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.record.MemoryRecords;
import org.apache.kafka.common.record.Record;
import org.apache.kafka.common.record.RecordBatch;

/**
 * Kafka's JSON form of a message (its generated {@code *JsonConverter}s), with the values
 * that must differ between two brokers normalised, and a field-by-field diff of two such trees.
 */
final class JsonDiff {
    private JsonDiff() {}

    static final ObjectMapper MAPPER = new ObjectMapper();
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    /** A difference at one path: what Kafka said and what Gregor said. */
    record Difference(String path, String kafka, String gregor) {}

    /** The message as Kafka's own JSON converter writes it, records included (base64). */
    static JsonNode toJson(ApiMessage message, short version) {
        try {
            Class<?> converter = Class.forName(message.getClass().getName() + "JsonConverter");
            Method write = converter.getMethod("write", message.getClass(), short.class, boolean.class);
            JsonNode json = (JsonNode) write.invoke(null, message, version, false);
            if (message instanceof FetchResponseData fetch) {
                // The converter writes only the size of the records: decode them here instead.
                for (int t = 0; t < fetch.responses().size(); t++) {
                    var partitions = fetch.responses().get(t).partitions();
                    for (int p = 0; p < partitions.size(); p++) {
                        ObjectNode node = (ObjectNode) json.get("responses").get(t).get("partitions").get(p);
                        node.set("records", decodeRecords((MemoryRecords) partitions.get(p).records()));
                    }
                }
            }
            return json;
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("no JSON converter for " + message.getClass(), e);
        }
    }

    // Fields whose values are identities or clocks of one broker, not behaviour.
    private static final Set<String> IDENTITY = Set.of("clusterId", "topicId", "memberId", "leaderId", "host",
            "port", "producerId", "path", "logDir", "leader");
    private static final Set<String> CLOCK_SUFFIXES = Set.of("Timestamp", "timestamp", "TimeMs", "StartTimeMs",
            "LastTimestamp", "lastTimestamp");
    private static final Set<String> IGNORED = Set.of("throttleTimeMs", "errorMessage", "totalBytes", "usableBytes",
            "partitionSize", "size", "offsetLag", "documentation");

    /**
     * Normalises identities (ids, hosts, ports, producer ids), clocks (timestamps), human
     * text (error messages) and sizes that depend on the file system, keeping whether a
     * value was set (-1, null and empty stay as they are). Record bytes are decoded into
     * batches and records so that they compare field by field.
     */
    static JsonNode normalise(JsonNode node) {
        if (node.isObject()) {
            ObjectNode out = F.objectNode();
            Iterator<Map.Entry<String, JsonNode>> it = node.fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                String k = e.getKey();
                JsonNode v = e.getValue();
                if (IGNORED.contains(k)) {
                    out.put(k, "<ignored>");
                } else if (IDENTITY.contains(k) || isClock(k)) {
                    out.set(k, placeholder(k, v));
                } else if (k.equals("value") && v.isTextual() && looksLikePath(v.asText())) {
                    out.put(k, "<path>");
                } else {
                    out.set(k, normalise(v));
                }
            }
            return out;
        }
        if (node.isArray()) {
            ArrayNode out = F.arrayNode();
            node.forEach(n -> out.add(normalise(n)));
            return out;
        }
        return node;
    }

    private static boolean isClock(String key) {
        for (String s : CLOCK_SUFFIXES) {
            if (key.endsWith(s)) {
                return true;
            }
        }
        return false;
    }

    private static boolean looksLikePath(String s) {
        return s.startsWith("/tmp/") || s.startsWith("/work/") || s.contains("/.work/");
    }

    /** "<set>" for a value that is present, the value itself when it means "none". */
    private static JsonNode placeholder(String key, JsonNode v) {
        if (v.isNull() || (v.isNumber() && v.asLong() < 0) || (v.isTextual() && v.asText().isEmpty())
                || (v.isTextual() && v.asText().equals("AAAAAAAAAAAAAAAAAAAAAA"))) {
            return v;
        }
        return new TextNode("<" + key + ">");
    }

    static JsonNode decodeRecords(MemoryRecords records) {
        ArrayNode batches = F.arrayNode();
        if (records == null) {
            return batches;
        }
        for (RecordBatch b : records.batches()) {
            ObjectNode batch = F.objectNode();
            batch.put("baseOffset", b.baseOffset());
            batch.put("lastOffset", b.lastOffset());
            batch.put("magic", b.magic());
            batch.put("compression", b.compressionType().name);
            batch.put("timestampType", b.timestampType().name);
            batch.put("producerId", b.producerId() < 0 ? b.producerId() + "" : "<producerId>");
            batch.put("producerEpoch", b.producerEpoch());
            batch.put("baseSequence", b.baseSequence());
            batch.put("transactional", b.isTransactional());
            batch.put("control", b.isControlBatch());
            batch.put("partitionLeaderEpoch", b.partitionLeaderEpoch());
            ArrayNode recs = F.arrayNode();
            for (Record r : b) {
                ObjectNode rec = F.objectNode();
                rec.put("offset", r.offset());
                rec.put("timestamp", b.isControlBatch() ? "<time>" : Long.toString(r.timestamp()));
                rec.put("key", r.hasKey() ? text(r.key()) : null);
                rec.put("value", r.hasValue() ? text(r.value()) : null);
                ArrayNode headers = F.arrayNode();
                for (Header h : r.headers()) {
                    headers.add(h.key() + "=" + (h.value() == null ? "null" : new String(h.value(), StandardCharsets.UTF_8)));
                }
                rec.set("headers", headers);
                recs.add(rec);
            }
            batch.set("records", recs);
            batches.add(batch);
        }
        return batches;
    }

    private static String text(ByteBuffer b) {
        byte[] bytes = new byte[b.remaining()];
        b.duplicate().get(bytes);
        return Base64.getEncoder().encodeToString(bytes);
    }

    // Fields that identify an element of an array, in order of preference.
    private static final List<String> KEYS = List.of("apiKey", "name", "topicName", "topic", "partitionIndex",
            "partition", "index", "groupId", "transactionalId", "resourceName", "configName", "key", "brokerId",
            "nodeId", "logDir");

    /** Every difference between two normalised trees, with a readable path per difference. */
    static List<Difference> diff(JsonNode kafka, JsonNode gregor) {
        List<Difference> out = new ArrayList<>();
        diff("", kafka, gregor, out);
        return out;
    }

    private static void diff(String path, JsonNode k, JsonNode g, List<Difference> out) {
        if (k == null || k.isMissingNode()) {
            out.add(new Difference(path, "(absent)", show(g)));
            return;
        }
        if (g == null || g.isMissingNode()) {
            out.add(new Difference(path, show(k), "(absent)"));
            return;
        }
        if (k.isObject() && g.isObject()) {
            Set<String> names = new LinkedHashSet<>();
            k.fieldNames().forEachRemaining(names::add);
            g.fieldNames().forEachRemaining(names::add);
            for (String n : names) {
                diff(path.isEmpty() ? n : path + "." + n, k.get(n), g.get(n), out);
            }
            return;
        }
        if (k.isArray() && g.isArray()) {
            String key = arrayKey(k, g);
            if (key == null) {
                int n = Math.max(k.size(), g.size());
                for (int i = 0; i < n; i++) {
                    diff(path + "[" + i + "]", k.get(i), g.get(i), out);
                }
                return;
            }
            Map<String, JsonNode> km = byKey(k, key), gm = byKey(g, key);
            Set<String> ids = new LinkedHashSet<>(km.keySet());
            ids.addAll(gm.keySet());
            for (String id : ids) {
                diff(path + "[" + key + "=" + id + "]", km.get(id), gm.get(id), out);
            }
            return;
        }
        if (!k.equals(g)) {
            out.add(new Difference(path, show(k), show(g)));
        }
    }

    /** The identifying field shared by every element of both arrays, if any. */
    private static String arrayKey(JsonNode k, JsonNode g) {
        for (String key : KEYS) {
            boolean all = k.size() + g.size() > 0;
            for (JsonNode n : k) {
                all &= n.isObject() && n.has(key) && !n.get(key).isContainerNode();
            }
            for (JsonNode n : g) {
                all &= n.isObject() && n.has(key) && !n.get(key).isContainerNode();
            }
            if (all && unique(k, key) && unique(g, key)) {
                return key;
            }
        }
        return null;
    }

    private static boolean unique(JsonNode array, String key) {
        Set<String> seen = new LinkedHashSet<>();
        for (JsonNode n : array) {
            if (!seen.add(n.get(key).asText())) {
                return false;
            }
        }
        return true;
    }

    private static Map<String, JsonNode> byKey(JsonNode array, String key) {
        Map<String, JsonNode> m = new LinkedHashMap<>();
        for (JsonNode n : array) {
            m.put(n.get(key).asText(), n);
        }
        return m;
    }

    static String show(JsonNode n) {
        if (n == null) {
            return "(absent)";
        }
        String s = n.isContainerNode() ? n.toString() : n.asText();
        return s.length() > 300 ? s.substring(0, 300) + "..." : s;
    }
}
