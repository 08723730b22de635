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
    from harness import free_port
    import socket
    p1, p2 = free_port(), free_port()
    d = Daemon(config=f"[api]\nlisten = 127.0.0.1:{p1}\n", port=p1, listen_arg=False).start()
    d.write_config(f"[api]\nlisten = 127.0.0.1:{p2}\n")
    d.signal(signal.SIGHUP)
    d.port = p2
    wait_for(lambda: d.get("/v1/status").status == 200, 10, "the API on its new port")
    ev = wait_for(lambda: events(d, "config.reload"), 10, "config.reload event")[0]
    assert ev["payload"]["api_restarted"] is True, json.dumps(ev)
    with open(os.path.join(d.state_dir, "ippocd.url")) as f:
        assert f.read().strip() == d.url
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", p1)) != 0, "old port still open"
    # a port that is taken: the reload is applied but the API stays where it was
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        d.write_config(f"[api]\nlisten = 127.0.0.1:{busy.getsockname()[1]}\n")
        d.signal(signal.SIGHUP)
        wait_for(lambda: "keeping the old ones" in d.log_text(), 10, "the API to fall back")
    assert d.get("/v1/status").status == 200
    assert d.stop() == 0


def test_command_line_listen_wins():
    from harness import free_port
    d = Daemon().start()
    d.write_config(f"[api]\nlisten = 127.0.0.1:{free_port()}\n")
    d.signal(signal.SIGHUP)
    ev = wait_for(lambda: events(d, "config.reload"), 10, "config.reload event")[0]
    assert ev["payload"]["api_restarted"] is False, json.dumps(ev)
    assert d.get("/v1/status").status == 200


def test_hostname_and_duplicates():
    d = Daemon(config="[daemon]\nhostname = first-name\n").start()
    assert d.status()["host"] == "first-name"
    d.write_config("[daemon]\nhostname = second-name\n")
    d.signal(signal.SIGHUP)
    wait_for(lambda: d.status()["host"] == "second-name", 10, "the new hostname in status")
    # a key given twice in one file is rejected, naming both lines
    d.write_config("[daemon]\nhostname = third\n\nhostname = fourth\n")
    d.signal(signal.SIGHUP)
    ev = wait_for(lambda: events(d, "config.rejected"), 10, "config.rejected event")
    reason = ev[0]["payload"]["reason"]
    want = f"{d.config_path}:4: duplicate key 'hostname' in [daemon] (first set at {d.config_path}:2)"
    assert want in reason, reason
    assert d.status()["host"] == "second-name"
    assert d.stop() == 0


run([test_hostname_and_duplicates, test_broken_config_keeps_old, test_good_config_applied, test_reload_moves_api,
     test_command_line_listen_wins])
