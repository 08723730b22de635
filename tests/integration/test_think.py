"""test_think.py: the model in diagnosis (issue 12, item 3) on a real fault:
a real supervised service whose config file is broken (exits 1 at start,
test_brain.py's web), a real ippocd, and tests/llm/fakellm.py as the local
model ([llm] local), answering from a scenario file the test rewrites
between occurrences (fakellm reads it again when it changes).

 - a good answer (agrees, every claim cites records): the diagnosis gains
   "model" with the explanation, each cite resolved to its record, and
   "agreement": "agree"; the prompt the model got gave every record a ref;
 - an answer proposing a free-form command, and one proposing an action off
   the service's allowlist: refused; the diagnosis is the rules' (no
   agreement, no action "by":"model"), "model" says why;
 - the model down (fakellm stopped): the same, "model" says it failed;
 - no [llm] at all: "model" says there is none.
Every wait polls with a deadline; both processes are stopped even on failure."""
import json
import os
import sys

from harness import Daemon, Peer, free_port, run, wait_for
from test_brain import break_and_kill, running_long_enough, start_web, up, write_web
from test_heal import _kill_leftovers, svc  # noqa: F401 - registers the leftover killer

FAKELLM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llm", "fakellm.py")
RULES_KEYS = {"incident", "fault_type", "component", "root_cause", "confidence", "source", "evidence",
              "proposed_actions", "cases", "ts", "took_ms", "trigger", "signals"}


def answer(actions, because=("E1",), fault="config_error"):
    return json.dumps({
        "hypotheses": [{"fault_type": fault, "component": "web", "confidence": 0.9, "because": list(because)}],
        "explanation": [{"claim": "web's config file now holds a listen value that is no port", "cites": ["R1"]},
                        {"claim": "so web exits 1 as it starts", "cites": ["E1", "R1"]}],
        "actions": actions})


def scenario(path, content):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        json.dump({"/v1/chat/completions": [{"content": content, "prob": 0.9}]}, f)
    os.replace(tmp, path)


def start_fakellm(tmp, content):
    sc = os.path.join(tmp, "scenario.json")
    scenario(sc, content)
    rec = os.path.join(tmp, "sent.jsonl")
    port = free_port()
    p = Peer([sys.executable, FAKELLM, "--scenario", sc, "--record", rec, "--port", str(port)], "fakellm").start()
    wait_for(lambda: p.log_text().strip().splitlines()[:1] == [str(port)], 10, "fakellm listening")
    return p, sc, rec, port


def setup(d, port, llm_port):
    script, conf = write_web(d, port)
    llm = f"[llm]\nlocal = http://127.0.0.1:{llm_port}/v1\ntimeout = 10s\n" if llm_port else ""
    d.write_config(
        "[logs]\nnew_template_grace = 0s\n"
        "[brain]\nwindow = 2s\ndeadline = 30s\n" + llm +
        "[heal]\nflap = 100 restarts within 1m\nmax_actions = 200 per 1m\nservice_max_actions = 100 per 1m\n"
        f"[service.web]\ncommand = {sys.executable} {script} {conf}\nconfig_path = {conf}\n"
        "healthy_after = 1s\nallow = default, restore\n"
        f"rule = if failed http://127.0.0.1:{port}/ timeout 500ms every 1s then restart\n")
    return conf


def next_diagnosis(d, since_id):
    """The first diagnosis of web of an incident newer than since_id."""
    for inc in sorted(d.get("/v1/incidents").json()["incidents"], key=lambda i: i["id"]):
        if inc["id"] <= since_id:
            continue
        r = d.get(f"/v1/incidents/{inc['id']}/diagnosis")
        if r.status == 200 and r.json().get("component") == "web" and "model" in r.json():
            return r.json()
    return None


def occurrence(d, conf, port):
    """Breaks web's config and kills it; returns its diagnosis once there,
    after web was healed again and has run long enough for the next one."""
    wait_for(lambda: running_long_enough(d), 20, "web healthy")
    before = max([i["id"] for i in d.get("/v1/incidents").json()["incidents"]] or [0])
    break_and_kill(d, conf, port)
    dg = wait_for(lambda: next_diagnosis(d, before), 40, "web's diagnosis")
    wait_for(lambda: up(port), 40, "web healed")
    return dg


def assert_rules_only(dg):
    assert set(dg) - {"model"} <= RULES_KEYS, sorted(dg)
    assert "agreement" not in dg, dg
    assert not any(a.get("by") == "model" for a in dg["proposed_actions"]), dg["proposed_actions"]
    assert dg["fault_type"] == "config_error", dg


def skip_without_client(dg):
    if dg["model"].get("absent") == "no model is configured":
        print("skip: this ippocd's llm client is the stand-in (no provider is ever available)")
        sys.exit(77)


def test_model_explains_and_is_checked():
    d = Daemon()
    port = free_port()
    good = answer([{"action": "alert", "service": "web"}])
    fake, sc, rec, llm_port = start_fakellm(d.tmp, good)
    conf = setup(d, port, llm_port)
    start_web(d, port)

    # ---- a good answer: explanation with cites, agreement, its alert after the rules' actions ----
    dg = occurrence(d, conf, port)
    skip_without_client(dg)
    m = dg["model"]
    assert "absent" not in m, m
    assert dg["agreement"] == "agree", dg
    assert m["provider"] == "local", m
    assert len(m["explanation"]) == 2, m
    cites = m["explanation"][1]["cites"]
    assert [c["ref"] for c in cites] == ["E1", "R1"], cites
    assert cites[0]["type"] == "signature" and cites[0]["field"], cites
    assert cites[1]["type"] == "rule_evidence" and cites[1]["index"] == 0, cites
    assert dg["proposed_actions"][0]["action"] == f"restore {conf}", dg["proposed_actions"]
    assert dg["proposed_actions"][-1] == {"action": "alert", "service": "web", "why": "proposed by the model",
                                          "by": "model"}, dg["proposed_actions"]
    # what the model was sent: the records by ref, the schema, charged to the incident
    sent = [json.loads(line) for line in open(rec)]
    body = json.dumps(sent[-1]["body"])
    assert "E1 exits:" in body and "R1 " in body and "fault_type config_error" in body, body[:2000]
    r = d.cli("why", str(dg["incident"]), check=0)
    assert "agrees with the rules" in r.stdout and "E1" in r.stdout and "[model]" in r.stdout, r.stdout

    # ---- free-form shell, then an action off the allowlist: refused, the rules' diagnosis ----
    for bad in ([{"action": "rm -rf /tmp/web-cache", "service": "web"}],
                [{"action": "sysctl vm.swappiness = 1", "service": "web"}]):
        scenario(sc, answer(bad))
        dg = occurrence(d, conf, port)
        assert_rules_only(dg)
        assert "refused" in dg["model"]["absent"] or "failed" in dg["model"]["absent"], dg["model"]
    r = d.cli("why", str(dg["incident"]), check=0)
    assert "model       none:" in r.stdout, r.stdout

    # ---- the model down: nothing changes but "model" ----
    fake.kill()
    dg = occurrence(d, conf, port)
    assert_rules_only(dg)
    assert "failed" in dg["model"]["absent"], dg["model"]
    d.stop()


def test_no_model():
    d = Daemon()
    port = free_port()
    conf = setup(d, port, None)
    start_web(d, port)
    dg = occurrence(d, conf, port)
    assert_rules_only(dg)
    assert dg["model"] == {"absent": "no model is configured"}, dg["model"]
    d.stop()


if __name__ == "__main__":
    run([test_no_model, test_model_explains_and_is_checked])
