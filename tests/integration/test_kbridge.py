"""test_kbridge.py: [sense] source and device. A regular file holding a
schema 1 snapshot of /dev/ippoc stands in for the device: the daemon labels
what it takes from it source="kernel" and says so in /v1/status and in
`ippoc status`; auto falls back to procfs when it is missing; kernel refuses
to start without it."""
import os
import subprocess

from harness import IPPOCD, Daemon, run, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SNAP = os.path.join(HERE, "..", "sense", "fixtures", "kbridge", "snap1.json")


def metrics(d, name):
    return d.get("/v1/metrics?match=" + name).json()["metrics"]


def test_kernel_file():
    d = Daemon()
    dev = os.path.join(d.tmp, "ippoc")
    with open(SNAP) as f, open(dev, "w") as o:
        o.write(f.read())
    d.write_config(f"[sense]\nsource = kernel\ndevice = {dev}\n")
    d.start()
    d.wait_ticks(1)
    st = d.status()
    assert st["sensor"]["source"] == "kernel", st["sensor"]
    assert st["sensor"]["device"] == dev and st["sensor"]["schema"] == 1, st["sensor"]
    assert st["sense_source"] == f"kernel ({dev}, schema 1)", st["sense_source"]
    load = metrics(d, "load.load1")
    assert [m["labels"] for m in load] == [{"source": "kernel"}], load
    assert abs(load[0]["last"] - 0.52) < 1e-6, load
    mem = {m["labels"].get("source", "procfs") for m in metrics(d, "memory.total_bytes")}
    assert mem == {"kernel"}, mem
    procs = metrics(d, "processes.count")
    assert procs[0]["labels"] == {"source": "kernel"} and procs[0]["last"] == 211, procs
    out = d.cli("status", check=0).stdout
    assert f"kernel ({dev}, schema 1)" in out, out
    # the device goes away: procfs for those ticks, reported
    os.unlink(dev)
    wait_for(lambda: d.status()["sensor"]["fallbacks"] > 0, 10, "a fallback")
    st = d.status()
    assert st["sensor"]["last_failed"] is True and "no " + dev in st["sensor"]["reason"], st["sensor"]
    assert "last read failed" in st["sense_source"], st["sense_source"]
    assert any(not m["labels"] for m in metrics(d, "load.load1"))
    assert "kernel bridge" in d.log_text()
    assert d.stop() == 0


def test_auto_missing():
    d = Daemon()
    dev = os.path.join(d.tmp, "nothing-here")
    d.write_config(f"[sense]\nsource = auto\ndevice = {dev}\n")
    d.start()
    st = d.status()
    assert st["sensor"]["source"] == "procfs" and st["sensor"]["mode"] == "auto", st["sensor"]
    assert st["sense_source"] == f"procfs (no {dev})", st["sense_source"]
    assert all("source" not in m["labels"] for m in metrics(d, "load.load1"))
    out = d.cli("status", check=0).stdout
    assert f"procfs (no {dev})" in out, out
    assert d.stop() == 0


def test_kernel_missing_refuses():
    d = Daemon()
    dev = os.path.join(d.tmp, "nothing-here")
    d.write_config(f"[sense]\nsource = kernel\ndevice = {dev}\n")
    d.start(wait=False)
    rc = d.proc.wait(20)
    assert rc != 0
    assert f"source = kernel but no {dev}" in d.log_text(), d.log_text()


def test_bad_source_value():
    d = Daemon(config="[sense]\n\nsource = kernal\n")
    r = subprocess.run([IPPOCD, "--config", d.config_path, "--check-config"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert f"{d.config_path}:3: source: unknown source 'kernal'" in r.stderr, r.stderr


if __name__ == "__main__":
    run([test_kernel_file, test_auto_missing, test_kernel_missing_refuses, test_bad_source_value])
