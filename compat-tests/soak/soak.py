#!/usr/bin/env python3
"""make soak: a bounded soak of one broker (address in argv[1], pid in argv[2]).

For SOAK_SECONDS (default 600) it runs, at once: an idempotent producer at a steady rate
(SOAK_RATE messages/s, default 2,000) to a 4-partition topic, a consumer group member that
reads everything and commits, a second member that joins and leaves the group every 30 s
(rebalances), and an admin loop that creates, uses and deletes a topic every 10 s.
Every 10 s it samples the broker's RSS and open file descriptors (/proc) and the p99 of
produce latency (send to acknowledgement, acks=all) over the last window, and writes one
CSV row to argv[3]. The summary (stdout) compares the first and last thirds.
Every loop is bounded by the deadline."""

import csv
import os
import sys
import threading
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

addr, pid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seconds = int(os.environ.get("SOAK_SECONDS", "600"))
rate = int(os.environ.get("SOAK_RATE", "2000"))
deadline = time.monotonic() + seconds
stop = threading.Event()
lock = threading.Lock()
window_latencies = []
counts = {"produced": 0, "consumed": 0, "rebalances": 0, "topics": 0, "errors": 0}

admin = AdminClient({"bootstrap.servers": addr})
for f in admin.create_topics([NewTopic("soak", 4, 1)]).values():
    f.result()


def produce():
    p = Producer({"bootstrap.servers": addr, "enable.idempotence": True, "linger.ms": 5})
    value = b"x" * 200

    def delivered(err, _msg, sent):
        with lock:
            if err is None:
                window_latencies.append(time.monotonic() - sent)
                counts["produced"] += 1
            else:
                counts["errors"] += 1

    n = 0
    start = time.monotonic()
    while not stop.is_set():
        due = start + n / rate
        now = time.monotonic()
        if due > now:
            time.sleep(min(due - now, 0.05))
            continue
        sent = time.monotonic()
        try:
            p.produce("soak", value, key=str(n % 64), on_delivery=lambda e, m, s=sent: delivered(e, m, s))
        except BufferError:
            p.poll(0.05)
            continue
        n += 1
        p.poll(0)
    p.flush(30)


def consume(group, churn):
    """churn=False: one member for the whole run. churn=True: joins for 15 s, leaves for
    15 s, again and again."""
    while not stop.is_set():
        c = Consumer({"bootstrap.servers": addr, "group.id": group, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 10000, "enable.auto.commit": True,
                      "auto.commit.interval.ms": 1000})
        c.subscribe(["soak"], on_assign=lambda *_: rebalanced())
        until = time.monotonic() + (15 if churn else seconds + 60)
        while not stop.is_set() and time.monotonic() < until:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                with lock:
                    counts["consumed"] += 1
        c.close()
        if churn:
            stop.wait(15)


def rebalanced():
    with lock:
        counts["rebalances"] += 1


def admin_loop():
    i = 0
    while not stop.wait(10):
        name = f"soak-tmp-{i}"
        i += 1
        try:
            for f in admin.create_topics([NewTopic(name, 2, 1)]).values():
                f.result(30)
            p = Producer({"bootstrap.servers": addr})
            for k in range(100):
                p.produce(name, b"y" * 100)
            p.flush(30)
            for f in admin.delete_topics([name]).values():
                f.result(30)
            with lock:
                counts["topics"] += 1
        except Exception as e:  # counted, the soak goes on
            print(f"admin loop: {e}", file=sys.stderr)
            with lock:
                counts["errors"] += 1


def sample():
    status = open(f"/proc/{pid}/status").read()
    rss_kb = int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_kb, fds


threads = [threading.Thread(target=produce), threading.Thread(target=consume, args=("soak-g", False)),
           threading.Thread(target=consume, args=("soak-g", True)), threading.Thread(target=admin_loop)]
for t in threads:
    t.daemon = True
    t.start()

rows = []
started = time.monotonic()
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["elapsed_s", "rss_kb", "open_fds", "p99_produce_ms", "produced", "consumed", "rebalances",
                "topics_created_and_deleted", "errors"])
    while time.monotonic() < deadline:
        time.sleep(min(10, max(0, deadline - time.monotonic())))
        rss_kb, fds = sample()
        with lock:
            lat = sorted(window_latencies)
            window_latencies.clear()
            c = dict(counts)
        p99 = lat[int((len(lat) - 1) * 0.99)] * 1000 if lat else float("nan")
        row = [round(time.monotonic() - started), rss_kb, fds, round(p99, 2), c["produced"], c["consumed"],
               c["rebalances"], c["topics"], c["errors"]]
        rows.append(row)
        w.writerow(row)
        f.flush()
        print(",".join(map(str, row)), flush=True)
stop.set()
for t in threads:
    t.join(60)

# The first window holds the start (topic creation, the first group join): left out of
# the comparison, shown in the CSV.
steady = rows[1:] if len(rows) > 3 else rows
third = max(1, len(steady) // 3)
first, last = steady[:third], steady[-third:]
avg = lambda rs, i: sum(r[i] for r in rs) / len(rs)
span = lambda i: (min(r[i] for r in steady), max(r[i] for r in steady))
print(f"summary: {len(rows)} samples over {seconds} s; produced {rows[-1][4]}, consumed {rows[-1][5]}, "
      f"rebalances {rows[-1][6]}, topics created and deleted {rows[-1][7]}, errors {rows[-1][8]}")
print(f"summary: RSS first third {avg(first, 1) / 1024:.1f} MB, last third {avg(last, 1) / 1024:.1f} MB "
      f"(range {span(1)[0] / 1024:.1f}-{span(1)[1] / 1024:.1f}); open fds {avg(first, 2):.0f} -> {avg(last, 2):.0f} "
      f"(range {span(2)[0]}-{span(2)[1]}); p99 produce latency {avg(first, 3):.2f} -> {avg(last, 3):.2f} ms "
      f"(range {span(3)[0]:.2f}-{span(3)[1]:.2f}), after the first window")
