#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tests/netlab/netns.py - network namespaces for the mesh's network tests.

A Lab is N network namespaces ("nodes", numbered 1..N, address 10.77.0.i/24
on their eth0) joined by veth pairs to a bridge in a hub namespace of their
own, so the machine's own network is never touched. It applies and removes
`tc netem` delay and loss, cuts the lab into partitions (each group's ports
move to a bridge of its own: packets between groups vanish silently, as in a
real partition) and heals them, runs processes inside a node (ip netns exec)
and tears everything down on close(), on leaving a `with` block and at exit,
even when a test fails.

netem is missing from this machine's kernel: run such tests through
tests/netlab/run.sh, which boots Debian's kernel under QEMU. netem_available()
probes the current kernel once (a throwaway namespace and veth);
`netns.py --probe` exits 0 when it has netem (run.sh --direct-if-netem uses
it). Needs root and iproute2 (ip, tc). Stdlib only.
"""

import atexit
import os
import signal
import subprocess
import sys
import time

SUBNET = "10.77.0"
_probe = None


class NetlabError(RuntimeError):
    """A command the lab ran failed; the message names it and its output."""


def _run(argv, check=True):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, check=False)
    if check and p.returncode != 0:
        raise NetlabError("netlab: `%s` failed (exit %d): %s"
                          % (" ".join(argv), p.returncode, p.stdout.strip()))
    return p


def netem_available():
    """True when this kernel can add a netem qdisc (probed once, needs root)."""
    global _probe
    if _probe is None:
        ns = "nlprobe%d" % os.getpid()
        try:
            _probe = (_run(["ip", "netns", "add", ns], check=False).returncode == 0
                      and _run(["ip", "-n", ns, "link", "add", "nlpa", "type", "veth",
                                "peer", "name", "nlpb"], check=False).returncode == 0
                      and _run(["tc", "-n", ns, "qdisc", "add", "dev", "nlpa", "root",
                                "netem", "delay", "1ms"], check=False).returncode == 0)
        except OSError:
            _probe = False
        finally:
            subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
    return _probe


def in_guest():
    """True inside tests/netlab/run.sh's QEMU guest."""
    return os.environ.get("IPPOC_NETLAB") == "1"


class Lab:
    """N namespaces on one bridge; see the module's comment."""

    def __init__(self, n, tag=None):
        if not 1 <= n <= 250:
            raise ValueError("netlab: a lab has 1 to 250 nodes, not %d" % n)
        self.n = n
        self.tag = tag or "nl%d" % os.getpid()
        self.hub = self.tag + "-hub"
        self.procs = []
        self.bridges = ["br0"]
        self.closed = False
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # names and addresses
    def ns(self, i):
        """The namespace name of node i (1..n)."""
        self._check(i)
        return "%s-%d" % (self.tag, i)

    def addr(self, i):
        """Node i's IPv4 address."""
        self._check(i)
        return "%s.%d" % (SUBNET, i)

    def _check(self, i):
        if not 1 <= i <= self.n:
            raise ValueError("netlab: no node %r in a lab of %d" % (i, self.n))

    def _build(self):
        _run(["ip", "netns", "add", self.hub])
        _run(["ip", "-n", self.hub, "link", "set", "lo", "up"])
        _run(["ip", "-n", self.hub, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", self.hub, "link", "set", "br0", "up"])
        for i in range(1, self.n + 1):
            ns = "%s-%d" % (self.tag, i)
            _run(["ip", "netns", "add", ns])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth",
                  "peer", "name", "p%d" % i, "netns", self.hub])
            _run(["ip", "-n", ns, "addr", "add", "%s/24" % self.addr(i), "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", self.hub, "link", "set", "p%d" % i, "master", "br0"])
            _run(["ip", "-n", self.hub, "link", "set", "p%d" % i, "up"])

    # netem
    def netem(self, i, delay_ms=0, loss_pct=0.0, jitter_ms=0, inbound=True):
        """Delay and/or lose node i's outgoing packets (and, with inbound,
        those sent to it too: a 40 ms delay then adds 80 ms to a round trip)."""
        args = []
        if delay_ms:
            args += ["delay", "%gms" % delay_ms]
            if jitter_ms:
                args += ["%gms" % jitter_ms]
        if loss_pct:
            args += ["loss", "%g%%" % loss_pct]
        if not args:
            return self.clear(i)
        self._qdisc(self.ns(i), "eth0", args)
        if inbound:
            self._qdisc(self.hub, "p%d" % i, args)
        else:
            self._qdisc(self.hub, "p%d" % i, None)
        return None

    def clear(self, i):
        """Remove node i's netem, both ways."""
        self._qdisc(self.ns(i), "eth0", None)
        self._qdisc(self.hub, "p%d" % i, None)

    def _qdisc(self, ns, dev, args):
        if args is None:
            _run(["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"], check=False)
        else:
            _run(["tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "netem"] + args)

    # partitions
    def partition(self, *groups):
        """Cut the lab: each group (an iterable of node numbers) gets a bridge
        of its own; nodes named in no group stay on br0 together."""
        self.heal()
        seen = set()
        for g, group in enumerate(groups, start=1):
            br = "br%d" % g
            _run(["ip", "-n", self.hub, "link", "add", br, "type", "bridge"])
            self.bridges.append(br)
            _run(["ip", "-n", self.hub, "link", "set", br, "up"])
            for i in group:
                self._check(i)
                if i in seen:
                    raise ValueError("netlab: node %d is in two groups" % i)
                seen.add(i)
                _run(["ip", "-n", self.hub, "link", "set", "p%d" % i, "master", br])

    def isolate(self, i):
        """Cut node i off from all the others."""
        self.partition([i])

    def heal(self):
        """Put every node back on br0."""
        for i in range(1, self.n + 1):
            _run(["ip", "-n", self.hub, "link", "set", "p%d" % i, "master", "br0"])
        for br in self.bridges[1:]:
            _run(["ip", "-n", self.hub, "link", "del", br])
        self.bridges = ["br0"]

    # processes
    def popen(self, i, argv, **kw):
        """Start argv inside node i (ip netns exec); stopped by close()."""
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(i)] + list(argv),
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def run(self, i, argv, timeout=60, **kw):
        """Run argv inside node i to its end; a CompletedProcess."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        return subprocess.run(["ip", "netns", "exec", self.ns(i)] + list(argv),
                              timeout=timeout, check=False, **kw)

    def stop(self, p, grace=5.0):
        """SIGTERM p's process group, SIGKILL after grace seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if p.poll() is not None:
                return
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            try:
                p.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        """Stop every process started here and delete the namespaces."""
        if self.closed:
            return
        self.closed = True
        for p in self.procs:
            self.stop(p)
        for i in range(1, self.n + 1):
            _run(["ip", "netns", "del", "%s-%d" % (self.tag, i)], check=False)
        _run(["ip", "netns", "del", self.hub], check=False)
        atexit.unregister(self.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_for(cond, timeout, what, step=0.05):
    """Poll cond() until it is true or timeout s pass (then raise naming what)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(step)
    if not cond():
        raise TimeoutError("netlab: %s not within %g s" % (what, timeout))


if __name__ == "__main__":
    if sys.argv[1:] == ["--probe"]:
        ok = netem_available()
        print("netem: %s" % ("available" if ok else "missing"))
        sys.exit(0 if ok else 1)
    print("usage: netns.py --probe  (exit 0 when this kernel has netem)", file=sys.stderr)
    sys.exit(2)
