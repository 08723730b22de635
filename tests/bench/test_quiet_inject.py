"""test_quiet_inject.py: bench/quiet/inject.py (`bench/quiet --inject`) end to
end on a generated recording of a quiet two-CPU machine: 70 minutes at 1 s of
the series its faults write into (an app's RSS and CPU, memory, per-CPU and
total CPU states, load, one ext4 filesystem and its disk, and a tmpfs that
must not be chosen), each a level with seeded Gaussian noise. With a 5-minute
warm-up and the faults at minute 15, the hog, the filling disk and the hang
must be caught within 5 minutes by quiet-replay (the real memory store and
detect registry), through the series inject.py says it changed, and the leak
within its 30 minutes if it is caught at all (a slow drift: see below); a recording without per-CPU series has its hog
skipped with a message naming what is missing. The binary comes from
$QUIET_REPLAY; everything runs in a temporary directory."""
import os
import random
import re
import subprocess
import sys
import tempfile

SRC = os.environ.get("IPPOC_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("QUIET_REPLAY") or os.path.join(SRC, "build", "bench", "quiet-replay")
T0 = 1796400000000
GB = 1e9

SERIES = {  # key: (level, noise sd)
    'apps.memory_rss_bytes{app="db"}': (800e6, 20e3),
    'apps.memory_rss_bytes{app="ippocd"}': (2e9, 1e3),  # the recorder: never the leak
    'apps.cpu_percent{app="db"}': (30, 3),
    'apps.cpu_user_percent{app="db"}': (25, 3),
    "memory.total_bytes": (16e9, 0),
    "memory.used_bytes": (4e9, 1e6),
    "memory.available_bytes": (12e9, 1e6),
    "memory.used_percent": (25, 0.01),
    'cpu.usage_percent{cpu="cpu0",state="user"}': (5, 1),
    'cpu.usage_percent{cpu="cpu0",state="system"}': (2, 0.5),
    'cpu.usage_percent{cpu="cpu0",state="idle"}': (93, 1),
    'cpu.usage_percent{cpu="cpu1",state="user"}': (8, 1),
    'cpu.usage_percent{cpu="cpu1",state="system"}': (2, 0.5),
    'cpu.usage_percent{cpu="cpu1",state="idle"}': (90, 1),
    'cpu.usage_percent{cpu="total",state="user"}': (6.5, 0.7),
    'cpu.usage_percent{cpu="total",state="system"}': (2, 0.4),
    'cpu.usage_percent{cpu="total",state="idle"}': (91.5, 0.7),
    "cpu.procs_running": (1, 0),
    "load.load1": (0.2, 0.02),
    'fs.avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"}': (60 * GB, 1e5),
    'fs.size_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"}': (100 * GB, 0),
    'fs.used_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"}': (40 * GB, 1e5),
    'fs.used_percent{device="/dev/sda1",fstype="ext4",mountpoint="/"}': (40, 0.0001),
    'fs.avail_bytes{device="tmpfs",fstype="tmpfs",mountpoint="/dev/shm"}': (800 * GB, 1e3),
    'fs.size_bytes{device="tmpfs",fstype="tmpfs",mountpoint="/dev/shm"}': (900 * GB, 0),
    'disk.write_bytes_per_second{device="sda1"}': (2e6, 3e5),
}


def write_recording(path, skip=()):
    rng = random.Random(5)
    keys = [k for k in SERIES if not any(k.startswith(s) for s in skip)]
    with open(path, "w") as f:
        f.write("ts_ms," + ",".join('"' + k.replace('"', '""') + '"' for k in keys) + "\n")
        for i in range(70 * 60):
            vals = [SERIES[k][0] + rng.gauss(0, SERIES[k][1]) for k in keys]
            f.write(f"{T0 + i * 1000}," + ",".join("%.9g" % v for v in vals) + "\n")


def inject(rec):
    return subprocess.run([sys.executable, os.path.join(SRC, "bench", "quiet", "inject.py"), "--replay", BIN,
                           "--warmup", "5m", "--at", "15", rec], capture_output=True, text=True, timeout=300)


def rows(out):
    return {c[0]: c for c in ([x.strip() for x in ln.strip().strip("|").split("|")]
                              for ln in out.splitlines() if ln.startswith("| ") and not ln.startswith("| fault"))}


def test_faults_caught(tmp):
    rec = os.path.join(tmp, "quietbox.csv")
    write_recording(rec)
    r = inject(rec)
    assert r.returncode == 0, r.stderr
    table = rows(r.stdout)
    assert set(table) == {"leak", "hog", "disk", "hang"}, r.stdout
    assert 'app="db"' in table["leak"][1] and "ippocd" not in table["leak"][1], table["leak"]
    assert "cpu0" in table["hog"][1], table["hog"]  # the least busy CPU
    assert "`/`" in table["disk"][1], table["disk"]  # not the tmpfs
    assert "`db`" in table["hang"][1], table["hang"]
    # the leak, +2 MiB/min, is a slow drift: the detector on main before issue 11's slow scale does
    # not see it (its row then says no); the three sudden faults are caught at once (0 s here; 5 min allowed)
    for name, row in table.items():
        assert row[7] == "none", (name, row)  # nothing of the fault's series fires in the clean copy
        if name == "leak" and row[2] == "**no**":
            continue
        assert row[2] == "**yes**", (name, r.stdout)
        m = re.fullmatch(r"(\d+) s / (\d+) s", row[3])
        assert m, (name, row)
        delay, told = int(m.group(1)), int(m.group(2))
        assert 0 <= delay <= (30 * 60 if name == "leak" else 300), (name, row)
        assert delay <= told <= delay + 30 * 60, (name, row)  # noticed `for` (2 min) after the onset or later


def test_missing_series_skipped(tmp):
    rec = os.path.join(tmp, "nocpus.csv")
    write_recording(rec, skip=('cpu.usage_percent{cpu="cpu',))
    r = inject(rec)
    assert r.returncode == 0, r.stderr
    assert "| hog | (skipped) |" in r.stdout, r.stdout
    assert 'hog: skipped: no per-CPU cpu.usage_percent{cpu="cpuN",state=...} series' in r.stdout, r.stdout


def main():
    for t in (test_faults_caught, test_missing_series_skipped):
        with tempfile.TemporaryDirectory() as tmp:
            t(tmp)
            print(f"ok {t.__name__}")


if __name__ == "__main__":
    sys.exit(main())
