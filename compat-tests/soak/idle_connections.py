#!/usr/bin/env python3
"""Broker RSS with N (default 10,000) idle client connections: argv = address, broker pid.
Opens the connections (each sends one ApiVersions request and reads the answer, so each is
accepted and served), holds them for 5 s, samples VmRSS before and after, closes them."""

import os
import resource
import socket
import struct
import sys
import time

addr, pid = sys.argv[1], int(sys.argv[2])
n = int(os.environ.get("IDLE_CONNECTIONS", "10000"))
host, port = addr.rsplit(":", 1)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))


def rss_kb():
    status = open(f"/proc/{pid}/status").read()
    return int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1])


# ApiVersions v0: api key 18, version 0, correlation id 1, client id "idle".
body = struct.pack(">hhih", 18, 0, 1, 4) + b"idle"
request = struct.pack(">i", len(body)) + body
before = rss_kb()
conns = []
for _ in range(n):
    s = socket.create_connection((host, int(port)))
    s.sendall(request)
    size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
    s.recv(size, socket.MSG_WAITALL)
    conns.append(s)
time.sleep(5)
during = rss_kb()
for s in conns:
    s.close()
print(f"idle connections: {n}; broker RSS {before / 1024:.1f} MB before, {during / 1024:.1f} MB with them "
      f"({(during - before) / n:.1f} KB per connection)")
