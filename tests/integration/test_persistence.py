"""test_persistence.py: memory survives a clean restart at full resolution,
and a kill -9 in the middle of writing loses at most the last second."""
import os
import random
import signal
import sqlite3
import time

from harness import Daemon, run, wait_for

SERIES = "/v1/metrics/memory.total_bytes?from=10m&to=now"


def point_times(d):
    r = d.get(SERIES)
    assert r.status == 200, r.body
    return [p[0] for p in r.json()["series"][0]["points"]]


def test_restart_keeps_history():
    d = Daemon().start()
    d.wait_ticks(4)
    before = point_times(d)
    assert len(before) >= 4
    assert d.stop() == 0
    d.start()
    after = point_times(d)
    missing = set(before) - set(after)
    assert not missing, f"lost {len(missing)} points over a clean restart"
    nseries = d.status()["memory"]["nseries"]
    assert nseries > 50
    ev = d.get("/v1/events?type=daemon.*&limit=10&order=asc").json()["events"]
    types = [e["type"] for e in ev]
    assert types[:3] == ["daemon.start", "daemon.stop", "daemon.start"], types


def test_kill9_loses_at_most_a_second():
    d = Daemon().start()
    rng = random.Random(os.getpid())
    for cycle in range(3):
        d.wait_ticks(2 + cycle)
        time.sleep(rng.random() * 0.9)  # land the kill anywhere inside a second
        last = d.status()["last_tick_ms"]
        os.kill(d.proc.pid, signal.SIGKILL)
        d.proc.wait()
        db = os.path.join(d.state_dir, "ippoc.db")
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        d.start()
        times = point_times(d)
        kept = [t for t in times if t <= last]
        assert kept and kept[-1] >= last - 1000, f"cycle {cycle}: last tick {last}, newest kept {kept[-1:]}"
    assert d.stop() == 0


run([test_restart_keeps_history, test_kill9_loses_at_most_a_second])
