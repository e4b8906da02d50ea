#!/usr/bin/env python3
"""Start-up time of a broker: from spawning the process to its first answer, polled every
0.2 ms: connect and send ApiVersions v0 until a response arrives (a bound port whose accept
loop is not running yet does not count). Prints
`RESULT <label> ms=<median> runs=<n> all=<...>`.

usage: startup.py LABEL RUNS BINARY PORT DATA_DIR [--kill9|--term] [-o KEY=VALUE ...]

Each run starts the broker, waits for the port, then stops it with SIGTERM (a clean
shutdown, the default) or SIGKILL (--kill9: the next start is a crash recovery).
"""
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time


# ApiVersions v0: size, api_key 18, version 0, correlation id 1, client id "s".
API_VERSIONS = struct.pack(">ihhih", 11, 18, 0, 1, 1) + b"s"


def answers(port):
    s = socket.socket()
    s.settimeout(600)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(API_VERSIONS)
        head = s.recv(8)
        return len(head) == 8 and struct.unpack(">i", head[4:8])[0] == 1
    except OSError:
        return False
    finally:
        s.close()


def wait_for_port(port, proc, deadline_s=600):
    start = time.perf_counter()
    while time.perf_counter() - start < deadline_s:
        if proc.poll() is not None:
            sys.exit(f"broker exited with {proc.returncode} before listening")
        if answers(port):
            return
        time.sleep(0.0002)
    sys.exit("broker did not answer in time")


def one_run(binary, port, data_dir, overrides, stop):
    # The HTTP listener on a free port, for builds that have one (bench.sh says).
    http = os.environ.get("GREGOR_HTTP_ARG", "-o http.listen=127.0.0.1:0").split()
    args = [binary, "serve", *http, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
            "--log-level", "warn"]
    for o in overrides:
        args += ["-o", o]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    wait_for_port(port, proc)
    elapsed = (time.perf_counter() - t0) * 1000
    proc.send_signal(signal.SIGKILL if stop == "kill9" else signal.SIGTERM)
    proc.wait(timeout=600)
    return elapsed


def main():
    label, runs, binary, port, data_dir = sys.argv[1:6]
    rest = sys.argv[6:]
    stop = "term"
    overrides = []
    while rest:
        a = rest.pop(0)
        if a == "--kill9":
            stop = "kill9"
        elif a == "--term":
            stop = "term"
        elif a == "-o":
            overrides.append(rest.pop(0))
    times = [one_run(binary, int(port), data_dir, overrides, stop) for _ in range(int(runs))]
    print(f"RESULT {label} ms={statistics.median(times):.1f} runs={len(times)} "
          f"all={','.join(f'{t:.1f}' for t in times)}", flush=True)


if __name__ == "__main__":
    main()
