"""test_faults.py: real faults, the quick and reliable subset of the fault
benchmark (bench/diagnose): a config typo, a port taken by another program,
a permission change on a data dir, a full data filesystem and fd
exhaustion, each injected for real into a service supervised by a real
ippocd, which must detect it, diagnose the right fault type and mitigate it
(checked by the bench's own polls of the service). Shares bench/diagnose's
code. Needs root (tmpfs mounts, a DNS responder on port 53, setpriv);
elsewhere it is skipped (exit 77)."""
import os
import shutil
import sys
import tempfile

if os.geteuid() != 0:
    print("skip: needs root (tmpfs mounts, a DNS responder on 127.0.0.2:53, services run as nobody)")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "diagnose"))
import bench  # noqa: E402
from harness import run  # noqa: E402

bench.DETECT_S = 20
bench.MITIGATE_S = 30
STATE = tempfile.mkdtemp(prefix="ippoc-faults-state.")
bench.on_exit("rm state", lambda: shutil.rmtree(STATE, ignore_errors=True))
bench.Dns()


def check(fault_cls):
    """One occurrence of fault_cls in an ippocd of its own, on a new state dir
    (a fault's stale evidence must not decide the next one's diagnosis here)."""
    res = bench.run_fault(tempfile.mkdtemp(dir=STATE), fault_cls, occurrences=1)[0]
    assert res["detected"], f"{fault_cls.name}: not detected: {res}"
    d = bench.first_diag(res)
    assert d, f"{fault_cls.name}: no diagnosis about web: {res}"
    assert res["type_ok"], f"{fault_cls.name}: diagnosed {d}, wanted {fault_cls.fault_type}"
    assert res["component_ok"], f"{fault_cls.name}: component {d['component']}"
    assert res["mitigated"], f"{fault_cls.name}: not mitigated within {bench.MITIGATE_S} s: {res}"


def test_config_typo():
    check(bench.ConfigTypo)


def test_port_taken():
    check(bench.PortTaken)


def test_permission_change():
    check(bench.PermissionChange)


def test_disk_full():
    check(bench.DiskFull)


def test_fd_exhaustion():
    check(bench.FdExhaustion)


try:
    run([test_config_typo, test_port_taken, test_permission_change, test_disk_full, test_fd_exhaustion])
finally:
    bench.run_cleanups()
