"""test_anomaly.py: anomaly detection in the real ippocd.

Two daemons run side by side for the same time, each watching one Python
child of this test (by pidfile) with [detect] narrowed to that child's
series, so whatever else runs on the machine cannot disturb them. After the
detectors have learned what normal is, one child allocates and touches
400 MB over four seconds (the hog) while the other keeps blocking on its
stdin (idle). The hog's daemon must raise an anomaly episode whose members
include its resident memory, fire the anomalous() rule (an alert), and show
it in /v1/anomalies, `ippoc anomalies` and /metrics (its score there only
while it is anomalous); the idle daemon must raise nothing. Then: a restart keeps what the detectors learned, SIGHUP
keeps it too, a bad [detect] is refused with file:line, and bad query
parameters get JSON 400s.

Assumptions about the detector (src/detect): while it learns it says so
(its `expected` is null, in /v1/anomalies?all=1), and it is done within
LEARN_MAX samples; then a flat series that jumps to 10-30 times its level
scores at or above the default threshold at the jump (once is enough: keep_firing_for keeps
it anomalous). Every wait polls with a deadline; nothing sleeps to
synchronise."""
import json
import os
import re
import subprocess
import time

from harness import IPPOCD, SLOW, Daemon, run, start_script, stop_script, wait_for
from harness import anomalies_of as anomalies, events_of as events

LEARN_MAX = int(os.environ.get("IPPOC_TEST_LEARN_MAX", "150"))  # samples

CHILD = r"""import os, sys, time
pidfile = sys.argv[1]
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pidfile + ".tmp", pidfile)
hold = []
for line in sys.stdin:                      # blocks: no CPU, no allocation
    if line.strip() == "go":
        for _ in range(10):                 # 10 x 40 MB, each page touched
            hold.append(b"\x5a" * (40 << 20))
            time.sleep(0.4)
        print("done", flush=True)
"""

WATCHED = "process.rss_bytes process.vsize_bytes process.cpu_percent process.minor_faults_per_second"


def config(pidfile, threshold=None, extra=""):
    return (f"[sense]\nprocesses = pidfile:{pidfile}\n"
            f"[detect]\ninclude = {WATCHED}\nfor = 0s\nkeep_firing_for = 20s\nepisode_window = 10s\nsave_interval = 10s\n"
            + (f"threshold = {threshold}\n" if threshold else "") + extra +
            "[heal]\nrule = if anomalous(process.rss_bytes) then alert\n")


def samples(d, metric="process.rss_bytes"):
    ms = [m for m in anomalies(d, True).get("metrics", []) if m["metric"] == metric]
    return ms[0]["samples"] if ms else 0


def scoring(d):
    """Every watched series' detector has learned enough to score."""
    ms = anomalies(d, True)["metrics"]
    return len(ms) >= 4 and all(m["expected"] is not None for m in ms)


def prom_if(d, text):
    """/metrics when it contains text, else None."""
    prom = d.get("/metrics").body.decode()
    return prom if text in prom else None


def check_prom_consistent(prom):
    """ippoc_anomalous_series counts the ippoc_anomaly_score samples (one
    snapshot); returns the count."""
    m = re.search(r"^ippoc_anomalous_series (\d+)$", prom, re.M)
    assert m, prom[-2000:]
    scores = [l for l in prom.splitlines() if l.startswith("ippoc_anomaly_score{")]
    assert len(scores) == int(m.group(1)), (m.group(0), scores)
    return len(scores)


def test_hog_and_idle():
    hd, idl = Daemon(), Daemon()
    hog, hog_pid = start_script(hd.tmp, CHILD, "hog")
    idle, idle_pid = start_script(idl.tmp, CHILD, "idle")
    try:
        hd.write_config(config(hog_pid))
        idl.write_config(config(idle_pid))
        hd.start(wait=False)
        idl.start(wait=False)
        hd.wait_ready()
        idl.wait_ready()
        t_start = time.monotonic()
        # warm-up: the detectors learn the children at rest
        wait_for(lambda: scoring(hd) and scoring(idl), LEARN_MAX + 30, "the detectors to score")
        hd.wait_ticks(2)
        a = anomalies(hd, True)
        assert a["enabled"] is True and 0 < a["threshold"] <= 1, a
        keys = {m["key"] for m in a["metrics"]}
        assert len(keys) >= 4 and all(k.startswith("process.") for k in keys), keys  # include narrowed it
        before = anomalies(hd)
        assert before["episodes"] == [], f"the hog's daemon saw an episode before the hog ran: {before}"

        hog.stdin.write("go\n")
        hog.stdin.flush()
        assert hog.stdout.readline().strip() == "done"
        t_hog = time.monotonic()

        def hog_episode():
            for ep in anomalies(hd)["episodes"]:
                names = [m["metric"] for m in ep["members"]]
                if "process.rss_bytes" in names:
                    return ep
            return None
        ep = wait_for(hog_episode, 30, "an anomaly episode with process.rss_bytes")
        # Prometheus: a score only for the series anomalous now (keep_firing_for
        # included), while it is; and how many there are
        prom = wait_for(lambda: prom_if(hd, 'ippoc_anomaly_score{metric="process.rss_bytes"'), 10,
                        "process.rss_bytes' score in /metrics")
        assert "# TYPE ippoc_anomaly_score gauge" in prom, prom[-2000:]
        line = [l for l in prom.splitlines() if l.startswith('ippoc_anomaly_score{metric="process.rss_bytes"')]
        assert line and f'name="pidfile:{hog_pid}"' in line[0], line
        assert check_prom_consistent(prom) >= 1
        idle_prom = idl.get("/metrics").body.decode()
        assert "\nippoc_anomalous_series 0\n" in idle_prom and "ippoc_anomaly_score" not in idle_prom, \
            idle_prom[-2000:]
        thr = a["threshold"]
        assert ep["members"][0]["order"] == 1 and ep["peak"] >= thr, ep
        assert all(m["peak"] >= thr and m["reason"] != "none" for m in ep["members"]), ep
        rss = [m for m in ep["members"] if m["metric"] == "process.rss_bytes"][0]
        assert rss["labels"]["name"] == f"pidfile:{hog_pid}", rss
        # the events: one per anomalous metric, the episode's opening
        ev = wait_for(lambda: [e for e in events(hd, "anomaly") if e["payload"]["metric"] == "process.rss_bytes"],
                      10, "an anomaly event for process.rss_bytes")[0]
        assert ev["source"] == "detect" and ev["severity"] == "warning", ev
        assert ev["payload"]["score"] >= thr and ev["payload"]["episode"] == ep["episode"], ev
        opened = [e for e in events(hd, "anomaly.episode") if e["payload"]["episode"] == ep["episode"]]
        assert opened and opened[0]["payload"]["state"] == "open", opened
        # the rule: if anomalous(process.rss_bytes) then alert
        alert = wait_for(lambda: [e for e in events(hd, "alert") if "anomalous(process.rss_bytes)" in
                                  e["payload"].get("what", "")], 15, "the anomalous() rule's alert")[0]
        assert alert["severity"] == "critical", alert

        # the CLI and Prometheus
        out = hd.cli("anomalies", check=0).stdout
        assert "episode so far" in out and "EPISODE" in out and "process.rss_bytes" in out, out
        out = hd.cli("anomalies", "--all", check=0).stdout
        assert "SAMPLES" in out and "process.minor_faults_per_second" in out, out
        js = json.loads(hd.cli("--json", "anomalies", check=0).stdout)
        assert js["episodes"][0]["members"], js
        assert hd.cli("anomalies", "--bogus", check=2).stderr.startswith("ippoc: anomalies: unknown option")
        check_prom_consistent(hd.get("/metrics").body.decode())

        # the idle daemon ran as long as the hog's (they started together), and a
        # few ticks more: nothing at all
        idl.wait_ticks(3)
        quiet = anomalies(idl)
        assert quiet["episodes"] == [] and quiet["anomalies"] == [], quiet
        assert events(idl, "anomaly*") == [] and events(idl, "alert") == [], events(idl, "anomaly*")
        print(f"{time.monotonic() - t_start:.0f}s run; hog detected {time.monotonic() - t_hog:.1f}s after it "
              f"finished; "
              f"episode {ep['episode']}: {[m['metric'] for m in ep['members']]}", flush=True)

        # a clean restart keeps what the idle daemon's detectors learned
        learned = {m["key"]: m["samples"] for m in anomalies(idl, True)["metrics"]}
        assert idl.stop() == 0
        idl.start()
        wait_for(lambda: anomalies(idl, True)["metrics"], 10, "the detectors after the restart")
        after = {m["key"]: m["samples"] for m in anomalies(idl, True)["metrics"]}
        for k, n in learned.items():
            assert after.get(k, 0) >= n, f"{k}: {n} samples learned before the restart, {after.get(k)} after"
        assert "detector(s) restored from the store" in idl.log_text()

        # SIGHUP with new settings keeps them too; a bad [detect] is refused
        n0 = samples(idl)
        idl.write_config(config(idle_pid, threshold="0.9"))
        idl.signal(1)
        wait_for(lambda: anomalies(idl)["threshold"] == 0.9, 10, "the reloaded threshold")
        assert samples(idl) >= n0
        idl.write_config(config(idle_pid, threshold="7"))
        idl.signal(1)
        rej = wait_for(lambda: events(idl, "config.rejected"), 10, "config.rejected")[0]
        assert "ippoc.conf:9: threshold: '7'" in rej["payload"]["reason"], rej
        assert anomalies(idl)["threshold"] == 0.9 and samples(idl) >= n0
        assert idl.stop() == 0 and hd.stop() == 0
    finally:
        stop_script(hog)
        stop_script(idle)


def test_bad_config():
    d = Daemon(config="[detect]\nenabled = yes\nthreshold = 1.5\n")
    r = subprocess.run([IPPOCD, "--config", d.config_path, "--state-dir", d.state_dir, "--check-config"],
                       capture_output=True, text=True, timeout=20 * SLOW)
    assert r.returncode == 2, r
    assert f"{d.config_path}:3: threshold: '1.5' is not a score above 0 and at most 1" in r.stderr, r.stderr
    with open(os.path.join(d.conf_dir, "conf.d", "50-detect.conf"), "w") as f:
        f.write("[detect]\n\ninclud = memory.*\n")
    d.write_config("")
    r = subprocess.run([IPPOCD, "--config", d.config_path, "--state-dir", d.state_dir, "--check-config"],
                       capture_output=True, text=True, timeout=20 * SLOW)
    assert r.returncode == 2 and "50-detect.conf:3: unknown key 'includ' in [detect]" in r.stderr, r.stderr
    os.unlink(os.path.join(d.conf_dir, "conf.d", "50-detect.conf"))
    d.write_config("[heal]\nrule = if anomalous(memory.used_bytes for 2m then alert\n")
    r = subprocess.run([IPPOCD, "--config", d.config_path, "--state-dir", d.state_dir, "--check-config"],
                       capture_output=True, text=True, timeout=20 * SLOW)
    assert r.returncode == 2 and "ippoc.conf:2:32: expected ')'" in r.stderr, r.stderr


def test_api_errors_and_off():
    d = Daemon(config="[detect]\nenabled = no\n").start()
    for q, want in (("?all=maybe", "all: 'maybe'"), ("?bogus=1", "bogus"), ("?all=1&all=0", "all")):
        r = d.get("/v1/anomalies" + q)
        assert r.status == 400, (q, r.status, r.body)
        err = r.json()["error"]
        assert err["code"] == "bad_request" and want in err["message"], (q, err)
    r = d.get("/v1/anomalies", method="POST")
    assert r.status == 405 and r.json()["error"]["code"] == "method_not_allowed", r.body
    a = anomalies(d, True)
    assert a["enabled"] is False and a["watched"] == 0 and a["metrics"] == [], a
    assert "anomaly detection is off" in d.cli("anomalies", check=0).stdout
    assert "ippoc_anomaly_score" not in d.get("/metrics").body.decode()
    # turned on by a reload: everything is watched by default
    d.write_config("[detect]\nenabled = yes\n")
    d.signal(1)
    wait_for(lambda: anomalies(d)["watched"] > 50, 15, "detectors for every series")
    prom = d.get("/metrics").body.decode()
    assert "# TYPE ippoc_anomalous_series gauge" in prom, prom[-2000:]
    check_prom_consistent(prom)  # scores only for what is anomalous, not one per watched series
    assert d.stop() == 0


run([test_bad_config, test_api_errors_and_off, test_hog_and_idle])
