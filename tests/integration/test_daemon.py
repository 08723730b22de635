"""test_daemon.py: ippocd's life cycle: start on an empty state dir, refuse a
second instance, reject bad configuration and arguments with the place and the
reason, stop cleanly on SIGTERM."""
import os
import signal
import subprocess
import tempfile

from harness import IPPOCD, Daemon, run, wait_for


def test_starts_and_stops_cleanly():
    d = Daemon().start()
    st = d.status()
    assert st["version"] and st["pid"] == d.proc.pid and st["host"]
    assert st["uptime_s"] >= 0
    names = {c["name"] for c in st["collectors"]}
    for g in ("cpu", "memory", "load", "disk", "net", "filesystem"):
        assert g in names, f"collector {g} missing from {names}"
    assert st["self"]["rss_bytes"] > 0
    assert os.path.exists(os.path.join(d.state_dir, "ippocd.url"))
    with open(os.path.join(d.state_dir, "ippocd.url")) as f:
        assert f.read().strip() == d.url
    assert d.stop() == 0
    assert not os.path.exists(os.path.join(d.state_dir, "ippocd.url"))
    assert "stopping" in d.log_text()


def test_second_instance_refused():
    d = Daemon().start()
    r = subprocess.run([IPPOCD, "--state-dir", d.state_dir, "--listen", "127.0.0.1:0",
                        "--config", d.config_path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert f"already runs on state dir {d.state_dir}" in r.stderr, r.stderr
    assert str(d.proc.pid) in r.stderr
    assert d.get("/v1/status").status == 200
    assert d.stop() == 0


def test_bad_config_names_file_and_line():
    d = Daemon(config="[sense]\ninterval = 1s\n[api]\nmax_points = lots\n")
    r = subprocess.run([IPPOCD, "--config", d.config_path, "--state-dir", d.state_dir, "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert f"{d.config_path}:4: max_points: 'lots'" in r.stderr, r.stderr
    d.write_config("[sense]\ninterval = 2s\n")
    r = subprocess.run([IPPOCD, "--config", d.config_path, "--check-config"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "configuration ok" in r.stdout, r.stderr


def test_non_loopback_needs_token():
    d = Daemon(config="[api]\nlisten = 0.0.0.0:7070\n")
    r = subprocess.run([IPPOCD, "--config", d.config_path, "--check-config"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "token" in r.stderr, r.stderr


def test_bad_arguments():
    for args, want in ((["--bogus"], "unknown option '--bogus'"), (["--listen"], "needs a value"),
                       (["--listen", "nowhere"], "--listen: bad address 'nowhere'"),
                       (["--log-level", "loud"], "--log-level: unknown level 'loud'"),
                       (["extra"], "unexpected argument 'extra'"),
                       (["--config", "/nonexistent/ippoc.conf"], "/nonexistent/ippoc.conf: cannot open")):
        r = subprocess.run([IPPOCD, "--check-config", *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert want in r.stderr, (args, r.stderr)
    r = subprocess.run([IPPOCD, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "--state-dir" in r.stdout


def test_shipped_example_config_is_valid():
    src = os.environ.get("IPPOC_SRC", "../..")
    r = subprocess.run([IPPOCD, "--config", os.path.join(src, "conf", "ippoc.conf"), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_sigint_also_stops():
    d = Daemon().start()
    d.signal(signal.SIGINT)
    wait_for(lambda: d.proc.poll() is not None, 20, "exit on SIGINT")
    assert d.proc.returncode == 0


def test_read_only_state_dir():
    """A state dir that cannot be written is a runtime failure (1) saying what to do."""
    if os.geteuid() != 0:
        print("note: read-only state dir check skipped (needs root to mount)")
        return
    mnt = tempfile.mkdtemp(prefix="ippoc-ro.")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt]).returncode != 0:
        os.rmdir(mnt)
        print("note: read-only state dir check skipped (cannot mount tmpfs)")
        return
    try:
        os.mkdir(os.path.join(mnt, "state"))
        assert subprocess.run(["mount", "-o", "remount,ro", mnt]).returncode == 0
        r = subprocess.run([IPPOCD, "--state-dir", os.path.join(mnt, "state"), "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert "Read-only file system" in r.stderr, r.stderr
        assert "must be a writable directory" in r.stderr and "--state-dir" in r.stderr, r.stderr
        # a state dir that cannot even be created is the same failure
        r = subprocess.run([IPPOCD, "--state-dir", os.path.join(mnt, "new", "state"), "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, (r.returncode, r.stderr)
    finally:
        subprocess.run(["umount", "-l", mnt])
        os.rmdir(mnt)


run([test_read_only_state_dir, test_starts_and_stops_cleanly, test_second_instance_refused, test_bad_config_names_file_and_line,
     test_non_loopback_needs_token, test_bad_arguments, test_shipped_example_config_is_valid,
     test_sigint_also_stops])
