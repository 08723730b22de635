"""test_heal.py: real faults on real processes supervised by ippocd: kill -9,
a SIGSTOP hang, a crash loop (backoff, flap stop, alert webhook), a CPU hog
(reniced), a filling filesystem (cleaned), a broken command, observe and
suggest modes, the audit log's hash chain, and reloads of service config.

Services are small Python programs this file writes to temp dirs at run
time. Every wait polls the API with a deadline; nothing is mocked."""
import atexit
import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from harness import HEALTH_SERVER, IPPOCD, SLOW, Daemon, free_port, run, wait_for



def write_script(d, name, text, executable=False):
    path = os.path.join(d.tmp, name)
    with open(path, "w") as f:
        f.write(("#!/usr/bin/env python3\n" if executable else "") + text)
    if executable:
        os.chmod(path, 0o755)
    return path


def web_service(d, name="web", port=None, extra=""):
    port = port or free_port()
    script = write_script(d, "health.py", HEALTH_SERVER)
    return port, (f"[service.{name}]\ncommand = {sys.executable} {script} {port}\n"
                  f"rule = if failed http://127.0.0.1:{port}/ timeout 500ms every 1s then restart\n{extra}")


def events(d, typ, service=None):
    r = d.get(f"/v1/events?type={typ}&limit=500")
    assert r.status == 200, r.body
    ev = r.json()["events"]
    return [e for e in ev if service is None or e["payload"].get("service") == service]


def wait_event(d, typ, service=None, pred=lambda e: True, timeout=10):
    return wait_for(lambda: [e for e in events(d, typ, service) if pred(e)], timeout, f"event {typ}")[0]


_service_pids = set()  # every service process seen: none may outlive a failed test


def _kill_leftovers():
    for pid in _service_pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"ippoc-it." in f.read():
                    os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass


atexit.register(_kill_leftovers)


def svc(d, name):
    for s in d.status()["services"]:
        if s["name"] == name:
            if s["pid"] > 0:
                _service_pids.add(s["pid"])
            return s
    raise AssertionError(f"no service {name} in /v1/status")


def http_ok(port, timeout=0.3):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001 - down is an answer
        return False


def running(d, name):
    s = svc(d, name)
    return s if s["state"] == "running" and s["pid"] > 0 else None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def audit_records(d):
    with open(os.path.join(d.state_dir, "audit.log")) as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- (a) + (h): kill -9, time to heal, the audit log and its verification ----

def test_kill9_healed_and_audited():
    d = Daemon()
    port, conf = web_service(d)
    d.write_config(conf)
    d.start()
    wait_for(lambda: running(d, "web") and http_ok(port), 10, "web up")
    pid = svc(d, "web")["pid"]
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: http_ok(port, 0.2), 5, "HTTP 200 after kill -9", interval=0.005)
    healed = time.monotonic() - t0
    print(f"kill -9 -> HTTP 200: {healed * 1000:.0f} ms", flush=True)
    assert healed < 1.0 * SLOW, healed
    assert svc(d, "web")["pid"] != pid
    ev = wait_event(d, "incident.resolved", "web")["payload"]
    assert "SIGKILL" in ev["what"], ev
    assert ev["actions"][0]["action"] == "restart" and ev["actions"][0]["outcome"] == "ok", ev
    assert ev["time_to_heal_ms"] >= 0 and "log" in ev["evidence"], ev
    assert events(d, "service.exit", "web")[0]["payload"]["signal"] == 9
    st = d.status()
    assert st["heal"]["mode"] == "heal" and svc(d, "web")["restarts"] == 1, st
    new_pid = svc(d, "web")["pid"]
    assert d.stop() == 0
    assert not alive(new_pid), "the supervised service outlived ippocd"
    # (h) intent before result, chained; verify passes, then fails once a byte is flipped
    recs = audit_records(d)
    kinds = [(r["kind"], r["action"]["kind"]) for r in recs]
    assert kinds[:2] == [("intent", "restart"), ("result", "restart")], kinds
    assert recs[1]["intent_seq"] == recs[0]["seq"] and recs[1]["outcome"]["status"] == "ok"
    path = os.path.join(d.state_dir, "audit.log")
    r = subprocess.run([IPPOCD, "--verify-audit", path], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.returncode, r.stdout, r.stderr)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        i = data.index(b'"restart"')
        data[i + 1] ^= 0x01
        f.seek(0)
        f.write(data)
    r = subprocess.run([IPPOCD, "--verify-audit", path], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout.startswith("bad: line 1"), (r.returncode, r.stdout, r.stderr)


# ---- (b) SIGSTOP: the HTTP probe times out, the hung process is replaced ----

def test_sigstop_hang_restarted():
    d = Daemon()
    port, conf = web_service(d)
    d.write_config(conf)
    d.start()
    wait_for(lambda: running(d, "web") and http_ok(port), 10, "web up")
    pid = svc(d, "web")["pid"]
    t0 = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: svc(d, "web")["pid"] not in (0, pid) and http_ok(port), 8, "a new healthy process")
    print(f"SIGSTOP -> HTTP 200: {(time.monotonic() - t0) * 1000:.0f} ms", flush=True)
    wait_for(lambda: not alive(pid), 5, "the hung process to be gone")
    ev = wait_event(d, "incident.resolved", "web")["payload"]
    assert "failed http" in ev["what"] and ev["where"].endswith(":3"), ev
    assert ev["evidence"]["condition"]["timed_out"] is True, ev
    assert d.stop() == 0


# ---- (c) crash loop: backoff grows, flap detection stops it, webhook alert ----

class Hook(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        Hook.bodies.append(json.loads(self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_crash_loop_flap_stop_and_alert():
    hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    Hook.bodies = []
    try:
        d = Daemon()
        crash = write_script(d, "crash.py", "import sys\nprint('crashing', flush=True)\nsys.exit(1)\n")
        d.write_config(f"[heal]\nflap = 4 restarts within 1m\n"
                       f"[alert.ops]\nurl = http://127.0.0.1:{hook.server_address[1]}/hook\ntimeout = 2s\n"
                       f"[service.crash]\ncommand = {sys.executable} {crash}\nbackoff = 100ms\n")
        d.start()
        ref = wait_event(d, "heal.refused", "crash", timeout=15)["payload"]
        assert ref["refusal"] == "flapping" or "flap" in ref["reason"], ref
        wait_event(d, "alert", "crash")
        wait_for(lambda: [b for b in Hook.bodies if b.get("service") == "crash"], 10, "the webhook POST")
        restarts = svc(d, "crash")["restarts"]
        assert restarts == 4, restarts
        backoffs = sorted(e["payload"]["evidence"]["exit"]["backoff_ms"] for e in events(d, "incident.open", "crash"))
        assert backoffs[:4] == [0, 100, 200, 400], backoffs
        d.wait_ticks(2)  # no storm: nothing more happens
        assert svc(d, "crash")["restarts"] == restarts
        assert svc(d, "crash")["flapping"] is True
        assert svc(d, "crash")["state"] in ("failed", "stopped")
        assert d.stop() == 0
    finally:
        hook.shutdown()


# ---- (d) CPU hog reniced ----

def nice_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])  # field 19


def test_cpu_hog_reniced():
    d = Daemon(config=f'[service.hog]\ncommand = {sys.executable} -c "while True: pass"\n'
                      "rule = if cpu > 50% for 2s then renice 10\n")
    d.start()
    pid = wait_for(lambda: running(d, "hog"), 10, "hog up")["pid"]
    ev = wait_event(d, "heal.action", "hog", lambda e: e["payload"]["kind"] == "renice", timeout=15)["payload"]
    assert ev["outcome"] == "ok", ev
    assert nice_of(pid) == 10
    inc = wait_event(d, "incident.resolved", "hog")["payload"]
    assert inc["evidence"]["condition"]["value"] > 50, inc
    d.wait_ticks(3)  # still hogging: the rule does not fire again until the CPU calms down
    assert len([e for e in events(d, "heal.action", "hog") if e["payload"]["kind"] == "renice"]) == 1
    assert d.stop() == 0


# ---- a memory hog capped by a cgroup limit (as root) ----

def test_memory_hog_limited():
    d = Daemon()
    name = f"memhog{os.getpid()}"
    hog = write_script(d, "hog.py", "import time\nb = bytearray(80 * 1024 * 1024)\nb[::4096] = b'x' * len(b[::4096])\n"
                                    "time.sleep(600)\n")
    d.write_config(f"[service.{name}]\ncommand = {sys.executable} {hog}\n"
                   "rule = if memory > 50MB then limit memory 200MB\n")
    d.start()
    pid = wait_for(lambda: running(d, name), 10, "hog up")["pid"]
    cg = None
    try:
        ev = wait_event(d, "heal.action", name, lambda e: e["payload"]["kind"].startswith("limit"), timeout=15)
        ev = ev["payload"]
        if ev["outcome"] != "ok" and "root" in ev["message"]:
            print(f"skip: {ev['message']}", flush=True)
            return
        assert ev["outcome"] == "ok", ev
        cg = ev["message"].split(" in ", 1)[1].split(" (")[0]
        limit_file = "memory.max" if "v2" in ev["message"] else "memory.limit_in_bytes"
        with open(os.path.join(cg, limit_file)) as f:
            assert int(f.read()) == 200 * 1024 * 1024
        with open(os.path.join(cg, "cgroup.procs")) as f:
            assert str(pid) in f.read().split()
        inc = wait_event(d, "incident.resolved", name)["payload"]
        assert inc["evidence"]["rss_bytes"] > 50 * 1024 * 1024, inc
        assert d.stop() == 0
    finally:
        d.kill()
        _kill_leftovers()
        wait_for(lambda: not alive(pid), 5, "the hog to be gone")
        if cg:
            os.rmdir(cg)


# ---- (e) a filling filesystem cleaned (a tmpfs mounted by the test, as root) ----

def test_full_dir_cleaned():
    if os.geteuid() != 0:
        print("skip: mounting a tmpfs needs root", flush=True)
        return
    d = Daemon()
    mnt = os.path.join(d.tmp, "mnt")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], capture_output=True).returncode:
        print("skip: cannot mount a tmpfs here", flush=True)
        return
    try:
        outside = os.path.join(d.tmp, "outside.dat")
        with open(outside, "wb") as f:
            f.write(b"x" * 1000)
        old = time.time() - 60
        for i in range(6):
            p = os.path.join(mnt, f"old{i}.log")
            with open(p, "wb") as f:
                f.write(b"x" * 100_000)
            os.utime(p, (old, old))
        os.makedirs(os.path.join(mnt, "sub"))
        with open(os.path.join(mnt, "sub", "keep.log"), "wb") as f:
            f.write(b"x" * 10)
        os.utime(os.path.join(mnt, "sub", "keep.log"), (old, old))
        os.symlink(outside, os.path.join(mnt, "link.log"))
        os.utime(os.path.join(mnt, "link.log"), (old, old), follow_symlinks=False)
        d.write_config(f"[heal]\nallow = clean, alert\nrule = if space {mnt} > 50% then clean {mnt} older than 1s\n")
        d.start()
        ev = wait_event(d, "heal.action", pred=lambda e: e["payload"]["kind"] == "clean")["payload"]
        assert ev["outcome"] == "ok" and "removed 6 file(s)" in ev["message"], ev
        left = sorted(os.listdir(mnt))
        assert left == ["link.log", "sub"], left
        assert os.path.exists(os.path.join(mnt, "sub", "keep.log"))
        assert os.path.getsize(outside) == 1000
        assert d.stop() == 0
    finally:
        subprocess.run(["umount", "-l", mnt])


# ---- (f) a broken command: the restart fails, the incident says so, others untouched ----

def test_broken_command_incident_failed():
    d = Daemon()
    port, conf = web_service(d)
    broken = write_script(d, "broken.py", "import time\nwhile True: time.sleep(1)\n", executable=True)
    d.write_config(conf + f"[service.broken]\ncommand = {broken}\n")
    d.start()
    wait_for(lambda: running(d, "web") and running(d, "broken"), 10, "both up")
    web_pid = svc(d, "web")["pid"]
    os.unlink(broken)
    os.kill(svc(d, "broken")["pid"], signal.SIGKILL)
    ev = wait_event(d, "incident.failed", "broken")["payload"]
    assert "restart failed" in ev["reason"] and "no such file" in ev["reason"].lower(), ev
    assert svc(d, "broken")["state"] == "failed"
    assert svc(d, "web")["pid"] == web_pid and http_ok(port)
    assert not events(d, "incident.open", "web")
    assert d.stop() == 0


# ---- (g) observe and suggest: nothing executed ----

def test_observe_records_only():
    d = Daemon()
    port, conf = web_service(d)
    d.write_config("[heal]\nmode = observe\n" + conf)
    d.start()
    pid = wait_for(lambda: running(d, "web"), 10, "web up")["pid"]
    os.kill(pid, signal.SIGKILL)
    ev = wait_event(d, "heal.action", "web")["payload"]
    assert ev["would"] is True and ev["verdict"] == "record", ev
    d.wait_ticks(1)
    assert svc(d, "web")["state"] != "running" and not http_ok(port)
    rec = [r for r in audit_records(d) if r["kind"] == "decision"]
    assert rec and rec[0]["verdict"] == "record" and rec[0]["mode"] == "observe", rec
    assert not [r for r in audit_records(d) if r["kind"] == "intent"]
    assert d.stop() == 0


def test_sysctl_set_then_put_back():
    path = "/proc/sys/vm/swappiness"
    try:
        with open(path) as f:
            before = f.read().strip()
        with open(path, "w") as f:
            f.write(before)
    except OSError:
        print("skip: vm.swappiness is not writable here")
        return
    want = "37" if before != "37" else "38"
    d = Daemon(config=f"[heal]\nallow = sysctl, alert\nrule = if metric load.load1 >= 0 then sysctl vm.swappiness = {want}\n")
    try:
        d.start()
        wait_for(lambda: open(path).read().strip() == want, 10, "the rule to set vm.swappiness")
        assert d.stop() == 0
        with open(path) as f:
            assert f.read().strip() == before, "vm.swappiness not put back at stop"
        recs = [r for r in audit_records(d) if r.get("reason") == "revert at stop"]
        assert [r["kind"] for r in recs] == ["intent", "result"], recs
        assert recs[1]["outcome"]["status"] == "ok", recs
    finally:
        with open(path, "w") as f:
            f.write(before)


def test_dry_run_flag_records_only():
    d = Daemon(extra_args=["--dry-run"])
    port, conf = web_service(d)
    d.write_config("[heal]\nmode = heal\ndry_run = no\n" + conf)  # the flag wins over the file
    d.start()
    pid = wait_for(lambda: running(d, "web"), 10, "web up")["pid"]
    os.kill(pid, signal.SIGKILL)
    ev = wait_event(d, "heal.action", "web")["payload"]
    assert ev["would"] is True, ev
    d.wait_ticks(1)
    assert svc(d, "web")["state"] != "running" and not http_ok(port)
    assert not [r for r in audit_records(d) if r["kind"] == "intent"]
    assert d.stop() == 0


def test_suggest_queues():
    d = Daemon()
    port, conf = web_service(d, extra="mode = suggest\n")
    d.write_config(conf)
    d.start()
    pid = wait_for(lambda: running(d, "web"), 10, "web up")["pid"]
    os.kill(pid, signal.SIGKILL)
    ev = wait_event(d, "heal.pending", "web")["payload"]
    assert ev["pending_id"] > 0 and ev["action"] == "restart", ev
    wait_for(lambda: d.status()["heal"]["pending"] == 1, 5, "one pending action")
    d.wait_ticks(1)
    assert svc(d, "web")["state"] != "running"
    assert not [r for r in audit_records(d) if r["kind"] == "intent"]
    # the same queue through the API and the CLI, then an approval heals it
    pend = d.get("/v1/pending").json()["pending"]
    assert [p["id"] for p in pend] == [ev["pending_id"]], pend
    out = d.cli("pending", check=0).stdout
    assert "restart" in out and "web" in out, out
    r = d.cli("approve", str(ev["pending_id"]), check=0)
    assert f"approved {ev['pending_id']}" in r.stdout, r.stdout
    wait_for(lambda: http_ok(port), 10, "web healed after the approval")
    assert running(d, "web")["pid"] != pid
    r = d.cli("approve", str(ev["pending_id"]), check=1)  # already done: not pending any more
    assert "not_found" in r.stderr or "pending" in r.stderr, r.stderr
    assert "running" in d.cli("services", check=0).stdout
    verify = d.cli("audit", "--verify", check=0).stdout
    assert "audit log intact" in verify, verify
    kinds = [r["kind"] for r in d.get("/v1/audit?last=50").json()["records"]]
    assert "approval" in kinds and "intent" in kinds and "result" in kinds, kinds
    assert d.stop() == 0
    with open(os.path.join(d.state_dir, "audit.log"), "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 1]))
    d.start()
    r = d.cli("audit", "--verify", check=1)
    assert "TAMPERED" in r.stdout, r.stdout
    assert d.stop() == 0


# ---- reloads: changed service restarted, others kept; bad rules rejected with the place ----

def test_reload_services():
    d = Daemon()
    port, conf = web_service(d)
    port2, _ = web_service(d)
    script = os.path.join(d.tmp, "health.py")
    other = f"[service.other]\ncommand = {sys.executable} {script} {port2}\n"
    d.write_config(conf + other)
    d.start()
    wait_for(lambda: running(d, "web") and running(d, "other"), 10, "both up")
    web_pid, other_pid = svc(d, "web")["pid"], svc(d, "other")["pid"]
    bad = os.path.join(d.conf_dir, "conf.d", "50-bad.conf")
    with open(bad, "w") as f:
        f.write("[service.web]\nrule = if failed http://127.0.0.1/ then restrt\n")
    d.signal(signal.SIGHUP)
    ev = wait_event(d, "config.rejected")["payload"]
    assert "50-bad.conf:2:" in ev["reason"] and "restrt" in ev["reason"], ev
    r = subprocess.run([IPPOCD, "--config", d.config_path, "--check-config"], capture_output=True, text=True)
    assert r.returncode == 2 and "50-bad.conf:2:" in r.stderr, r.stderr
    os.unlink(bad)
    d.write_config(conf + other.replace(f" {port2}\n", f" {port2}\nenv = CHANGED=1\n"))
    d.signal(signal.SIGHUP)
    wait_for(lambda: running(d, "other") and svc(d, "other")["pid"] != other_pid, 15, "other restarted")
    assert svc(d, "web")["pid"] == web_pid
    new_other = svc(d, "other")["pid"]
    d.write_config(conf)
    d.signal(signal.SIGHUP)
    wait_for(lambda: "other" not in [s["name"] for s in d.status()["services"]], 10, "other removed")
    wait_for(lambda: not alive(new_other), 10, "the removed service stopped")
    assert svc(d, "web")["pid"] == web_pid and http_ok(port)
    assert d.stop() == 0


def test_example_configs_are_valid():
    import glob
    import shutil
    src = os.path.join(os.environ.get("IPPOC_SRC", "../.."), "conf")
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "conf.d"))
        shutil.copy(os.path.join(src, "ippoc.conf"), tmp)
        for f in glob.glob(os.path.join(src, "conf.d", "*.conf*")):
            shutil.copy(f, os.path.join(tmp, "conf.d", os.path.basename(f).replace(".example", "")))
        r = subprocess.run([IPPOCD, "--config", os.path.join(tmp, "ippoc.conf"), "--check-config"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_bad_service_config_rejected():
    cases = [
        ("[heal]\nmode = yolo\n", ":2: mode: 'yolo' is not observe, suggest or heal"),
        ("[heal]\nmax_actions = lots\n", ":2: max_actions: 'lots' is not 'N per DURATION'"),
        ("[heal]\nflap = 5 within 1m\n", ":2: flap: '5 within 1m' is not 'N restarts within DURATION'"),
        ("[heal]\nbogus = 1\n", ":2: unknown key 'bogus' in [heal]"),
        ("[alert.x]\nurl = ftp://a\n", ":2: url: 'ftp://a' is not an http:// or https:// URL"),
        ("[service.a]\ncommand = /bin/true\ncolour = red\n", ":3: unknown key 'colour' in [service.a]"),
        ("[service.a]\ncommand = /bin/true\nstop_signal = NOPE\n", ":3: stop_signal: 'NOPE' is not a signal"),
        ("[service.a]\ncommand = /bin/true\ndepends = b\n", "unknown dependency 'b'"),
        ("[service.a]\ncommand = /bin/true\nallow = restart, reboot\n", ":3: allow:"),
        ("[service.a]\ncommand = /bin/true\nrule = if cpu > 90% then alert pager\n", ":3: alert 'pager': no [alert.pager]"),
        ("[service.a]\ncommand = /bin/true\n\nrule = if cpu > 90 then renice 5\n", ":4:"),
        ("[heal]\nrule = if cpu > 90% then renice 5\n", ":2: 'renice' needs a service"),
        ("[heal]\nrule = if cpu > 90% then alert\n", ":2: this condition is about a service"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ippoc.conf")
        for text, want in cases:
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([IPPOCD, "--config", path, "--check-config"], capture_output=True, text=True)
            assert r.returncode == 2 and want in r.stderr and path in r.stderr, (text, want, r.stderr)


if __name__ == "__main__":
    run([test_bad_service_config_rejected, test_example_configs_are_valid, test_kill9_healed_and_audited, test_sigstop_hang_restarted, test_crash_loop_flap_stop_and_alert,
         test_cpu_hog_reniced, test_memory_hog_limited, test_full_dir_cleaned, test_broken_command_incident_failed, test_observe_records_only,
         test_dry_run_flag_records_only, test_suggest_queues, test_reload_services,
         test_sysctl_set_then_put_back])
