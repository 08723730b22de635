#!/usr/bin/env python3
"""measure.py: the measuring half of bench/overhead/run.sh (python3 stdlib only).

run.sh starts and stops the agents; this file measures one of them:

  measure.py freeport                 print a free TCP port on 127.0.0.1
  measure.py wait-http URL [--timeout S]
                                      wait until GET URL answers 200
  measure.py window --kind K --pid PID --seconds N --warmup W --out FILE.json
                    [--url BASE] [--http-log FILE] [--version V]
                                      warm up, then measure one window
  measure.py stop PID [--timeout S]   SIGTERM a process, then whatever is left
                                      of its tree; SIGKILL after the timeout
  measure.py report --md FILE.md RESULT.json...
                                      the final table and the ratios
  measure.py kick-ifaces IFACE...     send one raw frame on each interface (no
                                      address needed), so its counters are not 0
  measure.py scale-report --md FILE.md --procs N --cgroups N --ifaces N
                    AGENT:BASE.json:SCALE.json...
                                      how each agent grew under --scale

CPU over a window is taken from /proc/PID/stat of every process in the agent's
tree (the root and all its descendants, found by walking PPid links):

    S(t) = sum over live tree members of utime + stime + cutime + cstime

A child that exits and is reaped by its parent moves its own and its reaped
descendants' times into the parent's cutime/cstime, so S(t) keeps counting
processes that exited during the window, and a child born during the window
is counted from zero. CPU% = (S(t1) - S(t0)) / CLK_TCK / (t1 - t0) * 100, as
% of one core. The tree is also sampled every second to count the children
seen, the peak RSS and any socket to a non-loopback address.
"""
import argparse
import json
import os
import signal
import socket
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---- /proc helpers ---------------------------------------------------------------

def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def stat_of(pid):
    """(comm, state, ppid, cpu_ticks_incl_reaped_children, starttime) or None."""
    try:
        s = read("/proc/%d/stat" % pid)
    except OSError:
        return None
    lp, rp = s.find("("), s.rfind(")")
    comm = s[lp + 1:rp]
    f = s[rp + 2:].split()
    # f[0]=state f[1]=ppid f[11]=utime f[12]=stime f[13]=cutime f[14]=cstime f[19]=starttime
    ticks = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return comm, f[0], int(f[1]), ticks, int(f[19])


def all_procs():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = stat_of(int(d))
            if st:
                out[int(d)] = st
    return out


def tree(root, procs=None):
    """{pid: stat} for root and every descendant."""
    procs = procs if procs is not None else all_procs()
    if root not in procs:
        return {}
    kids = {}
    for pid, st in procs.items():
        kids.setdefault(st[2], []).append(pid)
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        if p in out or p not in procs:
            continue
        out[p] = procs[p]
        todo.extend(kids.get(p, []))
    return out


def uptime_ticks():
    return float(read("/proc/uptime").split()[0]) * CLK_TCK


def status_kb(pid, key):
    try:
        for line in read("/proc/%d/status" % pid).splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    try:
        for line in read("/proc/%d/smaps_rollup" % pid).splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def schedstat_ns(pids):
    """{pid: run time in ns of its live threads}, from /proc/PID/task/*/schedstat."""
    out = {}
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        tot = 0
        for t in tids:
            try:
                tot += int(read("/proc/%d/task/%s/schedstat" % (pid, t)).split()[0])
            except (OSError, ValueError, IndexError):
                pass
        out[pid] = tot
    return out


def by_name(tr):
    out = {}
    for st in tr.values():
        out[st[0]] = out.get(st[0], 0) + st[3]
    return out


def machine_busy_ticks():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    f = [int(x) for x in read("/proc/stat").splitlines()[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    total = sum(f[:8])
    return total - idle, total


# ---- sockets: is anything talking to a non-loopback address? ---------------------

def _addr_is_local(hexaddr):
    ip, _port = hexaddr.split(":")
    if len(ip) == 8:  # IPv4, little-endian
        first = int(ip[6:8], 16)
        return first == 127 or int(ip, 16) == 0
    # IPv6: ::, ::1, ::ffff:127.x.x.x
    if int(ip, 16) == 0:
        return True
    if ip == "00000000000000000000000001000000":
        return True
    if ip.startswith("0000000000000000FFFF0000") and int(ip[30:32], 16) == 127:
        return True
    return False


def foreign_sockets(pids):
    """Sockets of pids whose remote end is neither loopback nor unset."""
    inodes = {}
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    ln = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if ln.startswith("socket:["):
                    inodes[ln[8:-1]] = pid
        except OSError:
            continue
    if not inodes:
        return []
    bad = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = read("/proc/net/" + proto).splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[9] in inodes and not _addr_is_local(f[2]):
                bad.append("%s pid %d -> %s" % (proto, inodes[f[9]], f[2]))
    return bad


# ---- HTTP (loopback only) ----------------------------------------------------------

def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def http_json(url, timeout=10.0):
    _st, body = http_get(url, timeout)
    return json.loads(body.decode("utf-8", "replace"))


# ---- agent-specific metric counts ---------------------------------------------------

def ippocd_probe(base):
    s = http_json(base.rstrip("/") + "/v1/status")
    mem = s.get("memory", {})
    rate = 0.0
    for c in s.get("collectors", []):
        if c.get("enabled", True) and c.get("interval_ms"):
            rate += c.get("nseries", 0) * 1000.0 / c["interval_ms"]
    return {"nseries": mem.get("nseries"), "samples": mem.get("samples"),
            "last_tick_ms": s.get("last_tick_ms"), "collectors_rate": rate,
            "self_cpu_percent": s.get("self", {}).get("cpu_percent"),
            "dropped_batches": mem.get("dropped_batches"),
            "t": time.time()}


def netdata_probe(base):
    d = http_json(base.rstrip("/") + "/api/v1/charts", timeout=20.0)
    charts = d.get("charts", {})
    rate = own = 0.0
    ncharts = ndims = 0
    for cid, c in charts.items():
        if not c.get("enabled", True):
            continue
        n = len(c.get("dimensions", {}))
        ue = c.get("update_every") or 1
        rate += n / ue
        ncharts += 1
        ndims += n
        if cid.startswith("netdata.") or c.get("plugin") == "netdata" or \
                (c.get("plugin") == "statsd.plugin" and c.get("module") == "stats"):
            own += n / ue
    return {"charts": ncharts, "dimensions": ndims, "rate": rate, "own_rate": own,
            "dimensions_count": d.get("dimensions_count"), "t": time.time()}


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if b'"GET ' in line)
    except OSError:
        return 0


# ---- commands --------------------------------------------------------------------------

def cmd_freeport(_a):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_wait_http(a):
    end = time.time() + a.timeout
    last = None
    while time.time() < end:
        if a.pid and not alive(a.pid):
            print("wait-http: process %d exited before %s answered" % (a.pid, a.url), file=sys.stderr)
            return 1
        try:
            st, _ = http_get(a.url, 2.0)
            if st == 200:
                return 0
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last = e
        time.sleep(0.25)
    print("wait-http: %s did not answer in %gs (%s)" % (a.url, a.timeout, last), file=sys.stderr)
    return 1


def alive(pid):
    st = stat_of(pid)
    return st is not None and st[1] not in ("Z", "X")


def snapshot(root):
    t = time.time()
    procs = all_procs()
    tr = tree(root, procs)
    return t, tr, sum(st[3] for st in tr.values())


def cmd_window(a):
    kind = a.kind
    probe = None
    if kind == "ippocd":
        probe = lambda: ippocd_probe(a.url)  # noqa: E731
    elif kind == "netdata":
        probe = lambda: netdata_probe(a.url)  # noqa: E731

    # warm-up: not counted
    end_warm = time.time() + a.warmup
    while time.time() < end_warm:
        if not alive(a.pid):
            print("%s: exited during warm-up" % kind, file=sys.stderr)
            return 1
        time.sleep(0.2)

    p0 = probe() if probe else None
    lines0 = count_lines(a.http_log) if a.http_log else 0
    busy0, tot0 = machine_busy_ticks()
    t0, tree0, s0 = snapshot(a.pid)
    ns0 = schedstat_ns(tree0.keys())
    up0 = uptime_ticks()
    if not tree0:
        print("%s: pid %d is gone" % (kind, a.pid), file=sys.stderr)
        return 1

    seen = {(p, st[4]): st[0] for p, st in tree0.items()}
    born = {}
    foreign = set()
    rss_peak = 0
    nsamples = 0
    t_end = t0 + a.seconds
    while True:
        now = time.time()
        if now >= t_end:
            break
        time.sleep(min(1.0, t_end - now))
        tr = tree(a.pid)
        if not tr:
            print("%s: pid %d died during the window" % (kind, a.pid), file=sys.stderr)
            return 1
        nsamples += 1
        rss_peak = max(rss_peak, sum(status_kb(p, "VmRSS") for p in tr))
        for p, st in tr.items():
            key = (p, st[4])
            if key not in seen:
                seen[key] = st[0]
                if st[4] > up0:
                    born[key] = st[0]
        for b in foreign_sockets(tr.keys()):
            foreign.add(b)

    t1, tree1, s1 = snapshot(a.pid)
    # processes alive at both ends: a cross-check at ns precision (it misses
    # exited threads and children, so it can only be lower)
    both = [p for p in tree1 if p in tree0 and tree0[p][4] == tree1[p][4] and p in ns0]
    ns1 = schedstat_ns(both)
    cpu_sched = sum(ns1[p] - ns0[p] for p in ns1 if p in ns0) / 1e9 / max(1e-9, t1 - t0) * 100.0
    busy1, tot1 = machine_busy_ticks()
    lines1 = count_lines(a.http_log) if a.http_log else 0
    p1 = probe() if probe else None
    dt = t1 - t0
    rss = sum(status_kb(p, "VmRSS") for p in tree1)
    pss = sum(pss_kb(p) for p in tree1)
    rss_peak = max(rss_peak, rss)
    cpu = (s1 - s0) / CLK_TCK / dt * 100.0
    n0, n1 = by_name(tree0), by_name(tree1)
    per_name = {k: (n1.get(k, 0) - n0.get(k, 0)) / CLK_TCK / dt * 100.0 for k in set(n0) | set(n1)}
    ncpu = os.cpu_count() or 1
    machine_busy = (busy1 - busy0) / max(1, tot1 - tot0) * 100.0 * ncpu  # % of one core

    res = {
        "agent": kind, "version": a.version, "seconds": dt, "warmup": a.warmup,
        "cpu_percent": cpu, "cpu_ticks": s1 - s0, "clk_tck": CLK_TCK,
        "cpu_schedstat_live": cpu_sched,
        "cpu_by_name": dict(sorted(per_name.items(), key=lambda kv: -kv[1])),
        "rss_kb": rss, "pss_kb": pss, "rss_peak_kb": rss_peak,
        "procs_end": sorted("%d:%s" % (p, st[0]) for p, st in tree1.items()),
        "children_born": len(born), "children_born_names": sorted(set(born.values())),
        "foreign_sockets": sorted(foreign),
        "machine_busy_percent": machine_busy,
        "loadavg": read("/proc/loadavg").split()[:3],
    }
    if kind == "ippocd":
        rate = None
        if p0 and p1 and p0["samples"] is not None and p1["samples"] is not None:
            rate = (p1["samples"] - p0["samples"]) / (p1["t"] - p0["t"])
        res.update({
            "nseries": p1["nseries"], "samples_rate": rate,
            "collectors_rate": p1["collectors_rate"],
            "self_cpu_percent": p1["self_cpu_percent"],
            "dropped_batches": p1["dropped_batches"],
            "tick_fresh_ms": int(time.time() * 1000) - (p1["last_tick_ms"] or 0),
        })
        mps = float(p1["nseries"] or 0)
        note = "series stored per 1 s tick (memory.nseries)"
        if rate is not None and mps and rate < 0.9 * mps:
            note = ("samples stored per second (memory.samples delta); "
                    "nseries %d is higher, so the lower measured rate is used" % mps)
            mps = rate
        res["metrics_per_s"] = mps
        res["metrics_what"] = note
    elif kind == "netdata":
        res.update({"charts": p1["charts"], "dimensions": p1["dimensions"],
                    "own_rate": p1["own_rate"], "rate_t0": p0["rate"],
                    "dimensions_count": p1["dimensions_count"]})
        res["metrics_per_s"] = p1["rate"]
        res["metrics_what"] = ("dimensions collected per second: sum of dimensions/update_every "
                               "over %d enabled charts (/api/v1/charts)" % p1["charts"])
    elif kind == "monit":
        http_rate = (lines1 - lines0) / dt
        res.update({"http_tests_per_s": http_rate})
        res["metrics_per_s"] = 2 * http_rate
        res["metrics_what"] = ("checks per second: 1 process check + its HTTP test per cycle, "
                               "cycles counted from the test server's request log")
    if res.get("metrics_per_s"):
        res["cpu_per_1k_metrics"] = cpu / (res["metrics_per_s"] / 1000.0)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print_one(res)
    return 0


def mib(kb):
    return kb / 1024.0


def print_one(r):
    print("  %-8s CPU %.3f%% of one core over %.1f s (%d ticks, +-%.3f%%), RSS %.1f MiB (peak %.1f), PSS %.1f MiB" % (
        r["agent"], r["cpu_percent"], r["seconds"], r["cpu_ticks"],
        100.0 / r["clk_tck"] / r["seconds"], mib(r["rss_kb"]),
        mib(r["rss_peak_kb"]), mib(r["pss_kb"])))
    print("           cross-check, live threads' schedstat: %.3f%%; by process name: %s" % (
        r["cpu_schedstat_live"], ", ".join("%s %.3f%%" % kv for kv in r["cpu_by_name"].items())))
    print("           metrics/s %.1f: %s" % (r.get("metrics_per_s") or 0, r.get("metrics_what", "")))
    if r["agent"] == "ippocd":
        sr = r.get("samples_rate")
        print("           nseries %s; samples stored/s %s; collectors' nseries/interval %.1f; "
              "own /v1/status self cpu %.3f%%; dropped batches %s" % (
                  r.get("nseries"), "%.1f" % sr if sr is not None else "?",
                  r.get("collectors_rate") or 0, r.get("self_cpu_percent") or 0,
                  r.get("dropped_batches")))
    if r["agent"] == "netdata":
        print("           %d charts, %d dimensions (rate %.1f/s at the window's start); of the rate, "
              "%.1f/s are netdata's own self-monitoring charts" % (
                  r["charts"], r["dimensions"], r["rate_t0"], r["own_rate"]))
    if r["agent"] == "monit":
        print("           HTTP tests/s %.2f" % r["http_tests_per_s"])
    if r.get("cpu_per_1k_metrics") is not None and r["agent"] != "monit":
        print("           CPU per 1,000 metrics/s: %.3f%%" % r["cpu_per_1k_metrics"])
    print("           processes at the end: %s" % ", ".join(r["procs_end"]))
    print("           children born in the window (sampled 1/s): %d %s" % (
        r["children_born"], ",".join(r["children_born_names"])))
    print("           machine busy during the window: %.1f%% of one core (all processes); load %s" % (
        r["machine_busy_percent"], " ".join(r["loadavg"])))
    if r["foreign_sockets"]:
        print("           WARNING: sockets to non-loopback addresses: %s" % "; ".join(r["foreign_sockets"]))


def cmd_stop(a):
    pid = a.pid
    members = tree(pid)
    keys = {p: st[4] for p, st in members.items()}
    if not members:
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
    end = time.time() + a.timeout

    def still():
        out = []
        for p, start in keys.items():
            st = stat_of(p)
            if st and st[4] == start and st[1] not in ("Z", "X"):
                out.append(p)
        return out
    while time.time() < end and alive(pid):
        time.sleep(0.1)
    # the root is gone (or would not go): give what is left a TERM, then a KILL
    left = still()
    for p in left:
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    end2 = time.time() + 3
    while time.time() < end2 and still():
        time.sleep(0.1)
    left = still()
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    if left:
        print("stop: had to SIGKILL %s" % " ".join(map(str, left)), file=sys.stderr)
        return 2
    return 0


def fmt_ratio(a, b):
    if a is None or not b:
        return "n/a"
    return "%.2f" % (a / b)


def emit_md(md, path):
    """Prints the table's lines and writes them to path (when given)."""
    text = "\n".join(md) + "\n"
    print()
    print(text)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        print("table written to %s" % path)
    return 0


def cmd_report(a):
    res = {}
    for path in a.results:
        try:
            with open(path) as f:
                r = json.load(f)
            res[r["agent"]] = r
        except (OSError, ValueError):
            continue
    order = ["ippocd", "netdata", "monit"]
    skipped = dict(s.split("=", 1) for s in (a.skipped or []))
    head = ("| agent | version | metrics/s (what) | CPU % of one core | CPU % per 1,000 metrics/s "
            "| RSS MiB | PSS MiB |")
    rows = [head, "|---|---|---|---:|---:|---:|---:|"]
    whats = {"ippocd": "series per 1 s tick", "netdata": "dimensions/s",
             "monit": "checks/s (process + HTTP)"}
    for k in order:
        r = res.get(k)
        if not r:
            rows.append("| %s | - | not run: %s | | | | |" % (k, skipped.get(k, "no result")))
            continue
        per1k = "%.3f" % r["cpu_per_1k_metrics"] if k != "monit" and r.get("cpu_per_1k_metrics") else "-"
        rows.append("| %s | %s | %.0f %s | %.3f | %s | %.1f | %.1f |" % (
            k, r.get("version") or "?", r.get("metrics_per_s") or 0, whats[k], r["cpu_percent"], per1k,
            mib(r["rss_kb"]), mib(r["pss_kb"])))
    ratios = []
    ip = res.get("ippocd")
    for peer in ("netdata", "monit"):
        pr = res.get(peer)
        if ip and pr:
            line = "ippocd/%s: CPU %s, RSS %s, PSS %s" % (
                peer, fmt_ratio(ip["cpu_percent"], pr["cpu_percent"]),
                fmt_ratio(ip["rss_kb"], pr["rss_kb"]), fmt_ratio(ip["pss_kb"], pr["pss_kb"]))
            if peer == "netdata" and ip.get("cpu_per_1k_metrics") and pr.get("cpu_per_1k_metrics"):
                line += ", CPU per 1,000 metrics/s %s" % fmt_ratio(ip["cpu_per_1k_metrics"],
                                                                  pr["cpu_per_1k_metrics"])
            ratios.append(line)
        else:
            ratios.append("ippocd/%s: n/a (%s not measured)" % (peer, "ippocd" if not ip else peer))
    nd = res.get("netdata")
    if ip:
        ok = lambda c: "yes" if c else "NO"  # noqa: E731
        t = ("targets for ippocd (issue 9, at 1 s): CPU <= 0.2%% of one core: %s (%.3f%%); "
             "RSS <= 10 MB: %s (%.1f MB); PSS <= 6 MB: %s (%.1f MB)" % (
                 ok(ip["cpu_percent"] <= 0.2), ip["cpu_percent"], ok(ip["rss_kb"] * 1024 <= 10e6),
                 ip["rss_kb"] * 1024 / 1e6, ok(ip["pss_kb"] * 1024 <= 6e6), ip["pss_kb"] * 1024 / 1e6))
        if nd and ip.get("cpu_per_1k_metrics") and nd.get("cpu_per_1k_metrics"):
            t += "; CPU per 1,000 metrics/s <= 1/4 of netdata's: %s (%.3f vs %.3f: %s)" % (
                ok(ip["cpu_per_1k_metrics"] <= nd["cpu_per_1k_metrics"] / 4), ip["cpu_per_1k_metrics"],
                nd["cpu_per_1k_metrics"], fmt_ratio(ip["cpu_per_1k_metrics"], nd["cpu_per_1k_metrics"]))
        ratios.append(t)
    any_r = next(iter(res.values()), None)
    notes = []
    for k in order:
        r = res.get(k)
        if r and r.get("foreign_sockets"):
            notes.append("WARNING: %s had sockets to non-loopback addresses: %s" % (
                k, "; ".join(r["foreign_sockets"])))
    md = []
    md.append("Overhead, %s, %s" % (a.date, a.machine))
    md.append("")
    if any_r:
        md.append("Each agent alone, %.0f s measured after %.0f s of warm-up; CPU from /proc/PID/stat "
                  "(utime+stime+cutime+cstime) over the whole process tree, RSS (VmRSS) and PSS "
                  "(smaps_rollup) summed over the tree at the end." % (any_r["seconds"], any_r["warmup"]))
        md.append("")
    md.extend(rows)
    md.append("")
    for line in ratios:
        md.append("- " + line)
    for k in order:
        r = res.get(k)
        if r:
            md.append("- %s metrics/s: %s" % (k, r.get("metrics_what")))
    if nd:
        md.append("- netdata: %.0f of its %.0f dimensions/s are its own self-monitoring charts "
                  "(netdata.*, statsd stats)" % (nd["own_rate"], nd["metrics_per_s"]))
    busy = ", ".join("%s %.1f%%" % (k, res[k]["machine_busy_percent"]) for k in order if k in res)
    if busy:
        md.append("- whole machine busy during each window (all processes, %% of one core): %s" % busy)
    for n in notes:
        md.append("- " + n)
    return emit_md(md, a.md)


def cmd_kick_ifaces(a):
    # an Ethernet broadcast frame of a local experimental ethertype (0x88b5):
    # counted as sent by the interface, understood by nothing
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + b"ippoc-bench".ljust(46, b"\0")
    for name in a.ifaces:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((name, 0))
            s.send(frame)
    return 0


def cmd_scale_report(a):
    rows = ["| agent | metrics/s base | metrics/s scale | CPU % base | CPU % scale | CPU growth | "
            "added CPU % | RSS MiB base | RSS MiB scale |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    got = {}
    for spec in a.pairs:
        agent, base, scale = spec.split(":", 2)
        try:
            with open(base) as f:
                b = json.load(f)
            with open(scale) as f:
                sc = json.load(f)
        except (OSError, ValueError) as e:
            rows.append("| %s | not measured: %s | | | | | | | |" % (agent, e))
            continue
        got[agent] = (b, sc)
        rows.append("| %s | %.0f | %.0f | %.3f | %.3f | x%s | %+.3f | %.1f | %.1f |" % (
            agent, b.get("metrics_per_s") or 0, sc.get("metrics_per_s") or 0, b["cpu_percent"],
            sc["cpu_percent"], fmt_ratio(sc["cpu_percent"], b["cpu_percent"]),
            sc["cpu_percent"] - b["cpu_percent"], mib(b["rss_kb"]), mib(sc["rss_kb"])))
    md = ["Scale, %s, %s" % (a.date, a.machine), "",
          "Each agent measured as in the overhead table (base), then again with %d more "
          "processes (sleeping), %d cgroups (10 of the sleepers in each) and %d more network "
          "interfaces (veth pairs in a network namespace where the agent runs). ippocd is told "
          "to watch the bench's cgroups ([sense] cgroups); netdata finds them by itself." % (
              a.procs, a.cgroups, a.ifaces), ""]
    md.extend(rows)
    md.append("")
    if "ippocd" in got and "netdata" in got:
        (ib, isc), (nb, nsc) = got["ippocd"], got["netdata"]
        md.append("- added CPU under load, ippocd/netdata: %s" % fmt_ratio(
            isc["cpu_percent"] - ib["cpu_percent"], nsc["cpu_percent"] - nb["cpu_percent"]))
        md.append("- CPU per 1,000 metrics/s under load: ippocd %.3f, netdata %.3f (ratio %s)" % (
            isc.get("cpu_per_1k_metrics") or 0, nsc.get("cpu_per_1k_metrics") or 0,
            fmt_ratio(isc.get("cpu_per_1k_metrics"), nsc.get("cpu_per_1k_metrics"))))
    for agent, (b, sc) in got.items():
        top = ", ".join("%s %.3f" % kv for kv in list(sc.get("cpu_by_name", {}).items())[:4])
        md.append("- %s under load, CPU by process name: %s" % (agent, top))
    return emit_md(md, a.md)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("freeport")
    w = sub.add_parser("wait-http")
    w.add_argument("url")
    w.add_argument("--timeout", type=float, default=30)
    w.add_argument("--pid", type=int, default=0)
    m = sub.add_parser("window")
    m.add_argument("--kind", required=True, choices=["ippocd", "netdata", "monit"])
    m.add_argument("--pid", type=int, required=True)
    m.add_argument("--seconds", type=float, default=60)
    m.add_argument("--warmup", type=float, default=10)
    m.add_argument("--out", required=True)
    m.add_argument("--url", default="")
    m.add_argument("--http-log", default="")
    m.add_argument("--version", default="")
    s = sub.add_parser("stop")
    s.add_argument("pid", type=int)
    s.add_argument("--timeout", type=float, default=20)
    r = sub.add_parser("report")
    r.add_argument("--md", default="")
    r.add_argument("--date", default=time.strftime("%Y-%m-%d"))
    r.add_argument("--machine", default="")
    r.add_argument("--skipped", action="append", help="agent=reason")
    r.add_argument("results", nargs="*")
    k = sub.add_parser("kick-ifaces")
    k.add_argument("ifaces", nargs="+")
    sr = sub.add_parser("scale-report")
    sr.add_argument("--md", default="")
    sr.add_argument("--date", default=time.strftime("%Y-%m-%d"))
    sr.add_argument("--machine", default="")
    sr.add_argument("--procs", type=int, default=0)
    sr.add_argument("--cgroups", type=int, default=0)
    sr.add_argument("--ifaces", type=int, default=0)
    sr.add_argument("pairs", nargs="*", help="AGENT:BASE.json:SCALE.json")
    a = ap.parse_args()
    fn = {"freeport": cmd_freeport, "wait-http": cmd_wait_http, "window": cmd_window,
          "stop": cmd_stop, "report": cmd_report, "kick-ifaces": cmd_kick_ifaces,
          "scale-report": cmd_scale_report}[a.cmd]
    return fn(a) or 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
