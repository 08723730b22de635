"""test_prefs.py: the operators' preferences (issue 12 item 5) on a real
fault. A real supervised service in mode suggest has its config broken so
that it exits 1 at start; the brain diagnoses config_error and proposes
"restore CONF" then "restart", which heal queues for approval. An operator
rejects the restore: the next time the same fault happens the restore is not
proposed and the diagnosis names the preference (`ippoc why` too). An
operator approves the restart with an edit ("restore CONF" instead): heal runs
the edit (audited as an edit) and the next proposal for that signature is
the edit. A restart of ippocd keeps what was learned (SQLite); `ippoc prefs`
lists it and `ippoc prefs forget ID` drops it. A configured maintenance
window that excludes now holds the brain's proposals for approval although
the service's mode is heal. Every wait polls the API with
a deadline; nothing is mocked."""
import json
import os
import signal
import sys
import time

from harness import Daemon, free_port, run, wait_for
from test_brain import start_web, up, write_web
from test_heal import _kill_leftovers, svc  # noqa: F401 - registers the leftover killer


def setup(d, port):
    script, conf = write_web(d, port)
    d.write_config(
        "[logs]\nnew_template_grace = 0s\n"
        "[brain]\nwindow = 2s\nmerge = 1s\n"
        "[heal]\nflap = 100 restarts within 1m\nmax_actions = 200 per 1m\nservice_max_actions = 100 per 1m\n"
        f"[service.web]\ncommand = {sys.executable} {script} {conf}\nconfig_path = {conf}\n"
        "healthy_after = 1s\nallow = default, restore\nmode = suggest\n"
        f"rule = if failed http://127.0.0.1:{port}/ timeout 500ms every 1s then restart\n")
    return conf


def pending(d, action):
    for p in d.get("/v1/pending").json()["pending"]:
        if p["service"] == "web" and p["action"] == action:
            return p
    return None


def diagnosis_after(d, before, prefs=False):
    """The newest config_error diagnosis of an incident after before (with
    prefs: one the preferences changed: the brain attaches the diagnosis,
    then the one its preferences changed, and the API may see either)."""
    for inc in d.get("/v1/incidents").json()["incidents"]:
        if inc["id"] <= before:
            continue
        dg = inc.get("diagnosis")
        if dg and dg.get("fault_type") == "config_error" and "proposed_actions" in dg and \
                (not prefs or dg.get("preferences")):
            return dg
    return None


def last_incident(d):
    return max([i["id"] for i in d.get("/v1/incidents").json()["incidents"]] or [0])


def break_it(d, conf, port):
    with open(conf, "w") as f:
        f.write("name = web\nlisten = 80800\n")
    os.kill(svc(d, "web")["pid"], signal.SIGKILL)
    wait_for(lambda: not up(port), 5, "web down")


def fix_it(d, conf, port):
    """A person repairs the file and approves a restart (suggest mode)."""
    with open(conf, "w") as f:
        f.write(f"name = web\nlisten = {port}\n")

    def restarted():
        if up(port):
            return True
        p = pending(d, "restart") or pending(d, "start")
        if p:
            d.post(f"/v1/pending/{p['id']}/approve", {"who": "alice"})
        return False
    wait_for(restarted, 40, "web up again after a person's fix", interval=0.5)


def learned(d, kind, action):
    for p in d.get("/v1/prefs").json()["learned"]:
        if p["kind"] == kind and p["action"] == action and p["signature"] == "config_error web":
            return p
    return None


def test_preferences_change_proposals():
    d = Daemon()
    port = free_port()
    conf = setup(d, port)
    start_web(d, port)
    restore = f"restore {conf}"

    # ---- 1: the brain proposes restore, a person rejects it ----
    before = last_incident(d)
    break_it(d, conf, port)
    dg = wait_for(lambda: diagnosis_after(d, before), 30, "a config_error diagnosis")
    assert [a["action"] for a in dg["proposed_actions"]][:1] == [restore], dg["proposed_actions"]
    assert "preferences" not in dg, dg
    p = wait_for(lambda: pending(d, restore), 20, "the restore queued for approval")
    assert "proposed by brain" in p["why"], p
    r = d.cli("reject", str(p["id"]), check=0)
    pref = wait_for(lambda: learned(d, "reject", restore), 10, "the rejection learned")
    assert pref["rejected"] == 1 and pref["in_force"], pref
    fix_it(d, conf, port)

    # ---- 2: the same fault: no restore proposed, the preference named ----
    before = last_incident(d)
    break_it(d, conf, port)
    dg = wait_for(lambda: diagnosis_after(d, before, True), 30, "the second diagnosis")
    acts = [a["action"] for a in dg["proposed_actions"]]
    assert restore not in acts, dg
    prefs = dg.get("preferences") or []
    assert any(x["kind"] == "reject" and x["id"] == pref["id"] for x in prefs), dg
    r = d.cli("why", str(dg["incident"]), check=0)
    assert "preferences applied" in r.stdout and pref["id"] in r.stdout, r.stdout
    assert f"preference {pref['id']}" in dg["proposed_actions"][0]["why"], dg  # heal's proposal names it
    ev = wait_for(lambda: [e for e in d.get("/v1/events?type=brain.preferences&limit=20").json()["events"]
                           if e["payload"]["incident"] == dg["incident"]], 10, "a brain.preferences event")
    assert ev[0]["payload"]["preferences"][0]["kind"] == "reject", ev

    # ---- 3: a person repairs the file and approves the restart edited into a start ----
    p = wait_for(lambda: pending(d, "restart"), 20, "a restart queued for approval")
    with open(conf, "w") as f:
        f.write(f"name = web\nlisten = {port}\n")
    r = d.cli("approve", str(p["id"]), "--edit", "start", check=0)
    assert "edited" in r.stdout, r.stdout
    ed = wait_for(lambda: learned(d, "edit", "restart"), 10, "the edit learned")
    assert ed["edit"] == "start", ed
    wait_for(lambda: up(port), 20, "web up: the edit (start) ran")
    audit = d.get("/v1/audit?service=web&last=50").json()["records"]
    assert any("edit of" in json.dumps(a) and "start" in json.dumps(a) for a in audit), audit
    r = d.cli("approve", "99999", "--edit", "explode", check=1)
    assert "not_found" in r.stderr or "no such" in r.stderr, r.stderr

    # ---- 4: restart ippocd: what was learned stays; the edit is proposed ----
    d.stop()
    d.start()
    wait_for(lambda: up(port), 15, "web up after the restart")
    assert learned(d, "reject", restore) and learned(d, "edit", "restart"), d.get("/v1/prefs").body
    before = last_incident(d)
    break_it(d, conf, port)
    dg = wait_for(lambda: diagnosis_after(d, before, True), 30, "the third diagnosis")
    acts = [a["action"] for a in dg["proposed_actions"]]
    assert acts == ["start"], dg  # the restore dropped, the restart edited into a start
    kinds = {x["kind"] for x in dg["preferences"]}
    assert kinds == {"reject", "edit"}, dg["preferences"]

    # ---- 5: ippoc prefs lists them; forget drops one ----
    r = d.cli("prefs", check=0)
    assert "reject" in r.stdout and "edit" in r.stdout, r.stdout
    d.cli("prefs", "forget", pref["id"], check=0)
    assert learned(d, "reject", restore) is None
    assert d.post("/v1/prefs/999/forget", {})[0] == 404
    d.stop()


def test_outside_maintenance_window_queued():
    """[prefs] maintenance: a proposal outside the window waits for a person
    although the service's mode is heal; GET /v1/prefs counts what it changed."""
    d = Daemon()
    port = free_port()
    conf = setup(d, port)
    day = time.strftime("%a", time.localtime(time.time() + 3 * 86400))  # three days away: never now
    with open(d.config_path) as f:
        text = f.read().replace("mode = suggest\n", "")
    d.write_config(text + f"[prefs]\nmaintenance = {day} 02:00-03:00\nnever = cache\n")
    start_web(d, port)
    before = last_incident(d)
    with open(conf, "w") as f:
        f.write("name = web\nlisten = 80800\n")
    os.kill(svc(d, "web")["pid"], signal.SIGKILL)
    dg = wait_for(lambda: diagnosis_after(d, before, True), 30, "a diagnosis the window changed")
    assert [x["kind"] for x in dg["preferences"]] == ["maintenance"], dg["preferences"]
    assert "outside the maintenance window" in dg["preferences"][0]["effect"], dg["preferences"]
    p = wait_for(lambda: pending(d, "restart") if pending(d, "restart") and
                 "preference maintenance" in pending(d, "restart")["why"] else None, 20,
                 "the brain's restart queued for approval")
    assert "a person approves" in p["why"], p
    with open(conf) as f:
        assert "80800" in f.read(), "the restore ran although it waits for approval"
    conf_prefs = d.get("/v1/prefs").json()["configured"]
    m = [x for x in conf_prefs if x["id"] == "maintenance"]
    assert m and m[0]["changed"] >= 1 and m[0]["windows"] == [f"{day} 02:00-03:00"], conf_prefs
    assert any(x["id"] == "never:cache" for x in conf_prefs), conf_prefs
    assert d.post("/v1/prefs/maintenance/forget", {})[0] == 403
    d.stop()


def test_bad_prefs_config_refused():
    d = Daemon("[prefs]\nmaintenance = Sat 02:00\n")
    d.start(wait=False)
    rc = d.proc.wait(20)
    assert rc != 0
    assert "ippoc.conf:2" in d.log_text() and "maintenance" in d.log_text(), d.log_text()


if __name__ == "__main__":
    run([test_preferences_change_proposals, test_outside_maintenance_window_queued, test_bad_prefs_config_refused])
