"""test_propose.py: POST /v1/actions and `ippoc propose` against a real
ippocd supervising real services: a proposed restart is queued, nothing
runs until `ippoc approve ID` (then the service's pid changes and the audit
log has the intent and the result naming who proposed and who approved); a
kind off the service's allowlist is 403, a genome action is refused, an
unknown service is 404, malformed bodies are 400 naming the member; the
daemon answers throughout and stops cleanly.

Services are small Python programs written to the test's temp dir; every
wait polls the API with a deadline; nothing is mocked."""
import json
import os
import sys

from harness import HEALTH_SERVER, Daemon, free_port, run, wait_for


def config(d):
    """Three services: web (default allowlist), db (only alert allowed) and
    batch (mode observe: the policy only records)."""
    script = os.path.join(d.tmp, "health.py")
    with open(script, "w") as f:
        f.write(HEALTH_SERVER)
    web, db = free_port(), free_port()
    return (f"[service.web]\ncommand = {sys.executable} {script} {web}\n"
            f"rule = if failed http://127.0.0.1:{web}/ timeout 500ms every 1s then restart\n"
            f"[service.db]\ncommand = {sys.executable} {script} {db}\nallow = alert\n"
            f"[service.batch]\ncommand = {sys.executable} {script} {free_port()}\nmode = observe\n")


def svc(d, name):
    for s in d.status()["services"]:
        if s["name"] == name:
            return s
    raise AssertionError(f"no service {name} in /v1/status")


def running_pid(d, name):
    s = svc(d, name)
    return s["pid"] if s["state"] == "running" and s["pid"] > 0 else 0


def audit(d):
    r = d.get("/v1/audit?last=1000")
    assert r.status == 200, r.body
    return r.json()["records"]


def propose(d, body):
    return d.post("/v1/actions", body)


def assert_error(st, ans, status, *texts):
    assert st == status, (st, ans)
    msg = ans["error"]["message"]
    for t in texts:
        assert t in msg, (t, msg)


def test_restart_queued_until_approved():
    d = Daemon()
    d.write_config(config(d))
    d.start()
    pid = wait_for(lambda: running_pid(d, "web"), 10, "web up")
    st, ans = propose(d, {"service": "web", "action": "restart", "reason": "it leaks", "who": "mcp:test"})
    assert st == 202, (st, ans)
    assert ans["verdict"] == "queue" and ans["incident"] > 0 and len(ans["pending"]) == 1, ans
    assert ans["action"] == "restart" and ans["service"] == "web" and ans["who"] == "mcp:test", ans
    pid_id = ans["pending"][0]
    assert f"ippoc approve {pid_id}" in ans["reason"], ans
    pend = d.get("/v1/pending").json()["pending"]
    assert [p["id"] for p in pend] == [pid_id] and pend[0]["action"] == "restart", pend
    assert "mcp:test" in pend[0]["why"], pend
    inc = d.get(f"/v1/incidents/{ans['incident']}").json()
    assert inc["service"] == "web" and "proposed by mcp:test: it leaks" in inc["what"], inc
    # nothing runs by itself: the pid holds over ticks and no intent is written
    d.wait_ticks(2)
    assert running_pid(d, "web") == pid
    assert not [r for r in audit(d) if r["kind"] in ("intent", "result")], audit(d)
    decisions = [r for r in audit(d) if r["kind"] == "decision"]
    assert decisions and "mcp:test" in json.dumps(decisions[-1]), decisions
    # the CLI: propose again (a second queued id), then approve the first
    r = d.cli("propose", "web", "restart", "--reason", "from the shell", check=0)
    assert "queued for approval" in r.stdout and "approve with `ippoc approve" in r.stdout, r.stdout
    assert "incident" in r.stdout, r.stdout
    r = d.cli("approve", str(pid_id), check=0)
    assert f"approved {pid_id}" in r.stdout, r.stdout
    new = wait_for(lambda: (p := running_pid(d, "web")) and p != pid and p, 10, "web restarted after the approval")
    assert new != pid
    recs = audit(d)
    intent = [r for r in recs if r["kind"] == "intent" and r["action"]["kind"] == "restart"]
    result = [r for r in recs if r["kind"] == "result" and r["action"]["kind"] == "restart"]
    assert intent and result and result[-1]["intent_seq"] == intent[-1]["seq"], recs
    assert result[-1]["outcome"]["status"] == "ok", result
    text = json.dumps(intent[-1])
    assert "mcp:test" in text and "approved by cli:" in text, text
    assert "audit log intact" in d.cli("audit", "--verify", check=0).stdout
    assert d.stop() == 0


def test_refusals_and_bad_bodies():
    d = Daemon()
    d.write_config(config(d))
    d.start()
    wait_for(lambda: all(running_pid(d, n) for n in ("db", "web", "batch")), 10, "services up")
    db_pid, n_inc = running_pid(d, "db"), len(d.get("/v1/incidents").json()["incidents"])
    body = {"service": "db", "action": "restart", "reason": "slow"}
    assert_error(*propose(d, body), 403, "restart is not on the allowlist of service 'db'")
    assert_error(*propose(d, dict(body, action="genome apply 1a2b3c4")), 403, "genome")
    assert_error(*propose(d, dict(body, service="nosuch")), 404, "nosuch")
    assert_error(*propose(d, dict(body, action="reboot the box")), 400, "action:")
    assert_error(*propose(d, dict(body, action="restart; rm -rf /tmp/x")), 400, "action:")
    r = d.cli("propose", "db", "restart", check=1)
    assert "forbidden" in r.stderr and "allowlist" in r.stderr, r.stderr
    r = d.cli("propose", "web", check=2)
    assert "missing ACTION" in r.stderr, r.stderr
    bad = [
        (b"", "not JSON"),
        (b"[]", "expected a JSON object"),
        ({"service": "web", "action": "restart"}, '"reason" is missing'),
        ({"service": "web", "reason": "x"}, '"action" is missing'),
        ({"action": "restart", "reason": "x"}, '"service" is missing'),
        ({"service": 1, "action": "restart", "reason": "x"}, '"service" must be a string'),
        ({"service": "web", "action": "", "reason": "x"}, '"action" is empty'),
        ({"service": "web", "action": "restart", "reason": "x" * 1001}, '"reason" is 1001 bytes'),
        ({"service": "web", "action": "restart\u0000", "reason": "x"}, '"action" holds a NUL'),
        ({"service": "web", "action": "restart", "reason": "x", "who": "a\nb"}, '"who" holds a control'),
        ({"service": "web", "action": "restart", "reason": "x", "force": True}, 'unknown member "force"'),
    ]
    for b, want in bad:
        st, ans = propose(d, b)
        assert_error(st, ans, 400, want)
    # a body over the API's limit is refused before it is read whole
    assert_error(*propose(d, {"service": "web", "action": "restart", "reason": "x" * 5000}), 413, "longer than")
    # none of it opened an incident, queued or ran anything; the daemon is well
    assert len(d.get("/v1/incidents").json()["incidents"]) == n_inc
    assert d.get("/v1/pending").json()["pending"] == []
    assert running_pid(d, "db") == db_pid
    assert not [r for r in audit(d) if r["kind"] in ("intent", "decision")], audit(d)
    r = d.get("/v1/actions")
    assert r.status == 405, r.status
    # mode observe: the incident is opened, the policy only records it
    batch_pid = running_pid(d, "batch")
    st, ans = propose(d, {"service": "batch", "action": "restart", "reason": "stuck"})
    assert st == 201 and ans["verdict"] == "record" and ans["pending"] == [], (st, ans)
    assert d.get("/v1/pending").json()["pending"] == []
    d.wait_ticks(1)
    assert running_pid(d, "batch") == batch_pid
    assert [r for r in audit(d) if r["kind"] == "decision"], audit(d)
    assert not [r for r in audit(d) if r["kind"] == "intent"], audit(d)
    d.wait_ticks(1)
    assert d.stop() == 0


if __name__ == "__main__":
    run([test_restart_queued_until_approved, test_refusals_and_bad_bodies], only=sys.argv[1:])
