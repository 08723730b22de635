"""test_quiet_replay.py: bench/quiet's quiet-replay on a tiny generated
recording: 20 minutes at 1 s of two series with the same seeded Gaussian
noise (mean 50, sd 1); `b.step` steps up by 30 sd at minute 15, `a.calm`
never changes. Replayed through the real memory store and detect registry
with a 5-minute warm-up, it must report exactly one episode after the
warm-up, opened by b.step, and a.calm in none; the table says so. A
recording with a bad cell is refused with the line, column and series named.
Runs in a temporary directory; the binary comes from $QUIET_REPLAY."""
import json
import os
import random
import subprocess
import sys
import tempfile

BIN = os.environ.get("QUIET_REPLAY") or os.path.join(os.path.dirname(__file__), "..", "..", "build", "bench",
                                                     "quiet-replay")
T0 = 1796400000000  # ms, a whole second
STEP_AT = 15 * 60


def write_recording(path, bad_line=None):
    rng = random.Random(11)
    with open(path, "w") as f:
        f.write('ts_ms,a.calm,"b.step{dev=""x""}"\n')
        for i in range(20 * 60):
            a = 50 + rng.gauss(0, 1)
            b = 50 + rng.gauss(0, 1) + (30 if i >= STEP_AT else 0)
            if i == 100:  # a second where a.calm had no sample: an empty cell
                f.write(f"{T0 + i * 1000},,{b:.4f}\n")
            elif bad_line is not None and i == bad_line:
                f.write(f"{T0 + i * 1000},{a:.4f},oops\n")
            else:
                f.write(f"{T0 + i * 1000},{a:.4f},{b:.4f}\n")


def replay(path, episodes):
    return subprocess.run([BIN, "--warmup", "5m", "--name", "tiny", "--episodes", episodes, path],
                          capture_output=True, text=True, timeout=60)


def test_one_episode_for_the_step(tmp):
    rec, eps = os.path.join(tmp, "tiny.csv"), os.path.join(tmp, "ep.jsonl")
    write_recording(rec)
    r = replay(rec, eps)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in open(eps)]
    meta, episodes = lines[-1], lines[:-1]
    assert meta["series"] == 2 and meta["first_ts"] == T0 and meta["last_ts"] == T0 + (20 * 60 - 1) * 1000, meta
    counted = [e for e in episodes if e["counted"]]
    assert len(counted) == 1, episodes
    e = counted[0]
    assert e["first"] == 'b.step{dev="x"}', e
    # its run begins at the step; the episode opens once it has lasted [detect] `for` (at most 5 min here)
    first = e["members"][0]
    assert first["key"] == e["first"] and T0 + STEP_AT * 1000 <= first["since_ms"] <= T0 + (STEP_AT + 60) * 1000, e
    assert first["since_ms"] <= e["opened_ms"] <= T0 + (STEP_AT + 300) * 1000, e
    assert e["reason"], e
    for ep in episodes:
        assert all(m["key"] != "a.calm" for m in ep["members"]), ep
    # the table: 1 episode after the warm-up, over 15 minutes = 1/96 day -> 96 per machine-day
    row = [x for x in r.stdout.splitlines() if x.startswith("| tiny |")]
    assert row, r.stdout
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert cells[6] == "1" and cells[8] == "**96.0**", cells
    assert '| `b.step{dev="x"}` |' in r.stdout, r.stdout


def test_bad_cell_named(tmp):
    rec = os.path.join(tmp, "bad.csv")
    write_recording(rec, bad_line=7)
    r = replay(rec, os.path.join(tmp, "ep.jsonl"))
    assert r.returncode == 1, (r.returncode, r.stdout)
    assert "bad.csv: line 9, column 3 (b.step{dev=\"x\"}): 'oops' is not a number" in r.stderr, r.stderr
    r = subprocess.run([BIN, os.path.join(tmp, "missing.csv.xz")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "missing.csv.xz" in r.stderr, r.stderr


def main():
    for t in (test_one_episode_for_the_step, test_bad_cell_named):
        with tempfile.TemporaryDirectory() as tmp:
            t(tmp)
            print(f"ok {t.__name__}")


if __name__ == "__main__":
    sys.exit(main())
