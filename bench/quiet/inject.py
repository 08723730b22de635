#!/usr/bin/env python3
"""bench/quiet/inject.py: `bench/quiet --inject`. Adds the faults of the heal
scenarios to copies of a recording (bench/quiet/export.py's wide CSV) and
replays each copy through quiet-replay (ippocd's detection path), to see
whether and how fast each fault is caught while the same detector stays quiet
on the clean recording.

The faults are synthetic but shaped like the real ones, written into series
the recording has (a fault whose series are missing is skipped with a
message naming them):

  leak  one app's RSS (apps.memory_rss_bytes{app=...}, the largest long-lived
        one; ippocd itself only when no other app has memory) grows by 2 MiB a minute for 30 minutes and keeps it; memory
        used/anon/committed grow and free/available shrink by as much, and
        memory.used_percent follows;
  hog   one CPU (the least busy cpuN) goes to 100 % busy for 15 minutes (user,
        with 1 % system one second in 7), the
        total by 100/ncpu of that, one more runnable process, load1/5/15
        rise towards +1 (Linux's 1/5/15-minute exponential averages) and
        decay after;
  disk  one filesystem (the largest real one, not tmpfs) has its available
        bytes fall steadily to 0.5 % of its size over 20 minutes and stay
        there; used bytes and percent follow; its disk writes that many more
        bytes per second while it fills;
  hang  one app that was using CPU all along (the one busy in the most
        seconds, not the kernel's threads; ippocd itself only when no other
        app is busy in 5 % of them) stops: its CPU, page-fault and I/O series go flat at 0 and
        stay so (the process is alive: threads, RSS and fds unchanged). The
        recordings have no per-process context switches, so only those
        series move.

A fault starts at --at after the start (default: the warm-up plus 50
minutes, or half-way when the recording is shorter) and a copy runs to 15
minutes after the fault's active part ends. The same span of the clean
recording is replayed too, and as the replay is deterministic, whatever
differs comes from the fault. A fault is caught when one of its series turns
anomalous while the fault is active (from its start to the end of its
ramp, hog or hang: 30, 15, 20 and 15 minutes) in the faulty copy and the
clean copy has no run of that series within a minute of it (so a series that fires anyway,
background, is not counted as a catch); the delay is from the fault's start
to that run's onset and to its notice (the `anomaly` event and the episode,
`for` later: 2 minutes by default); the table names the episode it opened or joined, that
episode's first mover, and the first firing of a fault series in the clean
copy (the background the catch had to stand out from).

Usage: inject.py RECORDING [--replay BIN] [--warmup DUR] [--at MINUTES]
                 [--faults leak,hog,disk,hang] [--config FILE] [--keep DIR]
Prints a markdown table. Standard library only.
"""
import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MIB = 1048576.0
FAULTS = ("leak", "hog", "disk", "hang")


def die(msg):
    print(f"inject.py: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_duration(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", s.strip())
    if not m:
        die(f"'{s}' is not a duration (e.g. 10m, 90s)")
    return float(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, None: 1000}[m.group(2)]


def labels_of(key):
    """{label: value} of a key name{a="x",b="y"} (values without escapes here)."""
    i = key.find("{")
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', key[i + 1:-1])) if i >= 0 else {}


def family(key):
    i = key.find("{")
    return key[:i] if i >= 0 else key


class Recording:
    """A recording in memory: the header's keys and the data lines as text."""

    def __init__(self, path):
        self.path = path
        if path.endswith(".xz"):
            text = subprocess.run(["xz", "-dc", path], check=True, capture_output=True).stdout.decode()
        else:
            with open(path) as f:
                text = f.read()
        lines = text.splitlines()
        if not lines:
            die(f"{path}: empty")
        import csv
        self.header_line = lines[0]
        self.keys = next(csv.reader([lines[0]]))[1:]
        self.col = {k: i + 1 for i, k in enumerate(self.keys)}
        self.lines = lines[1:]
        self.ts = [int(ln[:ln.index(",")]) for ln in self.lines]
        if not self.ts:
            die(f"{path}: no data rows")

    def column(self, key, lo=0, hi=None):
        """Values of one series (None where empty) for rows [lo, hi)."""
        c = self.col[key]
        out = []
        for ln in self.lines[lo:hi]:
            cell = ln.split(",")[c]
            out.append(float(cell) if cell else None)
        return out

    def find(self, fam, **want):
        return [k for k in self.keys if family(k) == fam and all(labels_of(k).get(a) == v for a, v in want.items())]

    def row_at(self, ts):
        """Index of the first row at or after ts."""
        lo, hi = 0, len(self.ts)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ts[mid] < ts:
                lo = mid + 1
            else:
                hi = mid
        return lo


def present_share(vals):
    return sum(v is not None for v in vals) / max(1, len(vals))


def fmt(v):
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return "%.7g" % v


class Fault:
    """One fault: name, a description, t0/t1 (ms) of its active part and a
    function (ts, {key: value}) -> {key: new value} applied to every row from
    t0 to the copy's end."""

    def __init__(self, name, what, t0, active_ms, keys, change):
        self.name, self.what, self.t0, self.t1 = name, what, t0, t0 + active_ms
        self.keys, self.change = keys, change


def is_recorder(app):
    return app.startswith("ippoc")


def pick_leak(rec, t0, i0):
    """The app with the largest RSS present all along; the recorder (ippocd)
    only when no other app has memory."""
    best = None
    for k in rec.find("apps.memory_rss_bytes"):
        app = labels_of(k).get("app", "")
        vals = rec.column(k, 0, i0)
        if present_share(vals) < 0.99 or app == "kernel":
            continue
        med = statistics.median(v for v in vals if v is not None)
        rank = (not is_recorder(app), med)
        if med > 0 and (best is None or rank > best[1]):
            best = (k, rank)
    if not best:
        return None, "no apps.memory_rss_bytes series present all along before the fault"
    app = best[0]
    rate = 2 * MIB / 60000.0  # bytes per ms
    dur = 30 * 60000
    total = rec.column("memory.total_bytes", i0 - 1, i0)[0] if "memory.total_bytes" in rec.col else None
    plus = [k for k in ("memory.used_bytes", "memory.anon_bytes", "memory.committed_as_bytes") if k in rec.col]
    minus = [k for k in ("memory.free_bytes", "memory.available_bytes") if k in rec.col]
    pct = "memory.used_percent" if "memory.used_percent" in rec.col and total else None

    def change(ts, v):
        d = rate * min(ts - t0, dur)
        out = {}
        for k in [app] + plus:
            if v.get(k) is not None:
                out[k] = v[k] + d
        for k in minus:
            if v.get(k) is not None:
                out[k] = max(0.0, v[k] - d)
        if pct and v.get(pct) is not None:
            out[pct] = v[pct] + 100.0 * d / total
        return out
    keys = [app] + plus + minus + ([pct] if pct else [])
    note = " (the recorder: no other app has memory)" if is_recorder(labels_of(app).get("app", "")) else ""
    return Fault("leak", f"`{app}`{note} +2 MiB/min for 30 min (and memory.*)", t0, dur, keys, change), None


def pick_hog(rec, t0, i0):
    cpus = sorted({labels_of(k)["cpu"] for k in rec.find("cpu.usage_percent")
                   if labels_of(k).get("cpu", "").startswith("cpu")})
    if not cpus:
        return None, "no per-CPU cpu.usage_percent{cpu=\"cpuN\",state=...} series"
    idle_mean = {}
    for c in cpus:
        ks = rec.find("cpu.usage_percent", cpu=c, state="idle")
        if ks:
            vals = [v for v in rec.column(ks[0], max(0, i0 - 600), i0) if v is not None]
            if vals:
                idle_mean[c] = statistics.fmean(vals)
    if not idle_mean:
        return None, "no cpu.usage_percent{state=\"idle\"} series"
    cpu = max(idle_mean, key=idle_mean.get)
    ncpu = len(cpus)
    states = {labels_of(k)["state"]: k for k in rec.find("cpu.usage_percent", cpu=cpu)}
    tot = {labels_of(k)["state"]: k for k in rec.find("cpu.usage_percent", cpu="total")}
    dur = 15 * 60000
    loads = [(k, tau) for k, tau in (("load.load1", 60000.0), ("load.load5", 300000.0), ("load.load15", 900000.0))
             if k in rec.col]
    running = "cpu.procs_running" if "cpu.procs_running" in rec.col else None

    def change(ts, v):
        out = {}
        if ts < t0 + dur:  # the hog runs: this CPU all user (a tick of system now and then)
            new = {s: 0.0 for s in states}
            sys_share = 1.0 if (ts // 1000) % 7 == 0 else 0.0
            if "system" in new:
                new["system"] = sys_share
            new["user"] = 100.0 - (sys_share if "system" in new else 0.0)
            for s, k in states.items():
                if v.get(k) is not None:
                    out[k] = new[s]
                    if s in tot and v.get(tot[s]) is not None:
                        out[tot[s]] = max(0.0, v[tot[s]] + (new[s] - v[k]) / ncpu)
            if running and v.get(running) is not None:
                out[running] = v[running] + 1
        for k, tau in loads:  # the exponential averages of one more runnable task
            if v.get(k) is None:
                continue
            el = min(ts - t0, dur)
            add = 1 - math.exp(-el / tau)
            if ts > t0 + dur:
                add *= math.exp(-(ts - t0 - dur) / tau)
            out[k] = v[k] + add
        return out
    keys = list(states.values()) + list(tot.values()) + [k for k, _ in loads] + ([running] if running else [])
    return Fault("hog", f"{cpu} 100 % user for 15 min (of {ncpu} CPUs; total and load follow)", t0, dur, keys,
                 change), None


def pick_disk(rec, t0, i0):
    best = None
    for k in rec.find("fs.avail_bytes"):
        lab = labels_of(k)
        if lab.get("fstype") in ("tmpfs", "devtmpfs", "overlay", "squashfs", "ramfs"):
            continue
        size_k = "fs.size_bytes{" + k[k.index("{") + 1:]
        size = rec.column(size_k, i0 - 1, i0)[0] if size_k in rec.col else None
        avail = rec.column(k, i0 - 1, i0)[0]
        if size and avail is not None and (best is None or size > best[1]):
            best = (k, size, avail)
    if not best:
        return None, "no fs.avail_bytes of a real (non-tmpfs) filesystem with its fs.size_bytes"
    key, size, avail0 = best
    rest = key[key.index("{") + 1:]
    used_k, pct_k = "fs.used_bytes{" + rest, "fs.used_percent{" + rest
    dev = os.path.basename(labels_of(key).get("device", ""))
    wb = [k for k in rec.find("disk.write_bytes_per_second", device=dev)]
    wn = [k for k in rec.find("disk.writes_per_second", device=dev)]
    dur = 20 * 60000
    floor = 0.005 * size
    rate = max(0.0, avail0 - floor) / dur  # bytes per ms

    def change(ts, v):
        out = {}
        if v.get(key) is None:
            return out
        target = max(floor, avail0 - rate * (ts - t0))
        d = max(0.0, v[key] - target)
        out[key] = v[key] - d
        if used_k in rec.col and v.get(used_k) is not None:
            out[used_k] = v[used_k] + d
            if pct_k in rec.col and v.get(pct_k) is not None:
                u = out[used_k]
                out[pct_k] = 100.0 * u / (u + out[key]) if u + out[key] > 0 else v[pct_k]
        if ts < t0 + dur:
            for k in wb:
                if v.get(k) is not None:
                    out[k] = v[k] + rate * 1000
            for k in wn:
                if v.get(k) is not None:
                    out[k] = v[k] + rate * 1000 / 131072
        return out
    keys = [key] + [k for k in (used_k, pct_k) if k in rec.col] + wb + wn
    mount = labels_of(key).get("mountpoint", "?")
    return Fault("disk", f"`{mount}` available {avail0 / 1e9:.1f} GB -> 0.5 % of {size / 1e9:.1f} GB in 20 min "
                 f"({rate * 1000 / MIB:.0f} MiB/s written)", t0, dur, keys, change), None


def pick_hang(rec, t0, i0):
    """The app busy in the most seconds of the last hour (kernel threads do
    not hang like a process); the recorder (ippocd) only when no other app is
    busy in at least 5 % of them."""
    best = None
    for k in rec.find("apps.cpu_percent"):
        app = labels_of(k).get("app", "")
        vals = rec.column(k, max(0, i0 - 3600), i0)
        if present_share(vals) < 0.99 or app == "kernel":
            continue
        busy = sum(1 for v in vals if v) / len(vals)
        rank = (not is_recorder(app) and busy >= 0.05, busy)
        if best is None or rank > best[2]:
            best = (app, busy, rank)
    if not best or best[1] < 0.05:
        return None, "no app was using CPU in at least 5 % of the seconds before the fault"
    app = best[0]
    fams = ("apps.cpu_percent", "apps.cpu_user_percent", "apps.cpu_system_percent", "apps.minor_faults_per_second",
            "apps.major_faults_per_second", "apps.read_bytes_per_second", "apps.write_bytes_per_second")
    keys = [k for f in fams for k in rec.find(f, app=app)]

    def change(ts, v):
        return {k: 0.0 for k in keys if v.get(k) is not None}
    note = ", the recorder: no other app was busy" if is_recorder(app) else ""
    return Fault("hang", f"app `{app}` (busy in {best[1] * 100:.0f} % of the seconds{note}) stops: its CPU, faults "
                 f"and I/O flat at 0", t0, 15 * 60000, keys, change), None


PICK = {"leak": pick_leak, "hog": pick_hog, "disk": pick_disk, "hang": pick_hang}


def write_copy(rec, path, i_end, fault=None):
    cols = [rec.col[k] for k in fault.keys] if fault else []
    with open(path, "w") as f:
        f.write(rec.header_line + "\n")
        for i in range(i_end):
            ln = rec.lines[i]
            if fault and rec.ts[i] >= fault.t0:
                cells = ln.split(",")
                v = {k: (float(cells[c]) if cells[c] else None) for k, c in zip(fault.keys, cols)}
                for k, nv in fault.change(rec.ts[i], v).items():
                    cells[rec.col[k]] = fmt(nv)
                ln = ",".join(cells)
            f.write(ln + "\n")


def replay(binary, path, warmup_ms, name, config=None):
    ep = path + ".episodes"
    extra = ["--config", config] if config else []
    r = subprocess.run([binary, "--warmup", f"{int(warmup_ms)}ms", "--name", name, "--episodes", ep] + extra + [path],
                       capture_output=True, text=True)
    if r.returncode:
        die(f"quiet-replay failed on {path}: {r.stderr.strip()}")
    with open(ep) as f:
        lines = [json.loads(x) for x in f]
    return lines[:-1]


def firings(episodes, keys, t0):
    """(since_ms, key, member, episode) of every fault series' run that began
    at or after t0, in onset order."""
    keys = set(keys)
    out = []
    for e in episodes:
        for m in e["members"]:
            if m["key"] in keys and m["since_ms"] is not None and m["since_ms"] >= t0:
                out.append((m["since_ms"], m["key"], m, e))
    return sorted(out, key=lambda x: (x[0], x[1]))


def caught(faulty, clean, keys, t0, t1, slack_ms=60000):
    """The first firing of a fault series in the faulty copy that the clean
    copy does not have (the same series within slack_ms), while the fault is
    active ([t0, t1)); the first such firing after t1 (the fault's end, e.g. a
    hog that stops, is not a catch); and the first firing of a fault series in
    the clean copy (background, for the table)."""
    base = firings(clean, keys, t0)
    new = [(m, e) for since, key, m, e in firings(faulty, keys, t0)
           if not any(k == key and abs(s - since) <= slack_ms for s, k, _, _ in base)]
    during = [x for x in new if x[0]["since_ms"] < t1]
    after = [x for x in new if x[0]["since_ms"] >= t1]
    return (during[0] if during else None), (after[0] if after else None), (base[0] if base else None)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recording")
    ap.add_argument("--replay", default=os.environ.get("QUIET_REPLAY", os.path.join(ROOT, "build", "bench",
                                                                                    "quiet-replay")))
    ap.add_argument("--warmup", default="10m")
    ap.add_argument("--at", type=float, default=None, help="minutes after the start (default warm-up + 50)")
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--config", default=None, help="an ippocd configuration for quiet-replay's [detect]")
    ap.add_argument("--keep", default=None, help="keep the copies in this directory")
    args = ap.parse_args(argv)
    warmup = parse_duration(args.warmup)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    for f in faults:
        if f not in PICK:
            die(f"--faults: unknown fault '{f}' (known: {', '.join(FAULTS)})")
    if not os.access(args.replay, os.X_OK):
        die(f"{args.replay}: not built (ninja -C build bench/quiet-replay)")
    rec = Recording(args.recording)
    name = os.path.basename(args.recording).split(".csv")[0]
    first, last = rec.ts[0], rec.ts[-1]
    at_ms = args.at * 60000 if args.at is not None else warmup + 50 * 60000
    if args.at is None and first + at_ms > last - 20 * 60000:
        at_ms = max(warmup, (last - first) / 2)
    t0 = (first + int(at_ms)) // 1000 * 1000
    i0 = rec.row_at(t0)
    if i0 < 60 or i0 >= len(rec.ts):
        die(f"{args.recording}: too short for a fault after a {warmup / 60000:.0f}-minute warm-up")
    print(f"### {name}: injected faults (start {(t0 - first) / 60000:.0f} min after the recording's start, "
          f"warm-up {warmup / 60000:.0f} min)\n")
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="quiet-inject.") as tmp:
        work = args.keep or tmp
        os.makedirs(work, exist_ok=True)
        for fname in faults:
            fault, why = PICK[fname](rec, t0, i0)
            if not fault:
                notes.append(f"- {fname}: skipped: {why}")
                rows.append(f"| {fname} | (skipped) | | | | | | |")
                continue
            i_end = rec.row_at(fault.t1 + 15 * 60000)
            clean = os.path.join(work, f"{name}-{fname}-clean.csv")
            copy = os.path.join(work, f"{name}-{fname}.csv")
            write_copy(rec, clean, i_end)
            write_copy(rec, copy, i_end, fault)
            base = replay(args.replay, clean, warmup, f"{name}-{fname}-clean", args.config)
            eps = replay(args.replay, copy, warmup, f"{name}-{fname}", args.config)
            hit, late, bg = caught(eps, base, fault.keys, t0, fault.t1)
            others = sum(1 for x in eps if x["opened_ms"] >= t0) - sum(1 for x in base if x["opened_ms"] >= t0)
            bgtext = f"{bg[1]} ({bg[2]['reason']}, +{(bg[0] - t0) / 1000:.0f} s)" if bg else "none"
            if hit:
                m, e = hit
                delay = (m["since_ms"] - t0) / 1000
                told = m.get("noticed_ms")
                told = f" / {(told - t0) / 1000:.0f} s" if told else ""
                joined = "opened" if e["opened_ms"] >= m["since_ms"] - 1000 else "joined"
                rows.append(f"| {fname} | {fault.what} | **yes** | {delay:.0f} s{told} | {joined} {e['episode']} "
                            f"({len(e['members'])} series) | `{e['first']}` ({e['reason'] or '?'}) | "
                            f"`{m['key']}` ({m['reason']}) | {bgtext} |")
            else:
                lt = (f"(only after its active part: `{late[0]['key']}` ({late[0]['reason']}) at "
                      f"+{(late[0]['since_ms'] - t0) / 1000:.0f} s)") if late else "-"
                rows.append(f"| {fname} | {fault.what} | **no** | - | - | - | {lt} | {bgtext} |")
            if others:
                notes.append(f"- {fname}: {others:+d} episodes after the fault's start against the clean copy")
    print("| fault | what was injected | caught | delay: onset / episode | episode | first mover (reason) | "
          "fault series that fired (reason) | a fault series firing in the clean copy (background) |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if notes:
        print("\n" + "\n".join(notes))
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
