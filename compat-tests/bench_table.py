#!/usr/bin/env python3
"""Prints the side-by-side table of `make bench-compare` (or `make bench-peers`) from the
harness's RESULT lines tagged with `target=`: one row per figure, a column per target (the
median over rounds), and the ratio of Gregor to each other target, oriented so that > 1 means
Gregor is better (throughput: Gregor / peer; latency, CPU and memory: peer / Gregor).

Usage: bench_table.py RESULTS_FILE [--markdown]
"""
import collections
import re
import statistics
import sys

# (label, RESULT name, key, unit, higher is better)
FIGURES = [
    ("produce 1 KiB, 1 partition", "produce_1KiB_p1_acksall", "MB_s", "MB/s", True),
    ("produce 1 KiB, 8 partitions", "produce_1KiB_p8_acksall", "MB_s", "MB/s", True),
    ("consume 1 KiB from 0, 1 partition", "consume_1KiB_p1_from0", "MB_s", "MB/s", True),
    ("consume 1 KiB from 0, 8 partitions", "consume_1KiB_p8_from0", "MB_s", "MB/s", True),
    ("produce 100 B, 1 partition", "produce_100B_p1_acksall", "msgs_s", "msg/s", True),
    ("p50 at 10 k msg/s", "produce_latency_1KiB_p1_acksall_10000ps", "p50_ms", "ms", False),
    ("p99 at 10 k msg/s", "produce_latency_1KiB_p1_acksall_10000ps", "p99_ms", "ms", False),
    ("p50 at 1 k msg/s", "produce_latency_1KiB_p1_acksall_1000ps", "p50_ms", "ms", False),
    ("p99 at 1 k msg/s", "produce_latency_1KiB_p1_acksall_1000ps", "p99_ms", "ms", False),
    ("broker CPU, produce 1 KiB p1", "produce_1KiB_p1_acksall", "broker_cpu_pct", "% of a core", False),
    ("broker CPU, consume 1 KiB p1", "consume_1KiB_p1_from0", "broker_cpu_pct", "% of a core", False),
    ("broker RSS max, produce 1 KiB p1", "produce_1KiB_p1_acksall", "broker_rss_max_MB", "MB", False),
    ("broker RSS idle", "broker_idle_rss", "kB", "kB", False),
    ("broker RSS after the run", "broker_after_rss", "kB", "kB", False),
]


def parse(path):
    values = collections.defaultdict(list)  # (target, name, key) -> [value]
    targets = []
    for line in open(path):
        if not line.startswith("RESULT "):
            continue
        fields = dict(re.findall(r"(\S+)=(\S+)", line))
        target, name = fields.get("target"), fields.get("name")
        if not target or not name:
            continue
        if target not in targets:
            targets.append(target)
        for k, v in fields.items():
            try:
                values[(target, name, k)].append(float(v))
            except ValueError:
                pass
    return targets, values


def fmt(v):
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.0f}"
    return f"{v:.2f}"


def main():
    path = sys.argv[1]
    markdown = "--markdown" in sys.argv
    targets, values = parse(path)
    if "gregor" not in targets:
        sys.exit("no gregor results in " + path)
    peers = [t for t in targets if t != "gregor"]
    header = ["figure", "unit", "gregor"] + [p for p in peers] + [f"gregor vs {p}" for p in peers]
    rows = []
    for label, name, key, unit, higher in FIGURES:
        med = {t: (statistics.median(values[(t, name, key)]) if values.get((t, name, key)) else None) for t in targets}
        row = [label, unit, fmt(med["gregor"])] + [fmt(med[p]) for p in peers]
        for p in peers:
            g, o = med["gregor"], med[p]
            if g is None or o is None or g == 0 or o == 0:
                row.append("-")
            else:
                row.append(f"{(g / o) if higher else (o / g):.2f}x")
        rows.append(row)
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        for r in [header] + rows:
            print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
    print()
    print("Ratios are oriented so that > 1 means Gregor is better (throughput: Gregor / peer; "
          "latency, CPU, memory: peer / Gregor). Medians over rounds.")


if __name__ == "__main__":
    main()
