"""test_nab_loco.py: bench/nab/loco.py (leave-one-category-out NAB scores) on
a tiny corpus worked out by hand; its one-pass fold sweep against a plain
per-fold sweep on random scores; tune.py's refusal of a bad grid and its
full and one-at-a-time grids; synth.py's corpus (same seed, same bytes; its
windows valid and past probation); and
`ippoc detect --set` / `--tunables` (bad input is exit 2 with the reason).

The corpus: two categories, one file each, 20 rows every 5 minutes from
2014-04-10 00:00:00; probation = floor(0.15 * 20) = 3 rows. One window per
file, rows 10..13 (W = 4, R = 13). Standard profile: A_TP 1, A_FP 0.11,
A_FN 1. A detection at row 10 is worth s(-(13 - 10 + 1)/4) / s(-1) = 1; a
detection at row 5 (before any window) costs -A_FP = -0.11. Every other
row scores 0.0 (threshold 0.0 fires on every row: never the best).

Setting "x":  A/a.csv: row 10 = 0.9 (TP), row 5 = 0.6 (FP)
              B/b.csv: row 10 = 0.6 (TP), row 5 = 0.9 (FP)
  sweep of both: inf -2; 0.9: A hit +2, B FP -0.11 -> -0.11;
                 0.6: B hit +2, A FP -0.11 -> 1.78   (best)
  in-sample: thr 0.6, raw 1.78, 100 (1.78 + 2) / 4 = 94.5
  own threshold per category: A at 0.9 raw 1 -> 100; B at 0.6 raw 0.89 -> 94.5
  fold A held out, trained on B: inf -1; 0.9 -1.11; 0.6 0.89 -> thr 0.6;
      A at 0.6: +1 - 0.11 = 0.89 -> 100 (0.89 + 1) / 2 = 94.5
  fold B held out, trained on A: inf -1; 0.9 +1; 0.6 0.89 -> thr 0.9;
      B at 0.9: FP -0.11, window missed -1 -> -1.11 -> -5.5
  LOCO: raw 0.89 - 1.11 = -0.22 -> 100 (-0.22 + 2) / 4 = 44.5

Setting "y" (given after x): A/a.csv row 10 = 0.9; B/b.csv row 10 = 0.95;
no false positives.
  tuned (x, y): in-sample y at 0.9: raw 2 -> 100.
  fold A held out: on B, y reaches 1 at 0.95 (x 0.89) -> y, thr 0.95;
      A(y) at 0.95: 0.9 misses -> raw -1 -> 0.
  fold B held out: on A, x and y both reach 1 at 0.9: the first given (x);
      B(x) at 0.9: -1.11.
  LOCO: raw -2.11 -> 100 (-0.11) / 4 = -2.75.
"""
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("IPPOC_SRC", os.path.join(HERE, "..", ".."))
IPPOC = os.environ.get("IPPOC", os.path.join(SRC, "build", "src", "cli", "ippoc"))
sys.path.insert(0, os.path.join(SRC, "bench", "nab"))
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
import loco  # noqa: E402
import score  # noqa: E402
import benchtest  # noqa: E402 (beside this file)

EPS = 1e-9
SETTINGS = {
    "x": {"A/a.csv": {10: 0.9, 5: 0.6}, "B/b.csv": {10: 0.6, 5: 0.9}},
    "y": {"A/a.csv": {10: 0.9}, "B/b.csv": {10: 0.95}},
}


def close(a, b):
    assert abs(a - b) < EPS, (a, b)


def ts(i):
    return f"2014-04-10 {i * 5 // 60:02d}:{i * 5 % 60:02d}:00"


def write_corpus(tmp, published_names=False):
    """res/SETTING/CAT/FILE.csv (or CAT/det_FILE.csv) and labels.json."""
    for name, files in SETTINGS.items():
        for key, rows in files.items():
            cat, fname = key.split("/")
            d = os.path.join(tmp, "res", name, cat)
            os.makedirs(d, exist_ok=True)
            if published_names:
                fname = "det_" + fname
            with open(os.path.join(d, fname), "w") as f:
                f.write("timestamp,value,anomaly_score\n")
                for i in range(20):
                    f.write(f"{ts(i)},{i},{rows.get(i, 0.0):.6f}\n")
    labels = {k: [[ts(10) + ".000000", ts(13) + ".000000"]] for k in SETTINGS["x"]}
    with open(os.path.join(tmp, "labels.json"), "w") as f:
        json.dump(labels, f)


def run_loco(tmp, *args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = loco.main(["--labels", os.path.join(tmp, "labels.json"), "--json", os.path.join(tmp, "o.json"),
                        *args])
    return rc, out.getvalue()


def test_loco_by_hand():
    tmp = tempfile.mkdtemp(prefix="nab-loco-test.")
    try:
        write_corpus(tmp)
        rc, text = run_loco(tmp, "x=" + os.path.join(tmp, "res", "x"))
        assert rc == 0, text
        r = json.load(open(os.path.join(tmp, "o.json")))["x"]["standard"]
        ins = r["in_sample"]
        assert ins["threshold"] == 0.6, ins
        close(ins["raw"], 1.78)
        close(ins["score"], 94.5)
        per = r["per_category"]
        assert per["A"]["threshold"] == 0.9 and per["B"]["threshold"] == 0.6, per
        close(per["A"]["score"], 100.0)
        close(per["B"]["score"], 94.5)
        f = r["loco"]["folds"]
        assert f["A"]["threshold"] == 0.6 and f["B"]["threshold"] == 0.9, f
        close(f["A"]["raw"], 0.89)
        close(f["A"]["score"], 94.5)
        close(f["B"]["raw"], -1.11)
        close(f["B"]["score"], -5.5)
        assert f["B"]["counts"] == {"windows": 1, "detected": 0, "missed": 1, "fp": 1}, f["B"]
        close(r["loco"]["raw"], -0.22)
        close(r["loco"]["score"], 44.5)
        assert "| x | **44.5** | 94.5 |" in text, text
        assert "| x | 94.5 / 100.0 | -5.5 / 94.5 |" in text, text
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_tune_chooses_inside_folds():
    tmp = tempfile.mkdtemp(prefix="nab-loco-test.")
    try:
        write_corpus(tmp)
        # the setting names hold '=': the directory is what follows the '=' that names one
        rc, text = run_loco(tmp, "--tune", "det", "det:k=x=" + os.path.join(tmp, "res", "x"),
                            "det:k=y=" + os.path.join(tmp, "res", "y"))
        assert rc == 0, text
        r = json.load(open(os.path.join(tmp, "o.json")))["det"]["standard"]
        assert r["in_sample"]["setting"] == "k=y" and r["in_sample"]["threshold"] == 0.9, r["in_sample"]
        close(r["in_sample"]["score"], 100.0)
        f = r["loco"]["folds"]
        assert (f["A"]["setting"], f["A"]["threshold"]) == ("k=y", 0.95), f["A"]
        close(f["A"]["raw"], -1.0)
        assert (f["B"]["setting"], f["B"]["threshold"]) == ("k=x", 0.9), f["B"]  # a tie: the first given
        close(f["B"]["raw"], -1.11)
        close(r["loco"]["score"], -2.75)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_published_names_and_errors():
    tmp = tempfile.mkdtemp(prefix="nab-loco-test.")
    try:
        write_corpus(tmp, published_names=True)
        rc, text = run_loco(tmp, "x=" + os.path.join(tmp, "res", "x"))
        assert rc == 0, text
        close(json.load(open(os.path.join(tmp, "o.json")))["x"]["standard"]["loco"]["score"], 44.5)
        # a prefix with '_' is another file's name, not a detector's: no match
        os.rename(os.path.join(tmp, "res", "x", "A", "det_a.csv"), os.path.join(tmp, "res", "x", "A", "d_x_a.csv"))
        rc, text = run_loco(tmp, "x=" + os.path.join(tmp, "res", "x"))
        assert rc == 2 and "no result for A/a.csv" in text, text
        rc, text = run_loco(tmp, "--tune", "det", "x=" + os.path.join(tmp, "res", "y"))
        assert rc == 2 and "--tune det: no det:SETTING=DIR given" in text, text
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_fold_sweep_matches_plain_sweeps():
    """Setting.sweep's one pass against score.sweep run on each training set
    and each category alone, on random scores with ties."""
    rng = random.Random(11)
    times = [float(i * 300) for i in range(60)]
    for trial in range(20):
        files = {}
        for c in range(4):
            for k in range(2):
                key = f"c{c}/f{k}.csv"
                wins = [(20, 27), (40, 44)] if (c + k + trial) % 3 else []
                scores = [round(rng.random(), 1) for _ in times]
                files[key] = score.file_points(len(times), wins, scores, key)
        cats = sorted({loco.category(k) for k in files})
        st = loco.Setting(files, cats)
        for pname in score.PROFILE_ORDER:
            prof = score.PROFILES[pname]
            b_all, b_cat, b_train = st.sweep(prof)

            def plain(fs):
                pts = sorted((p for pts, _ in fs.values() for p in pts), key=lambda p: p[0], reverse=True)
                return score.best_threshold(score.sweep(pts, loco.nwin_of(fs), prof))
            t, raw = plain(files)
            assert b_all[0] == t, (trial, pname, b_all, t)
            close(b_all[1], raw)
            for i, c in enumerate(cats):
                t, raw = plain(loco.subset(files, {c}, False))
                assert b_train[i][0] == t, (trial, pname, c, b_train[i], t)
                close(b_train[i][1], raw)
                t, raw = plain(loco.subset(files, {c}, True))
                assert b_cat[i][0] == t, (trial, pname, c, b_cat[i], t)
                close(b_cat[i][1], raw)


def detect(*args):
    return subprocess.run([IPPOC, "detect", *args], capture_output=True, text=True, timeout=60)


def test_detect_set_and_tunables():
    r = detect("--tunables")
    assert r.returncode == 0, r.stderr
    tun = dict(line.split("=", 1) for line in r.stdout.split())
    assert "warm" in tun, r.stdout
    r = detect("--set", "warm=7", "--tunables")
    assert r.returncode == 0 and "warm=7\n" in r.stdout, (r.returncode, r.stdout, r.stderr)
    for args, why in ((["--set", "nosuch=1"], "unknown tunable 'nosuch'"),
                      (["--set", "warm=0"], "outside"),
                      (["--set", "warm=abc"], "'abc' is not a finite number"),
                      (["--set", "warm=nan"], "'nan' is not a finite number"),
                      (["--set", "warm"], "expected NAME=VALUE"),
                      (["--set", "=5"], "expected NAME=VALUE"),
                      (["--tunables", "x.csv"], "reads no file")):
        r = detect(*args, "--tunables") if args[0] == "--set" else detect(*args)
        assert r.returncode == 2 and why in r.stderr and not r.stdout, (args, r.returncode, r.stdout, r.stderr)
    # a tunable set takes effect: scoring starts after `warm` samples
    rows = "".join(f"{1400000000 + 60 * i},{10 + (i % 7)}\n" for i in range(300))
    default = subprocess.run([IPPOC, "detect", "-"], input=rows, capture_output=True, text=True, timeout=60)
    early = subprocess.run([IPPOC, "detect", "--set", "warm=5", "-"], input=rows, capture_output=True,
                           text=True, timeout=60)
    assert default.returncode == 0 and early.returncode == 0, (default.stderr, early.stderr)
    first = [float(line.split(",")[2]) for line in default.stdout.split()[1:31]]
    first_early = [float(line.split(",")[2]) for line in early.stdout.split()[1:31]]
    assert max(first) == 0.0 and max(first_early) > 0.0, (first, first_early)


def test_tune_refuses_a_bad_grid():
    tmp = tempfile.mkdtemp(prefix="nab-tune-test.")
    try:
        for text, why in (("warm 50 100\nnosuch 1 2\n", "unknown tunable 'nosuch'"),
                          ("warm 50 0\n", "outside"),
                          ("warm fifty\n", "'fifty' is not a number"),
                          ("warm\n", "has no values")):
            grid = os.path.join(tmp, "grid.txt")
            with open(grid, "w") as f:
                f.write(text)
            r = subprocess.run([sys.executable, os.path.join(SRC, "bench", "nab", "tune.py"), "--grid", grid,
                                "--ippoc", IPPOC, "--out", os.path.join(tmp, "out")],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 2 and why in r.stderr, (text, r.returncode, r.stderr)
            assert not os.path.exists(os.path.join(tmp, "out")), text  # nothing ran
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_tune_modes():
    import tune
    grid = [("warm", ["50", "100", "200"]), ("hold", ["10", "100"])]
    defaults = {"warm": "100", "hold": "100", "fire": "0.6"}
    mode, full, cands = tune.settings(grid, defaults, "auto", 100)
    # warm: 50, 200 besides its default; hold: 10 besides its default -> (2 + 1) x (1 + 1)
    assert (mode, full, len(cands)) == ("full", 6, 6), (mode, full, cands)
    assert cands[0] == {} and {"warm": "50", "hold": "10"} in cands, cands
    mode, full, cands = tune.settings(grid, defaults, "auto", 5)
    assert (mode, full) == ("one", 6) and cands == [{}, {"warm": "50"}, {"warm": "200"}, {"hold": "10"}], cands
    assert [tune.setting_name(c) for c in cands] == ["default", "warm=50", "warm=200", "hold=10"]


def test_synth_corpus():
    """synth.py: the same bytes from the same seed; windows in order, apart,
    past NAB's probation, as score.py reads them; noise-only files without."""
    import synth
    tmp = tempfile.mkdtemp(prefix="nab-synth-test.")
    try:
        a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        na = synth.generate(a, 11)
        assert synth.generate(b, 11) == na and na[0] == 25 and na[2] > 20, na
        for root, _, names in os.walk(a):
            for n in names:
                pa = os.path.join(root, n)
                with open(pa, "rb") as fa, open(os.path.join(b, os.path.relpath(pa, a)), "rb") as fb:
                    assert fa.read() == fb.read(), pa
        labels = json.load(open(os.path.join(a, "labels", "combined_windows.json")))
        assert len(labels) == 25
        for key, wins in labels.items():
            path = os.path.join(a, "data", key)
            with open(path) as f:
                times = [score.parse_time(line.split(",")[0]) for line in f.readlines()[1:]]
            rows, inexact = score.window_rows(times, [(score.parse_time(x), score.parse_time(y)) for x, y in wins])
            assert inexact == 0 and len(rows) == len(wins), (key, wins)
            assert all(lo > score.probation_rows(len(times)) for lo, _ in rows), (key, rows)
            assert (not wins) == key.startswith("synthNoAnomaly/"), key
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    return benchtest.run((test_loco_by_hand, test_tune_chooses_inside_folds, test_published_names_and_errors,
              test_fold_sweep_matches_plain_sweeps, test_detect_set_and_tunables, test_tune_refuses_a_bad_grid,
              test_tune_modes, test_synth_corpus))


if __name__ == "__main__":
    sys.exit(main())
