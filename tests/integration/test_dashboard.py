"""test_dashboard.py: the web dashboard in a real browser (it-dashboard).

Starts a real ippocd with an API token and three supervised services (small
Python HTTP servers with HTTP probes): kills "web" (in `mode = suggest`)
with SIGKILL so its restart waits in the approval queue (the incident
closes at once as "failed": no action ran), and breaks "api" (its health
check answers 500 while a flag file exists, a fault a restart does not
cure) so its incident stays open, verifying, during the browser run; "db"
stays healthy. Then it runs tests/web/dashboard.mjs: playwright-core driving
Debian's chromium headless against the daemon (the token form, the
overview, a chart's points, the incident's timeline, approving the pending
action through the page, no console errors, no request leaving the
daemon's origin, the first view's bytes, a screenshot). Afterwards it
checks through the API that the approval ran the restart (the audit log,
the heal.action event, the service back up with a new pid).

The screenshot goes to IPPOC_ARTIFACT_DIR (meson passes the build tree's
tests/integration/) as dashboard-overview.png; its path is printed.
Exit 77 (skipped) when chromium, node or tests/web/node_modules is missing,
unless CI is set: then a missing browser is a failure. The browser, the
daemon and the services are stopped even when the test fails."""
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from harness import IPPOCD, SLOW, Daemon, free_port, kill_marked, run, wait_for
from test_heal import HEALTH_SERVER, http_ok, write_script

HERE = os.path.dirname(os.path.abspath(__file__))
WEB_TESTS = os.path.join(os.path.dirname(HERE), "web")
CHROMIUM = os.environ.get("IPPOC_CHROMIUM", "/usr/bin/chromium")
TOKEN = "dashboard-test-token-0123456789abcdef"
BUDGET_S = 60  # the whole test, on this 2-core machine


# A health server that fails (500) while the flag file beside it exists.
FLAKY_SERVER = """import http.server, os, sys
FLAG = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        bad = os.path.exists(FLAG)
        self.send_response(500 if bad else 200); self.end_headers(); self.wfile.write(b"broken" if bad else b"ok")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def missing_tools():
    """What the browser test needs and this machine lacks (a list of reasons)."""
    why = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        why.append(f"{CHROMIUM} not found (apt-get install chromium, or `make deps-test`)")
    if not shutil.which("node"):
        why.append("node not found (`make node`)")
    if not os.path.isfile(os.path.join(WEB_TESTS, "node_modules", "playwright-core", "package.json")):
        why.append(f"{WEB_TESTS}/node_modules/playwright-core missing (`make web-test-deps`)")
    return why


def artifact_dir():
    d = os.environ.get("IPPOC_ARTIFACT_DIR")
    if not d:  # run by hand: beside the build's binaries (build/src/daemon/ippocd -> build/)
        d = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(IPPOCD)))),
                         "tests", "integration")
    os.makedirs(d, exist_ok=True)
    return d


class TokenDaemon(Daemon):
    """A Daemon whose API calls carry the bearer token (the config sets one)."""

    def get(self, path, headers=None, **kw):
        return super().get(path, headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})}, **kw)


def service_conf(d, name, extra="", source=HEALTH_SERVER, args=""):
    port = free_port()
    script = write_script(d, f"{name}.py", source)
    return port, (f"[service.{name}]\ncommand = {sys.executable} {script} {port}{args}\n"
                  f"rule = if failed http://127.0.0.1:{port}/ timeout 500ms every 1s then restart\n{extra}")


def services_of(d):
    r = d.get("/v1/status")
    assert r.status == 200, r.body
    return {s["name"]: s for s in r.json()["services"]}


def events_of(d, typ):
    r = d.get(f"/v1/events?type={typ}&limit=500&order=asc")
    assert r.status == 200, r.body
    return r.json()["events"]


def incidents_of(d):
    r = d.get("/v1/incidents")
    assert r.status == 200, r.body
    return r.json()["incidents"]


def audit_kinds(d):
    r = d.get("/v1/audit?last=100")
    assert r.status == 200, r.body
    return [(x["kind"], (x.get("action") or {}).get("kind")) for x in r.json()["records"]]


def run_browser(d, env_extra, deadline):
    """Runs dashboard.mjs in its own session; returns its JSON result, or
    raises with its output. Node and chromium (which playwright starts in a
    process group of its own) carry a marker of their own in their
    environment, so whatever they leave is killed at the end, even when this
    test fails or is killed; chromium's profile goes to the daemon's temp
    dir (removed with it)."""
    mark = os.path.join(d.tmp, "browser")
    os.makedirs(mark, exist_ok=True)
    atexit.register(kill_marked, mark)
    env = dict(os.environ, IPPOC_URL=d.url, IPPOC_TOKEN=TOKEN, IPPOC_CHROMIUM=CHROMIUM,
               IPPOC_IT_DIR=mark, TMPDIR=mark, **env_extra)
    p = subprocess.Popen(["node", os.path.join(WEB_TESTS, "dashboard.mjs")], cwd=WEB_TESTS, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=max(5, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(f"dashboard.mjs ran past the test's budget\n{err[-6000:]}")
    finally:
        kill_marked(mark)  # chromium too, should node have left it behind
    sys.stdout.write(err)
    assert p.returncode == 0, f"dashboard.mjs exited {p.returncode}:\n{out[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


def test_dashboard():
    t0 = time.monotonic()
    d = TokenDaemon()
    web_port, web = service_conf(d, "web", "mode = suggest\n")
    db_port, db = service_conf(d, "db")
    flag = os.path.join(d.tmp, "api.broken")
    api_port, api = service_conf(d, "api", source=FLAKY_SERVER, args=f" {flag}")
    # verify: the api incident stays open (verifying) for the whole browser run
    d.write_config(f"[api]\ntoken = {TOKEN}\n[heal]\nverify = 5m\n" + web + db + api)
    d.start()
    wait_for(lambda: http_ok(web_port) and http_ok(db_port) and http_ok(api_port) and
             all(s["state"] == "running" for s in services_of(d).values()), 10, "web, db and api up")
    assert d.get("/v1/status", headers={"Authorization": "Bearer wrong-token-0123456789"}).status == 401
    # the fault: web killed; suggest mode leaves its restart waiting for approval
    pid = services_of(d)["web"]["pid"]
    os.kill(pid, signal.SIGKILL)
    pend = wait_for(lambda: [e["payload"] for e in events_of(d, "heal.pending")
                             if e["payload"].get("service") == "web"], 10, "web's pending restart")[0]
    assert pend["action"] == "restart" and pend["pending_id"] > 0, pend
    inc = wait_for(lambda: [e["payload"] for e in events_of(d, "incident.open")
                            if e["payload"].get("service") == "web"], 10, "web's incident")[0]
    incident_id = inc["id"]
    # the second fault: api's health check fails; restarted, it still fails
    with open(flag, "w"):
        pass
    open_inc = wait_for(lambda: [i for i in incidents_of(d) if i["service"] == "api" and i["state"] == "verifying"
                                 and [a for a in i["actions"] if a["action"] == "restart"]],
                        15, "api's incident verifying after its restart")[0]
    wait_for(lambda: services_of(d)["api"]["state"] == "running", 10, "api running again (still broken)")
    d.wait_ticks(2)  # a few points for the charts
    svcs = services_of(d)
    assert svcs["web"]["state"] != "running" and svcs["db"]["state"] == "running", svcs
    shot = os.path.join(artifact_dir(), "dashboard-overview.png")
    for old in (shot, shot[:-4] + "-failed.png"):  # dashboard.mjs writes the latter when a check fails
        if os.path.exists(old):
            os.remove(old)

    res = run_browser(d, {"IPPOC_SCREENSHOT": shot, "IPPOC_DOWN": "web",
                          "IPPOC_SERVICES": json.dumps({n: s["state"] for n, s in svcs.items()}),
                          "IPPOC_INCIDENT": str(incident_id), "IPPOC_OPEN_INCIDENT": str(open_inc["id"]),
                          "IPPOC_PENDING": str(pend["pending_id"]),
                          "IPPOC_STEP_TIMEOUT_MS": str(10000 * SLOW)},
                      t0 + BUDGET_S * SLOW - 5)
    print("browser: " + json.dumps(res), flush=True)
    print(f"first view: {res['firstViewBytes']} bytes in {res['firstViewRequests']} requests", flush=True)
    assert os.path.getsize(shot) > 1000, shot
    print(f"screenshot: {shot}", flush=True)

    # what the click did, seen through the API
    assert wait_for(lambda: d.get("/v1/pending").json()["pending"] == [], 5, "the queue empty")
    act = wait_for(lambda: [e["payload"] for e in events_of(d, "heal.action")
                            if e["payload"].get("service") == "web" and e["payload"].get("kind") == "restart"],
                   10, "web's heal.action restart")[0]
    assert act["outcome"] == "ok" and not act.get("would"), act
    kinds = audit_kinds(d)
    assert ("approval", "restart") in kinds or any(k == "approval" for k, _ in kinds), kinds
    assert ("intent", "restart") in kinds and ("result", "restart") in kinds, kinds
    wait_for(lambda: http_ok(web_port), 10, "web answering again")
    assert services_of(d)["web"]["pid"] not in (0, pid)
    assert [i for i in incidents_of(d) if i["id"] == open_inc["id"]][0]["state"] == "verifying"
    assert d.stop() == 0
    assert TOKEN not in d.log_text(), "the token is in ippocd's log"
    took = time.monotonic() - t0
    print(f"it-dashboard took {took:.1f} s", flush=True)
    assert took < BUDGET_S * SLOW, took


def main():
    why = missing_tools()
    if why:
        if os.environ.get("CI"):
            print("FAIL: the browser test cannot run under CI: " + "; ".join(why), flush=True)
            sys.exit(1)
        print("skip: " + "; ".join(why), flush=True)
        sys.exit(77)
    run([test_dashboard], sys.argv[1:])


if __name__ == "__main__":
    main()
