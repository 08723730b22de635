"""test_dream.py: dreaming and the digest on a real ippocd (issue 12 item 6).
A real supervised service is killed with SIGKILL; heal restarts it; then
`ippoc digest` (today's, built on demand from memory) shows the restart and
the incident, and `ippoc digest --json` carries them as fields. POST
/v1/dream starts a pass and its brain.dream event appears with every step;
`ippoc dream` runs one more and prints the steps. The API's and the CLI's
errors: a malformed day (400 / usage), a day without events (404), a body
the pass does not take (400). Every wait polls with a deadline."""
import json
import os
import signal
import time

from harness import Daemon, run, wait_for
from test_heal import _kill_leftovers, running, svc, wait_event  # noqa: F401 - registers the leftover killer


def dream_event(d, number):
    for e in d.get("/v1/events?type=brain.dream&limit=50").json()["events"]:
        if e["payload"].get("pass") == number:
            return e["payload"]
    return None


def test_digest_shows_a_restart_and_dream_runs():
    d = Daemon()
    d.write_config("[service.web]\ncommand = /bin/sleep 600\n")
    d.start()
    wait_for(lambda: running(d, "web"), 10, "web up")
    pid = svc(d, "web")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_event(d, "service.restart", "web")
    wait_event(d, "incident.resolved", "web")
    wait_for(lambda: running(d, "web") and svc(d, "web")["pid"] != pid, 10, "web running again")

    # the digest of today, built on demand (no pass needed)
    r = d.cli("digest", check=0)
    assert "restarts: 1 (web 1)" in r.stdout, r.stdout
    assert "incidents: 1 opened (web 1)" in r.stdout, r.stdout
    assert "What was healed" in r.stdout and "web restart: 1 ok" in r.stdout, r.stdout
    dg = json.loads(d.cli("digest", "--json", check=0).stdout)
    assert dg["happened"]["restarts"]["web"] == 1, dg
    assert dg["happened"]["incidents"]["by_service"]["web"]["resolved"] == 1, dg
    assert dg["healed"]["actions_ok"] >= 1, dg
    day = dg["day"]
    assert d.get(f"/v1/digest?day={day}").json()["day"] == day

    # errors
    assert d.get("/v1/digest?day=2026-13-45").status == 400
    assert d.get("/v1/digest?day=tomorrow").status == 400
    assert d.get("/v1/digest?day=1999-01-01").status == 404
    assert d.get("/v1/digest?when=1").status == 400
    assert d.cli("digest", "--day", "1999-01-01").returncode == 1
    assert d.cli("digest", "--day", "noon").returncode == 2
    assert d.post("/v1/dream", b'{"now":true}')[0] == 400
    assert d.get("/v1/dream").status == 405

    # a pass now: its brain.dream event, every step in it
    status, ans = d.post("/v1/dream")
    assert status == 202, ans
    ev = wait_for(lambda: dream_event(d, ans["pass"]), 20, "the brain.dream event")
    steps = ev["steps"]
    assert ev["trigger"] == "api" and not ev["stopped"], ev
    assert steps["cases"]["merged"] == 0, steps
    for k in ("know_dedup", "know_decay"):
        assert "error" not in steps[k], steps
    assert steps["baselines"] == {"saved": True}, steps
    assert steps["digest"]["day"] == day, steps  # yesterday had no events: today's so far
    dig = d.get("/v1/events?type=brain.digest&limit=5").json()["events"]
    assert dig and dig[0]["payload"]["day"] == steps["digest"]["day"], dig
    # and once more through the CLI
    r = d.cli("dream", check=0, timeout=70)
    assert r.stdout.startswith(f"dreaming pass {ans['pass'] + 1}"), r.stdout
    assert "cases" in r.stdout and "baselines" in r.stdout and "saved yes" in r.stdout, r.stdout
    assert d.stop() == 0


def test_idle_machine_dreams_on_its_own():
    """Limits no machine exceeds: the real sensors' series (cpu.usage_percent
    cpu="total", psi.some_avg10_percent) make it idle, and the schedule
    starts a pass by itself."""
    d = Daemon()
    d.write_config("[dream]\nidle_cpu = 100\nidle_psi = 100\nidle_for = 0s\n")
    d.start()
    ev = wait_for(lambda: dream_event(d, 1), 20, "a pass started by the schedule")
    assert ev["trigger"] in ("idle", "noon"), ev
    assert ev["steps"]["baselines"] == {"saved": True}, ev
    assert d.stop() == 0


def test_busy_machine_does_not_dream():
    """idle_cpu = 0: no machine is ever that idle: no pass after many ticks."""
    d = Daemon()
    d.write_config("[dream]\nidle_cpu = 0\nidle_psi = 0\nidle_for = 0s\ndigest_at = 23:59\n")
    d.start()
    d.wait_ticks(5)
    assert d.get("/v1/events?type=brain.dream").json()["events"] == []
    status, ans = d.post("/v1/dream")  # asked for: runs whatever the load
    assert status == 202 and ans["pass"] == 1, ans
    wait_for(lambda: dream_event(d, 1), 20, "the pass asked for")
    assert d.stop() == 0


if __name__ == "__main__":
    run([test_digest_shows_a_restart_and_dream_runs, test_idle_machine_dreams_on_its_own,
         test_busy_machine_does_not_dream])
