"""test_diagnose_model.py: bench/diagnose's --model replay:FILE logic: the
recorded answers filled in for a fault, served by a real fakellm in turn,
the next fault's server going on where the last one stopped; the model's
part of a diagnosis as the results show it, and its count in the summary."""
import json
import os
import shutil
import sys
import tempfile
import urllib.request

ROOT = os.environ.get("IPPOC_SRC") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "bench", "diagnose"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from benchtest import run  # noqa: E402


class Fault:
    fault_type, components = "dns_failure", ("web",)


def ask(llm_section):
    url = [l for l in llm_section.splitlines() if l.startswith("local = ")][0][len("local = "):]
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["choices"][0]["message"]["content"]


def test_fill():
    a = {"hypotheses": [{"fault_type": "{fault_type}", "component": "{component}"}], "x": "{other_fault_type}"}
    got = json.loads(bench.ReplayModel.fill(a, Fault()))
    assert got["hypotheses"][0] == {"fault_type": "dns_failure", "component": "web"}, got
    assert got["x"] == "crash", got
    assert bench.ReplayModel.fill("{\"cut\": \"{fault_type}", Fault()) == "{\"cut\": \"dns_failure"


def test_replay_in_turn():
    tmp = tempfile.mkdtemp(prefix="ippoc-replay-test.")
    f = os.path.join(tmp, "answers.json")
    with open(f, "w") as fp:
        json.dump({"answers": [{"content": "first {fault_type}"}, {"content": "second"}, {"content": "third"}]}, fp)
    m = bench.ReplayModel(f)
    try:
        sec = m.start(Fault(), tmp)
        assert "timeout = 30s" in sec, sec
        assert ask(sec) == "first dns_failure"
        assert ask(sec) == "second"
        m.stop()
        assert m.served == 2, m.served
        sec = m.start(Fault(), tmp)
        assert ask(sec) == "third"
        assert ask(sec) == "first dns_failure"  # over and over
        bad = os.path.join(tmp, "bad.json")
        with open(bad, "w") as fp:
            json.dump({"answers": [{"name": "no content"}]}, fp)
        try:
            bench.ReplayModel(bad)
            raise AssertionError("an answer without content was accepted")
        except ValueError as e:
            assert "without content" in str(e), e
    finally:
        m.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_model_note_and_summary():
    assert bench.model_note({}) is None
    assert bench.model_note({"model": {"absent": "no model is configured"}}) == "absent: no model is configured"
    assert bench.model_note({"model": {"provider": "local"}, "agreement": "agree"}) == "agree"
    assert bench.model_note({"model": {"unsure": True}, "agreement": "disagree"}) == "disagree (unsure)"
    base = {"expected_type": "crash", "expected_components": ["web"], "occurrence": 1, "detected": True,
            "component_ok": True, "type_ok": True, "mitigated": True, "ttd": 1, "ttdiag": 1, "ttm": 1}
    rs = [dict(base, fault="a", diagnoses=[{"component": "web", "model": "agree"}]),
          dict(base, fault="b", diagnoses=[{"component": "web", "model": "absent: refused"}]),
          dict(base, fault="c", diagnoses=[{"component": "web", "model": "agree"}])]
    text, _ = bench.summary(rs, "x")
    assert "the model in the first diagnoses: absent 1, agree 2" in text, text
    text, _ = bench.summary([dict(base, fault="a", diagnoses=[{"component": "web", "model": None}])], "x")
    assert "the model" not in text, text


if __name__ == "__main__":
    sys.exit(run([test_fill, test_replay_in_turn, test_model_note_and_summary]))
