"""confluent-kafka-python against a running Gregor: an independent client for the report card.

Usage: scenarios.py BOOTSTRAP
Prints `PASS|FAIL name seconds` per scenario and a closing `N passed, N failed, N skipped`.
Its scenarios read with assign() (no consumer group; the Java, Go, kafka-python, aiokafka and
kafkajs suites cover groups).
"""

import os
import sys
import time
import uuid

import runner

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

BOOTSTRAP = sys.argv[1]
RUN = uuid.uuid4().hex[:8]


def topic(name):
    return f"py-{name}-{RUN}"


_ADMIN = []


def admin():
    # One client for the whole run: a client destroyed while its futures are pending
    # fails them with _DESTROY.
    if not _ADMIN:
        _ADMIN.append(AdminClient({"bootstrap.servers": BOOTSTRAP}))
    return _ADMIN[0]


def create(name, partitions):
    futures = admin().create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)
    futures[name].result(timeout=30)


def consumer():
    # librdkafka requires a group id, but assign() uses no group API.
    return Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": "py-scenarios",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })


def consume(name, partitions, expected, timeout=30):
    c = consumer()
    c.assign([TopicPartition(name, p, 0) for p in range(partitions)])
    out = []
    deadline = time.time() + timeout
    while len(out) < expected and time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        out.append(m)
    c.close()
    return out


def scenario_admin_create_list_delete():
    name = topic("admin")
    create(name, 3)
    md = admin().list_topics(timeout=10)
    assert name in md.topics, "created topic is listed"
    assert len(md.topics[name].partitions) == 3
    # One broker, or the cluster run.sh started (EXPECTED_BROKERS).
    assert len(md.brokers) == int(os.environ.get("EXPECTED_BROKERS", "1")), md.brokers
    try:
        create(name, 1)
        raise AssertionError("creating an existing topic must fail")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, e
    try:
        create(topic("bad") + "/x", 1)
        raise AssertionError("an invalid name must fail")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.TOPIC_EXCEPTION, e
    futures = admin().delete_topics([name], operation_timeout=10)
    futures[name].result(timeout=30)
    md = admin().list_topics(timeout=10)
    assert name not in md.topics, "deleted topic is gone"


def scenario_produce_consume_keys_headers():
    name = topic("data")
    create(name, 3)
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5})
    acked = {}
    errors = []

    def on_delivery(err, msg):
        if err:
            errors.append(err)
        else:
            acked[msg.key()] = (msg.partition(), msg.offset())

    n = 2000
    for i in range(n):
        p.produce(name, key=f"k{i}".encode(), value=f"v{i}".encode() * (1 + i % 7),
                  headers=[("i", str(i).encode()), ("h", b"x")],
                  timestamp=1_700_000_000_000 + i, on_delivery=on_delivery)
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(30) == 0, "all delivered"
    assert not errors, errors
    assert len(acked) == n
    msgs = consume(name, 3, n)
    assert len(msgs) == n, f"consumed {len(msgs)} of {n}"
    last = {}
    for m in msgs:
        i = int(m.key()[1:])
        assert m.value() == f"v{i}".encode() * (1 + i % 7)
        assert m.headers() == [("i", str(i).encode()), ("h", b"x")], m.headers()
        assert m.timestamp()[1] == 1_700_000_000_000 + i
        assert acked[m.key()] == (m.partition(), m.offset())
        assert m.offset() > last.get(m.partition(), -1), "per-partition order"
        last[m.partition()] = m.offset()


def scenario_list_offsets():
    name = topic("offsets")
    create(name, 1)
    p = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 0})
    for i in range(10):
        p.produce(name, value=b"x", timestamp=1_000_000 + i * 1000)
        p.flush(10)
    tp = TopicPartition(name, 0)
    c = consumer()
    low, high = c.get_watermark_offsets(tp, timeout=10)
    assert (low, high) == (0, 10), (low, high)
    found = c.offsets_for_times([TopicPartition(name, 0, 1_004_500)], timeout=10)
    assert found[0].offset == 5, found
    c.close()
    a = admin()
    specs = {
        OffsetSpec.earliest(): 0,
        OffsetSpec.latest(): 10,
        OffsetSpec.max_timestamp(): 9,
        OffsetSpec.for_timestamp(1_002_000): 2,
    }
    for spec, want in specs.items():
        result = a.list_offsets({tp: spec}, request_timeout=10)[tp].result(timeout=30)
        assert result.offset == want, (spec, result.offset, want)


def main():
    return runner.run("python", runner.scenarios(globals()))


if __name__ == "__main__":
    sys.exit(main())
