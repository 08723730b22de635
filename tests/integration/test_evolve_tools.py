"""test_evolve_tools.py: ToolSmith's draft path on a real ippocd, with
tests/llm/fakellm.py as the model ([llm] local):

 - a good draft (the model writes a tool with passing tests): its tests run
   (in the sandbox, or ippocd's restricted state while bubblewrap is
   unavailable), the "tool" change goes through the safety policy
   ([evolve] changes = execute) and tools/NAME.lua is committed to the
   genome; it then runs through the API and `ippoc tool run`;
 - a draft whose test fails is refused (422, the failing assertion named),
   and stays out of the genome;
 - a draft whose test loops forever is stopped at the instruction limit and
   refused;
 - `ippoc tool add tools/disk_hog.lua` (no model) takes the same path;
 - with [evolve] changes = approve, a passing draft waits in `ippoc pending`
   and enters the genome when approved.
Every wait polls with a deadline; ippocd and fakellm are stopped even on
failure. When the cell's wiring (the daemon's change hook, the genome) is
missing, the policy step is skipped with the reason."""
import json
import os
import sys

from harness import Daemon, genome_commits, run, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "llm"))
import fakellm  # noqa: E402 - the stand-in model server (tests/llm)

SRC = os.environ.get("IPPOC_SRC", os.path.join(HERE, "..", ".."))

GOOD = """local T
T = {
  name = "good_tool",
  description = "doubles x",
  run = function(args) ippoc.log("doubling", args.x) return {double = (tonumber(args.x) or 0) * 2} end,
  tests = {
    doubles = function() assert(T.run({x = 21}).double == 42) end,
    zero = function() assert(T.run({}).double == 0) end,
  },
}
return T
"""

BAD = """return {
  name = "bad_tool",
  run = function() return 1 end,
  tests = { wrong = function() assert(1 + 1 == 3, "arithmetic is broken") end },
}
"""

LOOP = """return {
  name = "loop_tool",
  run = function() return 1 end,
  tests = { forever = function() while true do end end },
}
"""


def scenario():
    def answer(name, src):
        return {"match": f"'{name}'", "content": json.dumps({"source": src}), "prob": 0.95}
    items = [answer("good_tool", GOOD), answer("bad_tool", BAD), answer("loop_tool", LOOP),
             {"content": json.dumps({"source": "return {}"}), "prob": 0.95}]
    return {"/v1/chat/completions": items}


def tool_names(d):
    r = d.get("/v1/tools")
    assert r.status == 200, r.body
    return {t["name"]: t for t in r.json()["tools"]}


def genome_has(d, path):
    r = d.get("/v1/genome/show?rev=HEAD&path=" + path)
    return r.status == 200


def skip(why):
    print(f"SKIP: {why}", flush=True)
    sys.exit(77)


def start(d):
    """d.start(), skipping while the tree has no [evolve] section."""
    try:
        d.start()
    except AssertionError as e:
        if "unknown section [evolve]" in str(e):
            skip("the cell's [evolve] section is not on this tree yet")
        raise


def test_drafts():
    d = Daemon()
    llm = None
    try:
        llm = fakellm.Proc(d.tmp, scenario())
        d.write_config(f"[llm]\nlocal = {llm.url}/v1\ntimeout = 20s\n"
                       "[evolve]\nchanges = execute\n")
        start(d)
        r = d.get("/v1/tools")
        if r.status in (404, 503):
            skip(f"the cell's evolution is not wired here ({r.status}: {r.body[:200]!r})")

        # a good draft: tests pass, the policy executes, the genome has it
        st, ans = d.post("/v1/tools/draft", {"name": "good_tool", "description": "doubles x"}, timeout=60)
        if st == 503 and "policy" in ans.get("error", ""):
            skip(f"the policy step: {ans['error']}")
        assert st in (201, 202), (st, ans)
        assert ans["name"] == "good_tool" and ans["id"].startswith("good_tool-"), ans
        assert ans["verdict"] == "execute", ans
        wait_for(lambda: "good_tool" in tool_names(d), 20, "good_tool in the genome")
        assert genome_has(d, "tools/good_tool.lua")
        hist = genome_commits(d, "tools/good_tool.lua")
        assert hist and hist[0]["kind"] == "tool", hist
        assert "tests 2/2 passed" in (hist[0].get("fitness") or ""), hist[0]
        t = tool_names(d)["good_tool"]
        assert t["kind"] == "lua" and t["description"] == "doubles x" and t["tests"] == 2, t
        st, run = d.post("/v1/tools/good_tool/run", {"args": {"x": 5}})
        assert st == 200 and run["ok"] and run["value"] == {"double": 10}, (st, run)
        assert run["log"] == ["doubling\t5"], run
        def run_events():
            r = d.get("/v1/events?type=tool.run")
            evs = r.json() if r.status == 200 else []
            evs = evs.get("events", []) if isinstance(evs, dict) else evs
            return [e for e in evs if "good_tool" in json.dumps(e)]
        wait_for(run_events, 10, "a tool.run event for good_tool")
        c = d.cli("tool", "run", "good_tool", "x=8", check=0)
        assert '"double": 16' in c.stdout or '"double":16' in c.stdout, c.stdout
        c = d.cli("tool", "list", check=0)
        assert "good_tool" in c.stdout and "lua" in c.stdout, c.stdout
        c = d.cli("tool", "test", "good_tool", check=0)
        assert "ok   doubles" in c.stdout, c.stdout
        # what the model was asked for names the tool and the API
        sent = llm.requests()
        assert any("good_tool" in json.dumps(s["body"]) and "ippoc.metric" in json.dumps(s["body"])
                   for s in sent), "the model was not asked about good_tool"

        # a draft whose test fails: refused with the failure, not in the genome
        st, ans = d.post("/v1/tools/draft", {"name": "bad_tool", "description": "adds"}, timeout=60)
        assert st == 422, (st, ans)
        assert ans["status"] == "refused" and "arithmetic is broken" in ans["error"], ans
        assert "bad_tool" not in tool_names(d)
        assert not genome_has(d, "tools/bad_tool.lua")
        drafts = {x["id"]: x for x in d.get("/v1/tools").json()["drafts"]}
        assert drafts[ans["id"]]["status"] == "refused", drafts

        # a draft that loops forever: stopped, refused
        st, ans = d.post("/v1/tools/draft", {"name": "loop_tool", "description": "spins"}, timeout=60)
        assert st == 422, (st, ans)
        assert "instruction limit" in ans["error"] or "timeout" in ans["error"], ans
        assert "loop_tool" not in tool_names(d)

        # a person's tool, no model: the same tests and policy
        c = d.cli("tool", "add", os.path.join(SRC, "tools", "disk_hog.lua"), check=0, timeout=60)
        assert "disk_hog" in c.stdout, c.stdout
        wait_for(lambda: "disk_hog" in tool_names(d), 20, "disk_hog in the genome")
        # the real fs.used_percent of /, named by one of its labels (mountpoint)
        def fullest():
            st, run = d.post("/v1/tools/disk_hog/run", {"args": {"mounts": "/,/nonexistent", "threshold": 101}})
            assert st == 200 and run["ok"], (st, run)
            return run["value"] if run["value"]["found"] else None
        v = wait_for(fullest, 20, "disk_hog to find / in the metrics")
        assert v["mount"] == "/" and 0 <= v["used_percent"] <= 100 and v["over"] is False, v
        assert [f["mount"] for f in v["filesystems"]] == ["/"], v
        # bad names and missing tools are clear errors
        st, ans = d.post("/v1/tools/nope/run", {})
        assert st == 404 and "nope" in ans["error"], (st, ans)
        st, ans = d.post("/v1/tools/draft", {"name": "../x", "description": "y"})
        assert st == 400 and "name" in ans["error"], (st, ans)
    finally:
        d.stop()
        if llm:
            llm.stop()


def test_queued_then_approved():
    """[evolve] changes = approve: a passing draft waits in `ippoc pending`
    and enters the genome when a person approves it."""
    d = Daemon()
    try:
        d.write_config("[evolve]\nchanges = approve\n")
        start(d)
        c = d.cli("tool", "add", os.path.join(SRC, "tools", "restart_if_slow.lua"), check=0, timeout=60)
        assert "queued" in c.stdout, c.stdout
        assert "restart_if_slow" not in tool_names(d)
        pending = d.get("/v1/pending").json()
        pending = pending.get("pending", pending) if isinstance(pending, dict) else pending
        mine = [p for p in pending if "restart_if_slow" in p.get("action", "")]
        assert len(mine) == 1 and mine[0]["service"] == "cell", pending
        d.cli("approve", str(mine[0]["id"]), check=0)
        wait_for(lambda: "restart_if_slow" in tool_names(d), 20, "restart_if_slow in the genome after approval")
        t = tool_names(d)["restart_if_slow"]
        assert t["tests"] == 4 and "restart" in t["description"], t
        drafts = d.get("/v1/tools").json()["drafts"]
        assert [x["status"] for x in drafts if x["name"] == "restart_if_slow"] == ["accepted"], drafts
    finally:
        d.stop()


if __name__ == "__main__":
    run([test_drafts, test_queued_then_approved])
