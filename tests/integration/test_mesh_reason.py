"""test_mesh_reason.py: a cell without a model asks a reasoning peer of its
fleet (issue 15 item 5). Two real ippocd on loopback in one fleet (tokens from
tests/mesh/mesh-tool): cell A has [llm] local = tests/llm/fakellm.py, cell B
has no model. `ippoc ask` on B is answered by A's model through the mesh; B's
sent.jsonl records provider "mesh" with the host name, IP and email of the
question redacted, and fakellm (A's model) saw only the redacted text. With A
killed, B answers without a model, cleanly and within its timeout. Every
wait polls with a deadline; every process is stopped even on failure."""
import json
import os
import sys
import tempfile
import time

from harness import wait_for
from meshfix import free_udp_port, mesh_daemon, mesh_status, tool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llm"))
import fakellm  # noqa: E402 - the stand-in model server (tests/llm)

HOST, IP, EMAIL = "db1.example.com", "10.20.30.40", "ops@example.com"
QUESTION = f"how is the disk on {HOST} at {IP}? mail {EMAIL}"


def cell(port, extra=""):
    return mesh_daemon(port, after=extra)


def ask(d, question, timeout=30):
    status, ans = d.post("/v1/ask", {"question": question}, timeout)
    assert status == 200, (status, ans)
    return ans


def reasoning(d):
    return mesh_status(d).get("reasoning", {})


def sent_lines(d):
    path = os.path.join(d.state_dir, "llm", "sent.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_mesh_reason():
    fleet = tempfile.mkdtemp(prefix="ippoc-it.fleet.")
    ds = []
    prose = "The disk is fine: nothing here needs a fix."
    answer = {"content": json.dumps({"answer": prose, "cites": []})}
    with fakellm.Proc(fleet, {"/v1/chat/completions": [answer]}) as f:
        try:
            ports = [free_udp_port() for _ in range(2)]
            seed = f"127.0.0.1:{ports[0]}"
            tool("fleet", fleet)
            a = cell(ports[0], f"[llm]\nlocal = {f.url}/v1\ntimeout = 10s\n")
            b = cell(ports[1], f"[llm]\nredact_hosts = {HOST}\ntimeout = 5s\n")
            ds = [a, b]
            tool("invite", fleet, a.state_dir, "cell-a")
            tool("invite", fleet, b.state_dir, "cell-b", seed)
            a.start()
            b.start()
            # B sees A, a reasoning peer with a model: its llm says a model is available
            wait_for(lambda: b.get("/v1/llm").json().get("available") is True, 20, "B's llm to see A's model")
            st = b.get("/v1/llm").json()
            assert st["mesh"]["available"] is True and st["local"]["configured"] is False, st
            r = b.cli("llm", check=0)
            assert "a reasoning peer of the fleet is reachable" in r.stdout, r.stdout

            # B's records ground the question (its disk); A's model answers citing none of them (allowed)
            n0 = len(f.requests("/v1/chat/completions"))
            ans = ask(b, QUESTION)
            assert ans["model"]["used"] is True, ans["model"]
            assert ans["model"]["provider"] == "mesh", ans["model"]
            assert ans["answer"] == prose, ans["answer"]
            r = b.cli("ask", QUESTION, check=0)
            assert prose in r.stdout.replace("\n", " "), r.stdout

            # what left B: recorded as "mesh", redacted; what A's model saw: the same, redacted
            mesh_sent = [s for s in sent_lines(b) if s["provider"] == "mesh"]
            assert mesh_sent, sent_lines(b)
            for s in mesh_sent:
                for secret in (HOST, IP, EMAIL):
                    assert secret not in s["body"], (secret, s["body"][:1500])
            assert "how is the disk on" in mesh_sent[-1]["body"], mesh_sent[-1]["body"][:1500]
            seen = f.requests("/v1/chat/completions")[n0:]
            assert seen, "A's model was not asked"
            text = json.dumps(seen)
            assert "how is the disk on" in text, text[:1500]
            for secret in (HOST, IP, EMAIL):
                assert secret not in text, (secret, text[:1500])
            assert seen[-1]["body"].get("stream") is False, seen[-1]["body"]

            # the counters on both sides, and /metrics
            assert reasoning(b)["asked"] >= 2 and reasoning(a)["served"] >= 2, (reasoning(a), reasoning(b))
            m = b.get("/metrics").body.decode()
            assert 'ippoc_mesh_reasoning_requests_total{role="asked",outcome="ok"}' in m, m
            m = a.get("/metrics").body.decode()
            assert 'ippoc_mesh_reasoning_requests_total{role="served",outcome="ok"}' in m, m

            # A SIGKILLed (B still believes it alive: the connection is refused): B answers without a
            # model, within its timeout, and keeps running; once A is known dead, no model is available
            a.kill()
            t0 = time.monotonic()
            ans = ask(b, QUESTION)
            took = time.monotonic() - t0
            assert ans["model"]["used"] is False, ans["model"]
            assert took < 15, took
            print(f"  with A killed: B answered without a model in {took:.2f} s ({ans['model']['why'][:120]})",
                  flush=True)
            wait_for(lambda: b.get("/v1/llm").json().get("available") is False, 20,
                     "B's llm to see no reasoning peer")
            ans = ask(b, QUESTION)
            assert ans["model"]["used"] is False and "no model" in ans["model"]["why"], ans["model"]
            assert b.status(), "B answers its API"
            assert b.stop() == 0, b.log_text()[-3000:]
        finally:
            for d in ds:
                d.kill()
                d.remove()


if __name__ == "__main__":
    test_mesh_reason()
    print("ok")
