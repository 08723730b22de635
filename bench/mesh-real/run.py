#!/usr/bin/env python3
"""mesh-real: the mesh simulator (bench/mesh-sim) checked against real
ippocd processes on this machine (issue 15, "Scale": the simulation must
match reality within 20%).

Starts N (30) real ippocd cells of one fleet on 127.0.0.1 (each with its own
temporary state dir, free API and UDP ports, seeds = the first 3 cells,
node ids n0..n29 as mesh-sim names its members, identical explicit [mesh]
timings, sensors every hour and detect, logs, brain and dream off so that N
daemons fit on a small machine), waits until every cell lists all N alive,
then measures:

  bytes:   ippoc_mesh_bytes_sent_total (and packets_out) of the N cells
           over a 60 s window before any join, kill or rekey (swim alone),
           and over 4 windows after the rounds (the long run, two session
           rekey periods); also less the 30 bytes each datagram carries for
           the session (29: header and AEAD tag) and the channel (1), which
           the simulator does not count;
  join:    per round, a newcomer (started unjoined, then given its token
           and SIGHUP: t0) until every one of the N lists it alive: the
           largest ts of the first "mesh.member" alive event about it on
           each cell, minus t0 (99.9% of 30 is all 30);
  failure: the newcomer SIGKILLed at t1, until every one of the N has it
           dead: the largest ts of their "dead" events about it, minus t1.

Then bench/mesh-sim with the same N and timings, loss 0, delay 1 ms (its
smallest step), one run per seed, and a table: real, simulated, ratio, and
whether each is within 20%, with rows that split each quantity where the
two differ. Every process started is stopped at the end, on failure or
interruption too (each daemon is its own process group).

Event timestamps are wall-clock ms written by the cells themselves, so the
API's polling (once a second, one cell at a time) adds nothing to the
figures. Not a test: it measures and prints; its exit status says only
whether it could measure.
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SESSION_OVERHEAD = 30  # bytes per datagram the simulator does not count: 29 session + 1 channel


def log(msg):
    print(f"[mesh-real {time.strftime('%H:%M:%S')}] {msg}", flush=True)


_taken = set()


def free_port(kind):
    """A free 127.0.0.1 port not handed out before in this run (the kernel
    may give a port just closed to the next caller)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _taken:
            _taken.add(port)
            return port


def wait_for(cond, timeout, what, interval=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except (OSError, ValueError, KeyError) as e:
            last = e
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last})" if last else ""))


class Cell:
    """One ippocd: its temp dir, API port, mesh port, process group."""

    def __init__(self, root, name, settings, build):
        self.name = name  # node id: n0, n1, ... as mesh-sim names its members
        self.dir = os.path.join(root, f"cell-{name}")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state)
        self.api_port = free_port(socket.SOCK_STREAM)
        self.mesh_port = free_port(socket.SOCK_DGRAM)
        self.addr = f"127.0.0.1:{self.mesh_port}"
        self.conf = os.path.join(self.dir, "ippoc.conf")
        self.build = build
        self.nice = settings.nice
        self.proc = None
        with open(self.conf, "w") as f:
            f.write(
                "[sense]\ninterval = 1h\n"
                "[detect]\nenabled = no\n"
                "[logs]\nenabled = no\n"
                "[brain]\nenabled = no\n"
                "[dream]\nenabled = no\n"
                f"[mesh]\nenabled = yes\nlisten = {self.addr}\n"
                f"probe_interval_ms = {settings.probe_ms}\nprobe_timeout_ms = {settings.probe_timeout_ms}\n"
                f"gossip_interval_ms = {settings.gossip_ms}\nsuspicion_mult = {settings.suspicion_mult}\n")

    def start(self):
        self.logf = open(os.path.join(self.dir, "ippocd.log"), "ab")
        prio = ["nice", "-n", str(self.nice)] if self.nice else []  # nice execs: the pid stays ippocd's
        self.proc = subprocess.Popen(
            [*prio, os.path.join(self.build, "src/daemon/ippocd"), "--config", self.conf, "--state-dir", self.state,
             "--listen", f"127.0.0.1:{self.api_port}"],
            stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None

    def get(self, path):
        if self.proc.poll() is not None:
            with open(os.path.join(self.dir, "ippocd.log"), "rb") as f:
                tail = f.read()[-600:].decode(errors="replace")
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; its log ends:\n{tail}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}{path}", timeout=10) as r:
            return r.read()

    def json(self, path):
        return json.loads(self.get(path))

    def status(self):
        return self.json("/v1/mesh/status")

    def joined(self):
        st = self.status()
        if not st.get("joined") and st.get("reason") and "mesh join" not in st["reason"]:
            raise RuntimeError(f"{self.name} cannot join: {st['reason']}")
        return st.get("joined")

    def events_after(self, after):
        q = f"/v1/events?type=mesh.member&order=asc&limit=10000&after={after}" if after else \
            "/v1/events?type=mesh.member&order=asc&limit=10000"
        return self.json(q)["events"]

    def last_event_id(self):
        ev = self.json("/v1/events?limit=1")["events"]
        return ev[0]["id"] if ev else 0

    def bytes_sent(self):
        m = re.search(rb"^ippoc_mesh_bytes_sent_total (\d+)$", self.get("/metrics"), re.M)
        if not m:
            raise ValueError(f"{self.name}: no ippoc_mesh_bytes_sent_total on /metrics")
        return int(m.group(1))

    def cpu_ticks(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime


def tool(mesh_tool, *args):
    r = subprocess.run([mesh_tool, *args], capture_output=True, text=True, timeout=30)
    if r.returncode:
        raise RuntimeError(f"mesh-tool {' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout.strip()


def first_event_ts(cell, after, subject, state, since_ms):
    for e in cell.events_after(after):
        p = e.get("payload") or {}
        if p.get("id") == subject and p.get("state") == state and e["ts"] >= since_ms:
            return e["ts"]
    return None


def wait_all(cells, after, subject, state, since_ms, timeout):
    """Per cell, the ts of its first `state` event about subject since
    since_ms; polled one cell at a time, once a second."""
    out = {}
    deadline = time.monotonic() + timeout
    for c in cells:
        out[c.name] = wait_for(lambda: first_event_ts(c, after[c.name], subject, state, since_ms),
                               max(1.0, deadline - time.monotonic()), f"{c.name} to list {subject} {state}", 1.0)
    return out


def machine_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v), idle


def start_fleet(a, root, mesh_tool, cells):
    """Starts the fleet into cells (the caller's list, so that what was
    started is stopped whatever fails here); returns the fleet dir and when
    the starts began."""
    fleet = os.path.join(root, "fleet")
    os.makedirs(fleet)
    tool(mesh_tool, "fleet", fleet)
    cells += [Cell(root, f"n{i}", a, a.build) for i in range(a.nodes)]
    seeds = [c.addr for c in cells[:3]]
    for i, c in enumerate(cells):
        tool(mesh_tool, "invite", fleet, c.state, c.name, *seeds[:min(i, 3)])
    t = time.monotonic()
    for i, c in enumerate(cells):
        c.start()
        if i < 3:  # the seeds first, each listening before the next joins it
            wait_for(c.joined, 30, f"{c.name} to join")
    for c in cells:
        wait_for(c.joined, 60, f"{c.name} to join")
    log(f"{len(cells)} cells started in {time.monotonic() - t:.1f} s; waiting until each lists all alive")
    for c in cells:
        wait_for(lambda: c.status()["members"]["alive"] == a.nodes, 180, f"{c.name} to list {a.nodes} alive", 1.0)
    log(f"converged: every cell lists {a.nodes} alive after {time.monotonic() - t:.1f} s")
    return fleet, t


def one_round(a, r, root, fleet, cells, mesh_tool, extra):
    new = Cell(root, f"n{a.nodes + r}", a, a.build)
    extra.append(new)
    new.start()
    wait_for(lambda: new.status().get("enabled") and not new.status().get("joined"), 30, f"{new.name} to answer")
    seeds = [cells[(r + i) % 3].addr for i in range(a.join_seeds)]
    tool(mesh_tool, "invite", fleet, new.state, new.name, *seeds)
    after = {c.name: c.last_event_id() for c in cells}
    t0 = time.time() * 1000
    new.proc.send_signal(signal.SIGHUP)
    alive = wait_all(cells, after, new.name, "alive", t0 - 1, 60)
    join = [(ts - t0) / 1000 for ts in alive.values()]
    first = min(join)  # the seed: SIGHUP, reload, first-contact handshake, join
    log(f"round {r}: {new.name} alive on all {len(cells)} after {max(join):.2f} s (on the first, its seed, "
        f"after {first:.3f} s; median {statistics.median(join):.2f})")

    after = {c.name: c.last_event_id() for c in cells}
    t1 = time.time() * 1000
    new.stop(signal.SIGKILL)
    dead = wait_all(cells, after, new.name, "dead", t1, 180)
    suspects = [first_event_ts(c, after[c.name], new.name, "suspect", t1) for c in cells]
    suspects = [s for s in suspects if s]
    fail = [(ts - t1) / 1000 for ts in dead.values()]
    sus = (min(suspects) - t1) / 1000 if suspects else float("nan")
    log(f"round {r}: SIGKILLed {new.name} dead on all after {max(fail):.2f} s (first suspicion {sus:.2f} s)")

    return {"join": max(join), "join_first": first, "join_spread": max(join) - first, "dead": max(fail),
            "suspect": sus}


def quiet_window(a, w, cells):
    """Bytes and datagrams sent by the cells over one quiet window."""
    b0 = {c.name: c.bytes_sent() for c in cells}
    p0 = {c.name: c.status()["packets_out"] for c in cells}
    cpu0 = sum(c.cpu_ticks() for c in cells)
    m0 = machine_cpu()
    t = time.monotonic()
    time.sleep(a.quiet_s)  # the measuring window itself, not a wait for an event
    t_end = time.monotonic()
    dt = t_end - t
    b1 = {c.name: c.bytes_sent() for c in cells}
    p1 = {c.name: c.status()["packets_out"] for c in cells}
    cpu1 = sum(c.cpu_ticks() for c in cells)
    m1 = machine_cpu()
    sent = sum(b1[k] - b0[k] for k in b0)
    pkts = sum(p1[k] - p0[k] for k in p0)
    bps = sent / len(cells) / dt
    bps_swim = (sent - SESSION_OVERHEAD * pkts) / len(cells) / dt
    cells_cpu = (cpu1 - cpu0) / os.sysconf("SC_CLK_TCK") / dt * 100
    busy = 100 * (1 - (m1[1] - m0[1]) / max(1, m1[0] - m0[0]))
    log(f"window {w}: {bps:.0f} B/node/s ({bps_swim:.0f} without session overhead, {pkts / len(cells) / dt:.1f} "
        f"datagrams/node/s) over {dt:.0f} s; "
        f"the {len(cells)} cells used {cells_cpu:.1f}% of one core, machine {busy:.0f}% busy, "
        f"load {os.getloadavg()[0]:.2f}")
    return {"bps": bps, "bps_swim": bps_swim, "pps": pkts / len(cells) / dt, "cells_cpu": cells_cpu,
            "busy": busy}


def run_sim(a, seed):
    args = [os.path.join(a.build, "bench/mesh-sim"), "--nodes", str(a.nodes), "--loss", "0",
            "--minutes", str(a.sim_minutes), "--delay-min", str(a.sim_delay), "--delay-max", str(a.sim_delay),
            "--seed", str(seed), "--probe-ms", str(a.probe_ms), "--probe-timeout-ms", str(a.probe_timeout_ms),
            "--gossip-ms", str(a.gossip_ms), "--suspicion-mult", str(a.suspicion_mult),
            "--id-len", str(len(str(a.nodes - 1)) + 1)]  # simreal: ids as long as the cells' n0..nN-1
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise RuntimeError(f"mesh-sim failed: {r.stderr.strip()}")
    lines = r.stdout.splitlines()
    at = next((i for i, ln in enumerate(lines) if ln.split()[:2] == ["nodes", "loss"]), None)
    if at is None or at + 1 >= len(lines):
        raise RuntimeError(f"mesh-sim printed no table:\n{r.stdout}")
    head = lines[at].split()
    row = dict(zip(head, lines[at + 1].split()))
    if len(row) != len(head) or not {"join999", "dead999", "suspect", "B/node/s"} <= set(row):
        raise RuntimeError(f"mesh-sim's table has no join999/dead999/suspect/B/node/s:\n{r.stdout}")
    num = lambda k: float(row[k]) if row[k] != "-" else float("nan")  # noqa: E731
    return {"join": num("join999"), "dead": num("dead999"), "suspect": num("suspect"), "bps": num("B/node/s")}


def summary(xs):
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return float("nan"), "-"
    return statistics.mean(xs), f"{min(xs):.2f}-{max(xs):.2f}" if max(xs) < 100 else f"{min(xs):.0f}-{max(xs):.0f}"


def table(a, real, windows, base, sim, load):
    for x in real + sim:
        x["confirm"] = x["dead"] - x["suspect"]
    for x in sim:
        x["join_spread"] = x["join"]  # its newcomer is on its seed's list one delay after it starts
    rows = [(f"join known alive by all (99.9%) of {a.nodes}, s", real, "join", "join"),
            ("SIGKILLed cell known dead by all, s", real, "dead", "dead"),
            ("bytes sent per node per second (long run: the windows after the rounds)", windows, "bps", "bps"),
            ("(why join differs) from its seed listing it to all, s", real, "join_spread", "join_spread"),
            ("(why dead differs) SIGKILL to the first suspicion, s", real, "suspect", "suspect"),
            ("(why dead differs) first suspicion to dead on all, s", real, "confirm", "confirm"),
            ("(why bytes differ) window before any join, kill or rekey, raw", base, "bps", "bps"),
            ("(why bytes differ) the same less 30 B per datagram (session, channel)", base, "bps_swim", "bps"),
            ("(why bytes differ) long-run windows less 30 B per datagram", windows, "bps_swim", "bps")]
    out = [f"mesh-real {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {a.nodes} real ippocd cells vs "
           f"mesh-sim {a.nodes} nodes; probe {a.probe_ms}/{a.probe_timeout_ms} ms, gossip {a.gossip_ms} ms, "
           f"suspicion_mult {a.suspicion_mult}; {len(real)} join+kill rounds and {len(windows)} quiet windows of "
           f"{a.quiet_s:.0f} s real, {len(sim)} simulator seeds (loss 0, delay {a.sim_delay} ms, "
           f"{a.sim_minutes:g} min steady run){f'; cells at nice {a.nice}' if a.nice else ''}; "
           f"load average {load[0]:.2f} at start, {load[1]:.2f} at end",
           "",
           "| quantity | real mean | real range | sim mean | sim range | real/sim | within 20% |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for label, src, rk, sk in rows:
        if not src:
            continue
        rm, rr = summary([x[rk] for x in src])
        sm, sr = summary([x[sk] for x in sim])
        ratio = rm / sm if sm else float("nan")
        ok = "yes" if abs(ratio - 1) <= 0.2 else "**no**"
        fmt = "{:.0f}" if rk.startswith("bps") else "{:.2f}"
        out.append(f"| {label} | {fmt.format(rm)} | {rr} | {fmt.format(sm)} | {sr} | {ratio:.2f} | {ok} |")
    allw = base + windows
    cpu = statistics.mean(x["cells_cpu"] for x in allw)
    busy = statistics.mean(x["busy"] for x in allw)
    out += ["", "Quiet windows, B/node/s (datagrams/node/s): "
            + ", ".join(f"{w['bps']:.0f} ({w['pps']:.1f})" for w in allw)
            + (" (the first before any join, kill or rekey)" if base else "")
            + f". The {a.nodes} cells used {cpu:.1f}% of one core together; the whole machine was {busy:.0f}% "
            f"busy ({os.cpu_count()} cores). Real join per round, to its seed / to all: "
            + ", ".join(f"{x['join_first']:.3f}/{x['join']:.2f}" for x in real) + " s; dead: "
            + ", ".join(f"{x['dead']:.2f}" for x in real) + " s."]
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=30, help="real cells (and simulated nodes); default 30")
    p.add_argument("--rounds", type=int, default=6, help="join + kill rounds; default 6")
    p.add_argument("--windows", type=int, default=4,
                   help="quiet windows for the bytes, one after another; default 4 (2 rekey periods)")
    p.add_argument("--quiet-s", type=float, default=60, help="one bytes window, seconds; default 60")
    p.add_argument("--gap-s", type=float, default=0,
                   help="pause between rounds, seconds (32: no member dead for less than 30 s at a join)")
    p.add_argument("--probe-ms", type=int, default=1000)
    p.add_argument("--probe-timeout-ms", type=int, default=500)
    p.add_argument("--gossip-ms", type=int, default=200)
    p.add_argument("--suspicion-mult", type=int, default=4)
    p.add_argument("--join-seeds", type=int, default=1, choices=(1, 2, 3),
                   help="seeds the newcomer's token names (mesh-sim joins through one); default 1")
    p.add_argument("--sim-seeds", type=int, default=20, help="mesh-sim runs, seeds 1..N; default 20")
    p.add_argument("--sim-delay", type=int, default=1, help="mesh-sim one-way delay, ms; default 1 (its step)")
    p.add_argument("--sim-minutes", type=float, default=1, help="mesh-sim's steady run; default 1")
    p.add_argument("--nice", type=int, default=0,
                   help="run the cells at this nice value (negative: root), to see what CPU contention costs")
    p.add_argument("--build", default=os.environ.get("BUILD", "build"), help="the plain build dir; default build")
    p.add_argument("--out", default="bench/out", help="where the table is written; default bench/out")
    p.add_argument("--keep", action="store_true", help="keep the temporary dir (configs, logs)")
    a = p.parse_args()
    if a.nodes < 4 or a.rounds < 1 or a.windows < 1 or a.probe_timeout_ms >= a.probe_ms:
        p.error("need --nodes >= 4, --rounds >= 1, --probe-timeout-ms < --probe-ms")
    mesh_tool = os.path.join(a.build, "tests/mesh/mesh-tool")
    for f in (os.path.join(a.build, "src/daemon/ippocd"), mesh_tool, os.path.join(a.build, "bench/mesh-sim")):
        if not os.access(f, os.X_OK):
            sys.exit(f"mesh-real: {f} is missing: build first (meson setup {a.build} && ninja -C {a.build})")
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, lambda *_: sys.exit(1))

    load0 = os.getloadavg()[0]
    log(f"load average {os.getloadavg()}")
    root = tempfile.mkdtemp(prefix="ippoc-meshreal.")
    cells, extra, real, windows, base = [], [], [], [], []
    try:
        fleet, t_up = start_fleet(a, root, mesh_tool, cells)
        # first contacts (XX handshakes) are over once each cell has probed
        # each other (one round-robin, N probe intervals); the first rekey is
        # due 120 s after they began: a window between holds swim alone
        settle = a.nodes * a.probe_ms / 1000 + 5
        time.sleep(max(0.0, t_up + settle - time.monotonic()))  # a phase of the timers, no event to wait on
        if time.monotonic() + a.quiet_s < t_up + 115:
            base.append(quiet_window(a, "before any join, kill or rekey", cells))
        else:
            log("no baseline window: it would not end before the first rekey (shorten --quiet-s)")
        for r in range(a.rounds):
            if r and a.gap_s:
                time.sleep(a.gap_s)  # let the last dead member age out of swim's gossip to the dead (30 s)
            real.append(one_round(a, r, root, fleet, cells, mesh_tool, extra))
        for w in range(a.windows):
            windows.append(quiet_window(a, w, cells))
    finally:
        for c in extra + cells:
            c.stop(signal.SIGKILL)
        if a.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    load1 = os.getloadavg()[0]
    log(f"every cell stopped; mesh-sim, {a.sim_seeds} seeds")
    sim = [run_sim(a, s) for s in range(1, a.sim_seeds + 1)]
    text = table(a, real, windows, base, sim, (load0, load1))
    print("\n" + text)
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, f"mesh-real-{time.strftime('%Y%m%d-%H%M%S')}.md")
    with open(path, "w") as f:
        f.write(text + "\n")
    log(f"written to {path}")


if __name__ == "__main__":
    main()
