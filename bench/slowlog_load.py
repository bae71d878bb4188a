#!/usr/bin/env python3
"""Many slow requests at once on the quickstart: does every running report get its stack?

Starts the quickstart (two workers on a 2-core machine), sets `slowlog.threshold.warn` and
`slowlog.stack_interval` to 200ms and `slowlog.stack_repeat` to 3 on its route `slow`, sends N
concurrent `GET /slow?ms=MS` (ROUNDS times), then counts, from `GET /_slowlog`, the running
reports each request got and what their stacks say, and prints `_cat/workers` (its
`longest_poll` is the longest a worker was held, a stack capture included).

    cargo build --example quickstart
    python3 bench/slowlog_load.py [N=100] [MS=1500] [ROUNDS=2] [BIN=target/debug/examples/quickstart]

The slow log keeps the last 1,000 entries: N x ROUNDS x 4 must stay under that.
"""
import collections
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
MS = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
BIN = sys.argv[4] if len(sys.argv) > 4 else "target/debug/examples/quickstart"
assert N * ROUNDS * 4 <= 1000, "more entries than the slow log keeps"

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    PORT = s.getsockname()[1]
tmp = tempfile.TemporaryDirectory()
SOCK = os.path.join(tmp.name, "admin.sock")
env = dict(os.environ, QUICKSTART_ADDR=f"127.0.0.1:{PORT}", UNDERSCORE_SOCKET=SOCK,
           UNDERSCORE_SETTINGS=os.path.join(tmp.name, "settings.json"), RUST_LOG="warn",
           QUICKSTART_UPSTREAM_DOWN=os.path.join(tmp.name, "down"))
server = subprocess.Popen([BIN], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def admin(method, path, body=None):
    cmd = ["curl", "-sS", "--unix-socket", SOCK, "-X", method, f"http://.{path}"]
    if body:
        cmd += ["-H", "Content-Type: application/json", "-d", body]
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def one(name, took):
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    conn.request("GET", f"/slow?ms={MS}", headers={"X-Opaque-Id": name})
    res = conn.getresponse()
    res.read()
    took[name] = (res.status, time.monotonic() - start)


try:
    for _ in range(300):
        if os.path.exists(SOCK) and admin("GET", "/_cat/health"):
            break
        time.sleep(0.1)
    admin("PUT", "/_routes/slow/settings", json.dumps({"transient": {"slowlog": {
        "threshold": {"warn": "200ms"}, "stack_interval": "200ms", "stack_repeat": 3}}}))
    took = {}
    for r in range(ROUNDS):
        threads = [threading.Thread(target=one, args=(f"r{r}-{i}", took)) for i in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # Stacks follow their reports (resolving symbols takes a while): wait for them.
    for _ in range(100):
        entries = json.loads(admin("GET", "/_slowlog?route=slow&size=1000"))["entries"]
        if all(e["stack"] is not None for e in entries if e["running"]):
            break
        time.sleep(0.2)
    reports = collections.defaultdict(list)
    for e in entries:
        if e["running"]:
            reports[e["opaque_id"]].append(e)
    per_request = collections.Counter(len(reports[name]) for name in took)
    stacks = collections.Counter()
    for name in took:
        for e in reports[name]:
            s = e["stack"]
            kind = "missing" if s is None else "stack" if " at " in s else s
            stacks[(e["report"], kind)] += 1
    times = sorted(t for _, t in took.values())
    print(f"{N} concurrent GET /slow?ms={MS}, {ROUNDS} rounds: "
          f"statuses {dict(collections.Counter(s for s, _ in took.values()))}, "
          f"took {times[0]:.3f} to {times[-1]:.3f} s")
    print("running reports per request:", dict(per_request))
    for (n, kind), count in sorted(stacks.items()):
        print(f"  report {n}: {count} x {kind}")
    print(admin("GET", "/_cat/workers?v&h=worker,longest_poll"), end="")
finally:
    server.terminate()
    server.wait()
