"""meshfix.py: the set-up the mesh's integration tests share (test_mesh*.py,
tests/netlab/test_mesh_netns.py): fleets and membership tokens made with
tests/mesh/mesh-tool, a daemon with a [mesh] section on a free loopback UDP
port, and its /v1/mesh status and peer view."""
import os
import random
import socket
import subprocess

from harness import Daemon

MESH_TOOL = os.environ.get("MESH_TOOL", "build/tests/mesh/mesh-tool")

# short membership timings: a dead member is known in about 2 s
PROBE = "probe_interval_ms = 200\nprobe_timeout_ms = 100\ngossip_interval_ms = 50\nsuspicion_mult = 2\n"


def free_udp_port():
    """A port free for UDP and for TCP (a cell listens on both: TCP for full
    state and reasoning). Picked below the kernel's ephemeral range, so an
    outgoing connection of another test cannot take the TCP twin meanwhile."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
                return port
        except OSError:
            continue
    raise RuntimeError("no port free for both UDP and TCP in 20000-32000")


def tool(*args, timeout=20):
    """mesh-tool ARGS (fleet DIR, invite FLEET STATE ID [SEED], ...): its stdout; fails on a non-zero exit."""
    r = subprocess.run([MESH_TOOL, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, ("mesh-tool", args, r.returncode, r.stdout, r.stderr)
    return r.stdout.strip()


def mesh_config(port, extra=""):
    """[mesh] enabled on 127.0.0.1:port with PROBE's timings, then extra."""
    return f"[mesh]\nenabled = yes\nlisten = 127.0.0.1:{port}\n{extra}{PROBE}"


def mesh_daemon(port, extra="", after=""):
    """A Daemon (not started) whose config is [mesh] on port (extra before PROBE's
    lines, after behind them), its state dir made for mesh-tool's token."""
    d = Daemon(config=mesh_config(port, extra) + after)
    os.makedirs(d.state_dir, exist_ok=True)
    return d


def mesh_status(d):
    r = d.get("/v1/mesh/status")
    assert r.status == 200, r.body
    return r.json()


def peers(d):
    """The cell's peer view: node_id -> its entry."""
    r = d.get("/v1/mesh/peers")
    assert r.status == 200, r.body
    return {p["node_id"]: p for p in r.json()["peers"]}


def alive(d, ids):
    """The peer view (truthy) when every one of ids is alive in it, else False."""
    p = peers(d)
    return all(i in p and p[i]["state"] == "alive" for i in ids) and p
