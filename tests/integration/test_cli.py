"""test_cli.py: the `ippoc` command line against a real ippocd: human and
JSON output, sparklines, events and --follow, and its documented exit codes."""
import json
import os
import signal
import subprocess

from harness import IPPOC, SLOW, Daemon, free_port, run, wait_for

D = None


def daemon():
    global D
    if D is None or D.proc.poll() is not None:
        D = Daemon().start()
        D.wait_ticks(3)
    return D


def test_status():
    d = daemon()
    r = d.cli("status", check=0)
    assert r.stdout.startswith("ippocd ") and d.url in r.stdout
    assert f"pid        {d.proc.pid}" in r.stdout
    for col in ("COLLECTOR", "STATE", "INTERVAL", "SERIES"):
        assert col in r.stdout
    assert "\ncpu " in r.stdout and "available" in r.stdout
    j = json.loads(d.cli("--json", "status", check=0).stdout)
    assert j["pid"] == d.proc.pid


def test_metrics():
    d = daemon()
    r = d.cli("metrics", "memory.total", check=0)
    line = [l for l in r.stdout.splitlines() if l.startswith("memory.total_bytes")]
    assert line and ("GiB" in line[0] or "MiB" in line[0]), r.stdout
    r = d.cli("metrics", "no.such.*", check=0)
    assert "no series match" in r.stdout
    j = json.loads(d.cli("--json", "metrics", "cpu.usage", check=0).stdout)
    assert j["count"] >= 10 and all(m["name"].startswith("cpu.usage") for m in j["metrics"])


def test_show():
    d = daemon()
    r = d.cli("show", "memory.total_bytes", "--since", "30s", "--width", "20", check=0)
    assert "source ram" in r.stdout, r.stdout
    spark = [l for l in r.stdout.splitlines() if l.startswith("  ") and not l.strip().startswith("min")]
    assert spark and set(spark[0].strip()) <= set("▁▂▃▄▅▆▇█"), r.stdout
    assert "min " in r.stdout and "last " in r.stdout
    r = d.cli("show", "memory.total_bytes", "--since", "30s", "--ascii", check=0)
    assert not any(ch in r.stdout for ch in "▁▂▃▄▅▆▇█")
    r = d.cli("show", "nope.metric", check=1)
    assert "unknown_metric" in r.stderr


def test_usage_errors():
    d = daemon()
    for args, want in ((["show", "x", "--since", "abc"], "--since: bad duration 'abc'"),
                       (["events", "--limit", "x"], "--limit: bad number 'x'"),
                       (["events", "--severity", "loud"], "--severity: bad severity 'loud'"),
                       (["show"], "missing METRIC"),
                       (["frob"], "unknown command 'frob'"),
                       (["status", "--nope"], "unknown option '--nope'")):
        r = d.cli(*args, check=2)
        assert want in r.stderr, (args, r.stderr)
    assert subprocess.run([IPPOC], capture_output=True).returncode == 2


def test_unreachable_and_unauthorized():
    port = free_port()
    r = subprocess.run([IPPOC, "--url", f"http://127.0.0.1:{port}", "status"], capture_output=True, text=True)
    assert r.returncode == 3 and "cannot reach ippocd" in r.stderr, r.stderr
    token = "cli-token-0123456789abcdef"
    t = Daemon(config=f"[api]\ntoken = {token}\n").start(wait=False)
    wait_for(lambda: t.get("/v1/status", headers={"Authorization": f"Bearer {token}"}).status == 200, 20, "api")
    r = t.cli("status", check=4)
    assert "unauthorized" in r.stderr
    r = t.cli("--token", token, "status", check=0)
    t.stop()


def test_events_and_follow():
    d = daemon()
    r = d.cli("events", "--type", "daemon.*", check=0)
    assert "daemon.start" in r.stdout and "SEVERITY" in r.stdout
    env = dict(os.environ, IPPOC_URL=d.url, LANG="C.UTF-8")
    p = subprocess.Popen([IPPOC, "--json", "events", "--follow", "--limit", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = p.stdout.readline()  # the recent event
        assert json.loads(first)["id"] > 0
        d.signal(signal.SIGHUP)
        while True:
            line = p.stdout.readline()
            assert line, "stream ended"
            if json.loads(line)["type"] == "config.reload":
                break
        p.send_signal(signal.SIGINT)
        assert p.wait(10 * SLOW) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


run([test_status, test_metrics, test_show, test_usage_errors, test_unreachable_and_unauthorized,
     test_events_and_follow])
