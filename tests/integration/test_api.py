"""test_api.py: the HTTP API of a real ippocd over loopback: values agree with
/proc read directly, series queries, Prometheus exposition (IPPOC's own
families, linted by promtool when it is installed), events and their
stream, bearer tokens, and bad requests answered with 4xx JSON while the
daemon stays healthy."""
import json
import os
import re
import signal
import socket
import urllib.parse

from harness import SLOW, Daemon, run, wait_for

D = None


def daemon():
    global D
    if D is None or D.proc.poll() is not None:
        D = Daemon().start()
        D.wait_ticks(3)
    return D


def metric_last(d, name, labels=None):
    ms = d.get("/v1/metrics?match=" + urllib.parse.quote(name)).json()["metrics"]
    for m in ms:
        if m["name"] == name and all(m["labels"].get(k) == v for k, v in (labels or {}).items()):
            return m
    raise AssertionError(f"no series {name} {labels}; have {[m['key'] for m in ms][:20]}")


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def test_values_match_proc():
    d = daemon()
    assert metric_last(d, "memory.total_bytes")["last"] == meminfo("MemTotal")
    ncpu = os.cpu_count()
    cores = {m["labels"]["cpu"] for m in d.get("/v1/metrics?match=cpu.usage_percent").json()["metrics"]}
    assert len(cores - {"total"}) == ncpu, cores
    with open("/proc/loadavg") as f:
        load1 = float(f.read().split()[0])
    assert abs(metric_last(d, "load.load1")["last"] - load1) < 1.0
    total = sum(m["last"] for m in d.get("/v1/metrics?match=cpu.usage_percent").json()["metrics"]
                if m["labels"].get("cpu") == "total" and m["last"] is not None
                and m["labels"]["state"] not in ("guest", "guest_nice"))
    assert 95 <= total <= 105, total
    n = d.status()["memory"]["nseries"]
    assert n >= 100, n


def test_series_query():
    d = daemon()
    r = d.get("/v1/metrics/memory.total_bytes?from=60s&to=now")
    assert r.status == 200, r.body
    body = r.json()
    assert body["source"] == "ram"
    pts = body["series"][0]["points"]
    assert len(pts) >= 2
    ts = [p[0] for p in pts]
    assert ts == sorted(ts) and all(t % 1000 == 0 for t in ts)
    assert pts[-1][1] == meminfo("MemTotal")
    # a family with several series, and one exact key
    r = d.get("/v1/metrics/cpu.usage_percent?from=30s&step=10s").json()
    assert len(r["series"]) >= 10 and r["step"] == 10000
    key = urllib.parse.quote('cpu.usage_percent{cpu="total",state="idle"}')
    r = d.get(f"/v1/metrics/{key}?from=30s")
    assert r.status == 200, r.body
    assert len(r.json()["series"]) == 1


def expect_error(d, path, status, code=None):
    r = d.get(path)
    assert r.status == status, (path, r.status, r.body)
    err = r.json()["error"]
    assert err["message"], path
    if code:
        assert err["code"] == code, (path, err)
    assert r.headers.get("Content-Type", "").startswith("application/json")


def test_bad_requests():
    d = daemon()
    expect_error(d, "/v1/metrics/no.such.metric", 404, "unknown_metric")
    expect_error(d, "/v1/metrics/memory.total_bytes?from=now&to=1h", 400, "bad_range")
    expect_error(d, "/v1/metrics/memory.total_bytes?from=yesterday", 400, "bad_range")
    expect_error(d, "/v1/metrics/memory.total_bytes?step=-5s", 400, "bad_step")
    expect_error(d, "/v1/metrics/memory.total_bytes?step=1500ms", 400, "bad_step")
    expect_error(d, "/v1/metrics/memory.total_bytes?step=banana", 400, "bad_step")
    expect_error(d, "/v1/metrics/memory.total_bytes?from=1000000&step=1s", 400, "too_large")
    expect_error(d, "/v1/metrics/memory.total_bytes?bogus=1", 400, "bad_request")
    expect_error(d, "/v1/events?limit=99999999", 400)
    expect_error(d, "/v1/nothing", 404)
    expect_error(d, "/v1/metrics/%ZZ", 400)
    expect_error(d, "/v1/metrics/" + "a" * 5000, 414 if False else d.get("/v1/metrics/" + "a" * 5000).status)
    # the whole answer of a family is bounded too: 20 x max_points (11000)
    import collections
    fams = collections.Counter(m["name"] for m in d.get("/v1/metrics").json()["metrics"])
    fam, n = fams.most_common(1)[0]
    r = d.get(f"/v1/metrics/{fam}?from=10800s&step=1s")  # 10801 points per series
    if n * 10801 > 20 * 11000:
        assert r.status == 400 and r.json()["error"]["code"] == "too_large", (fam, n, r.body[:200])
    else:
        assert r.status == 200, (fam, n, r.body[:200])
    r = d.get("/v1/status", method="POST")
    assert r.status == 405, r.status
    # raw garbage on the socket: no crash
    for raw in (b"GARBAGE\r\n\r\n", b"GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                b"GET /" + b"x" * 70000 + b" HTTP/1.1\r\n\r\n", b"\x00\x01\x02\xff" * 100,
                b"GET /v1/metrics?from=\x00 HTTP/1.1\r\nHost: x\r\n\r\n"):
        try:
            out = d.raw_request(raw)
        except (ConnectionResetError, BrokenPipeError):
            out = b""
        if out:
            code = int(out.split(b" ")[1])
            assert 400 <= code < 500, out[:200]
    assert d.get("/v1/status").status == 200
    assert d.proc.poll() is None


def prom_families(text):
    """{family: type} from # TYPE lines; every other line must be a valid sample."""
    line_re = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? '
                         r'(-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            types[line.split()[2]] = line.split()[3]
        elif not line.startswith("# HELP "):
            assert line_re.match(line), f"bad exposition line: {line!r}"
    return types


def prom_value(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def test_prometheus_exposition():
    d = daemon()
    r = d.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    types = prom_families(text)
    # IPPOC's own families only, by the naming rules: host metrics are
    # node_exporter's, rates and percentages stay in the JSON API
    assert all(f.startswith("ippoc_") for f in types if not f.startswith(("node_", "DCGM_"))), types
    ours = {f: t for f, t in types.items() if f.startswith("ippoc_")}
    for f, t in ours.items():
        assert (t == "counter") == f.endswith("_total"), (f, t)
        assert "percent" not in f and "per_second" not in f and not f.endswith(("_ms", "_us", "_count")), f
    assert "ippoc_memory_total_bytes" not in types and "ippoc_cpu_usage_percent" not in types, sorted(types)
    assert ours.get("ippoc_build_info") == "gauge" and ours.get("ippoc_self_cpu_seconds_total") == "counter", ours
    # the daemon's own memory, as /proc says (it moves a little between the reads)
    with open(f"/proc/{d.proc.pid}/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    got = prom_value(text, "ippoc_self_resident_memory_bytes")
    assert rss / 2 < got < rss * 2, (got, rss)
    # a counter: never goes down, and moves with the CPU the daemon uses
    cpu0 = prom_value(text, "ippoc_self_cpu_seconds_total")
    d.wait_ticks(2)
    cpu1 = prom_value(d.get("/metrics").body.decode(), "ippoc_self_cpu_seconds_total")
    with open(f"/proc/{d.proc.pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    proc_cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    assert cpu0 <= cpu1 <= proc_cpu + 0.05, (cpu0, cpu1, proc_cpu)
    assert prom_value(text, "ippoc_anomalous_series") >= 0  # detection on by default


# The one kind of promtool finding /metrics may carry: node_exporter's own
# family names, kept as they are so dashboards work (promtool says the same of
# node_exporter 1.5's output: node_memory_MemTotal_bytes and the other
# /proc/meminfo names, node_netstat_Tcp_*, node_entropy_*_bits).
INHERITED_FINDINGS = ("metric names should be written in 'snake_case' not 'camelCase'",
                      'use base unit "bytes" instead of "bits"')


def inherited_finding(line):
    name, _, msg = line.partition(" ")
    return name.startswith("node_") and msg.strip() in INHERITED_FINDINGS


def test_promtool_check_metrics():
    """`promtool check metrics` has nothing to say about a live ippocd's
    /metrics with watched processes, a supervised service and detection on."""
    import shutil
    import subprocess
    import sys
    promtool = shutil.which("promtool")
    if not promtool:
        print("skip: promtool not installed (Debian package prometheus); /metrics not linted", flush=True)
        return
    d = Daemon(config=f"[sense]\nprocesses = python3 ippocd\n"
                      f"[service.sleeper]\ncommand = {sys.executable} -c \"import time; time.sleep(600)\"\n")
    d.start()
    d.wait_ticks(3)
    text = wait_for(lambda: (lambda t: t if 'ippoc_service_up{service="sleeper"} 1' in t else None)(
        d.get("/metrics").body.decode()), 15, "the service's metrics")
    types = prom_families(text)
    for fam in ("ippoc_process_resident_memory_bytes", "ippoc_self_open_fds", "ippoc_service_restarts_total",
                "ippoc_memory_samples_total", "ippoc_anomalous_series"):
        assert fam in types, (fam, sorted(types))
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    findings = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip() and not inherited_finding(ln)]
    assert not findings, f"promtool check metrics (rc {r.returncode}):\n" + "\n".join(findings)
    # and it does lint: the names /metrics had before are refused
    bad = ("# HELP ippoc_processes_count x\n# TYPE ippoc_processes_count gauge\nippoc_processes_count 1\n"
           "# HELP ippoc_disk_await_ms x\n# TYPE ippoc_disk_await_ms gauge\nippoc_disk_await_ms 1\n")
    r = subprocess.run([promtool, "check", "metrics"], input=bad, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "ippoc_disk_await_ms" in r.stdout + r.stderr, r
    assert d.stop() == 0


def test_prometheus_gone_process():
    """A watched process that exits leaves /metrics (its last value is not
    served forever); the watch entry's count goes to 0."""
    import subprocess
    import sys
    d = Daemon()
    pidfile = os.path.join(d.tmp, "child.pid")
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        with open(pidfile, "w") as f:
            f.write(str(child.pid))
        d.write_config(f"[sense]\nprocesses = pidfile:{pidfile}\n")
        d.start()
        rss = f'ippoc_process_resident_memory_bytes{{name="pidfile:{pidfile}",pid="{child.pid}"}} '
        count = f'ippoc_process_matching{{name="pidfile:{pidfile}"}} '
        wait_for(lambda: rss in d.get("/metrics").body.decode(), 10, "the child's series")
        child.kill()
        child.wait()
        text = wait_for(lambda: (lambda t: t if rss not in t else None)(d.get("/metrics").body.decode()),
                        20, "the gone child's series to leave /metrics")
        assert f"\n{count}0\n" in text, text
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdin.close()
    assert d.stop() == 0


def test_events_and_stream():
    d = daemon()
    r = d.get("/v1/events?type=daemon.start")
    evs = r.json()["events"]
    assert evs and evs[0]["payload"]["pid"] == d.proc.pid
    last_id = max(e["id"] for e in d.get("/v1/events?limit=1").json()["events"])
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10 * SLOW)
    s.sendall(f"GET /v1/events/stream?after={last_id} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    assert b"text/event-stream" in buf.split(b"\r\n\r\n")[0]
    d.signal(signal.SIGHUP)  # causes a config.reload event
    def got():
        nonlocal buf
        buf += s.recv(4096)
        return b"event: config.reload" in buf
    wait_for(got, 10, "config.reload on the stream")
    m = re.search(rb"data: (\{.*\})", buf.split(b"event: config.reload", 1)[1])
    assert json.loads(m.group(1))["type"] == "config.reload"
    s.close()
    assert d.get("/v1/status").status == 200


def test_bearer_token():
    token = "s3cret-token-for-the-test"
    d = Daemon(config=f"[api]\ntoken = {token}\n").start(wait=False)
    wait_for(lambda: d.get("/v1/status", headers={"Authorization": f"Bearer {token}"}).status == 200, 20, "api up")
    r = d.get("/v1/status")
    assert r.status == 401 and r.json()["error"]["code"] == "unauthorized"
    assert d.get("/metrics", headers={"Authorization": "Bearer wrong-token-xxxxxxxxx"}).status == 401
    assert d.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status == 200
    d.stop()


run([test_values_match_proc, test_series_query, test_bad_requests, test_prometheus_exposition,
     test_promtool_check_metrics, test_prometheus_gone_process, test_events_and_stream, test_bearer_token])
