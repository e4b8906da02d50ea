#!/usr/bin/env python3
"""Exit 0 when a Kafka broker at HOST:PORT answers ApiVersions v0 without error (stdlib only)."""
import socket
import struct
import sys

host, port = sys.argv[1].rsplit(":", 1)
with socket.create_connection((host, int(port)), timeout=2) as s:
    # size, api_key 18, version 0, correlation id 1, null client id
    s.sendall(struct.pack(">ihhih", 10, 18, 0, 1, -1))
    head = s.recv(10)
    sys.exit(0 if len(head) >= 10 and struct.unpack(">h", head[8:10])[0] == 0 else 1)
