"""test_prometheus.py: a real Prometheus (Debian's) scrapes ippocd and
node_exporter every 15 s, as a user replacing one by the other would run it,
and rate(node_cpu_seconds_total[1m]) summed by mode agrees between the two
jobs within 2 percentage points of the machine's CPU, point by point over a
range query. Each job is several targets on the same server (a `slot`
label), each with its own scrape phase, and the pair that scrapes closest
together in time is compared (node_exporter's targets ask for its cpu
collector only): see the test. Every process runs on its own loopback port and temp dir (no
system-wide instance is used) and is stopped at the end. Waits on
Prometheus' targets and query APIs with deadlines; takes about a minute, the
least that four 15 s scrapes allow. Skipped (exit 77) when prometheus or
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


SLOTS = 12    # node_exporter targets, each with its own scrape phase (below)
IP_SLOTS = 3  # ippocd targets


class Prom:
    def __init__(self, ippocd, node):
        self.port = free_port()
        self.peer = Peer([PROMETHEUS], "prometheus")
        conf = os.path.join(self.peer.tmp, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(f"global:\n  scrape_interval: {INTERVAL}s\n  scrape_timeout: 10s\n"
                    f"  evaluation_interval: {INTERVAL}s\nscrape_configs:\n"
                    f"  - job_name: ippocd\n    static_configs:\n"
                    + "".join(f"      - targets: ['{ippocd}']\n        labels: {{slot: '{k}'}}\n"
                              for k in range(IP_SLOTS)) +
                    f"  - job_name: node\n    params:\n      collect[]: [cpu]\n    static_configs:\n")
            for k in range(SLOTS):
                f.write(f"      - targets: ['{node}']\n        labels: {{slot: '{k}'}}\n")
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

    def per_target(self, query):
        """{(job, slot): value} of an instant query over `up`."""
        r = self.api("/api/v1/query", query=query)["result"]
        return {(x["metric"]["job"], x["metric"].get("slot")): float(x["value"][1]) for x in r}


def _targets_up(p):
    tg = p.api("/api/v1/targets")["activeTargets"]
    down = [(t["labels"]["job"], t.get("lastError")) for t in tg if t["health"] == "down"]
    assert not down, f"targets down: {down}"
    return len(tg) == IP_SLOTS + SLOTS and all(t["health"] == "up" for t in tg)


def _per_mode(result):
    """{mode: {t: value}} from a range query result."""
    out = {}
    for series in result:
        out[series["metric"].get("mode", "?")] = {float(t): float(v) for t, v in series["values"]}
    return out


def _phase_gap(a, b):
    """b - a folded into (-INTERVAL/2, INTERVAL/2]."""
    return (b - a + INTERVAL / 2) % INTERVAL - INTERVAL / 2


def test_rate_agrees():
    d = Daemon(config="[sense]\ntextfile_dir =\n").start()  # nothing from the system's textfile dir
    ne_port = free_port()
    ne = Peer([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ne_port}", "--no-collector.systemd",
               "--collector.textfile.directory="], "node_exporter").start()
    wait_for(lambda: ne.alive() and http_get(f"http://127.0.0.1:{ne_port}/metrics")[0] == 200, 20,
             "node_exporter to answer")
    p = Prom(f"127.0.0.1:{d.port}", f"127.0.0.1:{ne_port}").start()
    wait_for(lambda: _targets_up(p), INTERVAL + 20, "every target up", interval=0.5)
    # rate() over [1m] needs two samples; four give a few points to compare
    wait_for(lambda: min(p.per_target("count_over_time(up[5m])").values() or [0]) >= 4, 4 * INTERVAL + 20,
             "4 scrapes of each target", interval=1)
    # Prometheus spreads its targets' scrapes over the interval (a phase per
    # target), so two jobs would sample the CPU counters up to 15 s apart and
    # a busy machine's CPU use in that gap would show as a difference. Each
    # job has several targets on the same server with their own phases (a
    # `slot` label); the pair whose scrapes fall closest together is compared,
    # each evaluated 0.5 s after its own scrapes, so both windows hold the
    # scrapes taken closest in time.
    firsts = p.per_target("min_over_time(timestamp(up)[5m:1s])")
    ip_slot, slot = min(((i, k) for i in range(IP_SLOTS) for k in range(SLOTS)),
                        key=lambda ik: abs(_phase_gap(firsts[("ippocd", str(ik[0]))], firsts[("node", str(ik[1]))])))
    ip_first, ne_first = firsts[("ippocd", str(ip_slot))], firsts[("node", str(slot))]
    delta = _phase_gap(ip_first, ne_first)
    start = ip_first + INTERVAL + 0.5
    if start + delta < ne_first + INTERVAL:
        start += INTERVAL
    end = time.time() - max(delta, 0)
    res = {}
    sel_ip, sel_ne = f'job="ippocd",slot="{ip_slot}"', f'job="node",slot="{slot}"'
    for sel, shift in ((sel_ip, 0.0), (sel_ne, delta)):
        q = f"sum by (mode) (rate(node_cpu_seconds_total{{{sel}}}[1m]))"
        r = _per_mode(p.api("/api/v1/query_range", query=q, start=f"{start + shift:.3f}",
                            end=f"{end + shift:.3f}", step=str(INTERVAL))["result"])
        res[sel] = {m: {round(t - shift, 3): v for t, v in pts.items()} for m, pts in r.items()}
    a, b = res[sel_ip], res[sel_ne]
    ncpu = os.cpu_count()
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
    print(f"   {npoints} points over {len(a)} modes, {idle[-1] - idle[0]:.0f} s, scrapes {delta:+.2f} s apart; "
          f"worst difference {worst:.2f} percentage points (idle now: ippocd "
          f"{100 * a['idle'][idle[-1]] / ncpu:.1f} %, node_exporter {100 * b['idle'][idle[-1]] / ncpu:.1f} %)",
          flush=True)
    assert not fails, "rates differ by more than 2 percentage points:\n  " + "\n  ".join(fails)


for binary in (PROMETHEUS, NODE_EXPORTER):
    if not os.access(binary, os.X_OK):
        print(f"skip: {binary} is not installed (Debian packages prometheus, prometheus-node-exporter; make deps)")
        sys.exit(77)
run([test_rate_agrees])
