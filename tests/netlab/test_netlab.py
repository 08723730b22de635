#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tests/netlab/test_netlab.py - the netlab's self-test: two namespaces
joined through the lab's bridge, a UDP echo between them (real sockets,
real processes in each namespace), and what netem and a partition do to it.
Run through tests/netlab/run.sh (meson test netlab, before test_mesh_netns.py), which boots a
kernel that has netem; exit 77 where there is no netem or no root.

The bounds cannot flake on a loaded machine: a delay only grows under load
(so RTT >= 80 ms with 40 ms each way is exact, and a small RTT is checked on
the fastest of 20 packets), 50% loss over 200 packets lands in 25%..75%
with probability 1 - 1e-12, and a partition that lets one packet through
is a bug."""

import json
import os
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

ECHO = """import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
print(s.getsockname()[1], flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""

# python3 -c PING HOST PORT COUNT GAP_S QUIET_S NONCE: sends COUNT packets
# GAP_S apart, collects echoes until all are back or QUIET_S pass with none
# after the last send, prints {"sent", "received", "rtt_ms"} as JSON.
PING = """import json, select, socket, sys, time
host, port, count, gap, quiet, nonce = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
    float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
sent_at, rtt = {}, {}
i, next_send = 0, time.monotonic()
last = next_send
while True:
    now = time.monotonic()
    if i < count and now >= next_send:
        sent_at[i] = now
        try:
            s.send(("%s %d" % (nonce, i)).encode())
        except OSError:
            pass
        i += 1
        next_send += gap
        last = now
        continue
    wait = next_send - now if i < count else last + quiet - now
    if i >= count and (wait <= 0 or len(rtt) == count):
        break
    if select.select([s], [], [], max(0.0, wait))[0]:
        try:
            data = s.recv(2048).decode().split()
        except OSError:
            continue
        t = time.monotonic()
        if len(data) == 2 and data[0] == nonce and int(data[1]) in sent_at:
            rtt.setdefault(int(data[1]), (t - sent_at[int(data[1])]) * 1000.0)
            last = t
print(json.dumps({"sent": i, "received": len(rtt), "rtt_ms": sorted(rtt.values())}))
"""

failures = []
phase_no = [0]
T0 = time.monotonic()


def check(cond, what):
    print("%s %s [%.1f s]" % ("ok" if cond else "not ok", what, time.monotonic() - T0), flush=True)
    if not cond:
        failures.append(what)


def start_echo(lab, i):
    p = lab.popen(i, [sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True)
    if not select.select([p.stdout], [], [], 60)[0]:
        raise TimeoutError("netlab: the echo server in node %d did not start within 60 s" % i)
    return int(p.stdout.readline())


def ping(lab, port, count, gap, quiet):
    phase_no[0] += 1
    nonce = "p%d-%d" % (os.getpid(), phase_no[0])
    r = lab.run(1, [sys.executable, "-c", PING, lab.addr(2), str(port), str(count),
                    str(gap), str(quiet), nonce], timeout=120 + count * gap + quiet)
    if r.returncode != 0:
        raise RuntimeError("netlab: the ping in node 1 failed: %s" % r.stderr)
    return json.loads(r.stdout)


def main():
    if os.geteuid() != 0:
        print("netlab: SKIP: needs root (ip netns)")
        return 77
    if not netns.netem_available():
        print("netlab: SKIP: this kernel has no netem; run through tests/netlab/run.sh")
        return 77
    lab = netns.Lab(2)
    names = [lab.ns(1), lab.ns(2), lab.hub]
    try:
        port = start_echo(lab, 2)

        r = ping(lab, port, 20, 0.02, 2.0)
        check(r["received"] == 20, "no netem: 20 of 20 echoes came back (%d)" % r["received"])
        fast = r["rtt_ms"][0] if r["rtt_ms"] else 1e9
        check(fast < 40.0, "no netem: the fastest RTT is small (%.2f ms < 40)" % fast)

        lab.netem(1, delay_ms=40)
        r = ping(lab, port, 20, 0.02, 2.0)
        check(r["received"] == 20, "delay 40 ms: 20 of 20 echoes came back (%d)" % r["received"])
        low = r["rtt_ms"][0] if r["rtt_ms"] else 0.0
        check(low >= 79.5, "delay 40 ms each way: every RTT >= 80 ms (min %.2f ms)" % low)

        lab.clear(1)
        r = ping(lab, port, 20, 0.02, 2.0)
        fast = r["rtt_ms"][0] if r["rtt_ms"] else 1e9
        check(r["received"] == 20 and fast < 40.0,
              "netem removed: 20 of 20 back, fastest %.2f ms < 40" % fast)

        lab.netem(1, loss_pct=50, inbound=False)
        r = ping(lab, port, 200, 0.005, 2.0)
        lost = 100.0 * (r["sent"] - r["received"]) / r["sent"]
        check(25.0 <= lost <= 75.0, "loss 50%%: %.1f%% of 200 lost (25..75)" % lost)
        lab.clear(1)

        lab.isolate(1)
        r = ping(lab, port, 20, 0.02, 2.0)
        check(r["received"] == 0, "partition: 0 of 20 echoes crossed it (%d)" % r["received"])

        lab.heal()
        r = ping(lab, port, 20, 0.02, 2.0)
        check(r["received"] == 20, "healed: 20 of 20 echoes came back (%d)" % r["received"])
    finally:
        lab.close()
    left = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True,
                          check=False).stdout
    check(not any(n in left.split() for n in names), "close() removed the namespaces")
    if failures:
        print("netlab: FAIL: %d check(s) failed" % len(failures))
        return 1
    print("netlab: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
