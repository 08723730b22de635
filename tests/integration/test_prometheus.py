"""test_prometheus.py: a real Prometheus (Debian's) scrapes ippocd and
node_exporter every 15 s, as a user replacing one by the other would run it,
and rate(node_cpu_seconds_total[1m]) summed by mode agrees between the two
jobs within 2 percentage points of the machine's CPU, point by point over a
range query. Every process runs on its own loopback port and temp dir (no
system-wide instance is used) and is stopped at the end. Waits on
Prometheus' targets and query APIs with deadlines; takes about a minute, the
least that three 15 s scrapes allow. Skipped (exit 77) when prometheus or
prometheus-node-exporter is not installed."""
import json
import os
import sys
import time
import urllib.parse

from harness import Daemon, Peer, free_port, http_get, run, wait_for

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
INTERVAL = 15
TOLERANCE_PP = 2.0


class Prom:
    def __init__(self, targets):
        self.port = free_port()
        self.peer = Peer([PROMETHEUS], "prometheus")
        conf = os.path.join(self.peer.tmp, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(f"global:\n  scrape_interval: {INTERVAL}s\n  scrape_timeout: 10s\n"
                    f"  evaluation_interval: {INTERVAL}s\nscrape_configs:\n")
            for job, addr in targets.items():
                f.write(f"  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n")
        self.peer.args += [f"--config.file={conf}", f"--storage.tsdb.path={self.peer.tmp}/data",
                           f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]

    def start(self):
        self.peer.start()
        wait_for(lambda: self.peer.alive() and http_get(self.url("/-/ready"))[0] == 200, 60,
                 "prometheus to be ready")
        return self

    def url(self, path, **params):
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        return f"http://127.0.0.1:{self.port}{path}{q}"

    def api(self, path, **params):
        st, body = http_get(self.url(path, **params))
        assert st == 200, (path, params, st, body[:500])
        j = json.loads(body)
        assert j["status"] == "success", j
        return j["data"]

    def samples(self, job):
        r = self.api("/api/v1/query", query=f'count_over_time(up{{job="{job}"}}[5m])')
        return int(float(r["result"][0]["value"][1])) if r["result"] else 0


def _targets_up(p, jobs):
    tg = p.api("/api/v1/targets")["activeTargets"]
    health = {t["labels"]["job"]: t["health"] for t in tg}
    bad = {j: health.get(j) for j in jobs if health.get(j) == "down"}
    assert not bad, f"targets down: {bad}: {[t.get('lastError') for t in tg]}"
    return all(health.get(j) == "up" for j in jobs)


def _per_mode(result):
    """{mode: {t: value}} from a range query result."""
    out = {}
    for series in result:
        out[series["metric"].get("mode", "?")] = {float(t): float(v) for t, v in series["values"]}
    return out


def test_rate_agrees():
    d = Daemon(config="[sense]\ntextfile_dir =\n").start()  # nothing from the system's textfile dir
    ne = Peer([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{(ne_port := free_port())}",
               "--no-collector.systemd", "--collector.textfile.directory="], "node_exporter").start()
    wait_for(lambda: ne.alive() and http_get(f"http://127.0.0.1:{ne_port}/metrics")[0] == 200, 20,
             "node_exporter to answer")
    jobs = {"ippocd": f"127.0.0.1:{d.port}", "node": f"127.0.0.1:{ne_port}"}
    p = Prom(jobs).start()
    wait_for(lambda: _targets_up(p, jobs), INTERVAL + 20, "both targets up", interval=0.5)
    # rate() over [1m] needs two samples; four give a few points to compare
    wait_for(lambda: all(p.samples(j) >= 4 for j in jobs), 4 * INTERVAL + 20, "4 scrapes of each job",
             interval=1)
    ncpu = os.cpu_count()
    firsts = {}
    for j in jobs:
        r = p.api("/api/v1/query", query=f'min_over_time(timestamp(up{{job="{j}"}})[5m:1s])')
        firsts[j] = float(r["result"][0]["value"][1])
    # Prometheus spreads its targets' scrapes over the interval, so the two
    # jobs sample the CPU counters up to 15 s apart. Each job's points are
    # evaluated 0.5 s after its own scrapes (node's shifted by the phase
    # difference, at most half an interval): both windows then hold the
    # scrapes taken closest in time, and what differs is only the CPU time
    # spent in that gap.
    delta = (firsts["node"] - firsts["ippocd"] + INTERVAL / 2) % INTERVAL - INTERVAL / 2
    start = firsts["ippocd"] + INTERVAL + 0.5
    if start + delta < firsts["node"] + INTERVAL:
        start += INTERVAL
    end = time.time() - max(delta, 0)
    res = {}
    for j, shift in (("ippocd", 0.0), ("node", delta)):
        q = f'sum by (mode) (rate(node_cpu_seconds_total{{job="{j}"}}[1m]))'
        res[j] = _per_mode(p.api("/api/v1/query_range", query=q, start=f"{start + shift:.3f}",
                                 end=f"{end + shift:.3f}", step=str(INTERVAL))["result"])
        res[j] = {m: {round(t - shift, 3): v for t, v in pts.items()} for m, pts in res[j].items()}
    a, b = res["ippocd"], res["node"]
    assert set(a) == set(b) and "idle" in a, (sorted(a), sorted(b))
    worst, npoints, fails = 0.0, 0, []
    for mode in sorted(a):
        for t in sorted(set(a[mode]) & set(b[mode])):
            pa, pb = 100 * a[mode][t] / ncpu, 100 * b[mode][t] / ncpu
            npoints += 1
            worst = max(worst, abs(pa - pb))
            if abs(pa - pb) > TOLERANCE_PP:
                fails.append(f"{mode} at {t:.0f}: ippocd {pa:.2f} %, node_exporter {pb:.2f} %")
    assert npoints >= len(a), f"too few points to compare: {npoints}"
    idle = sorted(a["idle"])
    print(f"   {npoints} points over {len(a)} modes, {idle[-1] - idle[0]:.0f} s, scrape phases {delta:+.1f} s apart; "
          f"worst difference "
          f"{worst:.2f} percentage points (idle now: ippocd {100 * a['idle'][idle[-1]] / ncpu:.1f} %, "
          f"node_exporter {100 * b['idle'][idle[-1]] / ncpu:.1f} %)", flush=True)
    assert not fails, "rates differ by more than 2 percentage points:\n  " + "\n  ".join(fails)


for binary in (PROMETHEUS, NODE_EXPORTER):
    if not os.access(binary, os.X_OK):
        print(f"skip: {binary} is not installed (Debian packages prometheus, prometheus-node-exporter; make deps)")
        sys.exit(77)
run([test_rate_agrees])
