"""test_diskfull.py: the state dir's filesystem fills up under a running
ippocd: the daemon keeps sensing and serving, says so, loses no data it had
stored, and resumes writing once space is freed. Needs root to mount a small
tmpfs; elsewhere it is skipped (exit 77)."""
import os
import subprocess
import sys
import sqlite3
import tempfile

from harness import Daemon, run, wait_for

if os.geteuid() != 0:
    print("skip: needs root to mount a small tmpfs")
    sys.exit(77)


def test_disk_full_then_freed():
    mnt = tempfile.mkdtemp(prefix="ippoc-full.")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt]).returncode != 0:
        print("skip: cannot mount tmpfs here")
        os.rmdir(mnt)
        sys.exit(77)
    filler = os.path.join(mnt, "filler")
    try:
        # no dreaming: from noon on a new cell writes yesterday's digest (and
        # the knowledge store it goes into) at once, which alone fills this
        # 4 MB state dir before the test does; the test is about the store
        d = Daemon(config="[dream]\nenabled = no\n", state_dir=os.path.join(mnt, "state")).start()
        d.wait_ticks(3)
        before = d.get("/v1/metrics/memory.total_bytes?from=5m").json()["series"][0]["points"]
        # fill the filesystem to the last byte
        f = open(filler, "wb", buffering=0)
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
        finally:
            f.close()
        wait_for(lambda: "memory:" in d.log_text().split("started:")[-1] and
                 ("full" in d.log_text() or "dropped" in d.log_text() or "disk" in d.log_text()),
                 30, "the daemon to report the full disk")
        d.wait_ticks(3)
        assert d.proc.poll() is None, "ippocd died on a full disk"
        st = d.status()
        assert st["last_tick_ms"] > 0
        # entering the state: one event, one log line, and status says so
        ev = wait_for(lambda: d.get("/v1/events?type=memory.write_failed").json()["events"], 20,
                      "a memory.write_failed event")
        assert len(ev) == 1 and "full" in ev[0]["payload"]["reason"], ev
        assert d.log_text().count("cannot write: database or disk is full: new samples live only in RAM") == 1
        st = d.status()
        assert st["memory"]["write_failing_since"] > 0 and "full" in st["memory"]["write_error"], st["memory"]
        out = d.cli("status", check=0).stdout
        assert "CANNOT WRITE: database or disk is full" in out, out
        # still answers from RAM, and what was stored before is still there
        now = d.get("/v1/metrics/memory.total_bytes?from=5m").json()["series"][0]["points"]
        assert {p[0] for p in before} <= {p[0] for p in now}
        written = st["memory"]["rows_written"]
        os.unlink(filler)
        wait_for(lambda: d.status()["memory"]["rows_written"] > written + 2, 30, "writing to resume")
        # leaving it: an event and a log line too
        ev = wait_for(lambda: d.get("/v1/events?type=memory.write_resumed").json()["events"], 20,
                      "a memory.write_resumed event")
        assert len(ev) == 1 and ev[0]["payload"]["failed_for_ms"] > 0, ev
        assert "writes again after" in d.log_text()
        st = d.status()
        assert st["memory"]["write_failing_since"] == 0 and st["memory"]["write_error"] is None
        assert "CANNOT WRITE" not in d.cli("status", check=0).stdout
        assert d.stop() == 0
        con = sqlite3.connect(os.path.join(d.state_dir, "ippoc.db"))
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        d.start()
        after = d.get("/v1/metrics/memory.total_bytes?from=5m").json()["series"][0]["points"]
        lost = {p[0] for p in before} - {p[0] for p in after}
        assert not lost, f"{len(lost)} points stored before the disk filled were lost"
        assert d.stop() == 0
    finally:
        if os.path.exists(filler):
            os.unlink(filler)
        subprocess.run(["umount", "-l", mnt])
        os.rmdir(mnt)


run([test_disk_full_then_freed])
