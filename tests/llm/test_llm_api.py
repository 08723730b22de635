#!/usr/bin/env python3
"""test_llm_api.py: the llm client inside the real ippocd: GET /v1/llm and
`ippoc llm` show the configured providers and budgets, a reload (SIGHUP)
changes them, and a bad [llm] key stops the daemon with FILE:LINE."""
import json
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import Daemon, wait_for  # noqa: E402


def conf(per_hour):
    return ("[llm]\nlocal = http://127.0.0.1:9/v1\nlocal_model = phi-test\ncloud = anthropic\n"
            f"cloud_model = claude-test\ntokens_per_hour = {per_hour}\ntokens_per_incident = 777\n")


def test_status_api_and_cli():
    d = Daemon(conf(1234)).start()
    r = d.get("/v1/llm")
    assert r.status == 200, r.body
    st = r.json()
    assert st["available"] is True and st["budget_hour"] == 1234 and st["budget_incident"] == 777, st
    assert st["local"]["configured"] and st["local"]["model"] == "phi-test", st
    assert st["cloud"]["provider"] == "anthropic" and st["cloud"]["url"] == "https://api.anthropic.com/v1", st
    assert st["sent_log"] == os.path.join(d.state_dir, "llm", "sent.jsonl"), st
    assert d.get("/v1/llm?x=1").status == 400
    out = d.cli("llm", check=0).stdout
    assert "phi-test" in out and "anthropic https://api.anthropic.com/v1" in out, out
    assert "0 of 1234 tokens this hour" in out and "no recent fallbacks" in out, out
    js = json.loads(d.cli("--json", "llm", check=0).stdout)
    assert js["budget_hour"] == 1234
    assert "GET /v1/llm" in d.cli("help", "llm", check=0).stdout
    # a reload changes the budgets
    d.write_config(conf(4321))
    d.signal(signal.SIGHUP)
    wait_for(lambda: d.get("/v1/llm").json()["budget_hour"] == 4321, 10, "the reloaded [llm] budget")
    assert d.stop() == 0


def test_no_model():
    d = Daemon("").start()
    assert d.get("/v1/llm").json()["available"] is False
    assert "no language model configured" in d.cli("llm", check=0).stdout
    assert d.stop() == 0


def test_bad_config_refused():
    d = Daemon("[llm]\ncloud = azure\n")
    args = [harness.IPPOCD, "--config", d.config_path, "--state-dir", d.state_dir, "--listen",
            f"127.0.0.1:{d.port}"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p
    assert "ippoc.conf:2" in p.stderr and "cloud" in p.stderr, p.stderr


if __name__ == "__main__":
    harness.run([test_status_api_and_cli, test_no_model, test_bad_config_refused])
