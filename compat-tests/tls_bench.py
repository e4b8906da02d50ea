#!/usr/bin/env python3
"""TLS against plaintext on one broker (make bench-tls): the same confluent-kafka producer
and consumer (librdkafka with OpenSSL) through a PLAINTEXT and an SSL listener of the same
Gregor, 1 KiB records, acks=all; prints RESULT lines with msgs/s and MB/s per listener and
the TLS/plaintext ratio.

  tls_bench.py PLAINTEXT_ADDR SSL_ADDR CA_PEM [RECORDS]
"""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def produce(conf, topic, n, value):
    p = Producer({**conf, "acks": "all", "linger.ms": 5, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 1_000_000})
    started = time.time()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, value=value, partition=0)
                break
            except BufferError:
                p.poll(0.01)
    left = p.flush(120)
    if left:
        sys.exit(f"{left} records not delivered")
    return time.time() - started


def consume(conf, topic, n):
    c = Consumer({**conf, "group.id": "tls-bench", "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800})
    c.assign([TopicPartition(topic, 0, 0)])
    started = time.time()
    seen = 0
    while seen < n:
        msgs = c.consume(10000, 5.0)
        if not msgs:
            sys.exit(f"consumed {seen} of {n}")
        seen += len(msgs)
    elapsed = time.time() - started
    c.close()
    return elapsed


def main():
    plain, tls, ca = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 500_000
    value = b"x" * 1024
    rates = {}
    for name, conf in [("plaintext", {"bootstrap.servers": plain}),
                       ("tls", {"bootstrap.servers": tls, "security.protocol": "SSL",
                                "ssl.ca.location": ca})]:
        topic = f"bench-{name}"
        p = produce(conf, topic, n, value)
        c = consume(conf, topic, n)
        rates[name] = (n / p, n / c)
        print(f"RESULT tls_bench listener={name} records={n} size=1024 produce_msgs_s={n / p:.0f} "
              f"produce_MB_s={n * 1024 / p / 1e6:.1f} consume_msgs_s={n / c:.0f} consume_MB_s={n * 1024 / c / 1e6:.1f}")
    print(f"RESULT tls_bench_ratio produce_tls_over_plaintext={rates['tls'][0] / rates['plaintext'][0]:.2f} "
          f"consume_tls_over_plaintext={rates['tls'][1] / rates['plaintext'][1]:.2f}")


if __name__ == "__main__":
    main()
