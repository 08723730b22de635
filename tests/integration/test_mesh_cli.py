"""test_mesh_cli.py: `ippoc mesh`, the mesh's command line. The local
commands on temporary state dirs (no daemon): id (the node key, 0600, stable),
init (the fleet key; refused twice, --force), invite -> join on a second state
dir, join refusing a token for another key, a mistyped one and an expired one
(exit 2, the reason named), revoke writing a list that revoke --list reads
back; join asking a real ippocd on that state dir to reload (SIGHUP: a
config.reload event). The read commands (status, peers, wisdom) against a
stand-in HTTP server serving the JSON shapes of GET /v1/mesh/...: the tables,
--json passing the answer through, --limit in the query, and a 404 from an
ippocd without the mesh."""
import http.server
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading

from harness import IPPOC, Daemon, events_of, free_port, run, wait_for

TMP = tempfile.mkdtemp(prefix="ippoc-mesh-cli-it.")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def state(name):
    d = os.path.join(TMP, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def ippoc(*args, check=None, url=None, env_extra=None):
    # no daemon unless url says where: a closed port
    env = dict(os.environ, IPPOC_URL=url or f"http://127.0.0.1:{free_port()}", LANG="C.UTF-8")
    env.pop("IPPOC_STATE_DIR", None)
    env.update(env_extra or {})
    r = subprocess.run([IPPOC, *args], capture_output=True, text=True, env=env, timeout=60)
    if check is not None:
        assert r.returncode == check, f"ippoc {args} exited {r.returncode}, wanted {check}\n{r.stdout}\n{r.stderr}"
    return r


def mesh(sd, *args, check=None):
    return ippoc("--state-dir", sd, "mesh", *args, check=check)


def node_pk(sd):
    return json.loads(mesh(sd, "id", "--json", check=0).stdout)["pk"]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def fleet(name="admin"):
    """An admin state dir with a fleet key; (dir, fleet public key)."""
    a = state(name)
    return a, mesh(a, "init", check=0).stdout.strip()


def invite(admin, pk, *extra):
    """The token for pk and its serial (from invite's message)."""
    r = mesh(admin, "invite", pk, "--id", "web-1", *extra, check=0)
    serial = re.search(r"serial (\d+)", r.stderr).group(1)
    return r.stdout.strip(), serial


def test_id():
    n = state("node-id")
    r = mesh(n, "id", check=0)
    key = os.path.join(n, "mesh-node.key")
    assert mode(key) == 0o600, oct(mode(key))
    assert os.path.getsize(key) == 72
    assert "created the node key" in r.stderr, r.stderr
    pk = re.search(r"^public key +([0-9a-f]{64})$", r.stdout, re.M).group(1)
    assert "not joined" in r.stdout, r.stdout
    # stable: the same key, not created again
    r2 = mesh(n, "id", check=0)
    assert pk in r2.stdout and "created" not in r2.stderr, (r2.stdout, r2.stderr)
    j = json.loads(mesh(n, "id", "--json", check=0).stdout)
    assert j == {"pk": pk, "node_id": None, "fleet": None, "created": False}, j
    # the global --json works as well; an argument is refused
    assert json.loads(ippoc("--json", "--state-dir", n, "mesh", "id", check=0).stdout)["pk"] == pk
    r = mesh(n, "id", "extra", check=2)
    assert "mesh id" in r.stderr, r.stderr
    # a key file others can read is refused, naming the file and the fix
    os.chmod(key, 0o644)
    r = mesh(n, "id", check=1)
    assert key in r.stderr and "chmod 600" in r.stderr, r.stderr


def test_init():
    a = state("admin-init")
    r = mesh(a, "init", check=0)
    pk = r.stdout.strip()
    assert HEX64.match(pk), r.stdout
    assert "root of trust" in r.stderr and "one admin machine" in r.stderr, r.stderr
    key = os.path.join(a, "mesh-fleet.key")
    assert mode(key) == 0o600, oct(mode(key))
    with open(key, "rb") as f:
        before = f.read()
    r = mesh(a, "init", check=1)
    assert "exists" in r.stderr and "--force" in r.stderr, r.stderr
    with open(key, "rb") as f:
        assert f.read() == before, "a refused init changed the fleet key"
    r = mesh(a, "init", "--force", check=0)
    assert HEX64.match(r.stdout.strip()) and r.stdout.strip() != pk, r.stdout
    assert mode(key) == 0o600
    mesh(a, "init", "--yes", check=2)


def test_invite_join():
    a, fpk = fleet()
    n = state("node-join")
    pk = node_pk(n)
    tok, serial = invite(a, pk, "--roles", "reasoning,tool", "--days", "30", "--seed", "127.0.0.1:7947")
    assert tok.startswith("ippoc1"), tok
    r = mesh(n, "join", tok, "10.0.0.2:7947", "127.0.0.1:7947", check=0)
    assert f"joined fleet {fpk} as web-1 (serial {serial}" in r.stdout, r.stdout
    assert "2 seeds" in r.stdout, r.stdout  # the token's and one more; the repeat skipped
    assert "no ippocd runs" in r.stderr, r.stderr
    assert os.path.exists(os.path.join(n, "mesh-member.token"))
    j = json.loads(mesh(n, "id", "--json", check=0).stdout)
    assert j == {"pk": pk, "node_id": "web-1", "fleet": fpk, "created": False}, j
    # bad arguments: exit 2, named
    r = mesh(n, "join", check=2)
    assert "missing TOKEN" in r.stderr, r.stderr
    r = mesh(n, "join", tok, "no-port", check=2)
    assert "seed address 'no-port'" in r.stderr, r.stderr
    r = mesh(a, "invite", pk, check=2)
    assert "missing --id" in r.stderr, r.stderr
    r = mesh(a, "invite", pk, "--id", "x", "--days", "0", check=2)
    assert "--days: bad number '0'" in r.stderr, r.stderr
    r = mesh(a, "invite", pk[:-1], "--id", "x", check=2)
    assert "NODE_PK" in r.stderr, r.stderr
    # no fleet key here: said, exit 1
    r = mesh(n, "invite", pk, "--id", "x", check=1)
    assert "no fleet key" in r.stderr and "ippoc mesh init" in r.stderr, r.stderr


def test_join_refused():
    a, _ = fleet()
    n, m = state("node-n"), state("node-m")
    tok, _ = invite(a, node_pk(n))
    node_pk(m)
    # a token made for another node's key
    r = mesh(m, "join", tok, check=2)
    assert "TOKEN" in r.stderr and "made for node key" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(m, "mesh-member.token"))
    # mistyped: one character in the middle changed
    i = len(tok) // 2
    bad = tok[:i] + ("A" if tok[i] != "A" else "B") + tok[i + 1:]
    r = mesh(n, "join", bad, check=2)
    assert "checksum" in r.stderr, r.stderr
    r = mesh(n, "join", "hello", check=2)
    assert "TOKEN" in r.stderr, r.stderr
    # expired: valid from three days ago for one day
    old, _ = invite(a, node_pk(n), "--from", "3d", "--days", "1")
    r = mesh(n, "join", old, check=2)
    assert "expired" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(n, "mesh-member.token"))


def test_revoke():
    a, _ = fleet()
    n = state("node-rev")
    pk = node_pk(n)
    tok, serial = invite(a, pk)
    mesh(n, "join", tok, check=0)
    r = mesh(a, "revoke", "--serial", serial, "--reason", "retired", check=0)
    assert f"revoked serial {serial} (retired)" in r.stdout and "holds 1 revocation" in r.stdout, r.stdout
    r = mesh(a, "revoke", "--key", pk, "--reason", "key-compromise", check=0)
    assert "holds 2 revocations" in r.stdout, r.stdout
    lst = mesh(a, "revoke", "--list", check=0).stdout
    assert re.search(rf"^serial +{serial} +retired ", lst, re.M), lst
    assert re.search(rf"^key +{pk} +key-compromise .* forever$", lst, re.M), lst
    j = json.loads(ippoc("--json", "--state-dir", a, "mesh", "revoke", "--list", check=0).stdout)
    assert [(x["kind"], x["target"], x["reason"]) for x in j["revoked"]] == [
        ("serial", serial, "retired"), ("key", pk, "key-compromise")], j
    # the same revocation again changes nothing
    assert "holds 2 revocations" in mesh(a, "revoke", "--serial", serial, check=0).stdout
    # a joined cell reads the list (its fleet from the membership), as gossip would bring it
    assert "no revocations" in mesh(n, "revoke", "--list", check=0).stdout
    shutil.copy(os.path.join(a, "mesh-revoked.bin"), os.path.join(n, "mesh-revoked.bin"))
    assert serial in mesh(n, "revoke", "--list", check=0).stdout
    # only the fleet key signs
    r = mesh(n, "revoke", "--serial", "7", check=1)
    assert "no fleet key" in r.stderr, r.stderr
    # a damaged list is named, not overwritten
    with open(os.path.join(a, "mesh-revoked.bin"), "ab") as f:
        f.write(b"x")
    r = mesh(a, "revoke", "--serial", "9", check=1)
    assert "mesh-revoked.bin" in r.stderr, r.stderr
    r = mesh(a, "revoke", "--serial", "0", check=2)
    assert "--serial: bad serial '0'" in r.stderr, r.stderr
    r = mesh(a, "revoke", "--serial", "5", "--reason", "bored", check=2)
    assert "--reason: unknown reason 'bored'" in r.stderr, r.stderr


def test_join_reloads_daemon():
    """join on the state dir of a running ippocd sends it SIGHUP."""
    d = Daemon()
    d.start()
    a, _ = fleet()
    tok, _ = invite(a, node_pk(d.state_dir))
    r = mesh(d.state_dir, "join", tok, check=0)
    assert f"asked ippocd (pid {d.proc.pid}) to reload" in r.stderr, r.stderr
    wait_for(lambda: events_of(d, "config.reload"), 10, "config.reload event")
    d.stop()


# ---- the read commands against a stand-in for GET /v1/mesh/... ----

STATUS = {"enabled": True, "joined": True, "node_id": "web-1", "pk": "ab" * 32, "fleet": "cd" * 32,
          "listen": "127.0.0.1:7947", "roles": ["reasoning", "tool"],
          "members": {"alive": 3, "suspect": 1, "dead": 2, "left": 0}, "awareness": 1, "incarnation": 4,
          "bytes_in": 2048, "bytes_out": 4096, "packets_in": 20, "packets_out": 40,
          "rejected": {"cert": 5, "revoked": 6, "forged": 7, "replay": 8, "malformed": 9},
          "wisdom": {"records": 11, "ignored_peers": 1}}
PEERS = {"peers": [
    {"node_id": "db-2", "addr": "10.0.0.2:7947", "state": "alive", "incarnation": 3, "roles": ["reasoning"],
     "caps": {"cpus": 8, "memory_mb": 16384, "disk_gb": 120, "gpu": True, "llm": True}, "trust": 0.75,
     "ignored": False, "session": True},
    {"node_id": "cache-3", "addr": "10.0.0.3:7947", "state": "suspect", "incarnation": 9, "roles": [],
     "caps": {"cpus": 2, "memory_mb": 2048, "disk_gb": 20, "gpu": False, "llm": False}, "trust": -0.5,
     "ignored": True, "session": False}]}
WISDOM = {"records": [
    {"id": "0123456789abcdef" * 4, "kind": "fix", "from": "db-2", "summary": "restart fixed oom_kill on web",
     "k": 4, "n": 5, "trust": 0.8, "received": 1764950400}]}


class Standin:
    """A small HTTP server on a free loopback port answering the mesh routes
    (or 404 for everything when old=True); records the paths asked."""

    def __init__(self, old=False):
        paths = self.paths = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.path)
                route = self.path.split("?")[0]
                body = {"/v1/mesh/status": STATUS, "/v1/mesh/peers": PEERS,
                        "/v1/mesh/wisdom": WISDOM}.get(route) if not old else None
                code = 200 if body is not None else 404
                if body is None:
                    body = {"error": "not_found", "message": f"no route {route}"}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join()


def test_read_commands():
    s = Standin()
    try:
        out = ippoc("mesh", "status", url=s.url, check=0).stdout
        for want in [r"^mesh +on, joined$", r"^node id +web-1$", r"^fleet +(cd){32}$", r"^listen +127\.0\.0\.1:7947$",
                     r"^roles +reasoning,tool$", r"^members +3 alive, 1 suspect, 2 dead, 0 left$",
                     r"^awareness +1 ", r"^incarnation +4$", r"^traffic +in 2\.0 KiB \(20 packets\), out 4\.0 KiB",
                     r"^rejected +cert 5, revoked 6, forged 7, replay 8, malformed 9$",
                     r"^wisdom +11 records, 1 peers ignored$"]:
            assert re.search(want, out, re.M), f"{want!r} not in:\n{out}"
        assert json.loads(ippoc("--json", "mesh", "status", url=s.url, check=0).stdout) == STATUS
        assert json.loads(ippoc("mesh", "status", "--json", url=s.url, check=0).stdout) == STATUS

        out = ippoc("mesh", "peers", url=s.url, check=0).stdout.splitlines()
        assert out[0].split() == ["NODE", "ADDR", "STATE", "INC", "ROLES", "CAPS", "TRUST", "SESSION"], out
        assert re.match(r"^db-2 +10\.0\.0\.2:7947 +alive +3 +reasoning +8 cpu, 16\.0 GiB, 120 GB disk, gpu, llm +0\.75 +yes$",
                        out[1]), out
        assert re.match(r"^cache-3 +10\.0\.0\.3:7947 +suspect +9 +- +2 cpu, 2\.0 GiB, 20 GB disk +-0\.50 ignored +no$",
                        out[2]), out
        assert json.loads(ippoc("mesh", "peers", "--json", url=s.url, check=0).stdout) == PEERS

        del s.paths[:]
        out = ippoc("mesh", "wisdom", "--limit", "5", url=s.url, check=0).stdout.splitlines()
        assert s.paths == ["/v1/mesh/wisdom?limit=5"], s.paths
        assert out[0].split() == ["ID", "KIND", "FROM", "WORKED", "TRUST", "RECEIVED", "SUMMARY"], out
        assert re.match(r"^0123456789ab +fix +db-2 +4/5 +0\.80 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +restart fixed oom_kill on web$",
                        out[1]), out
        assert json.loads(ippoc("mesh", "wisdom", "--json", url=s.url, check=0).stdout) == WISDOM
        r = ippoc("mesh", "wisdom", "--limit", "0", url=s.url, check=2)
        assert "--limit: bad number '0'" in r.stderr, r.stderr
        r = ippoc("mesh", "peers", "--limit", "5", url=s.url, check=2)
        assert "unknown option '--limit'" in r.stderr, r.stderr
        r = ippoc("mesh", "frobnicate", url=s.url, check=2)
        assert "unknown subcommand 'frobnicate'" in r.stderr, r.stderr
    finally:
        s.close()
    old = Standin(old=True)
    try:
        for sub in ("status", "peers", "wisdom"):
            r = ippoc("mesh", sub, url=old.url, check=1)
            assert "has no mesh yet" in r.stderr, r.stderr
    finally:
        old.close()
    # no daemon at all
    r = ippoc("mesh", "status", check=3)
    assert "cannot reach ippocd" in r.stderr, r.stderr


def test_help():
    r = ippoc("help", "mesh", check=0)
    for sub in ("id", "init", "invite", "join", "revoke", "status", "peers", "wisdom"):
        assert re.search(rf"ippoc mesh ([a-z]+\|)?{sub}\b", r.stdout), sub
    assert "docs/mesh.md" in r.stdout
    assert "mesh " in ippoc("--help", check=0).stdout
    assert ippoc("mesh", check=2).stderr.startswith("usage: ippoc mesh")


if __name__ == "__main__":
    try:
        run([test_id, test_init, test_invite_join, test_join_refused, test_revoke, test_join_reloads_daemon,
             test_read_commands, test_help])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
