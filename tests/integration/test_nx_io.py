"""test_nx_io.py: ippocd's /metrics against the real node_exporter 1.5 for the
storage and network collectors (diskstats, filesystem, netclass, arp,
bonding, infiniband, netstat, sockstat, softnet, conntrack, udp_queues, nvme,
mdadm, bcache, btrfs, xfs; netdev on the host). Both read the same fixture
trees (tests/sense/fixtures/nx/io), then this host; every series, value,
HELP and TYPE must agree. Skipped where prometheus-node-exporter is not
installed."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.request

from harness import Daemon, free_port, run, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
FX = os.path.normpath(os.path.join(HERE, "..", "sense", "fixtures", "nx", "io"))
NE = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
MINE = re.compile(r"^node_(disk|filesystem|network|netstat|sockstat|softnet|nf_conntrack|arp|udp|nvme|md|bonding|"
                  r"infiniband|bcache|btrfs|xfs)_")
# upstream defaults (Debian's package drops lo from netdev, /run /mnt /media from filesystem)
UPSTREAM = ["--collector.netdev.device-exclude=^$",
            "--collector.filesystem.mount-points-exclude="
            "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"]
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, sorted labels): value}, {name: (help, type)} of our families."""
    series, meta = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, kind, name, rest = (line.split(" ", 3) + [""])[:4]
            if MINE.match(name):
                h, t = meta.get(name, (None, None))
                meta[name] = (rest, t) if kind == "HELP" else (h, rest)
            continue
        if line.startswith("#") or not MINE.match(line):
            continue
        m = re.match(r"^([^{ ]+)(?:\{(.*)\})? (\S+)$", line)
        assert m, line
        series[(m.group(1), tuple(sorted(LABEL.findall(m.group(2) or ""))))] = float(m.group(3))
    return series, meta


def node_exporter(*args):
    """Runs node_exporter on a free port for one scrape; always stops it."""
    port = free_port()
    p = subprocess.Popen([NE, f"--web.listen-address=127.0.0.1:{port}", *UPSTREAM, *args],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def scrape():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return r.read().decode()
        return wait_for(scrape, 20, "node_exporter to answer")
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait()


def ippocd(config=""):
    d = Daemon(config)
    try:
        d.start()
        r = d.get("/metrics")
        assert r.status == 200, r.body
        return r.body.decode()
    finally:
        d.stop()
        d.remove()


def compare(mine, theirs, skip_value=lambda k: False, skip_series=lambda k: False):
    a, ma = parse(mine)
    b, mb = parse(theirs)
    only_a = sorted(k for k in set(a) - set(b) if not skip_series(k))
    only_b = sorted(k for k in set(b) - set(a) if not skip_series(k))
    assert not only_a and not only_b, f"only ippocd: {only_a[:10]}\nonly node_exporter: {only_b[:10]}"
    diff = [(k, a[k], b[k]) for k in set(a) & set(b) if a[k] != b[k] and not skip_value(k)]
    assert not diff, f"values differ: {sorted(diff)[:10]}"
    mdiff = [(n, ma[n], mb[n]) for n in set(ma) & set(mb) if ma[n] != mb[n]]
    assert not mdiff, f"HELP/TYPE differ: {mdiff[:10]}"
    return len(a)


def live(k):
    """Values that move between two reads of a live system."""
    return k[0] in ("node_filesystem_free_bytes", "node_filesystem_avail_bytes", "node_filesystem_files_free")


def test_fixtures():
    if not NE:
        print("skip: prometheus-node-exporter is not installed")
        return
    mine = ippocd(f"[sense]\nproc_root = {FX}/proc\nsys_root = {FX}/sys\nudev_data_dir = {FX}/udev\n")
    theirs = node_exporter(f"--path.procfs={FX}/proc", f"--path.sysfs={FX}/sys", f"--path.udev.data={FX}/udev",
                           "--no-collector.netdev.netlink")
    # netdev: node_exporter without netlink reads /proc/net/dev, a different source
    n = compare(mine, theirs, skip_value=live,
                skip_series=lambda k: k[0].startswith(("node_network_receive_", "node_network_transmit_"))
                and k[0] != "node_network_transmit_queue_length")
    assert n > 400, n


def test_host():
    if not NE:
        print("skip: prometheus-node-exporter is not installed")
        return
    mine = ippocd()
    theirs = node_exporter()
    speed = ("node_network_", "node_disk_", "node_netstat_", "node_sockstat_", "node_softnet_", "node_nf_conntrack_",
             "node_udp_", "node_arp_", "node_xfs_", "node_btrfs_", "node_bcache_")
    # counters and gauges of a live host move between the two scrapes: the
    # series, HELP and TYPE must agree; values only where they stand still
    # (other tests running alongside mount and unmount scratch filesystems
    # under the temporary directory: those may come and go in between)
    tmp = tempfile.gettempdir() + "/"

    def scratch(k):
        return any(n == "mountpoint" and (v + "/").startswith(tmp) for n, v in k[1])
    compare(mine, theirs, skip_series=scratch,
            skip_value=lambda k: live(k) or scratch(k) or (k[0].startswith(speed) and not k[0].startswith(
                ("node_network_info", "node_network_up", "node_network_mtu", "node_network_flags",
                 "node_disk_info"))))


if __name__ == "__main__":
    run([test_fixtures, test_host])
