#!/usr/bin/env python3
"""measure.py: the measuring half of bench/time-to-heal/run.sh (python3 stdlib only).

run.sh starts and stops the supervisors; this file injects the faults and
times the repair:

  measure.py freeport                 print a free TCP port on 127.0.0.1
  measure.py wait-http URL [--timeout S] [--pid PID]
                                      wait until GET URL answers 200
  measure.py trials --scenario kill|stop --agent A --url URL --n N --out FILE.json
                    [--settle S] [--timeout S]
                                      N fault trials against a supervised service
  measure.py direct --python PY --server server.py --n N --out FILE.json
                                      N plain starts of the service, no supervisor
  measure.py reaper CMD [ARGS...]     run CMD as a child subreaper would: orphans
                                      of CMD's tree come here and are reaped at
                                      once, as a real init does (see cmd_reaper)
  measure.py stop PID [--timeout S]   SIGTERM a process tree, SIGKILL what stays
  measure.py sweep MARK               SIGKILL every process whose command line
                                      contains MARK (the bench's temp dir)
  measure.py report --md FILE.md RESULT.json...
                                      the table, the ratios, the targets

A trial: wait until the service is stable (the same pid has answered 200 for
--settle seconds, the last 5 polls in a row), then a random 0 to --jitter
seconds more (so the fault lands anywhere in a supervisor's cycle), then kill -9 (kill) or SIGSTOP
(stop) that pid and poll GET URL every 5 ms until a 200 comes from another pid
(the X-Pid header server.py sends); the trial's time is from just before the
signal to that answer. For stop, the old process must also be gone (killed by
the supervisor); the time it went is recorded too. A trial not healed within
--timeout counts as failed; the old process is then killed by the bench.
"""
import argparse
import http.client
import json
import math
import random
import os
import signal
import socket
import subprocess
import sys
import time

POLL_S = 0.005           # between two polls after a fault
POLL_TIMEOUT_S = 0.05    # one poll: connect + answer (a stopped server never answers)


def now():
    return time.monotonic()


# ---- HTTP (loopback only) ----------------------------------------------------------

def split_url(url):
    assert url.startswith("http://"), url
    rest = url[len("http://"):]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    return host, int(port), "/" + path


def get(host, port, path, timeout=POLL_TIMEOUT_S):
    """(status, pid) or (None, None) on any failure."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        pid = r.getheader("X-Pid")
        return r.status, int(pid) if pid and pid.isdigit() else None
    except (OSError, http.client.HTTPException, ValueError):
        return None, None
    finally:
        c.close()


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cmd_freeport(_a):
    print(freeport())


def cmd_wait_http(a):
    host, port, path = split_url(a.url)
    end = now() + a.timeout
    while now() < end:
        st, _ = get(host, port, path, timeout=1.0)
        if st == 200:
            return 0
        if a.pid and not alive(a.pid):
            print("wait-http: process %d exited" % a.pid, file=sys.stderr)
            return 1
        time.sleep(0.05)
    print("wait-http: %s did not answer 200 within %.0f s" % (a.url, a.timeout), file=sys.stderr)
    return 1


# ---- processes -----------------------------------------------------------------------

def proc_state(pid):
    """State letter from /proc/PID/stat, or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        return s[s.rfind(")") + 2:].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    st = proc_state(pid)
    return st is not None and st not in ("Z", "X")


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
            ppid = int(s[s.rfind(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(root):
    kids = children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cmd_stop(a):
    members = [p for p in tree(a.pid) if alive(p)]
    if not members:
        return 0
    for p in members:
        try:
            os.kill(p, signal.SIGTERM if p == a.pid else signal.SIGCONT)
        except OSError:
            pass
    end = now() + a.timeout
    while now() < end and alive(a.pid):
        time.sleep(0.05)
    left = [p for p in members if alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    end = now() + 3
    while now() < end and any(alive(p) for p in left):
        time.sleep(0.05)
    left = [p for p in left if alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    if left:
        print("stop: had to SIGKILL %s" % " ".join(map(str, left)), file=sys.stderr)
    return 0


def cmd_reaper(a):
    """Run a.command as our child, marked as a child subreaper, and reap every
    process that ends up ours. A daemon started by monit double-forks and is
    re-parented to the nearest subreaper, else to PID 1; PID 1 of this VM
    (not a usual init) reaps orphans only every 1-2 s, and monit reports a
    killed-but-unreaped service as a zombie rather than as not running, so
    without this the zombie's lifetime would be counted as monit's. Exits
    with CMD's status once CMD has exited; SIGTERM/SIGINT/SIGHUP go to CMD."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        print("reaper: prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(ctypes.get_errno()),
              file=sys.stderr)
    child = os.fork()
    if child == 0:
        try:
            os.execvp(a.command[0], a.command)
        except OSError as e:
            print("reaper: %s: %s" % (a.command[0], e), file=sys.stderr)
            os._exit(127)

    def fwd(sig, _frame):
        try:
            os.kill(child, sig)
        except OSError:
            pass
    for sg in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sg, fwd)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if pid == child:
            return os.waitstatus_to_exitcode(status) & 0xff


def cmd_sweep(a):
    """SIGKILL every process (not this one) whose command line contains MARK."""
    mark = a.mark.encode()
    me = os.getpid()
    hit = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cl = f.read()
        except OSError:
            continue
        if mark in cl and alive(int(d)):
            hit.append((int(d), cl.replace(b"\0", b" ").decode("utf-8", "replace").strip()))
    for pid, cl in hit:
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
            print("sweep: killed stray %d (%s)" % (pid, cl), file=sys.stderr)
        except OSError:
            pass
    return 0


# ---- trials --------------------------------------------------------------------------

def wait_stable(host, port, path, settle, timeout, exclude=None):
    """The pid once the same one has answered 200 for settle s (5 polls in a row
    at least), or None after timeout."""
    end = now() + timeout
    pid, since, streak = None, 0.0, 0
    while now() < end:
        st, p = get(host, port, path, timeout=1.0)
        if st == 200 and p and p != exclude:
            if p != pid:
                pid, since, streak = p, now(), 0
            streak += 1
            if streak >= 5 and now() - since >= settle and alive(p):
                return pid
        else:
            streak = 0
        time.sleep(0.02)
    return None


def one_trial(host, port, path, pid, sig, timeout):
    """Signal pid, poll until a 200 from another pid. Returns a dict."""
    gone_at = None
    t0 = now()
    os.kill(pid, sig)
    end = t0 + timeout
    polls = 0
    while True:
        st, p = get(host, port, path)
        t = now()
        polls += 1
        if gone_at is None and not alive(pid):
            gone_at = t
        if st == 200 and p is not None and p != pid:
            if gone_at is None and not alive(pid):
                gone_at = t
            return {"ok": True, "s": t - t0, "old_pid": pid, "new_pid": p, "polls": polls,
                    "old_gone_s": (gone_at - t0) if gone_at is not None else None,
                    "old_still_there": alive(pid)}
        if t >= end:
            return {"ok": False, "s": None, "old_pid": pid, "new_pid": None, "polls": polls,
                    "old_gone_s": (gone_at - t0) if gone_at is not None else None,
                    "old_still_there": alive(pid)}
        time.sleep(POLL_S)


def cmd_trials(a):
    host, port, path = split_url(a.url)
    sig = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}[a.scenario]
    res = {"agent": a.agent, "scenario": a.scenario, "n": a.n, "settle": a.settle, "trials": []}
    prev = None
    attempts = 0
    while len(res["trials"]) < a.n and attempts < 2 * a.n:
        attempts += 1
        i = len(res["trials"])
        pid = wait_stable(host, port, path, a.settle, a.stable_timeout)
        if pid is None:
            print("  %s %s: the service was not stable within %.0f s; stopping after %d trials"
                  % (a.agent, a.scenario, a.stable_timeout, i), file=sys.stderr)
            res["aborted"] = "service not stable after trial %d" % i
            break
        if prev is not None and pid == prev:
            print("  %s %s: pid %d did not change after the last trial" % (a.agent, a.scenario, pid),
                  file=sys.stderr)
        # a random wait, so that the fault does not land at the same point of
        # a supervisor's 1 s cycle every time (the settle time would lock it)
        time.sleep(random.uniform(0, a.jitter))
        st, p = get(host, port, path, timeout=1.0)
        if p != pid or not alive(pid):
            print("  %s %s: pid %d went by itself before the fault; again" % (a.agent, a.scenario, pid),
                  file=sys.stderr)
            continue
        r = one_trial(host, port, path, pid, sig, a.timeout)
        if r["old_still_there"]:
            # not healed, or healed beside a process that is still there: the
            # bench cleans up, the trial says so
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        res["trials"].append(r)
        prev = pid
        if r["ok"]:
            extra = ""
            if a.scenario == "stop":
                extra = ", old pid gone at %s" % ("%.0f ms" % (r["old_gone_s"] * 1000)
                                                   if r["old_gone_s"] is not None else "NEVER")
            print("  %s %-4s %2d/%d: %7.1f ms (pid %d -> %d%s)" % (
                a.agent, a.scenario, i + 1, a.n, r["s"] * 1000, pid, r["new_pid"], extra), flush=True)
        else:
            print("  %s %-4s %2d/%d: NOT healed within %.0f s (pid %d%s)" % (
                a.agent, a.scenario, i + 1, a.n, a.timeout, pid,
                ", still there: killed by the bench" if r["old_still_there"] else ""), flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


def cmd_direct(a):
    """The floor: time from spawning the service (no supervisor) to its first 200."""
    res = {"agent": "direct", "scenario": "start", "n": a.n, "trials": []}
    for i in range(a.n):
        port = freeport()
        t0 = now()
        p = subprocess.Popen([a.python, a.server, str(port)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = {"ok": False, "s": None}
        try:
            while now() - t0 < 10:
                st, pid = get("127.0.0.1", port, "/health")
                if st == 200 and pid == p.pid:
                    r = {"ok": True, "s": now() - t0}
                    break
                if p.poll() is not None:
                    break
                time.sleep(POLL_S)
        finally:
            p.kill()
            p.wait()
        res["trials"].append(r)
        time.sleep(0.1)
    ok = [t["s"] for t in res["trials"] if t["ok"]]
    print("  direct start: %d/%d, median %.1f ms" % (len(ok), a.n, pct(sorted(ok), 50) * 1000 if ok else 0))
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


# ---- report --------------------------------------------------------------------------

def pct(xs, p):
    """Nearest-rank percentile of a sorted list (p95 of 20 = the 19th)."""
    if not xs:
        return None
    k = max(1, math.ceil(p / 100.0 * len(xs)))
    return xs[k - 1]


def median(xs):
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def stats(r):
    ok = sorted(t["s"] for t in r["trials"] if t["ok"])
    return {"n": len(r["trials"]), "ok": len(ok), "min": ok[0] if ok else None, "median": median(ok),
            "p95": pct(ok, 95), "max": ok[-1] if ok else None}


def ms(x):
    if x is None:
        return "-"
    return "%.0f" % (x * 1000) if x >= 0.1 else "%.1f" % (x * 1000)


def cmd_report(a):
    res = {}
    for path in a.results:
        try:
            with open(path) as f:
                r = json.load(f)
        except (OSError, ValueError):
            continue
        res[(r["agent"], r["scenario"])] = r
    labels = {("ippocd", "kill"): ("ippocd", "kill -9 (crash)"),
              ("monit", "kill"): ("monit", "kill -9 (crash)"),
              ("ippocd", "stop"): ("ippocd", "SIGSTOP (hang)"),
              ("direct", "start"): ("none (reference)", "plain start of the service")}
    order = [("ippocd", "kill"), ("monit", "kill"), ("ippocd", "stop"), ("direct", "start")]
    rows = ["| supervisor | scenario | healed | min ms | median ms | p95 ms | max ms |",
            "|---|---|---:|---:|---:|---:|---:|"]
    st = {}
    skipped = dict(s.split("=", 1) for s in (a.skipped or []))
    for k in order:
        r = res.get(k)
        lab = labels[k]
        if not r:
            why = skipped.get(k[0])
            if why:
                rows.append("| %s | %s | not run: %s | | | | |" % (lab[0], lab[1], why))
            continue
        s = st[k] = stats(r)
        rows.append("| %s | %s | %d/%d | %s | %s | %s | %s |" % (
            lab[0], lab[1], s["ok"], s["n"], ms(s["min"]), ms(s["median"]), ms(s["p95"]), ms(s["max"])))
    lines = []
    ik, mk, ih = st.get(("ippocd", "kill")), st.get(("monit", "kill")), st.get(("ippocd", "stop"))

    def ratio(x, y):
        return "%.3f" % (x / y) if x is not None and y else "n/a"
    if ik and mk:
        lines.append("ippocd/monit, kill -9: median %s, p95 %s" % (
            ratio(ik["median"], mk["median"]), ratio(ik["p95"], mk["p95"])))
    else:
        lines.append("ippocd/monit, kill -9: n/a (%s not measured)" % ("ippocd" if not ik else "monit"))

    def yes(c):
        return "**yes**" if c else "**NO**"
    if ik:
        allok = ik["ok"] == ik["n"]
        lines.append("target, crash healed in median <= 50 ms: %s (%s ms); p95 <= 100 ms: %s (%s ms)%s" % (
            yes(ik["median"] is not None and ik["median"] <= 0.050 and allok), ms(ik["median"]),
            yes(ik["p95"] is not None and ik["p95"] <= 0.100 and allok), ms(ik["p95"]),
            "" if allok else "; %d of %d trials not healed" % (ik["n"] - ik["ok"], ik["n"])))
    if ih:
        allok = ih["ok"] == ih["n"]
        lines.append("target, hang (1 s HTTP probe, timeout 500 ms, threshold 1) healed in p95 <= 1.5 s: %s (%s ms)%s" % (
            yes(ih["p95"] is not None and ih["p95"] <= 1.5 and allok), ms(ih["p95"]),
            "" if allok else "; %d of %d trials not healed" % (ih["n"] - ih["ok"], ih["n"])))
        r = res[("ippocd", "stop")]
        gone = sorted(t["old_gone_s"] for t in r["trials"] if t.get("old_gone_s") is not None)
        left = sum(1 for t in r["trials"] if t.get("old_still_there"))
        lines.append("hang: the stopped process was gone (killed by ippocd) %d of %d times, median %s ms "
                     "after the SIGSTOP%s; with a probe every 1 s and a 500 ms timeout the hang is noticed "
                     "0.5-1.5 s after it starts (where it lands between two probes), plus the service's "
                     "start, so a p95 near 1.45 s + start is what this probe allows" % (
                         len(gone), len(r["trials"]), ms(median(gone)),
                         "; %d times the bench had to kill it" % left if left else ""))
    if mk:
        lines.append("monit as the issue measured it here: median 0.8 s, max 1.0 s; this run: median %s ms, max %s ms" % (
            ms(mk["median"]), ms(mk["max"])))
    dk = st.get(("direct", "start"))
    if dk and ik and ik["median"] is not None:
        lines.append("the service alone needs %s ms (median, %s-%s) from its start to its first 200 "
                     "(python3 start, http.server import, bind; started by the bench, no supervisor), so "
                     "nearly all of ippocd's crash time is the service's own start (ippocd's median minus "
                     "it: %+.1f ms; measured apart, a few ms either way is noise)" % (
                         ms(dk["median"]), ms(dk["min"]), ms(dk["max"]),
                         (ik["median"] - dk["median"]) * 1000))
    for k in order:
        r = res.get(k)
        if r and r.get("aborted"):
            lines.append("WARNING: %s %s stopped early: %s" % (k[0], k[1], r["aborted"]))
    md = ["Time to heal, %s, %s" % (a.date, a.machine), ""]
    md.extend(rows)
    md.append("")
    md.extend("- " + x for x in lines)
    text = "\n".join(md) + "\n"
    print()
    print(text)
    if a.md:
        os.makedirs(os.path.dirname(os.path.abspath(a.md)), exist_ok=True)
        with open(a.md, "w") as f:
            f.write(text)
        print("table written to %s" % a.md)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("freeport")
    w = sub.add_parser("wait-http")
    w.add_argument("url")
    w.add_argument("--timeout", type=float, default=30)
    w.add_argument("--pid", type=int, default=0)
    t = sub.add_parser("trials")
    t.add_argument("--scenario", required=True, choices=["kill", "stop"])
    t.add_argument("--agent", required=True)
    t.add_argument("--url", required=True)
    t.add_argument("--n", type=int, default=20)
    t.add_argument("--settle", type=float, default=3.0)
    t.add_argument("--jitter", type=float, default=1.0)
    t.add_argument("--timeout", type=float, default=30)
    t.add_argument("--stable-timeout", type=float, default=60)
    t.add_argument("--out", required=True)
    d = sub.add_parser("direct")
    d.add_argument("--python", required=True)
    d.add_argument("--server", required=True)
    d.add_argument("--n", type=int, default=20)
    d.add_argument("--out", required=True)
    s = sub.add_parser("stop")
    s.add_argument("pid", type=int)
    s.add_argument("--timeout", type=float, default=20)
    rp = sub.add_parser("reaper")
    rp.add_argument("command", nargs=argparse.REMAINDER)
    sw = sub.add_parser("sweep")
    sw.add_argument("mark")
    r = sub.add_parser("report")
    r.add_argument("--md", default="")
    r.add_argument("--date", default=time.strftime("%Y-%m-%d"))
    r.add_argument("--machine", default="")
    r.add_argument("--skipped", action="append", help="agent=reason")
    r.add_argument("results", nargs="*")
    a = ap.parse_args()
    fn = {"freeport": cmd_freeport, "wait-http": cmd_wait_http, "trials": cmd_trials,
          "direct": cmd_direct, "stop": cmd_stop, "reaper": cmd_reaper, "sweep": cmd_sweep, "report": cmd_report}[a.cmd]
    return fn(a) or 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
