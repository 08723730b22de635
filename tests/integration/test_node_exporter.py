"""test_node_exporter.py: ippocd's /metrics as a drop-in for node_exporter 1.5,
against the real thing: Debian's prometheus-node-exporter and ippocd run side
by side on this machine (own loopback ports, one shared textfile directory),
both are scraped, and

- every family node_exporter emits here exists in ippocd's /metrics with the
  same TYPE and the same sets of label names, but for the short list of
  deliberate exceptions below (EXCEPTIONS, also in the README);
- values that cannot differ match: MemTotal, filesystem sizes per mount
  point, the number of CPUs, the boot time (within 1 s), uname and os-release
  labels, the textfile collector's families;
- a bad textfile is left out and reported by both, and ippocd survives a
  SIGHUP onto a missing directory;
- `promtool check metrics` has nothing to say about ippocd's /metrics.

Families of collectors that are still placeholders in this tree (a
`NX_COLLECTOR(name) { (void)x; return 0; }` stub under src/sense/) are
listed as PENDING on every run, not failed: the list is read from the source,
so once the stubs are gone every family is required. Skipped (exit 77) only
when node_exporter's binary is missing."""
import os
import re
import signal
import subprocess
import sys

from harness import Daemon, Peer, free_port, http_get, parse_exposition, run, wait_for

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PROMTOOL = "/usr/bin/promtool"
SRC = os.environ.get("IPPOC_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# Families node_exporter emits that ippocd deliberately does not, and why.
EXCEPTIONS = [
    (re.compile(r"^go_"), "node_exporter's Go runtime (ippocd is C: no garbage collector, no goroutines)"),
    (re.compile(r"^process_"), "node_exporter's own process; ippocd reports itself as ippoc_self_* / /v1/status"),
    (re.compile(r"^promhttp_"), "node_exporter's HTTP handler library; ippocd's API counts its own requests"),
    (re.compile(r"^node_exporter_build_info$"),
     "the node_exporter binary's version and Go version; ippocd's own is ippoc_build_info"),
    (re.compile(r"^node_systemd_"), "the systemd collector asks systemd over D-Bus, which ippocd does not speak"),
]

# node_exporter family -> the collector that emits it (longest rule first
# where prefixes overlap), to name what is pending and where.
_STAT = {"node_intr_total", "node_context_switches_total", "node_boot_time_seconds", "node_forks_total",
         "node_procs_running", "node_procs_blocked"}
_RULES = [
    (r"^node_cpu_(scaling_)?frequency_|^node_cpu_scaling_governor", "cpufreq"),
    (r"^node_cpu_", "cpu"), (r"^node_load(1|5|15)$", "loadavg"), (r"^node_arp_", "arp"),
    (r"^node_bcache_", "bcache"), (r"^node_bonding_", "bonding"), (r"^node_btrfs_", "btrfs"),
    (r"^node_nf_conntrack_", "conntrack"), (r"^node_disk_", "diskstats"), (r"^node_edac_", "edac"),
    (r"^node_entropy_", "entropy"), (r"^node_filefd_", "filefd"), (r"^node_filesystem_", "filesystem"),
    (r"^node_hwmon_", "hwmon"), (r"^node_infiniband_", "infiniband"), (r"^node_md_", "mdadm"),
    (r"^node_memory_", "meminfo"), (r"^node_network_(receive|transmit)_\w+_total$", "netdev"),
    (r"^node_network_", "netclass"), (r"^node_netstat_", "netstat"), (r"^node_nvme_", "nvme"),
    (r"^node_os_", "os"), (r"^node_power_supply_", "powersupplyclass"), (r"^node_pressure_", "pressure"),
    (r"^node_selinux_", "selinux"), (r"^node_sockstat_", "sockstat"), (r"^node_softnet_", "softnet"),
    (r"^node_textfile_", "textfile"), (r"^node_thermal_zone_|^node_cooling_device_", "thermal_zone"),
    (r"^node_timex_", "timex"), (r"^node_time_", "time"), (r"^node_udp_queues$", "udp_queues"),
    (r"^node_uname_info$", "uname"), (r"^node_vmstat_", "vmstat"), (r"^node_xfs_", "xfs"),
    # default collectors that fail on the machine the issue was measured on
    # (no source there); where they work, their families are required too
    (r"^node_schedstat_", "schedstat"), (r"^node_rapl_", "rapl"), (r"^node_dmi_info$", "dmi"),
    (r"^node_nfs_", "nfs"), (r"^node_nfsd_", "nfsd"), (r"^node_zfs_", "zfs"), (r"^node_ipvs_", "ipvs"),
    (r"^node_fibrechannel_", "fibrechannel"), (r"^node_tape_", "tapestats"),
]


def collector_of(family):
    if family in _STAT:
        return "stat"
    for rx, col in _RULES:
        if re.search(rx, family):
            return col
    return None


def stub_collectors():
    """Collectors that are placeholders in this source tree: {name: file}."""
    stubs = {}
    d = os.path.join(SRC, "src", "sense")
    for f in sorted(os.listdir(d)):
        if f.endswith(".c"):
            with open(os.path.join(d, f)) as fh:
                for m in re.finditer(r"NX_COLLECTOR\((\w+)\)\s*\{\s*\(void\)x;\s*return 0;\s*\}", fh.read()):
                    stubs[m.group(1)] = f"src/sense/{f}"
    return stubs


def exception_for(family):
    for rx, why in EXCEPTIONS:
        if rx.search(family):
            return why
    return None


def label_sets(fam):
    return {tuple(sorted(labels)) for _, labels, _ in fam["samples"]}


class Pair:
    """node_exporter and ippocd over one textfile directory."""

    def __init__(self):
        self.ne_port = free_port()
        self.d = Daemon()
        self.textdir = os.path.join(self.d.tmp, "textfile")
        os.makedirs(self.textdir)
        with open(os.path.join(self.textdir, "backup.prom"), "w") as f:
            f.write("# HELP backup_last_success_seconds When the nightly backup last succeeded.\n"
                    "# TYPE backup_last_success_seconds gauge\n"
                    'backup_last_success_seconds{job="nightly"} 1.7e+09\n'
                    "apt_upgrades_pending 3\n")
        self.d.write_config(f"[sense]\ntextfile_dir = {self.textdir}\n")
        self.ne = Peer([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{self.ne_port}",
                        "--no-collector.systemd", f"--collector.textfile.directory={self.textdir}"],
                       "node_exporter")

    def start(self):
        self.ne.start()
        self.d.start()
        wait_for(lambda: self.ne.alive() and http_get(self.ne_url)[0] == 200, 20, "node_exporter to answer")
        return self

    @property
    def ne_url(self):
        return f"http://127.0.0.1:{self.ne_port}/metrics"

    def scrape(self):
        """Both expositions, scraped back to back: (node_exporter, ippocd) texts."""
        st, ne = http_get(self.ne_url)
        assert st == 200, ne[:500]
        r = self.d.get("/metrics")
        assert r.status == 200, r.body[:500]
        return ne.decode(), r.body.decode()


def test_families_types_labels():
    p = Pair().start()
    ne_text, ip_text = p.scrape()
    ne, ip = parse_exposition(ne_text), parse_exposition(ip_text)
    stubs = stub_collectors()
    failures, pending, excepted = [], {}, {}
    for name in sorted(ne):
        why = exception_for(name)
        if why:
            excepted.setdefault(why, []).append(name)
            continue
        col = collector_of(name)
        if name not in ip:
            if col in stubs:
                pending.setdefault(col, []).append(name)
            else:
                failures.append(f"{name}: missing (collector {col or '?'})")
            continue
        if ip[name]["type"] != ne[name]["type"]:
            failures.append(f"{name}: TYPE {ip[name]['type']}, node_exporter says {ne[name]['type']}")
        a, b = label_sets(ip[name]), label_sets(ne[name])
        if a != b:
            failures.append(f"{name}: label names {sorted(a)}, node_exporter has {sorted(b)}")
    extra = sorted(n for n in ip if n.startswith("node_") and n not in ne)
    print(f"   node_exporter: {len(ne)} families; ippocd: {len(ip)} "
          f"({sum(1 for n in ip if n.startswith('node_'))} node_*)", flush=True)
    for why, names in excepted.items():
        print(f"   exception ({len(names)}): {why}", flush=True)
    for col in sorted(pending):
        print(f"   PENDING collector {col} (stub in {stubs[col]}): {len(pending[col])} families: "
              + " ".join(pending[col]), flush=True)
    if extra:
        print("   ippocd-only node_* families (node_exporter has none here; check the names): "
              + " ".join(extra), flush=True)
    assert not failures, "families that differ from node_exporter's:\n  " + "\n  ".join(failures)
    # the shared textfile directory: the same families from both
    for name in ("backup_last_success_seconds", "apt_upgrades_pending", "node_textfile_mtime_seconds"):
        assert name in ip and name in ne, name
        assert [s[1:] for s in ip[name]["samples"]] == [s[1:] for s in ne[name]["samples"]], \
            (name, ip[name]["samples"], ne[name]["samples"])
    assert ip["node_textfile_scrape_error"]["samples"][0][2] == 0
    assert ip["apt_upgrades_pending"]["help"] == ne["apt_upgrades_pending"]["help"]


def _one(fams, name):
    s = fams[name]["samples"]
    assert len(s) == 1, (name, s)
    return s[0]


def test_values_that_cannot_differ():
    p = Pair().start()
    ne_text, ip_text = p.scrape()
    ne, ip = parse_exposition(ne_text), parse_exposition(ip_text)
    stubs = stub_collectors()
    checked, skipped = [], []

    def have(name):
        col = collector_of(name)
        if name in ne and col in stubs and name not in ip:
            skipped.append(f"{name} (collector {col} is a stub)")
            return False
        assert name in ne, f"node_exporter has no {name} here"
        assert name in ip, f"ippocd has no {name}"
        checked.append(name)
        return True

    if have("node_memory_MemTotal_bytes"):
        assert _one(ip, "node_memory_MemTotal_bytes")[2] == _one(ne, "node_memory_MemTotal_bytes")[2]
    if have("node_filesystem_size_bytes"):
        def sizes(f):
            return {s[1]["mountpoint"]: s[2] for s in f["node_filesystem_size_bytes"]["samples"]}
        # Debian's node_exporter also leaves out /run and /mnt (its packaged
        # defaults); ippocd keeps node_exporter 1.5's upstream ones: every
        # mount point node_exporter shows must be there with the same size.
        mine = sizes(ip)
        assert sizes(ne) and {m: mine.get(m) for m in sizes(ne)} == sizes(ne), (mine, sizes(ne))
    if have("node_cpu_seconds_total"):
        def idle(f):
            return sorted(s[1]["cpu"] for s in f["node_cpu_seconds_total"]["samples"] if s[1]["mode"] == "idle")
        assert idle(ip) == idle(ne) and len(idle(ip)) == os.cpu_count(), (idle(ip), idle(ne))
    if have("node_boot_time_seconds"):
        assert abs(_one(ip, "node_boot_time_seconds")[2] - _one(ne, "node_boot_time_seconds")[2]) <= 1
    if have("node_uname_info"):
        assert _one(ip, "node_uname_info")[1] == _one(ne, "node_uname_info")[1]
    if "node_os_info" in ne and have("node_os_info"):
        assert _one(ip, "node_os_info")[1] == _one(ne, "node_os_info")[1]
    print(f"   matched: {' '.join(checked)}", flush=True)
    for s in skipped:
        print(f"   PENDING value check: {s}", flush=True)


def test_textfile_bad_file_and_reload():
    """A bad file is left out by both, reported by both, logged once by
    ippocd (which keeps running); a SIGHUP moves ippocd to another directory."""
    p = Pair().start()
    bad = os.path.join(p.textdir, "zz_bad.prom")
    with open(bad, "w") as f:
        f.write("half_written_metric{job=\"x\" 1\n")

    def both():
        ne_text, ip_text = p.scrape()
        ne, ip = parse_exposition(ne_text), parse_exposition(ip_text)
        return ne, ip
    ne, ip = both()
    for fams, who in ((ne, "node_exporter"), (ip, "ippocd")):
        assert fams["node_textfile_scrape_error"]["samples"][0][2] == 1, who
        files = {s[1]["file"] for s in fams["node_textfile_mtime_seconds"]["samples"]}
        assert files == {os.path.join(p.textdir, "backup.prom")}, (who, files)
        assert "half_written_metric" not in fams and "backup_last_success_seconds" in fams, who
    both()  # a second scrape: no second log line
    log = p.d.log_text()
    assert log.count("zz_bad.prom:1:") == 1, log
    # SIGHUP onto a directory that does not exist: an error, never a crash
    gone = os.path.join(p.d.tmp, "gone")
    p.d.write_config(f"[sense]\ntextfile_dir = {gone}\n")
    p.d.signal(signal.SIGHUP)

    def moved():
        r = p.d.get("/metrics")
        fams = parse_exposition(r.body.decode())
        return "backup_last_success_seconds" not in fams and fams["node_textfile_scrape_error"]["samples"][0][2] == 1
    wait_for(moved, 10, "ippocd to read the new textfile dir after SIGHUP", interval=0.2)
    assert gone in p.d.log_text()
    assert p.d.proc.poll() is None
    assert p.d.stop() == 0


def promtool(text):
    out = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    return {ln for ln in (out.stdout + out.stderr).decode().splitlines() if ln.strip()}


def test_promtool_clean():
    """promtool finds nothing in ippocd's /metrics but what it finds, word for
    word, in node_exporter's own: the names dashboards depend on
    (node_memory_MemTotal_bytes, node_netstat_Tcp_*, node_entropy_*_bits)."""
    if not os.access(PROMTOOL, os.X_OK):
        print(f"   skip: {PROMTOOL} is not installed (Debian package prometheus)", flush=True)
        return
    p = Pair().start()  # stopped by run()'s clean-up
    ne_text, ip_text = p.scrape()
    inherited = promtool(ne_text)
    ours = promtool(ip_text)
    for ln in sorted(ours & inherited):
        print(f"   inherited from node_exporter: {ln}", flush=True)
    rest = sorted(ours - inherited)
    assert not rest, "promtool check metrics on ippocd's /metrics:\n" + "\n".join(rest)
    assert not any(ln.startswith("ippoc_") or ln.startswith("DCGM_") for ln in ours), ours


if not os.access(NODE_EXPORTER, os.X_OK):
    print(f"skip: {NODE_EXPORTER} is not installed (Debian package prometheus-node-exporter; make deps)")
    sys.exit(77)
run([test_families_types_labels, test_values_that_cannot_differ, test_textfile_bad_file_and_reload,
     test_promtool_clean])
