"""test_anomaly_explain.py: every alarm of the real ippocd explains itself.

One daemon watches one Python child of this test (by pidfile), with
[detect] narrowed to that child's CPU and memory series so nothing else on
the machine can disturb it. Once its detectors have learned the child at
rest (blocked on its stdin: no CPU, flat memory), the test injects a real
fault: the child starts burning a CPU and, BURN_BEFORE_LEAK seconds later
and still burning, allocates and touches 400 MB. The test then stops it.

What must come out: one episode holding the CPU and the resident memory,
whose first mover is process.cpu_percent (it moved first), with the
memory's lag behind it; every anomaly, in the `anomaly` events, the episode
events, GET /v1/anomalies and `ippoc anomalies`, carries the value, what
was expected and its band (lo <= expected <= hi), how far the value left
the band (departure, above it: positive), the component that fired
(reason), since when (an onset after the fault began) and a summary line.

Assumptions about the detector (src/detect): it learns within LEARN_MAX
samples (its `expected` turns non-null); then a series that leaves a flat
level by a large factor scores at or above the default threshold within a
few samples, with a band that the new value lies above. Every wait polls
with a deadline; nothing sleeps to synchronise."""
import json
import os
import time

from harness import Daemon, run, start_script, stop_script, wait_for
from harness import anomalies_of as anomalies, events_of as events

LEARN_MAX = int(os.environ.get("IPPOC_TEST_LEARN_MAX", "150"))  # samples
BURN_BEFORE_LEAK = 8  # s: the CPU moves this long before the memory does
WINDOW_S = 25         # episode_window: the memory's onset joins the CPU's episode

CHILD = r"""import os, sys, time
pidfile, burn_before = sys.argv[1], float(sys.argv[2])
def burn(seconds):
    end, x = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        x += 1
burn(0.2)                                   # warm the interpreter's paths: no new pages later
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pidfile + ".tmp", pidfile)
hold = []
for line in sys.stdin:                      # blocks: no CPU, no allocation
    if line.strip() == "go":
        print("burning", flush=True)
        burn(burn_before)                   # the first mover: CPU
        for _ in range(10):                 # then, still burning, 10 x 40 MB, each page touched
            hold.append(b"\x5a" * (40 << 20))
            burn(0.4)
        print("leaked", flush=True)
        burn(600)                           # until the test kills it
"""

WATCHED = "process.cpu_percent process.rss_bytes process.vsize_bytes"
REASONS = {"spike", "dip", "level_up", "level_down", "seasonal", "flatline", "variance", "drift"}


def scoring(d):
    ms = anomalies(d, True)["metrics"]
    return len(ms) >= 3 and all(m["expected"] is not None for m in ms)


def check_explained(o, what, since_after_ms, now_ms, above=True):
    """o carries value, expected, band, departure, reason and since."""
    v, e, lo, hi, dep = o["value"], o["expected"], o["lo"], o["hi"], o["departure"]
    assert None not in (v, e, lo, hi, dep), (what, o)
    assert lo <= e <= hi, (what, "band", o)
    reason = o["reason"]
    assert reason in REASONS, (what, "component", o)
    assert since_after_ms <= o["since_ms"] <= now_ms, (what, "since", since_after_ms, o)
    if above:
        assert v > hi and dep > 0, (what, "above its band", o)
        half = max((hi - lo) / 2, 1e-9 * max(1.0, abs(lo), abs(hi)))  # detect_departure's floor
        assert abs(dep - (v - hi) / half) <= 1e-6 * max(1.0, abs(dep)), (what, "departure", o)
    else:
        assert dep == 0 or (v > hi) == (dep > 0), (what, "departure's sign", o)


def test_first_mover_explained():
    d = Daemon()
    child, pidfile = start_script(d.tmp, CHILD, "hog", BURN_BEFORE_LEAK)
    try:
        d.write_config(f"[sense]\nprocesses = pidfile:{pidfile}\n"
                       f"[detect]\ninclude = {WATCHED}\nfor = 0s\nkeep_firing_for = 40s\n"
                       f"episode_window = {WINDOW_S}s\n")
        d.start()
        wait_for(lambda: scoring(d), LEARN_MAX + 30, "the detectors to score")
        d.wait_ticks(2)
        before = anomalies(d)
        assert before["episodes"] == [], f"an episode before the fault: {before}"
        keys = {m["metric"]: m["key"] for m in anomalies(d, True)["metrics"]}
        cpu_key, rss_key = keys["process.cpu_percent"], keys["process.rss_bytes"]

        t_go = int(time.time() * 1000) - 1000  # the tick that sees it may be stamped up to 1 s earlier
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "burning"
        assert child.stdout.readline().strip() == "leaked"

        def episode():
            for ep in anomalies(d)["episodes"]:
                names = [m["metric"] for m in ep["members"]]
                if "process.rss_bytes" in names and "process.cpu_percent" in names:
                    return ep
            return None
        ep = wait_for(episode, 30, "one episode with the CPU and the resident memory")
        now = int(time.time() * 1000) + 1000
        stop_script(child)

        # the episode names its first mover: the CPU, which moved first
        assert ep["first"]["key"] == cpu_key, (cpu_key, ep)
        members = ep["members"]
        assert members[0]["key"] == cpu_key and members[0]["lag_ms"] == 0, members
        onsets = [m["since_ms"] for m in members]
        assert onsets == sorted(onsets), members
        rss = [m for m in members if m["key"] == rss_key][0]
        assert rss["lag_ms"] >= 1000 and rss["lag_ms"] == rss["since_ms"] - ep["first_onset_ms"], rss
        assert rss["lag_ms"] <= WINDOW_S * 1000 and rss["together"] is True, rss
        # each member explained at its peak; the first mover's explanation too
        for m in members:
            check_explained(m, m["key"], t_go, now, above=m["metric"] != "process.vsize_bytes")
        check_explained(ep["first"], "first", t_go, now)
        assert ep["first"]["summary"].startswith(cpu_key + ": "), ep["first"]
        assert " vs expected " in ep["first"]["summary"] and " since " in ep["first"]["summary"], ep["first"]
        assert rss["change"] is not None and rss["change"] > 1, rss  # 400 MB on a small interpreter

        # the events: the episode's opening names the CPU; each `anomaly` explains itself
        opened = wait_for(lambda: [e for e in events(d, "anomaly.episode") if e["payload"]["episode"] ==
                                   ep["episode"] and e["payload"]["state"] == "open"], 10, "the opening event")[0]
        first = opened["payload"]["first"]
        assert first["key"] == cpu_key and first["metric"] == "process.cpu_percent", opened
        check_explained(first, "opening's first", t_go, now)
        assert opened["payload"]["summary"].startswith(f"episode {ep['episode']} opened, first mover {cpu_key}: "), \
            opened
        evs = {e["payload"]["key"]: e["payload"] for e in events(d, "anomaly")}
        for key in (cpu_key, rss_key):
            p = evs.get(key)
            assert p and p["episode"] == ep["episode"], (key, evs)
            check_explained(p, key, t_go, now)
            assert p["summary"].startswith(key + ": ") and f" {p['reason']} since " in p["summary"], p
        assert evs[rss_key]["since_ms"] > evs[cpu_key]["since_ms"], evs

        # the API's anomalous series (while keep_firing_for holds them), and the CLI
        an = anomalies(d)
        rows = {m["key"]: m for m in an["anomalies"]}
        assert cpu_key in rows and rss_key in rows, an
        for key in (cpu_key, rss_key):
            r = rows[key]
            assert r["peak_lo"] <= r["peak_expected"] <= r["peak_hi"] < r["peak_value"], r
            assert r["peak_departure"] > 0 and r["peak_reason"] in REASONS, r
            assert r["summary"].startswith(key + ": "), r
            assert "lo" in r and "hi" in r and "departure" in r, r
        js = json.loads(d.cli("--json", "anomalies", check=0).stdout)
        assert [e["first"]["key"] for e in js["episodes"] if e["episode"] == ep["episode"]] == [cpu_key], js
        out = d.cli("anomalies", check=0).stdout
        for h in ("COMPONENT", "EXPECTED", "BAND", "DEPARTURE", "SINCE", "FIRST MOVER", "METRICS (IN ONSET ORDER)"):
            assert h in out, (h, out)
        row = [line for line in out.splitlines() if line.lstrip().startswith(f"{ep['episode']} ")]
        assert row and "process.cpu_percent" in row[0], out
        first_col = row[0].index("process.cpu_percent")
        assert "process.rss_bytes" not in row[0][:first_col], out  # the CPU is named first
        cpu_row = [line for line in out.splitlines() if line.startswith("process.cpu_percent")]
        assert cpu_row and " .. " in cpu_row[0] and " ago" in cpu_row[0], out
        assert any(r in cpu_row[0] for r in REASONS), out
        print(f"episode {ep['episode']}: first {ep['first']['summary']}; "
              f"memory {rss['lag_ms'] / 1000:.0f}s later: {evs[rss_key]['summary']}", flush=True)
        assert d.stop() == 0
    finally:
        stop_script(child)


run([test_first_mover_explained])
