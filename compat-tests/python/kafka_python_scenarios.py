"""kafka-python (pure Python, its own protocol code) against a running Gregor.

Usage: kafka_python_scenarios.py BOOTSTRAP
Prints `PASS|FAIL kafka-python NAME SECONDS` per scenario and `N passed, N failed, 0 skipped`.
"""

import sys
import time
import uuid

import runner

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

BOOTSTRAP = sys.argv[1]
RUN = uuid.uuid4().hex[:8]
TOPIC = f"kp-{RUN}"
GROUP = f"kp-group-{RUN}"
ADMIN = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=20000)


def scenario_1_create_and_describe_topic():
    ADMIN.create_topics([NewTopic(TOPIC, 2, 1)])
    assert TOPIC in ADMIN.list_topics()
    (described,) = ADMIN.describe_topics([TOPIC])
    assert len(described["partitions"]) == 2, described


def scenario_2_produce_idempotent_gzip_and_lz4():
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, compression_type="gzip", acks="all", enable_idempotence=True)
    futures = [p.send(TOPIC, key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"x")], partition=i % 2)
               for i in range(20)]
    p.flush()
    offsets = sorted(f.get(10).offset for f in futures)
    p.close()
    assert offsets == sorted(list(range(10)) * 2), offsets
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, compression_type="lz4", acks=1)
    assert p.send(TOPIC, b"lz4", partition=0).get(10).offset == 10
    p.close()


def scenario_3_group_consumes_everything_and_commits():
    c = KafkaConsumer(TOPIC, bootstrap_servers=BOOTSTRAP, group_id=GROUP, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=20000)
    seen = []
    for m in c:
        seen.append((m.partition, m.offset, m.key, m.value, m.headers))
        if len(seen) == 21:
            break
    c.commit()
    committed = {tp.partition: c.committed(tp) for tp in c.assignment()}
    c.close()
    assert len(seen) == 21, seen
    assert (0, 0, b"k0", b"v0", [("h", b"x")]) in seen, seen[:3]
    assert committed == {0: 11, 1: 10}, committed


def scenario_4_offsets_by_time_and_ends():
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    tps = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
    assert c.end_offsets(tps) == {tps[0]: 11, tps[1]: 10}
    assert c.beginning_offsets(tps) == {tps[0]: 0, tps[1]: 0}
    found = c.offsets_for_times({tps[0]: 0})[tps[0]]
    c.close()
    assert found.offset == 0, found


def scenario_5_group_admin():
    groups = [g["group_id"] for g in ADMIN.list_groups()]
    assert GROUP in groups, groups
    described = ADMIN.describe_groups([GROUP])[GROUP]
    assert described["group_state"] == "Empty", described
    offsets = ADMIN.list_group_offsets(GROUP)[GROUP]
    assert offsets[TopicPartition(TOPIC, 0)].offset == 11, offsets


def scenario_6_configs_partitions_records():
    resource = ConfigResource(ConfigResourceType.TOPIC, TOPIC)
    assert ADMIN.alter_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC,
                                               configs={"retention.ms": "3600000"})])
    described = ADMIN.describe_configs([resource])["topic"][TOPIC]
    assert described["retention.ms"]["value"] == "3600000", described["retention.ms"]
    assert described["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG", described["retention.ms"]
    ADMIN.create_partitions({TOPIC: NewPartitions(3)})
    (described,) = ADMIN.describe_topics([TOPIC])
    assert len(described["partitions"]) == 3
    result = ADMIN.delete_records({TopicPartition(TOPIC, 0): 1})
    assert result[TopicPartition(TOPIC, 0)]["low_watermark"] == 1, result


def scenario_7_delete_group_and_topic():
    assert ADMIN.delete_groups([GROUP]) == {GROUP: "OK"}
    ADMIN.delete_topics([TOPIC])
    deadline = time.time() + 10
    while TOPIC in ADMIN.list_topics() and time.time() < deadline:
        time.sleep(0.2)
    assert TOPIC not in ADMIN.list_topics()


def main():
    status = runner.run("kafka-python", runner.scenarios(globals()))
    ADMIN.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
