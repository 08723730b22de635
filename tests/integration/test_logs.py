"""test_logs.py: the log watch in the real ippocd (issue 10, item 2): a
supervised service that logs (its captured output is a source, ippocd's own
notes in it are not), a [logs] file that is rotated by rename while being
followed, GET /v1/logs and `ippoc logs` with the templates and their counts,
a new error template that makes a log.template.new event, an error storm
that makes a log.burst event at level error and only a handful of events,
a reload that adds a source, a missing file that does not stop anything, and
the journal (real journal files written by systemd-journal-remote) grouped
by unit.

The service is a small Python program that prints what the test writes to
its FIFO (so the test decides when it logs, without sleeps); every wait
polls with a deadline; nothing is mocked."""
import errno
import json
import os
import subprocess
import sys

from harness import Daemon, run, wait_for
from test_heal import _kill_leftovers, _service_pids  # noqa: F401 - kills what a failed test left

TALKER = """import sys
fifo = sys.argv[1]
print("talker ready, version 3", flush=True)
while True:
    with open(fifo) as f:
        for cmd in f:
            cmd = cmd.rstrip("\\n")
            if cmd.startswith("say "):
                print(cmd[4:], flush=True)
            elif cmd.startswith("storm "):
                n, text = cmd[6:].split(" ", 1)
                for i in range(int(n)):
                    sys.stdout.write(f"{text} {i}\\n")
                sys.stdout.flush()
"""


def talker(d):
    script = os.path.join(d.tmp, "talker.py")
    with open(script, "w") as f:
        f.write(TALKER)
    fifo = os.path.join(d.tmp, "talker.fifo")
    os.mkfifo(fifo)
    return fifo, f"[service.talker]\ncommand = {sys.executable} {script} {fifo}\n"


def tell(fifo, *cmds):
    """Writes commands to the talker once it listens (opening a FIFO with
    nobody reading fails with ENXIO: retried until the deadline)."""
    def opened():
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno == errno.ENXIO:
                return None
            raise
    fd = wait_for(opened, 10, "the talker to read its FIFO")
    try:
        os.set_blocking(fd, True)
        os.write(fd, "".join(c + "\n" for c in cmds).encode())
    finally:
        os.close(fd)


def logs(d, source=None):
    r = d.get("/v1/logs" + (f"?source={source}" if source else ""))
    assert r.status == 200, r.body
    return r.json()


def templates(d, source):
    srcs = logs(d, source)["sources"]
    assert len(srcs) == 1 and srcs[0]["source"] == source, srcs
    return srcs[0]["templates"]


def find_tpl(d, source, words):
    """The template of source whose text has every word, or None."""
    for t in templates(d, source):
        if all(w in t["template"] for w in words):
            return t
    return None


def log_events(d, typ="log.*", source=None):
    r = d.get(f"/v1/events?type={typ}&limit=1000")
    assert r.status == 200, r.body
    return [e for e in r.json()["events"] if source is None or e["source"] == source]


def note_services(d):
    for s in d.get("/v1/services").json().get("services", []):
        if s.get("pid"):
            _service_pids.add(s["pid"])


def base_config(extra="", journal="no"):
    return f"[logs]\nnew_template_grace = 0s\njournal = {journal}\n" + extra


def test_service_output_and_rotated_file():
    d = Daemon()
    fifo, svc = talker(d)
    app = os.path.join(d.tmp, "app.log")
    with open(app, "w") as f:
        f.write("history that is not replayed 1\n")
    d.write_config(base_config(f"file = app {app}\n") + svc)
    d.start()
    wait_for(lambda: find_tpl(d, "talker", ["talker", "ready"]), 10, "the talker's first line")
    note_services(d)
    tell(fifo, "say user 17 logged in from 10.0.0.1", "say user 18 logged in from 10.0.0.2",
         "say user 19 logged in from 10.0.0.3")
    t = wait_for(lambda: (lambda t: t if t and t["count"] == 3 else None)(find_tpl(d, "talker", ["logged", "in"])),
                 10, "3 logins in one template")
    assert t["level"] == "info" and t["first_seen"] > 0, t
    # ippocd's own notes in the captured output ("ippocd: started ...") are not the service's
    assert not [x for x in templates(d, "talker") if "ippocd" in x["template"]], templates(d, "talker")

    # the file: appended, rotated by rename while the writer still writes, then the new file
    w = open(app, "a")
    for i in range(5):
        w.write(f"GET /item/{i} 200 {i + 3}ms\n")
    w.flush()
    wait_for(lambda: (find_tpl(d, "app", ["GET"]) or {}).get("count") == 5, 10, "5 requests")
    os.rename(app, app + ".1")
    for i in range(5, 8):  # still into the old file
        w.write(f"GET /item/{i} 200 {i + 3}ms\n")
    w.close()
    with open(app, "a") as n:
        for i in range(8, 12):
            n.write(f"GET /item/{i} 200 {i + 3}ms\n")
    wait_for(lambda: (find_tpl(d, "app", ["GET"]) or {}).get("count") == 12, 10, "12 requests across the rotation")
    assert not find_tpl(d, "app", ["history"]), "history was replayed"
    src = logs(d, "app")["sources"][0]
    assert src["lines"] == 12, src

    # the CLI: a table with the counts, and --json
    r = d.cli("logs", "app", check=0)
    assert "COUNT" in r.stdout and "TEMPLATE" in r.stdout, r.stdout
    row = [ln for ln in r.stdout.splitlines() if "GET" in ln]
    assert row and " 12 " in row[0], r.stdout
    r = d.cli("logs", check=0)
    assert "talker (service)" in r.stdout and "app (file)" in r.stdout, r.stdout
    r = d.cli("logs", "--json", check=0)
    assert {s["source"] for s in json.loads(r.stdout)["sources"]} >= {"talker", "app"}, r.stdout
    # an unknown source: 404 with a JSON error, and the CLI says so
    r = d.get("/v1/logs?source=nope")
    assert r.status == 404 and r.json()["error"]["code"] == "not_found", r.body
    r = d.cli("logs", "nope")
    assert r.returncode == 1 and "nope" in r.stderr, (r.returncode, r.stderr)
    assert d.stop() == 0


def test_new_error_template_and_storm():
    d = Daemon()
    fifo, svc = talker(d)
    d.write_config(base_config() + svc)
    d.start()
    wait_for(lambda: find_tpl(d, "talker", ["talker", "ready"]), 10, "the talker's first line")
    note_services(d)
    start = max([e["id"] for e in log_events(d)] + [0])

    tell(fifo, "say ERROR cannot open /var/lib/talker/db.sqlite: permission denied")
    ev = wait_for(lambda: [e for e in log_events(d, "log.template.new", "talker")
                           if "permission denied" in e["payload"]["template"]], 10, "log.template.new")[0]
    p = ev["payload"]
    assert p["level"] == "error" and ev["severity"] == "warning", ev
    assert p["source"] == "talker" and p["sample"].startswith("ERROR cannot open"), p
    assert p["template_id"] != "" and p["count"] == 1, p

    # an error storm: 3000 lines of one new error template, 300 of another
    tell(fifo, "storm 3000 ERROR upstream 10.1.2.3 timed out after 30s, request",
         "storm 300 FATAL worker crashed with signal 11, core dumped, worker")
    burst = wait_for(lambda: [e for e in log_events(d, "log.burst", "talker")
                              if e["payload"]["level"] == "error"], 15, "an error-level log.burst")[0]
    assert burst["severity"] == "warning", burst
    assert burst["payload"]["rate"] > burst["payload"]["baseline"], burst
    t = wait_for(lambda: (lambda t: t if t and t["count"] == 3000 else None)(find_tpl(d, "talker", ["upstream"])),
                 15, "3000 lines of the storm counted")
    assert t["level"] == "error", t
    d.wait_ticks(2)
    storm = [e for e in log_events(d, source="talker") if e["id"] > start]
    assert 2 <= len(storm) <= 8, [(e["type"], e["payload"].get("template")) for e in storm]
    print(f"     the storm of 3300 error lines made {len(storm)} events: "
          f"{sorted(e['type'] for e in storm)}", flush=True)
    # the series say it too
    r = d.get("/v1/metrics")
    names = {m.get("name") for m in r.json().get("metrics", [])}
    assert {"log.lines", "log.errors", "log.templates", "log.new_templates"} <= names, names
    assert d.stop() == 0


def test_reload_and_missing_file():
    d = Daemon()
    d.write_config(base_config("file = ghost /nonexistent/dir/ghost.log\n"))
    d.start(wait=True)
    assert logs(d, "ghost")["sources"][0]["lines"] == 0
    other = os.path.join(d.tmp, "other.log")
    d.write_config(base_config(f"file = other {other}\n"))
    d.signal(1)  # SIGHUP
    wait_for(lambda: d.get("/v1/logs?source=other").status == 200, 10, "the reloaded source")
    assert d.get("/v1/logs?source=ghost").status == 404
    r = d.get("/v1/logs?sauce=other")  # an unknown parameter
    assert r.status == 400 and r.json()["error"]["code"] == "bad_request", r.body
    with open(other, "w") as f:  # created after: read from its start
        f.write("disk /dev/sda1 is 91% full\n")
    wait_for(lambda: find_tpl(d, "other", ["disk"]), 10, "the new file's line")
    # a bad [logs] key is refused with its place; the running watch stays
    d.write_config(base_config(f"file = other {other}\nburst = often\n"))
    d.signal(1)
    ev = wait_for(lambda: log_events(d, "config.rejected"), 10, "config.rejected")[0]
    assert "ippoc.conf:5" in ev["payload"]["reason"] and "burst" in ev["payload"]["reason"], ev
    assert d.get("/v1/logs?source=other").status == 200
    assert d.stop() == 0


REMOTE = "/lib/systemd/systemd-journal-remote"


def test_journal_units():
    """The journal (a directory of real journal files written by
    systemd-journal-remote) grouped by unit, the service whose unit = names
    one taking its entries, PRIORITY giving the level."""
    if not os.access(REMOTE, os.X_OK):
        print(f"     skipped: {REMOTE} is not installed (package systemd-journal-remote)", flush=True)
        return
    d = Daemon()
    jdir = os.path.join(d.tmp, "journal")
    os.makedirs(jdir)
    d.write_config(base_config(f"journal_dir = {jdir}\n", journal="yes") +
                   "[service.api]\ncommand = /bin/sleep 1000\nunit = api-server.service\n")
    d.start()
    note_services(d)
    export = os.path.join(d.tmp, "entries.export")
    with open(export, "w") as f:
        for i, (unit, prio, msg) in enumerate([("api-server.service", 3, "request 1 failed: upstream reset"),
                                               ("api-server.service", 3, "request 2 failed: upstream reset"),
                                               ("cron.service", 6, "job 7 started")]):
            f.write(f"__REALTIME_TIMESTAMP={1733300000000000 + i * 1000}\n__MONOTONIC_TIMESTAMP={1000 + i}\n"
                    f"_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=t\n_SYSTEMD_UNIT={unit}\n"
                    f"PRIORITY={prio}\nMESSAGE={msg}\n\n")
    r = subprocess.run([REMOTE, "-o", os.path.join(jdir, "remote.journal"), export], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t = wait_for(lambda: (lambda t: t if t and t["count"] == 2 else None)(find_tpl(d, "api", ["upstream", "reset"])),
                 10, "the unit's entries in the service's source")
    assert t["level"] == "error", t  # PRIORITY 3
    src = wait_for(lambda: [s for s in logs(d)["sources"] if s["source"] == "cron"], 10, "the cron unit")[0]
    assert src["kind"] == "journal" and src["lines"] == 1, src
    assert not log_events(d, "log.journal"), "the journal was there"
    assert d.stop() == 0


def test_bad_config_refused_at_start():
    d = Daemon()
    d.write_config("[logs]\nfile = relative.log\n")
    d.start(wait=False)
    rc = d.proc.wait(20)
    assert rc != 0 and "ippoc.conf:2" in d.log_text(), d.log_text()


if __name__ == "__main__":
    run([test_service_output_and_rotated_file, test_new_error_template_and_storm, test_reload_and_missing_file,
         test_journal_units, test_bad_config_refused_at_start])
