"""test_mesh_mdns.py: mesh discovery through Avahi (issue 15 item 3) with real
processes: a private D-Bus system bus (dbus-daemon on a socket in a temp
dir), a private avahi-daemon on it, and three ippocd with `[mesh] discover =
mdns` and no seeds at all: the two of one fleet find each other through
DNS-SD (_ippoc-mesh._udp) and become alive members of each other; the third,
of another fleet, sees their services but never joins them (the TXT
fingerprint differs) and they never list it.

avahi-daemon runs in its own network and mount namespace (`unshare -mn`;
root only: in a user namespace avahi-daemon cannot chown its runtime dir to
its user, so without root the test skips like a missing tool): the mount namespace puts a tmpfs on /run
(avahi's pid file and socket are fixed paths there, so a host avahi-daemon
is not disturbed), the network one keeps its port 5353 and its
announcements off the host; the test brings that namespace's lo up with
MULTICAST on (this host's lo has none; Avahi 0.8 also takes a loopback
without it, but then nothing is multicast at all). The ippocd stay in the
host's namespace: they reach the bus through its socket file, and the
address Avahi resolves (127.0.0.1 and the published port) is their own
loopback listen address. docs/mesh/mdns.md says what else was tried.
Skips (77) when the tools are missing and CI is not set."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from harness import SLOW, run, wait_for
from meshfix import alive, free_udp_port, mesh_daemon, mesh_status, peers, tool

TOOLS = ("dbus-daemon", "avahi-daemon", "unshare", "ip")

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

AVAHI_CONF = """[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
ratelimit-interval-usec=0
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-addresses=yes
[reflector]
[rlimits]
"""

# inside the namespaces: lo up with multicast, a private /run, then avahi
AVAHI_SH = """set -e
ip link set lo up
ip link set lo multicast on
mount -t tmpfs tmpfs /run
mkdir -p /run/avahi-daemon
exec avahi-daemon -f "$1" --no-drop-root --no-chroot --no-rlimits --no-proc-title
"""


def missing_tools():
    why = [t for t in TOOLS if not shutil.which(t)]
    if os.geteuid() != 0:
        why.append("root (namespaces for avahi-daemon)")
    return why


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def stop(proc):
    """SIGTERM to the process's group, SIGKILL after 5 s."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def start_bus(tmp):
    sock = os.path.join(tmp, "system_bus_socket")
    conf = os.path.join(tmp, "bus.conf")
    with open(conf, "w") as f:
        f.write(BUS_CONF.format(sock=sock))
    log = open(os.path.join(tmp, "dbus.log"), "w")
    p = subprocess.Popen(["dbus-daemon", "--config-file", conf, "--nofork", "--nopidfile"], stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    wait_for(lambda: os.path.exists(sock) or p.poll() is not None, 10, "the D-Bus socket")
    assert p.poll() is None, read(os.path.join(tmp, "dbus.log"))
    return p, "unix:path=" + sock


def start_avahi(tmp, bus):
    conf = os.path.join(tmp, "avahi-daemon.conf")
    script = os.path.join(tmp, "avahi.sh")
    with open(conf, "w") as f:
        f.write(AVAHI_CONF)
    with open(script, "w") as f:
        f.write(AVAHI_SH)
    logpath = os.path.join(tmp, "avahi.log")
    log = open(logpath, "w")
    p = subprocess.Popen(["unshare", "-mn", "--propagation", "private", "sh", script, conf], stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True,
                         env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus))
    log.close()
    wait_for(lambda: "Server startup complete" in read(logpath) or p.poll() is not None, 15 * SLOW,
             "avahi-daemon to start")
    assert p.poll() is None, read(logpath)
    return p, logpath


def test_mesh_mdns():
    tmp = tempfile.mkdtemp(prefix="ippoc-it.mdns.")
    fleet, other = os.path.join(tmp, "fleet"), os.path.join(tmp, "other")
    os.makedirs(fleet)
    os.makedirs(other)
    bus = avahi = None
    ds = []
    old_bus = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    try:
        bus, addr = start_bus(tmp)
        avahi, avahi_log = start_avahi(tmp, addr)
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = addr  # the ippocd inherit it
        tool("fleet", fleet)
        tool("fleet", other)
        ports = [free_udp_port() for _ in range(3)]
        ds = [mesh_daemon(p, "discover = mdns\n") for p in ports]
        a, b, x = ds
        tool("invite", fleet, a.state_dir, "cell-a")  # no seeds in the tokens
        tool("invite", fleet, b.state_dir, "cell-b")
        tool("invite", other, x.state_dir, "cell-x")
        t0 = time.monotonic()
        for d in ds:
            d.start()

        st = mesh_status(a)
        assert st["joined"] is True and st["discovery"]["mode"] == "mdns", st
        assert st["discovery"]["active"] is True, st
        wait_for(lambda: alive(a, ["cell-a", "cell-b"]) and alive(b, ["cell-a", "cell-b"]), 20 * SLOW,
                 "a and b to find each other through mDNS")
        took = time.monotonic() - t0
        print(f"  two cells with no seeds alive on each other {took:.2f} s after their start", flush=True)

        sa, sb, sx = mesh_status(a)["discovery"], mesh_status(b)["discovery"], mesh_status(x)["discovery"]
        assert sa["published"] and sb["published"] and sa["fleet_fp"] == sb["fleet_fp"], (sa, sb)
        assert sa["joins"] + sb["joins"] >= 1, (sa, sb)
        assert sx["fleet_fp"] != sa["fleet_fp"], (sa, sx)
        assert peers(a)["cell-b"]["addr"] == f"127.0.0.1:{ports[1]}", peers(a)

        # the other fleet's cell saw both services and joined neither; they saw its
        wait_for(lambda: mesh_status(x)["discovery"]["foreign"] >= 2 and mesh_status(a)["discovery"]["foreign"] >= 1
                 and mesh_status(b)["discovery"]["foreign"] >= 1, 10 * SLOW, "the foreign services to be seen")
        sx = mesh_status(x)["discovery"]
        assert sx["joins"] == 0, sx
        assert set(peers(x)) <= {"cell-x"}, peers(x)
        assert "cell-x" not in peers(a) and "cell-x" not in peers(b)

        # the TXT record says only the fingerprint; the service name is the node key's, not the host's
        log = a.log_text()
        assert "mDNS: published _ippoc-mesh._udp as ippoc-" in log, log[-3000:]
        assert socket.gethostname() not in log.split("mDNS: published")[1].split("\n")[0]

        out = b.cli("mesh", "status", check=0).stdout
        assert f"mdns, fleet {sb['fleet_fp']}, published" in out, out

        # a stops cleanly (avahi's thread joined), b sees it leave
        rc = a.stop()
        assert rc == 0, (rc, a.log_text()[-6000:])
        wait_for(lambda: peers(b).get("cell-a", {}).get("state") == "left", 10 * SLOW, "cell-a left on b")
        for d in (b, x):  # they stop cleanly too: avahi's thread joined, the client freed
            rc = d.stop()
            assert rc == 0, (rc, d.log_text()[-6000:])
    except Exception:
        print("--- avahi-daemon log:\n" + read(os.path.join(tmp, "avahi.log"))[-3000:], flush=True)
        raise
    finally:
        for d in ds:
            d.kill()
            d.remove()
        stop(avahi)
        stop(bus)
        if old_bus is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old_bus
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    why = missing_tools()
    if why:
        if os.environ.get("CI"):
            print("FAIL: the mDNS test cannot run under CI: missing " + ", ".join(why), flush=True)
            sys.exit(1)
        print("skip: missing " + ", ".join(why) + " (apt-get install avahi-daemon dbus-daemon iproute2; run as root)",
              flush=True)
        sys.exit(77)
    run([test_mesh_mdns], sys.argv[1:])


if __name__ == "__main__":
    main()
