"""test_mcp.py: `ippoc mcp`, the Model Context Protocol server, as a child
process over pipes against a real ippocd with a real supervised service:
the 2025-11-25 handshake (initialize + notifications/initialized) and the
2026-07-28 one (server/discover + stateless requests carrying _meta), an
unsupported protocol version, tools/list's schemas, every tool with valid
and with invalid arguments, malformed lines, an unknown method, a
notification (no reply), the daemon stopped mid-session (isError, the
server goes on), a daemon that wants a token, --read-only, and EOF
ending it with exit 0.

Every wait is a read with a deadline or a poll of the API; nothing is mocked."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from harness import HEALTH_SERVER, IPPOC, SLOW, Daemon, free_port, run, wait_for

TOOLS = {"status", "metrics_query", "incidents_list", "incident_get", "ask", "actions_pending",
         "action_approve", "action_propose"}
ACTING = {"action_approve", "action_propose"}
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "stateless-client", "version": "1.0"},
        "io.modelcontextprotocol/clientCapabilities": {}}

_children = []


def _kill_children():
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()


class Mcp:
    """`ippoc mcp` on pipes: send() writes one line, recv() reads the next
    reply with a deadline, call() sends a request and returns its reply."""

    def __init__(self, d, *args, token=None):
        self.err_path = os.path.join(d.tmp, f"mcp-{len(_children)}.err")
        self.err = open(self.err_path, "wb")
        env = dict(os.environ, IPPOC_URL=d.url, LANG="C.UTF-8")
        env.pop("IPPOC_TOKEN", None)
        pre = ["--token", token] if token else []
        self.p = subprocess.Popen([IPPOC, *pre, "mcp", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, env=env)
        _children.append(self.p)
        self.lines = queue.Queue()
        self.next_id = 100
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, data):
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        if isinstance(data, str):
            data = data.encode()
        self.p.stdin.write(data + b"\n")
        self.p.stdin.flush()

    def recv(self, timeout=10):
        try:
            line = self.lines.get(timeout=timeout * SLOW)
        except queue.Empty:
            raise AssertionError(f"no reply within {timeout * SLOW}s; stderr:\n{self.stderr()}")
        assert line is not None, f"ippoc mcp closed stdout; stderr:\n{self.stderr()}"
        assert line.endswith(b"\n") and b"\n" not in line[:-1], line
        return json.loads(line)

    def call(self, method, params=None, timeout=10):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        r = self.recv(timeout)
        assert r.get("jsonrpc") == "2.0" and r.get("id") == self.next_id, r
        return r

    def tool(self, name, arguments=None, meta=None, timeout=10):
        params = {"name": name}
        if arguments is not None:
            params["arguments"] = arguments
        if meta:
            params["_meta"] = meta
        r = self.call("tools/call", params, timeout)
        assert "result" in r, r
        res = r["result"]
        assert isinstance(res["content"], list) and res["content"][0]["type"] == "text", res
        assert isinstance(res["isError"], bool), res
        return res

    def ok(self, name, arguments=None, **kw):
        res = self.tool(name, arguments, **kw)
        assert res["isError"] is False, res
        assert isinstance(res["structuredContent"], dict), res
        assert json.loads(res["content"][0]["text"]) == res["structuredContent"]
        return res["structuredContent"]

    def bad(self, name, arguments, *words):
        res = self.tool(name, arguments)
        assert res["isError"] is True, (name, arguments, res)
        text = res["content"][0]["text"]
        for w in words:
            assert w in text, (name, arguments, text)
        return text

    def error(self, r, code):
        assert "error" in r and r["error"]["code"] == code, r
        assert isinstance(r["error"]["message"], str) and r["error"]["message"], r
        return r["error"]

    def close(self):
        """EOF on stdin: the server must end by itself with exit 0."""
        self.p.stdin.close()
        rc = self.p.wait(10 * SLOW)
        self.err.close()
        return rc

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")


def start_daemon():
    d = Daemon()
    port = free_port()
    script = os.path.join(d.tmp, "health.py")
    with open(script, "w") as f:
        f.write(HEALTH_SERVER)
    d.write_config(f"[service.web]\ncommand = {sys.executable} {script} {port}\n"
                   f"rule = if failed http://127.0.0.1:{port}/ timeout 500ms every 1s then restart\n"
                   "mode = suggest\n")
    d.start()
    return d


def service(d, name="web"):
    for s in d.status().get("services", []):
        if s["name"] == name and s["state"] == "running" and s["pid"] > 0:
            return s
    return None


def initialize(m, version="2025-11-25"):
    r = m.call("initialize", {"protocolVersion": version, "capabilities": {},
                              "clientInfo": {"name": "test-client", "version": "0.1"}})
    return r["result"]


# ---- the 2025-11-25 session: handshake, tools, arguments, protocol errors ----

def check_tool_list(tools, names):
    assert {t["name"] for t in tools} == names, [t["name"] for t in tools]
    for t in tools:
        s = t["inputSchema"]
        assert s["type"] == "object" and isinstance(s["properties"], dict), t
        assert isinstance(s["required"], list) and set(s["required"]) <= set(s["properties"]), t
        assert s.get("additionalProperties") is False, t
        for k, p in s["properties"].items():
            assert "type" in p or "enum" in p, (t["name"], k)
        assert t["description"] and t["title"], t
        a = t["annotations"]
        for hint in ("readOnlyHint", "destructiveHint", "idempotentHint"):
            assert isinstance(a[hint], bool), (t["name"], a)
        assert a["readOnlyHint"] == (t["name"] not in ACTING), (t["name"], a)


def test_session():
    d = start_daemon()
    m = Mcp(d)
    try:
        web = wait_for(lambda: service(d), 10 * SLOW, "web running")
        res = initialize(m)
        assert res["protocolVersion"] == "2025-11-25", res
        assert res["capabilities"] == {"tools": {"listChanged": False}}, res
        assert res["serverInfo"]["name"] == "ippoc" and res["serverInfo"]["version"], res
        assert "action_propose" in res["instructions"], res
        # a notification gets no reply: the next line is the ping's
        m.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        m.send({"jsonrpc": "2.0", "method": "notifications/whatever", "params": {"x": 1}})
        assert m.call("ping")["result"] == {}
        check_tool_list(m.call("tools/list")["result"]["tools"], TOOLS)

        # read-only tools, valid arguments
        st = m.ok("status")
        assert st["status"]["version"] and [s for s in st["services"] if s["name"] == "web"], st
        listed = m.ok("metrics_query", {})
        names = sorted({s["name"] for s in listed["metrics"] if s["last"] is not None})
        assert "memory.used_percent" in names, names
        pts = m.ok("metrics_query", {"name": "memory.used_percent", "from": "now-5m", "to": "now"})
        assert json.dumps(pts).count("memory.used_percent") >= 1 and "[" in json.dumps(pts), str(pts)[:500]
        one = m.ok("metrics_query", {"match": "memory.used_*"})
        assert {s["name"] for s in one["metrics"]} == {"memory.used_percent", "memory.used_bytes"}, one
        names = ["memory.used_percent"]
        m.ok("metrics_query", {"name": "memory.used_percent", "from": int(time.time()) - 120, "step": "10s"})
        assert isinstance(m.ok("actions_pending")["pending"], list)

        # a fault: suggest mode queues a restart for a person
        os.kill(web["pid"], signal.SIGKILL)
        pend = wait_for(lambda: [p for p in m.ok("actions_pending")["pending"]
                                 if p["service"] == "web" and p["action"] == "restart"], 15 * SLOW,
                        "a pending restart")
        inc = m.ok("incidents_list", {"limit": 5})
        assert inc["count"] >= 1 and inc["incidents"][0]["service"] == "web", inc
        st = inc["incidents"][0]["state"]  # suggest mode: "failed" (no action ran) once queued
        assert m.ok("incidents_list", {"state": st})["count"] >= 1
        other = "resolved" if st != "resolved" else "acting"
        assert m.ok("incidents_list", {"state": other})["count"] == 0
        one = m.ok("incident_get", {"id": inc["incidents"][0]["id"]})
        assert one["incident"]["id"] == inc["incidents"][0]["id"] and "diagnosis" in one, one
        ans = m.ok("ask", {"question": "why did web stop?"}, timeout=60)
        assert isinstance(ans.get("answer"), str) and ans["answer"], ans

        # every tool with bad arguments: isError naming the place, never a protocol error
        m.bad("status", {"verbose": True}, "unknown key 'verbose'")
        m.bad("status", [], "arguments", "not an object")
        m.bad("metrics_query", {"name": 5}, "arguments.name", "not a string")
        m.bad("metrics_query", {"from": "now-1h"}, "need name")
        m.bad("metrics_query", {"name": "no_such_metric_x"}, "/v1/metrics/no_such_metric_x", "HTTP 404")
        m.bad("metrics_query", {"name": names[0], "step": "often"}, "HTTP 400")
        m.bad("incidents_list", {"limit": 0}, "arguments.limit", "minimum 1")
        m.bad("incidents_list", {"state": "bogus"}, "'bogus' is not one of")
        m.bad("incident_get", {}, "missing required 'id'")
        m.bad("incident_get", {"id": "7"}, "arguments.id", "not an integer")
        m.bad("incident_get", {"id": 987654}, "HTTP 404")
        m.bad("ask", {}, "missing required 'question'")
        m.bad("ask", {"question": ""}, "arguments.question", "empty")
        m.bad("ask", {"question": "x" * 1025}, "too long")
        m.bad("ask", {"question": "why?", "at": "sometime soon"}, "HTTP 400")
        m.bad("actions_pending", {"all": 1}, "unknown key 'all'")
        m.bad("action_approve", {"id": pend[0]["id"], "decision": "maybe"}, "'maybe' is not one of")
        m.bad("action_approve", {"id": 987654, "decision": "approve"}, "HTTP 404")
        m.bad("action_propose", {"service": "web"}, "missing required 'action'")
        m.bad("action_propose", {"service": "web", "action": "restart", "reason": "x", "sudo": True}, "unknown key")

        # approving through MCP runs it through the policy; the audit names the assistant
        dec = m.ok("action_approve", {"id": pend[0]["id"], "decision": "approve"})
        assert dec["result"] == "approved" and dec["who"] == "mcp:test-client", dec
        wait_for(lambda: service(d) and service(d)["pid"] != web["pid"], 15 * SLOW, "web restarted")
        audit = json.dumps(d.get("/v1/audit?last=50").json()["records"])
        assert "mcp:test-client" in audit, audit[-2000:]

        # a proposal: queued for approval (or the stand-in's 501 until POST /v1/actions lands)
        pid = service(d)["pid"]
        res = m.tool("action_propose", {"service": "web", "action": "restart", "reason": "test: looks stuck"})
        if res["isError"]:
            text = res["content"][0]["text"]
            assert "POST /v1/actions" in text and ("HTTP 501" in text or "HTTP 503" in text), text
        else:
            prop = res["structuredContent"]
            assert prop["verdict"] == "queue" and prop["pending"], prop
            assert service(d)["pid"] == pid, "a proposal never runs by itself"
            queued = m.ok("actions_pending")["pending"]
            assert [p for p in queued if p["id"] in prop["pending"]], queued
            m.ok("action_approve", {"id": prop["pending"][0], "decision": "reject"})
            m.bad("action_propose", {"service": "nosuch", "action": "restart", "reason": "x"}, "HTTP 404")
            m.bad("action_propose", {"service": "web", "action": "rm -rf /", "reason": "x"}, "HTTP 400")

        # protocol errors: the server answers each and goes on
        m.send(b'{"jsonrpc":"2.0","id":1,"method":"ping"')
        e = m.error(m.recv(), -32700)
        m.send(b'{"jsonrpc":"2.0","id":2,"method":"p\xffng"}')
        m.error(m.recv(), -32700)
        m.send([{"jsonrpc": "2.0", "id": 3, "method": "ping"}])
        r = m.recv()
        assert r["id"] is None and "batch" in m.error(r, -32600)["message"], r
        m.send("42")
        m.error(m.recv(), -32600)
        m.send({"jsonrpc": "2.0", "id": 4})
        m.error(m.recv(), -32600)
        m.send({"jsonrpc": "1.0", "id": 5, "method": "ping"})
        r = m.recv()
        assert r["id"] == 5, r
        m.error(r, -32600)
        m.send({"jsonrpc": "2.0", "id": [6], "method": "ping"})
        m.error(m.recv(), -32600)
        m.error(m.call("resources/list"), -32601)
        m.error(m.call("tools/call", [1, 2]), -32602)
        m.error(m.call("tools/call", {"arguments": {}}), -32602)
        assert "unknown tool" in m.error(m.call("tools/call", {"name": "shell", "arguments": {}}), -32602)["message"]
        m.send("")  # a blank line is nothing
        assert m.call("ping")["result"] == {}

        # the daemon stops mid-session: isError, and the server goes on
        assert d.stop() == 0
        m.bad("status", {}, "cannot reach ippocd")
        m.bad("actions_pending", {}, "cannot reach ippocd")
        assert m.call("ping")["result"] == {}
        d.start()
        assert m.ok("status")["status"]["version"]
        assert m.close() == 0, m.stderr()
        err = m.stderr()
        assert "ippoc mcp" in err, err
    finally:
        _kill_children()


# ---- the 2026-07-28 lifecycle: server/discover, stateless requests, versions ----

def test_stateless():
    d = start_daemon()
    m = Mcp(d)
    try:
        # nothing yet: a request without _meta or a session is refused, not served
        m.error(m.call("tools/list"), -32600)
        disc = m.call("server/discover", {"_meta": META})["result"]
        versions = disc["supportedVersions"]
        assert versions[0] == "2026-07-28" and "2025-11-25" in versions, disc
        assert disc["capabilities"]["tools"] == {"listChanged": False}, disc
        assert disc["serverInfo"]["name"] == "ippoc" and disc["instructions"], disc
        assert m.call("server/discover")["result"] == disc  # no _meta: same answer
        tools = m.call("tools/list", {"_meta": META})["result"]["tools"]
        check_tool_list(tools, TOOLS)
        st = m.ok("status", {}, meta=META)
        assert st["status"]["version"], st
        # each key the stateless revision requires is checked
        for key in ("io.modelcontextprotocol/clientInfo", "io.modelcontextprotocol/clientCapabilities"):
            meta = {k: v for k, v in META.items() if k != key}
            e = m.error(m.call("tools/list", {"_meta": meta}), -32602)
            assert key in e["message"], e
        m.error(m.call("tools/list", {"_meta": "2026-07-28"}), -32602)
        # an unsupported version: UnsupportedProtocolVersion with the supported list
        for method, params in (("tools/list", {}), ("server/discover", {}),
                               ("tools/call", {"name": "status", "arguments": {}})):
            params["_meta"] = dict(META, **{"io.modelcontextprotocol/protocolVersion": "2099-01-01"})
            e = m.error(m.call(method, params), -32022)
            assert e["data"]["supported"] == versions and e["data"]["requested"] == "2099-01-01", e
        # a notification with _meta gets no reply either
        m.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "_meta": META}})
        assert m.call("ping")["result"] == {}
        # initialize with a version we do not speak: the newest handshake one
        res = initialize(m, "1999-01-01")
        assert res["protocolVersion"] == "2025-11-25", res
        m.error(m.call("initialize", {"capabilities": {}}), -32602)
        assert m.close() == 0
        # --read-only: the two acting tools are not there, nor callable
        r = Mcp(d, "--read-only")
        assert initialize(r, "2025-06-18")["protocolVersion"] == "2025-06-18"
        check_tool_list(r.call("tools/list")["result"]["tools"], TOOLS - ACTING)
        e = r.error(r.call("tools/call", {"name": "action_approve", "arguments": {"id": 1, "decision": "approve"}}),
                    -32602)
        assert "read-only" in e["message"], e
        assert r.ok("actions_pending")["pending"] == []
        assert r.close() == 0
    finally:
        _kill_children()


def test_token():
    """A daemon that wants a token: without one every tool is isError saying
    so (and the token never shows); with --token the tools work."""
    token = "s3cret-token-for-the-mcp-test"
    d = Daemon(config=f"[api]\ntoken = {token}\n").start(wait=False)
    wait_for(lambda: d.get("/v1/status", headers={"Authorization": f"Bearer {token}"}).status == 200,
             20 * SLOW, "api up")
    try:
        m = Mcp(d)
        initialize(m)
        m.bad("status", {}, "unauthorized (HTTP 401)", "--token")
        assert m.close() == 0
        m = Mcp(d, token=token)
        initialize(m)
        assert m.ok("status")["status"]["version"]
        assert m.close() == 0
        assert token not in m.stderr()
    finally:
        _kill_children()


def test_usage():
    d = Daemon()
    r = subprocess.run([IPPOC, "mcp", "--bogus"], capture_output=True, text=True, timeout=10 * SLOW,
                       env=dict(os.environ, IPPOC_URL=d.url), stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "--bogus" in r.stderr and r.stdout == "", r
    r = subprocess.run([IPPOC, "mcp", "--help"], capture_output=True, text=True, timeout=10 * SLOW,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "--read-only" in r.stdout, r
    # EOF at once, no daemon at all: still exit 0, nothing on stdout
    r = subprocess.run([IPPOC, "mcp"], capture_output=True, text=True, timeout=10 * SLOW,
                       env=dict(os.environ, IPPOC_URL=d.url), stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout == "", r


if __name__ == "__main__":
    run([test_session, test_stateless, test_token, test_usage], sys.argv[1:])
