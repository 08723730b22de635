"""test_ask.py: POST /v1/ask and `ippoc ask` on a real daemon (issue 12,
item 4), without a model: a real supervised service killed with SIGKILL so
that heal restarts it, its config file changed on disk, a directory filled
under the state dir's own filesystem (a temp filesystem needs root). Each of
the four kinds the issue names ("why did X restart", "what changed before X
failed", "what is using the disk", "has this happened before") gets an
answer citing records that exist: events are fetched back through
/v1/events, incidents through /v1/incidents/ID, directories are measured
again. A nonsense question gets a polite "nothing found" answer (200), bad
bodies get 400s naming the field. Every wait polls with a deadline."""
import json
import os
import signal
import sys
import threading
import time

from harness import Daemon, run, wait_for
from test_heal import _kill_leftovers, svc  # noqa: F401 - registers the leftover killer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llm"))
import fakellm  # noqa: E402 - the stand-in model server (tests/llm)

APP = r'''import sys, time
conf = sys.argv[1]
open(conf).read()
print("app: started", flush=True)
while True:
    time.sleep(1)
'''


def post(d, body, raw=None, timeout=30):
    return d.post("/v1/ask", raw if raw is not None else body, timeout)


def ask(d, question, model=False, **extra):
    status, ans = post(d, dict(question=question, **extra))
    assert status == 200, (question, status, ans)
    for k in ("question", "kind", "component", "time", "answer", "records", "model"):
        assert k in ans, (k, ans)
    if not model:
        assert ans["model"]["used"] is False and ans["model"]["why"], ans["model"]
    refs = [r["ref"] for r in ans["records"]]
    assert len(refs) == len(set(refs)), refs
    for r in ans["records"]:
        assert set(("ref", "type", "id", "ts", "summary")) <= set(r), r
    return ans


def event_ids(d, typ):
    r = d.get(f"/v1/events?type={typ}&limit=1000")
    assert r.status == 200, r.body
    return {e["id"]: e for e in r.json()["events"]}


def cited(ans, typ):
    return [r for r in ans["records"] if r["type"] == typ]


def check_exists(d, ans):
    """Every event and incident the answer cites is there to fetch back."""
    for r in ans["records"]:
        if r["type"] == "event":
            got = d.get(f"/v1/events?after={r['id'] - 1}&limit=1&order=asc")
            assert got.status == 200 and got.json()["events"][0]["id"] == r["id"], (r, got.body)
        elif r["type"] == "incident":
            assert d.get(f"/v1/incidents/{r['id']}").status == 200, r
        elif r["type"] == "path":
            assert os.path.exists(r["id"]), r


def setup(d):
    script = os.path.join(d.tmp, "app.py")
    with open(script, "w") as f:
        f.write(APP)
    conf = os.path.join(d.tmp, "app.conf")
    with open(conf, "w") as f:
        f.write("name = app\nworkers = 2\n")
    d.write_config(
        "[brain]\nwindow = 1s\nmerge = 1s\n"
        "[heal]\nflap = 100 restarts within 1m\nmax_actions = 200 per 1m\nservice_max_actions = 100 per 1m\n"
        f"[service.app]\ncommand = {sys.executable} {script} {conf}\nconfig_path = {conf}\n"
        "healthy_after = 1s\n"
        "[service.idle]\ncommand = /bin/sleep 600\n")
    return conf


def kill_app(d):
    old = svc(d, "app")["pid"]
    before = len(event_ids(d, "service.exit"))
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: len(event_ids(d, "service.exit")) > before, 10, "service.exit")
    wait_for(lambda: svc(d, "app")["state"] == "running" and svc(d, "app")["pid"] not in (0, old), 15,
             "app restarted")
    return max(event_ids(d, "service.exit"))


def test_four_kinds_and_nonsense():
    d = Daemon()
    conf = setup(d)
    d.start()
    wait_for(lambda: svc(d, "app")["state"] == "running", 15, "app running")

    # -- why did X restart: the exit, killed by SIGKILL, cited and real
    exit_id = kill_app(d)
    ans = ask(d, "why did app restart?")
    assert ans["kind"] == "why" and ans["component"] == "app", ans
    assert "killed by signal 9" in ans["answer"] and "SIGKILL" in ans["answer"], ans["answer"]
    assert f"event:{exit_id}" in ans["answer"], ans["answer"]
    assert f"event:{exit_id}" in [r["ref"] for r in ans["records"]]
    check_exists(d, ans)
    # ... at its minute, in local time as a person would type it
    ts = event_ids(d, "service.exit")[exit_id]["ts"]
    hhmm = time.strftime("%H:%M", time.localtime(ts / 1000))
    ans = ask(d, f"Why did app restart at {hhmm}?")
    assert ans["kind"] == "why" and ans["time"] and ans["time"]["at"], ans
    assert f"event:{exit_id}" in [r["ref"] for r in ans["records"]], ans
    # ... and a time with nothing in it says so, naming the last exit
    ans = ask(d, "why did app restart 3 days ago?")
    assert "no record" in ans["answer"] and f"event:{exit_id}" in ans["answer"], ans["answer"]

    # -- what changed before X failed: the config file edited, then a kill
    # (once the brain has remembered the first exit as a case)
    wait_for(lambda: d.get("/v1/brain").json()["cases"] >= 1, 20, "the first case")
    with open(conf, "a") as f:
        f.write("workers = 3\n")
    wait_for(lambda: any(e["source"] == "app" for e in event_ids(d, "file.changed").values()), 15, "file.changed")
    change_id = max(i for i, e in event_ids(d, "file.changed").items() if e["source"] == "app")
    exit2 = kill_app(d)
    ans = ask(d, "what changed before app failed?")
    assert ans["kind"] == "changes" and ans["component"] == "app", ans
    assert f"event:{change_id}" in [r["ref"] for r in ans["records"]], ans
    assert conf in ans["answer"], ans["answer"]
    assert f"event:{exit2}" in ans["answer"], ans["answer"]  # the failure it looked back from
    check_exists(d, ans)
    ans = ask(d, "what changed in the last hour?")
    assert f"event:{change_id}" in [r["ref"] for r in ans["records"]], ans

    # -- what is using the disk: a directory filled on the state dir's filesystem
    fill = os.path.join(d.tmp, "fill")
    os.makedirs(os.path.join(fill, "big"))
    os.makedirs(os.path.join(fill, "small"))
    with open(os.path.join(fill, "big", "blob"), "wb") as f:
        f.write(os.urandom(6 << 20))
    with open(os.path.join(fill, "small", "blob"), "wb") as f:
        f.write(os.urandom(1 << 20))
    ans = ask(d, f"what is using the disk in {fill}?")
    assert ans["kind"] == "disk" and ans["path"] == fill, ans
    paths = cited(ans, "path")
    assert paths and paths[0]["id"] == os.path.join(fill, "big"), paths
    assert "6.0 MiB" in paths[0]["summary"], paths[0]
    assert os.path.join(fill, "big") in ans["answer"], ans["answer"]
    check_exists(d, ans)
    ans = ask(d, "what is using the disk?")
    assert ans["kind"] == "disk" and ans["records"], ans
    metrics = cited(ans, "metric")
    if metrics:  # the filesystem group is on by default: its series are real
        names = {m["name"] for m in d.get("/v1/metrics").json()["metrics"]}
        assert all(m["id"].split("{")[0] in names for m in metrics), metrics
    ans = ask(d, "which process is doing the most disk io?")
    assert ans["kind"] == "disk" and ans["answer"], ans

    # -- has this happened before: the app's exits, and the latest incident
    ans = ask(d, "has app crashed before?")
    assert ans["kind"] == "history" and ans["component"] == "app", ans
    assert "exited 2 time(s)" in ans["answer"], ans["answer"]
    assert {f"event:{exit_id}", f"event:{exit2}"} <= {r["ref"] for r in ans["records"]}, ans
    check_exists(d, ans)
    # another service killed the same way: its case recalls app's by their features
    idle = svc(d, "idle")["pid"]
    os.kill(idle, signal.SIGKILL)
    wait_for(lambda: d.get("/v1/brain").json()["cases"] >= 2, 20, "two cases")
    ans = ask(d, "has this happened before?")
    assert ans["kind"] == "history" and cited(ans, "incident"), ans
    assert len(cited(ans, "case")) >= 2 and "nearest earlier cases" in ans["answer"], ans
    check_exists(d, ans)

    # -- what is wrong now
    ans = ask(d, "what is wrong now?")
    assert ans["kind"] == "status" and ans["answer"], ans
    check_exists(d, ans)

    # -- nonsense: polite, not an error
    ans = ask(d, "colorless green ideas sleep furiously")
    assert ans["kind"] == "generic" and ans["records"] == [], ans
    assert "found nothing" in ans["answer"], ans["answer"]

    # -- the CLI: the answer and the cited records as a table
    r = d.cli("ask", "why", "did", "app", "restart?", check=0)
    assert "SIGKILL" in r.stdout and "REF" in r.stdout and f"event:{exit2}" in r.stdout, r.stdout
    assert "no model" in r.stdout, r.stdout
    r = d.cli("ask", "--json", "has this happened before?", check=0)
    assert json.loads(r.stdout)["kind"] == "history"
    r = d.cli("ask", check=2)
    assert "question" in r.stderr, r.stderr
    assert d.stop() == 0, d.log_text()[-3000:]


def test_bad_bodies():
    d = Daemon()
    d.start()
    cases = [
        (b"not json", "JSON"),
        (b"[1,2]", "JSON object"),
        (b"{}", "question"),
        (b'{"question": 12}', "question"),
        (b'{"question": ""}', "question"),
        (b'{"question": "   "}', "question"),
        (b'{"question": "why", "at": "tomorrowish"}', "at"),
        (b'{"question": "why", "at": -5}', "at"),
        (b'{"question": "why", "color": "red"}', "color"),
        (json.dumps({"question": "x" * 1025}).encode(), "question"),
        (b'{"question": "why\\u0001"}', "control"),
    ]
    for raw, word in cases:
        status, body = post(d, None, raw=raw)
        assert status == 400, (raw, status, body)
        assert word in body["error"]["message"], (raw, body)
    status, body = post(d, None, raw=json.dumps({"question": "y" * 5000}).encode())
    assert status == 413, (status, body)
    r = d.get("/v1/ask")
    assert r.status == 405, r.status
    # a good "at" is taken: the question names no time of its own
    status, ans = post(d, {"question": "why did idle restart?", "at": "now-1h"})
    assert status == 200 and ans["time"]["at"] > 0, ans
    status, ans = post(d, {"question": "why did idle restart?", "at": "2026-12-05T03:12:00Z"})
    assert status == 200 and ans["time"]["at"] == 1796440320000, ans
    assert d.stop() == 0, d.log_text()[-3000:]


def test_with_a_model():
    """fakellm as the local model: prose citing given refs is used; an answer
    citing a ref that was not given falls back to the structured answer."""
    d = Daemon()
    setup(d)
    with fakellm.Proc(d.tmp, {"/v1/chat/completions": [{"content": "{}"}]}) as f:
        with open(d.config_path, "a") as c:
            c.write(f"[llm]\nlocal = {f.url}/v1\ntimeout = 10s\n")
        d.start()
        wait_for(lambda: svc(d, "app")["state"] == "running", 15, "app running")
        exit_id = kill_app(d)
        prose = f"The app was killed with SIGKILL and heal restarted it [event:{exit_id}]."
        f.set({"/v1/chat/completions": [{"content": json.dumps({"answer": prose, "cites": [f"event:{exit_id}"]})}]})
        ans = ask(d, "why did app restart?", model=True)
        assert ans["model"]["used"] is True, ans["model"]
        assert ans["answer"] == prose, ans["answer"]
        assert ans["model"]["cites"] == [f"event:{exit_id}"], ans["model"]
        assert "killed by signal 9" in ans["structured"], ans["structured"]
        assert f"event:{exit_id}" in [r["ref"] for r in ans["records"]]
        sent = f.requests("/v1/chat/completions")[-1]["body"]
        text = json.dumps(sent)
        assert "why did app restart?" in text and f"event:{exit_id}" in text, text[:2000]
        assert sent.get("response_format") or "json" in text.lower(), sent
        r = d.cli("ask", "why did app restart?", check=0)
        assert prose in r.stdout.replace("\n", " ") and "written by the model" in r.stdout, r.stdout

        # a made-up citation: rejected, the structured answer stands
        bad = json.dumps({"answer": "It was the cosmic rays [event:987654].", "cites": ["event:987654"]})
        f.set({"/v1/chat/completions": [{"content": bad}]})
        ans = ask(d, "why did app restart?", model=True)
        assert ans["model"]["used"] is False, ans["model"]
        assert "not given" in ans["model"]["why"] or "987654" in json.dumps(ans["model"]), ans["model"]
        assert ans["answer"] == ans["structured"] and "killed by signal 9" in ans["answer"], ans
        assert "cosmic" not in ans["answer"]
        # a reference hidden in the prose only is caught too
        bad = json.dumps({"answer": "See [incident:424242].", "cites": []})
        f.set({"/v1/chat/completions": [{"content": bad}]})
        ans = ask(d, "why did app restart?", model=True)
        assert ans["model"]["used"] is False and "incident:424242" not in ans["answer"], ans
        # the model down: the structured answer, saying why
        f.set({"/v1/chat/completions": [{"status": 500, "body": {"error": "boom"}}]})
        ans = ask(d, "why did app restart?", model=True)
        assert ans["model"]["used"] is False and ans["model"]["why"], ans["model"]
        assert "killed by signal 9" in ans["answer"], ans["answer"]

        # ippocd stopping while a slow model thinks: the ask ends first, the
        # brain is freed after it, the daemon exits cleanly
        f.set({"/v1/chat/completions": [{"content": json.dumps({"answer": prose, "cites": [f"event:{exit_id}"]}),
                                         "delay_ms": 2000}]})
        n0 = len(f.requests("/v1/chat/completions"))
        got = {}
        th = threading.Thread(target=lambda: got.update(r=post(d, {"question": "why did app restart?"})))
        th.start()
        wait_for(lambda: len(f.requests("/v1/chat/completions")) > n0, 10, "the model asked")
        assert d.stop() == 0, d.log_text()[-3000:]
        th.join(30)
        assert not th.is_alive()
        assert got["r"][0] == 200 and got["r"][1]["model"]["used"] is True, got


if __name__ == "__main__":
    run([test_four_kinds_and_nonsense, test_bad_bodies, test_with_a_model])
