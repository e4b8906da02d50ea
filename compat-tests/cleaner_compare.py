#!/usr/bin/env python3
"""The log cleaner side by side (make bench-cleaner-compare): the same compacted topic, the
same 1 M records over 10 k keys (100-byte values) produced with confluent-kafka to Apache
Kafka and to Gregor (as cleanup.policy=delete, switched to compact once all is written, so
that one cleaning covers the whole log on both), then each broker's own report of its first cleaning of the partition:
Kafka's LogCleaner INFO lines ("... MB of log processed in ... seconds", start and end
size) and Gregor's "cleaned log" line (bytes before and after, ms).

  cleaner_compare.py NAME ADDR LOGFILE [NAME ADDR LOGFILE ...]

Prints one RESULT line per broker and, for two brokers, the ratio of their MB/s.
"""
import re
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                  NewTopic, ResourceType)

RECORDS = 1_000_000
KEYS = 10_000
TOPIC = "cleaner-bench"
SEGMENT_BYTES = 16 * 1024 * 1024
WAIT_S = 180


def create(addr):
    """The topic starts with cleanup.policy=delete (and no retention), so that no cleaner
    touches it while it is produced; `compact` switches it over in one go."""
    admin = AdminClient({"bootstrap.servers": addr})
    topic = NewTopic(TOPIC, num_partitions=1, replication_factor=1, config={
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        "segment.bytes": str(SEGMENT_BYTES),
    })
    for f in admin.create_topics([topic]).values():
        f.result(30)


def compact(addr):
    admin = AdminClient({"bootstrap.servers": addr})
    resource = ConfigResource(ResourceType.TOPIC, TOPIC, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(30)


def produce(addr):
    p = Producer({"bootstrap.servers": addr, "linger.ms": 20, "batch.size": 1_000_000,
                  "compression.type": "none", "acks": "all",
                  "queue.buffering.max.messages": 2_000_000})
    value = b"v" * 100
    started = time.time()
    for n in range(RECORDS):
        key = b"key-%08d" % ((n * 7919) % KEYS)
        while True:
            try:
                p.produce(TOPIC, key=key, value=value, partition=0)
                break
            except BufferError:
                p.poll(0.05)
        if n % 10_000 == 0:
            p.poll(0)
    left = p.flush(120)
    if left:
        sys.exit(f"{left} records not delivered")
    return time.time() - started


def kafka_report(text):
    """Kafka's LogCleaner stats for the topic's partition, or None."""
    num = r"([\d.,]+)"
    m = re.search(r"cleaned log %s-0 .*?%s MB of log processed in %s seconds.*?"
                  r"Start size: %s MB .*?End size: %s MB" % (TOPIC, num, num, num, num), text, re.S)
    if not m:
        return None
    mb, secs, start, end = (float(g.replace(",", "")) for g in m.groups())
    return mb, secs, start, end


def gregor_report(text):
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for line in text.splitlines():
        if "cleaned log" in line and f"partition={TOPIC}-0" in line:
            f = dict(re.findall(r"(\w+)=(\d+)", line))
            before, after, ms = int(f["bytes_before"]), int(f["bytes_after"]), int(f["ms"])
            # Kafka's MB are 1024 * 1024 bytes.
            return before / 2**20, ms / 1000, before / 2**20, after / 2**20
    return None


def main(argv):
    brokers = [argv[i:i + 3] for i in range(0, len(argv), 3)]
    results = {}
    for name, addr, logfile in brokers:
        create(addr)
        produce_s = produce(addr)
        compact(addr)
        report = kafka_report if name == "kafka" else gregor_report
        deadline = time.time() + WAIT_S
        found = None
        while time.time() < deadline and found is None:
            time.sleep(1)
            with open(logfile, errors="replace") as f:
                found = report(f.read())
        if found is None:
            print(f"RESULT cleaner_compare broker={name} error=no-cleaning-reported-within-{WAIT_S}s")
            continue
        mb, secs, start, end = found
        rate = mb / secs if secs > 0 else float("inf")
        results[name] = rate
        print(f"RESULT cleaner_compare broker={name} records={RECORDS} keys={KEYS} produce_s={produce_s:.1f} "
              f"cleaned_MiB={mb:.1f} seconds={secs:.2f} MiB_per_s={rate:.1f} "
              f"size_MiB={start:.1f}->{end:.1f}")
    if len(results) == 2:
        (a, ra), (b, rb) = results.items()
        print(f"RESULT cleaner_compare_ratio {b}_over_{a}={rb / ra:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
