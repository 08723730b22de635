"""tests/netlab/rejoin_netns.py - a one-sided false death and how fast it
heals (issue 15, part rejoin; a measurement run by hand, not a test):

  tests/netlab/run.sh --timeout 200 -- python3 tests/netlab/rejoin_netns.py

Two real ippocd cells, A and B, each in a network namespace (netns.Lab(2),
meshnet's NsCell and MeshLab). B is frozen (SIGSTOP) and every packet to it
is lost (netem 100% on the hub's port to B), so A marks B dead, forgets its
session and begins a handshake to B that is lost; then the loss is lifted
and B thawed. B never knew it was dead and still holds its session. Printed:
the time from the thaw until A lists B alive again (from A's own
mesh.member event), A's rejoin counters, and how often it was run (ROUNDS).
Every cell is stopped and the namespaces deleted even when a step fails."""

import json
import os
import signal
import sys
import tempfile
import time
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import netns  # noqa: E402
from test_mesh_netns import MESH_PORT, PROBE, MeshLab, NsCell, first_event, now_ms, poll, states, tool  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))


def main():
    if os.geteuid() != 0 or not netns.netem_available():
        print("rejoin-netns: SKIP: needs root and netem (run through tests/netlab/run.sh)")
        return 77
    fleet = tempfile.mkdtemp(prefix="ippoc-netlab.fleet.")
    lab = MeshLab(2)
    cells, heals = [], []
    try:
        tool("fleet", fleet)
        seed = "%s:%d" % (lab.addr(1), MESH_PORT)
        for i in (1, 2):
            conf = "[mesh]\nenabled = yes\nlisten = %s:%d\nseeds = %s\n%s" % (lab.addr(i), MESH_PORT, seed, PROBE)
            cell = NsCell(lab, i, conf)
            cells.append(cell)
            tool("invite", fleet, cell.state_dir, cell.name, seed)
        for cell in cells:
            cell.start()
        a, b = cells
        poll(lambda: states(a).get("cell-b") == "alive" and states(b).get("cell-a") == "alive", 60000, "a, b alive")
        for r in range(ROUNDS):
            lab._qdisc(lab.hub, "p2", ["loss", "100%"])  # nothing reaches B
            b.signal(signal.SIGSTOP)
            t_dead = now_ms()
            poll(lambda: states(a).get("cell-b") == "dead", 60000, "b dead on a")
            time.sleep(1.5)  # A's handshake to B (gossip to the dead) is pending and lost
            lab._qdisc(lab.hub, "p2", None)
            t0 = now_ms()
            b.signal(signal.SIGCONT)
            poll(lambda: states(a).get("cell-b") == "alive" and states(b).get("cell-a") == "alive", 60000,
                 "a and b alive again")
            ev = first_event(a, "cell-b", "alive", t0)
            took = (ev - t0) / 1000.0 if ev else None
            heals.append(took)
            st = json.loads(a.get("/v1/mesh/status").body)
            print("rejoin-netns: round %d: b dead on a %.1f s after the freeze; alive again on a %s s after the "
                  "thaw; a's rejoin %s" % (r + 1, (first_event(a, "cell-b", "dead", t_dead) - t_dead) / 1000.0,
                                           took, st.get("rejoin")), flush=True)
    finally:
        for cell in cells:
            try:
                cell.signal(signal.SIGCONT)
                cell.stop(timeout=15)
            except (AssertionError, OSError):
                pass
            cell.kill()
            cell.remove()
        lab.close()
        subprocess.run(["rm", "-rf", fleet], check=False)
    print("rejoin-netns: measured heal_s %s" % json.dumps(heals), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
