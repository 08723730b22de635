"""test_reload.py: SIGHUP reloads the configuration; a broken one is rejected
with file:line and the reason while the running one keeps serving."""
import json
import os
import signal

from harness import Daemon, run, wait_for


def events(d, typ):
    r = d.get(f"/v1/events?type={typ}&limit=50")
    assert r.status == 200, r.body
    return r.json()["events"]


def test_broken_config_keeps_old():
    d = Daemon(config="[sense]\ninterval = 1s\n").start()
    d.wait_ticks(1)
    with open(os.path.join(d.conf_dir, "conf.d", "50-bad.conf"), "w") as f:
        f.write("[sense.disk]\ninterval = 1s\n\nenabled = sometimes\n")
    d.signal(signal.SIGHUP)
    ev = wait_for(lambda: events(d, "config.rejected"), 10, "config.rejected event")
    reason = ev[0]["payload"]["reason"]
    assert "50-bad.conf:4: enabled: 'sometimes' is not yes or no" in reason, reason
    assert "configuration rejected" in d.log_text()
    # still alive, still ticking, same pid, old settings in force
    d.wait_ticks(2)
    st = d.status()
    disk = [c for c in st["collectors"] if c["name"] == "disk"][0]
    assert disk["enabled"] is True
    assert st["pid"] == d.proc.pid


def test_good_config_applied():
    d = Daemon(config="[sense]\ninterval = 1s\n").start()
    with open(os.path.join(d.conf_dir, "conf.d", "60-disk.conf"), "w") as f:
        f.write("[sense.disk]\nenabled = no\n[sense.load]\ninterval = 5s\n")
    d.signal(signal.SIGHUP)
    wait_for(lambda: events(d, "config.reload"), 10, "config.reload event")

    def applied():
        cols = {c["name"]: c for c in d.status()["collectors"]}
        return cols["disk"]["enabled"] is False and cols["load"]["interval_ms"] == 5000
    wait_for(applied, 10, "new collector settings")
    assert d.stop() == 0


def test_reload_moves_api():
    d = Daemon().start()
    from harness import free_port
    new_port = free_port()
    d.write_config(f"[api]\nlisten = 127.0.0.1:{new_port}\n")
    d.extra_args = []
    # the command line --listen wins over the file, so this reload keeps the port
    d.signal(signal.SIGHUP)
    wait_for(lambda: events(d, "config.reload"), 10, "config.reload event")
    assert d.get("/v1/status").status == 200
    ev = events(d, "config.reload")[0]
    assert ev["payload"]["api_restarted"] is False, json.dumps(ev)


run([test_broken_config_keeps_old, test_good_config_applied, test_reload_moves_api])
