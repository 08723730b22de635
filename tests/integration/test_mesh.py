"""test_mesh.py: the Telepathy mesh between real ippocd processes on loopback
(issue 15): a fleet and node tokens made with the identity functions
(tests/mesh/mesh-tool), three cells that see each other, one joined by a
SIGHUP after its token appears, one SIGKILLed and found dead within the
configured timeouts, the ippoc_mesh_* /metrics series, and a fourth cell
with a certificate from another fleet that is never listed while its
rejection is counted. Every wait polls the API with a deadline."""
import os
import signal
import subprocess
import tempfile
import time

from harness import SLOW, run, wait_for
from meshfix import alive, free_udp_port, mesh_daemon, mesh_status, peers, tool

def metrics(d):
    r = d.get("/metrics")
    assert r.status == 200, r.body
    return r.body.decode()


def rejected_total(st):
    return sum(st["rejected"].values())


def test_mesh():
    fleet = tempfile.mkdtemp(prefix="ippoc-it.fleet.")
    other = tempfile.mkdtemp(prefix="ippoc-it.fleet.")
    ds = []
    try:
        fleet_pk = tool("fleet", fleet)
        tool("fleet", other)
        ports = [free_udp_port() for _ in range(4)]
        seed = f"127.0.0.1:{ports[0]}"
        ds = [mesh_daemon(p) for p in ports]
        a, b, c, x = ds
        tool("invite", fleet, a.state_dir, "cell-a")
        tool("invite", fleet, b.state_dir, "cell-b", seed)
        for d in (a, b, c):
            d.start()

        # c runs enabled without a token: not joined, no socket
        st = mesh_status(c)
        assert st["enabled"] is True and st["joined"] is False and st["node_id"] is None, st
        assert len(st["pk"]) == 64 and "mesh join" in st.get("reason", ""), st
        assert peers(c) == {}

        # a and b find each other
        wait_for(lambda: alive(a, ["cell-a", "cell-b"]) and alive(b, ["cell-a", "cell-b"]), 15, "a and b alive")

        # c's token appears (what `ippoc mesh join` writes); SIGHUP joins it
        tool("invite", fleet, c.state_dir, "cell-c", seed)
        t0 = time.monotonic()
        c.signal(signal.SIGHUP)
        ids = ["cell-a", "cell-b", "cell-c"]
        wait_for(lambda: all(alive(d, ids) for d in (a, b, c)), 15, "three alive members on each cell")
        print(f"  joined by SIGHUP: known alive by all three in {time.monotonic() - t0:.2f} s", flush=True)

        st = mesh_status(a)
        assert st["joined"] is True and st["node_id"] == "cell-a" and st["fleet"] == fleet_pk, st
        assert st["listen"] == seed and st["members"]["alive"] == 3, st
        assert st["packets_out"] > 0 and st["bytes_in"] > 0, st
        assert set(st["roles"]) == {"reasoning", "retrieval", "tool", "relay"}, st
        # the UDP session comes with the first probe or gossip (the join's state went over TCP)
        wait_for(lambda: peers(b)["cell-a"]["session"] is True, 10, "b's session with a")
        p = peers(b)["cell-a"]
        assert p["addr"] == seed and p["session"] is True and p["caps"]["cpus"] >= 1, p
        assert p["caps"]["memory_mb"] > 0 and isinstance(p["caps"]["gpu"], bool), p
        r = a.get("/v1/mesh/wisdom?limit=5")
        assert r.status == 200 and isinstance(r.json()["records"], list), r.body
        assert a.get("/v1/mesh/wisdom?limit=0").status == 400
        assert a.get("/v1/mesh/status?x=1").status == 400

        # the CLI (cli15) reads the real answers
        r = a.cli("mesh", "status", check=0)
        assert "cell-a" in r.stdout, r.stdout
        r = a.cli("mesh", "peers", check=0)
        assert "cell-b" in r.stdout and "cell-c" in r.stdout, r.stdout
        a.cli("mesh", "wisdom", check=0)

        m = metrics(a)
        assert 'ippoc_mesh_members{state="alive"} 3' in m, m
        assert "# TYPE ippoc_mesh_bytes_sent_total counter" in m, m
        assert 'ippoc_mesh_packets_rejected_total{reason="cert"}' in m, m
        assert "ippoc_mesh_awareness " in m and "ippoc_mesh_wisdom_records " in m, m

        # a foreign cell (another fleet's certificate) seeds on a: never listed, counted
        before = rejected_total(mesh_status(a))
        tool("invite", other, x.state_dir, "cell-x", seed)
        x.start()
        wait_for(lambda: rejected_total(mesh_status(a)) > before, 15, "a to refuse the foreign cell")
        for d in (a, b, c):
            assert "cell-x" not in peers(d), peers(d)
        assert set(peers(x)) <= {"cell-x"}, peers(x)
        m = metrics(a)
        assert any(line.startswith("ippoc_mesh_packets_rejected_total") and not line.endswith(" 0")
                   for line in m.splitlines()), m

        # c SIGKILLed: a and b mark it dead within the timeouts
        t0 = time.monotonic()
        c.kill()
        wait_for(lambda: all(peers(d).get("cell-c", {}).get("state") == "dead" for d in (a, b)), 10,
                 "cell-c dead on a and b")
        print(f"  SIGKILLed cell known dead by both others in {time.monotonic() - t0:.2f} s", flush=True)
        assert "cell-x" not in peers(a)
        m = metrics(a)
        assert 'ippoc_mesh_members{state="dead"} 1' in m, m
        ev = a.get("/v1/events?type=mesh.member&limit=100").json()["events"]
        assert any(e["payload"]["id"] == "cell-c" and e["payload"]["state"] == "dead" for e in ev), ev

        # b stops cleanly: a sees it leave, not die
        assert b.stop() == 0
        wait_for(lambda: peers(a).get("cell-b", {}).get("state") == "left", 10, "cell-b left on a")
        assert "mesh:" in a.log_text()
    finally:
        for d in ds:
            d.kill()
            d.remove()
        subprocess.run(["rm", "-rf", fleet, other])


def test_mesh_config_rejected():
    cases = [
        ("[mesh]\nenabled = perhaps\n", ":2: [mesh] enabled: 'perhaps' is not yes or no"),
        ("[mesh]\nlisten = 0.0.0.0:7947\n", ":2: [mesh] listen: 0.0.0.0 is a wildcard"),
        ("[mesh]\nroles = wizard\n", ":2: [mesh] roles:"),
        ("[mesh]\nprobe_interval_ms = 300\nprobe_timeout_ms = 400\n", ":3: [mesh] probe_timeout_ms (400)"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ippoc.conf")
        for text, want in cases:
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([os.environ.get("IPPOCD", "build/src/daemon/ippocd"), "--config", path,
                                "--check-config"], capture_output=True, text=True)
            assert r.returncode == 2 and want in r.stderr and path in r.stderr, (text, want, r.stderr)


if __name__ == "__main__":
    run([test_mesh_config_rejected, test_mesh])
