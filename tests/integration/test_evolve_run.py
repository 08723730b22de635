"""test_evolve_run.py: `ippoc evolve run` end to end on a real ippocd with a
temporary state dir. A space with one knob in a temporary file and a fitness
script (tests/evolve/fitness.py: value 8 -> mean 100, 16 -> mean 130, else 90,
lognormal noise 5%, seeded per call): the run accepts 16, the knob file ends
with it and the genome has the commit with the fitness trailer. A noise-only
fitness accepts nothing and leaves the file as it was. A space file with an
error is reported by the CLI with FILE:LINE. `ippoc evolve status` shows a
run's history after a daemon restart, and a run that was going when the
daemon stopped is "interrupted"; a SIGKILLed daemon restores the knob file
when it starts again. Skipped (77) when this ippocd has no
evolution cell yet."""
import json
import os
import signal
import sys

from harness import Daemon, genome_commits, kill_marked, read_text, run, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "llm"))
import fakellm  # noqa: E402

SRC = os.environ.get("IPPOC_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
FITNESS = os.path.join(os.path.abspath(SRC), "tests", "evolve", "fitness.py")


def space(d, name, choices="8, 16, 24"):
    """A one-knob space over d.tmp/NAME.conf (threads = 8); (space, conf)."""
    conf = os.path.join(d.tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write("# app settings\nthreads = 8\nlog = on\n")
    path = os.path.join(d.tmp, name + ".space")
    with open(path, "w") as f:
        # a commented space over 4 KiB (a request body bigger than most)
        f.write("".join(f"; note {i}: the thread count of the app, tuned by ippoc evolve\n" for i in range(100)))
        f.write(f"[space]\nname = {name}\n[sandbox]\ntimeout = 20s\n"
                f"[knob threads]\nfile = {conf}\ntype = enum\nchoices = {choices}\n")
    return path, conf


def fitness(conf, mode):
    return f"{sys.executable} {FITNESS} {conf} threads {mode}"


def test_accepts_better():
    d = Daemon().start()
    sp, conf = space(d, "app")
    r = d.cli("evolve", "run", "--space", sp, "--fitness", fitness(conf, "knob"), "--budget", "60s",
              "--repeats", "6", "--seed", "1", "--apply", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "trial 1" in r.stdout and "threads=16" in r.stdout, r.stdout
    assert "accepted +" in r.stdout, r.stdout
    assert read_text(conf) == "# app settings\nthreads = 16\nlog = on\n", read_text(conf)
    runs = d.get("/v1/evolve/runs").json()["runs"]
    assert len(runs) == 1 and runs[0]["status"] == "done" and runs[0]["accepted"] == 1, runs
    one = d.get(f"/v1/evolve/runs/{runs[0]['id']}").json()
    acc = one["accepted"][0]
    assert acc["values"] == {"threads": "16"}, acc
    assert acc["fitness"].startswith("+") and " p=" in acc["fitness"], acc
    assert acc["commit"], acc
    commits = [c for c in genome_commits(d, limit=50) if c.get("kind") == "evolve"]
    assert commits, genome_commits(d, limit=50)
    assert any(c.get("fitness") == acc["fitness"] for c in commits), commits
    # --apply: the accepted commit was asked for through the safety policy
    assert one["applied"]["commit"] == acc["commit"], one.get("applied")
    assert one["applied"]["verdict"] in ("execute", "queue"), one["applied"]
    show = d.get(f"/v1/genome/show?rev={acc['commit']}&path=files{conf}")
    assert show.status == 200 and b"threads = 16" in show.body, show.body
    # the history survives a restart
    d.stop()
    d.start()
    st = d.cli("evolve", "status", runs[0]["id"], check=0)
    assert "accepted +" in st.stdout and "threads=16" in st.stdout and "tpe" in st.stdout, st.stdout
    lst = d.cli("evolve", "status", check=0)
    assert "app" in lst.stdout and "done" in lst.stdout, lst.stdout


def test_noise_accepts_nothing():
    d = Daemon().start()
    sp, conf = space(d, "noise", choices="8, 16")
    r = d.cli("evolve", "run", "--space", sp, "--fitness", fitness(conf, "noise"), "--budget", "60s",
              "--repeats", "6", "--seed", "2", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rejected" in r.stdout and "0 accepted" in r.stdout, r.stdout
    assert read_text(conf) == "# app settings\nthreads = 8\nlog = on\n", read_text(conf)
    assert not [c for c in genome_commits(d, limit=50) if c.get("kind") == "evolve"]


def test_space_error():
    d = Daemon().start()
    bad = os.path.join(d.tmp, "bad.space")
    with open(bad, "w") as f:
        f.write("[space]\nname = bad\n[knob threads]\nfile = relative.conf\ntype = int\n")
    r = d.cli("evolve", "run", "--space", bad, "--fitness", "true", check=1)
    assert f"{bad}:4: file 'relative.conf' is not an absolute path" in r.stderr, r.stderr
    r = d.cli("evolve", "run", "--fitness", "true", check=2)
    assert "--space FILE is required" in r.stderr, r.stderr
    r = d.cli("evolve", "status", "999", check=1)
    assert "no run 999" in r.stderr, r.stderr


def long_run(d, name, trials):
    """A long detached run over space name, once it has measured trials
    times; (its id, the knob file)."""
    sp, conf = space(d, name, choices="8, 16")
    r = d.cli("evolve", "run", "--space", sp, "--fitness", fitness(conf, "knob"), "--budget", "10m",
              "--repeats", "200", "--seed", "3", "--detach", check=0)
    rid = r.stdout.strip()
    wait_for(lambda: d.get(f"/v1/evolve/runs/{rid}").json().get("measurements", 0) >= trials, 20,
             "the run's first trials")
    return rid, conf


def test_interrupted_by_restart():
    d = Daemon().start()
    rid, conf = long_run(d, "long", 6)
    d.stop()
    assert read_text(conf) == "# app settings\nthreads = 8\nlog = on\n", read_text(conf)
    d.start()
    st = d.cli("evolve", "status", rid, check=0)
    assert "interrupted" in st.stdout, st.stdout
    assert d.cli("evolve", "stop", rid).returncode == 1


def test_killed_daemon_restores():
    """ippocd SIGKILLed during a run: the next start puts the knob file back."""
    d = Daemon().start()
    rid, conf = long_run(d, "crash", 5)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d.log.close()
    # what systemd does to a dead unit's cgroup: the trial it was running
    # (and the sandbox's helpers, which hold ippocd's state-dir lock) go too
    kill_marked(d.tmp)
    d.start()
    assert read_text(conf) == "# app settings\nthreads = 8\nlog = on\n", read_text(conf)
    one = d.get(f"/v1/evolve/runs/{rid}").json()
    assert one["status"] == "interrupted" and one["restored"][0]["outcome"] == "restored", one
    d.stop()


def test_llm_proposals():
    """With [llm], every third candidate is the model's: its rationale and the
    knowledge it cites are recorded; an out-of-range value is dropped."""
    d = Daemon()
    answer = {"candidates": [
        {"values": {"threads": "16"}, "rationale": "16 threads match the two cores' hyperthreads (K1)",
         "cites": ["K1", "K9"]},
        {"values": {"threads": "999"}, "rationale": "far more", "cites": []}]}
    with fakellm.Proc(d.tmp, {"/v1/chat/completions": [{"content": json.dumps(answer)}]}) as f:
        d.write_config(f"[llm]\nlocal = {f.url}/v1\n")
        d.start()
        doc = os.path.join(d.tmp, "threads.md")
        with open(doc, "w") as fd:
            fd.write("# Thread pools\n\nThe app's threads setting works best at 16 threads on this kind of machine.\n")
        d.cli("learn", doc, check=0)
        conf = os.path.join(d.tmp, "app.conf")
        with open(conf, "w") as fd:
            fd.write("threads = 8\n")
        sp = os.path.join(d.tmp, "app.space")
        with open(sp, "w") as fd:
            fd.write(f"[space]\nname = app\n[knob threads]\nfile = {conf}\ntype = int\nmin = 4\nmax = 32\n"
                     "seeds = 6\n")
        r = d.cli("evolve", "run", "--space", sp, "--fitness", fitness(conf, "knob"), "--budget", "12s",
                  "--repeats", "6", "--seed", "5", timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr
        run_ = d.get("/v1/evolve/runs/1").json()
        llm = [t for t in run_["trials"] if t["proposer"] == "llm"]
        assert llm and llm[0]["n"] == 3, run_["trials"]
        t = llm[0]
        assert t["values"] == {"threads": "16"} and "16 threads" in t["rationale"], t
        assert [c["ref"] for c in t["cites"]] == ["K1"] and t["cites"][0]["source"].endswith("threads.md"), t
        assert t["decision"] == "accepted", t
        sent = [q for q in f.requests() if q["path"].endswith("/chat/completions")]
        assert sent, f.requests()
        body = json.dumps(sent[0]["body"])
        assert "threads" in body and "K1" in body and "Thread pools" in body or "16 threads" in body, body[:2000]
        batch = run_["llm_batches"][0]
        assert len(batch) == 2, batch
        assert batch[1]["dropped"] == ["threads: 999 is outside its range"], batch
    d.stop()


def main():
    d = Daemon().start()
    ok = d.get("/v1/evolve").status == 200
    d.stop()
    d.remove()
    if not ok:
        print("skip: this ippocd has no evolution cell (GET /v1/evolve)")
        sys.exit(77)
    run([test_accepts_better, test_noise_accepts_nothing, test_space_error, test_interrupted_by_restart,
         test_killed_daemon_restores, test_llm_proposals],
        only=sys.argv[1:])


if __name__ == "__main__":
    main()
