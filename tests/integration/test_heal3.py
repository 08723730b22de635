"""test_heal3.py: a service's config_path end to end on a real ippocd (issue
10, heal side): the known-good copy taken once the service has been healthy,
a broken file (content and mode) seen as one file.changed event with its
diff, a rule's `restore PATH, restart` putting content and mode back
through the policy and the audit log (file.restored), and the config
checks of restore and of the pid forms a rule may not use.

The service is a small Python HTTP server that reads its config file on
every request and answers 500 when it does not parse; every wait polls with
a deadline; nothing is mocked."""
import json
import os
import stat
import subprocess
import sys
import tempfile

from harness import IPPOCD, Daemon, free_port, run, wait_for
from test_heal import _kill_leftovers, audit_records, events, running, svc, write_script  # noqa: F401

# port = N and greeting = TEXT; anything else is a config error (500)
CONF_SERVER = """import http.server, sys
port, conf = int(sys.argv[1]), sys.argv[2]
def parse():
    out = {}
    with open(conf) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            k, v = [x.strip() for x in line.split("=", 1)]
            if k == "port":
                int(v)
            elif k != "greeting":
                raise ValueError("unknown key " + k)
            out[k] = v
    return out
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            body = parse()["greeting"].encode()
            self.send_response(200)
        except Exception as e:
            body = repr(e).encode()
            self.send_response(500)
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""

GOOD = "# web\nport = 8080\ngreeting = hello\n"
BROKEN = "# web\nport = eighty\ngreeting = hello\n"


def http_body(port):
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception:  # noqa: BLE001 - down is an answer
        return 0, ""


def config_path_info(d, name, path):
    for p in svc(d, name).get("config_paths", []):
        if p["path"] == path:
            return p
    return None


def test_broken_config_restored_by_rule():
    d = Daemon()
    port = free_port()
    conf = os.path.join(d.tmp, "web.conf")
    with open(conf, "w") as f:
        f.write(GOOD)
    os.chmod(conf, 0o644)
    script = write_script(d, "conf_server.py", CONF_SERVER)
    d.write_config(f"[heal]\nverify = 10s\n"
                   f"[service.web]\ncommand = {sys.executable} {script} {port} {conf}\n"
                   f"healthy_after = 1s\nconfig_path = {conf}\n"
                   f"rule = if failed http://127.0.0.1:{port}/ timeout 500ms every 500ms for 2 checks "
                   f"then restore {conf}, restart\n")
    d.start()
    wait_for(lambda: running(d, "web") and http_body(port) == (200, "hello"), 15, "web up")
    # healthy for its healthy_after: the known-good copy is taken
    info = wait_for(lambda: (config_path_info(d, "web", conf) or {}).get("known_good_ms") and
                    config_path_info(d, "web", conf), 15, "a known-good copy")
    assert info["differs"] is False, info
    copies = os.listdir(os.path.join(d.state_dir, "known-good", "web"))
    assert any(c.endswith(".data") for c in copies) and any(c.endswith(".json") for c in copies), copies
    pid = svc(d, "web")["pid"]

    # broken: content and mode
    with open(conf, "w") as f:
        f.write(BROKEN)
    os.chmod(conf, 0o600)
    ch = wait_for(lambda: events(d, "file.changed", "web"), 10, "file.changed")[0]["payload"]
    assert ch["path"] == conf, ch
    assert ch["was"]["mode"] == "0644" and ch["now"]["mode"] == "0600", ch
    assert ch["was"]["sha256"] != ch["now"]["sha256"] and len(ch["now"]["sha256"]) == 64, ch
    assert ch["diff"] == ["-port = 8080", "+port = eighty"], ch

    # the probe fails twice: the rule restores the file and restarts web
    inc = wait_for(lambda: [e["payload"] for e in events(d, "incident.resolved", "web")], 30,
                   "the incident resolved")[0]
    acts = [(a["action"], a["outcome"]) for a in inc["actions"]]
    assert acts == [(f"restore {conf}", "ok"), ("restart", "ok")], inc
    assert "restored from the known-good copy" in inc["actions"][0]["message"], inc
    with open(conf) as f:
        assert f.read() == GOOD
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o644
    wait_for(lambda: running(d, "web") and http_body(port) == (200, "hello"), 15, "web healthy again")
    assert svc(d, "web")["pid"] != pid
    rs = [e["payload"] for e in events(d, "file.restored", "web")]
    assert len(rs) == 1 and rs[0]["ok"] is True and rs[0]["path"] == conf, rs
    # one change event for the break; none for heal's own write
    d.wait_ticks(2)
    assert len(events(d, "file.changed", "web")) == 1, events(d, "file.changed", "web")
    # through the policy and the audit log: intent before, result after
    recs = [r for r in audit_records(d) if r.get("action", {}).get("kind") == "restore"]
    assert [r["kind"] for r in recs] == ["intent", "result"], recs
    assert recs[0]["action"]["path"] == conf and recs[1]["outcome"]["status"] == "ok", recs
    assert d.cli("audit", "--verify").returncode == 0
    info = config_path_info(d, "web", conf)
    assert info["differs"] is False, info
    assert d.stop() == 0


def test_restore_and_pid_config_checks():
    cases = [
        ("[service.a]\ncommand = /bin/true\nconfig_path = /etc/a.conf\nrule = if failed process then restore /etc/b.conf\n",
         ":4: restore /etc/b.conf: not one of [service.a]'s config_path"),
        ("[service.a]\ncommand = /bin/true\nconfig_path = etc/a.conf\n", ":3: config_path: 'etc/a.conf' is not an absolute path"),
        ("[service.a]\ncommand = /bin/true\nrule = if cpu > 90% then signal KILL pid 12\n", ":3:"),
        ("[heal]\nrule = if space /var > 90% then restore /etc/a.conf\n", ":2: 'restore' needs a service"),
        ("[service.a]\ncommand = /bin/true\nallow = restore, signal-proces\n", ":3: allow:"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ippoc.conf")
        for text, want in cases:
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([IPPOCD, "--config", path, "--check-config"], capture_output=True, text=True)
            assert r.returncode == 2 and want in r.stderr and path in r.stderr, (text, want, r.stderr)
            if "pid 12" in text:
                assert "a rule cannot name a pid" in r.stderr, r.stderr
        with open(path, "w") as f:
            f.write("[service.a]\ncommand = /bin/true\nconfig_path = /etc/a.conf\nconfig_path = /srv/data/\n"
                    "allow = default, signal-process, renice-process\n"
                    "rule = if failed process then restore /etc/a.conf, restore /srv/data, restart\n")
        r = subprocess.run([IPPOCD, "--config", path, "--check-config"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


if __name__ == "__main__":
    run([test_restore_and_pid_config_checks, test_broken_config_restored_by_rule])
