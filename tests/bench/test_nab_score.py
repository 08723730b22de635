"""test_nab_score.py: bench/nab/score.py, the NAB scorer, on a tiny corpus
whose scores are worked out by hand below, through its functions and through
its command line (files, labels, JSON).

The corpus: one file of 20 rows, one row every 5 minutes from
2014-04-10 00:00:00 (row i at 00:00 + 5i minutes).

  probation = min(floor(0.15 * 20), 750) = 3: rows 0, 1, 2 are not scored.
  window 0 = rows 1..2   (W=2, R=2): all in probation, does not count, but it
                         is still "the window before" rows 3..7;
  window 1 = rows 8..11  (W=4, R=11);
  window 2 = rows 17..18 (W=2, R=18).
  windows that count: 2.

  anomaly scores: row 0 0.99 (in probation: ignored), row 3 0.4, row 6 0.5,
  row 9 0.8, row 10 0.9, row 13 0.7, row 18 0.6, every other row 0.0.

s(y) = 2 / (1 + e^(5y)) - 1 (and -1 for y > 3), by hand to 9 decimals:
  s(-1)    = 2 / (1 + e^-5)    - 1 = 2 / 1.006737947 - 1 =  0.986614298
  s(-0.75) = 2 / (1 + e^-3.75) - 1 = 2 / 1.023517746 - 1 =  0.954045260
  s(-0.5)  = 2 / (1 + e^-2.5)  - 1 = 2 / 1.082084999 - 1 =  0.848283640
  s(-0.25) = 2 / (1 + e^-1.25) - 1 = 2 / 1.286504797 - 1 =  0.554599722
  s(1/3)   = 2 / (1 + e^1.667) - 1 = 2 / 6.294494        - 1 = -0.682261790
  s(2/3)   = 2 / (1 + e^3.333) - 1 = 2 / 29.031643       - 1 = -0.931109609
  s(1)     = 2 / (1 + e^5)     - 1 = 2 / 149.413159      - 1 = -0.986614298
  s(4/3)   = 2 / (1 + e^6.667) - 1 = 2 / 787.142         - 1 = -0.997457967
  s(5/3)   = 2 / (1 + e^8.333) - 1 = 2 / 4160.26         - 1 = -0.999519377
  s(2)     = 2 / (1 + e^10)    - 1 = 2 / 22027.47        - 1 = -0.999909204
  s(3)     = 2 / (1 + e^15)    - 1 = 2 / 3269018.4       - 1 = -0.999999388
  s(4)     = -1 (y > 3)

Worth of each scored row if detected (TP: s(-(R-i+1)/W)/s(-1) times A_TP;
FP: s(|Rprev-i|/(Wprev-1)) times A_FP, Rprev/Wprev the last window ended):
  row 3  FP after w0: y = |2-3|/1 = 1      -> s(1)    = -0.986614298
  row 4  FP: y = 2                          -> s(2)    = -0.999909204
  row 5  FP: y = 3 (not > 3)                -> s(3)    = -0.999999388
  row 6  FP: y = 4 > 3                      -> -1
  row 7  FP: y = 5                          -> -1
  row 8  TP w1: -(11-8+1)/4 = -1            -> 1
  row 9  TP w1: -(11-9+1)/4 = -0.75         -> 0.954045260 / 0.986614298 = 0.966989088
  row 10 TP w1: -(11-10+1)/4 = -0.5         -> 0.848283640 / 0.986614298 = 0.859792567
  row 11 TP w1: -1/4                        -> 0.554599722 / 0.986614298 = 0.562124149
  row 12 FP after w1: y = |11-12|/3 = 1/3   -> -0.682261790
  row 13 FP: y = 2/3                        -> -0.931109609
  row 14 FP: y = 1                          -> -0.986614298
  row 15 FP: y = 4/3                        -> -0.997457967
  row 16 FP: y = 5/3                        -> -0.999519377
  row 17 TP w2: -(18-17+1)/2 = -1           -> 1
  row 18 TP w2: -(18-18+1)/2 = -0.5         -> 0.859792567
  row 19 FP after w2: y = |18-19|/1 = 1     -> -0.986614298

Standard profile (A_TP 1, A_FP 0.11, A_FN 1), threshold from high to low:
  none:  both windows missed                          -2
  0.9:   row 10, w1 = 0.859792567: -1 + 0.859792567 = -0.140207433
  0.8:   row 9 is better, w1 = 0.966989088            = -0.033010912
  0.7:   row 13, 0.11 * -0.931109609 = -0.102422057   = -0.135432969
  0.6:   row 18, w2 -1 -> 0.859792567 (+1.859792567)  =  1.724359598  <- best
  0.5:   row 6, 0.11 * -1                             =  1.614359598
  0.4:   row 3, 0.11 * -0.986614298 = -0.108527573    =  1.505832025
  0.0:   FP rows 4 5 7 12 14 15 16 19 sum to -7.652376323, times 0.11 =
         -0.841761396; w1 0.966989088 -> 1 (+0.033010912); w2 0.859792567
         -> 1 (+0.140207433)                          =  0.837288974
  normalised: 100 * (1.724359598 + 2) / (2 + 2) = 93.108990
  at 0.6: windows detected 2, missed 0, FP rows 1 (row 13).

reward_low_FP_rate (1, 0.22, 1): 0.7 costs 0.22 * -0.931109609 = -0.204844114,
  so at 0.6: -1 + 0.966989088 - 0.204844114 + 1 + 0.859792567 = 1.621937541
  (0.5: 1.401937541; 0.8: -0.033010912): best 0.6,
  normalised 100 * (1.621937541 + 2) / 4 = 90.548439.
reward_low_FN_rate (1, 0.11, 2): at 0.6 both windows are found, so the raw is
  the standard one, 1.724359598 (0.8: -2 + 0.966989088 = -1.033010912);
  normalised 100 * (1.724359598 + 4) / (2 + 4) = 95.405993.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("IPPOC_SRC", os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "bench", "nab"))
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
import score  # noqa: E402
import benchtest  # noqa: E402 (beside this file)

SCORES = [0.0] * 20
for _i, _s in ((0, 0.99), (3, 0.4), (6, 0.5), (9, 0.8), (10, 0.9), (13, 0.7), (18, 0.6)):
    SCORES[_i] = _s
WINS = [(1, 2), (8, 11), (17, 18)]
EPS = 1e-6


def close(a, b):
    assert abs(a - b) < EPS, (a, b)


def test_sigmoid_and_probation():
    close(score.scaled_sigmoid(-1), 0.986614298)
    close(score.scaled_sigmoid(-0.75), 0.954045260)
    close(score.scaled_sigmoid(2 / 3), -0.931109609)
    close(score.scaled_sigmoid(3), -0.999999388)
    assert score.scaled_sigmoid(3.0001) == -1.0
    assert score.scaled_sigmoid(0) == 0.0
    assert score.probation_rows(20) == 3
    assert score.probation_rows(4999) == 749      # floor(749.85)
    assert score.probation_rows(5000) == 750
    assert score.probation_rows(22695) == 750     # capped
    assert score.probation_rows(4032) == 604      # floor(604.8)


def test_points_by_hand():
    pts, counted = score.file_points(20, WINS, SCORES, "f")
    assert counted == ["f|1", "f|2"]              # window 0 is all in probation
    assert len(pts) == 17                          # rows 3..19
    by_row = {i + 3: p for i, p in enumerate(pts)}
    want = {3: -0.986614298, 4: -0.999909204, 5: -0.999999388, 6: -1.0, 7: -1.0,
            8: 1.0, 9: 0.966989088, 10: 0.859792567, 11: 0.562124149,
            12: -0.682261790, 13: -0.931109609, 14: -0.986614298, 15: -0.997457967,
            16: -0.999519377, 17: 1.0, 18: 0.859792567, 19: -0.986614298}
    for row, unit in want.items():
        close(by_row[row][2], unit)
        assert by_row[row][0] == SCORES[row]
        assert (by_row[row][1] is None) == (unit < 0)


def test_sweep_by_hand():
    pts, _ = score.file_points(20, WINS, SCORES, "f")
    pts.sort(key=lambda p: p[0], reverse=True)
    curve = score.sweep(pts, 2, score.PROFILES["standard"])
    want = [(float("inf"), -2.0), (0.9, -0.140207433), (0.8, -0.033010912), (0.7, -0.135432969),
            (0.6, 1.724359598), (0.5, 1.614359598), (0.4, 1.505832025), (0.0, 0.837288974)]
    assert [t for t, _ in curve] == [t for t, _ in want]
    for (_, got), (_, exp) in zip(curve, want):
        close(got, exp)
    thr, raw = score.best_threshold(curve)
    assert thr == 0.6
    close(raw, 1.724359598)


def test_ties_pick_the_highest_threshold():
    # two thresholds with the same total: NAB's sweep keeps the first (highest)
    curve = [(float("inf"), -1.0), (0.9, 0.5), (0.7, 0.5), (0.2, 0.1)]
    assert score.best_threshold(curve) == (0.9, 0.5)


def write_corpus(tmp):
    data = os.path.join(tmp, "res", "cat")
    os.makedirs(data)
    with open(os.path.join(data, "f.csv"), "w") as f:
        f.write("timestamp,value,anomaly_score\n")
        for i, s in enumerate(SCORES):
            f.write(f"2014-04-10 {i * 5 // 60:02d}:{i * 5 % 60:02d}:00,{i},{s:.6f}\n")

    def ts(i):
        return f"2014-04-10 {i * 5 // 60:02d}:{i * 5 % 60:02d}:00.000000"
    labels = {"cat/f.csv": [[ts(a), ts(b)] for a, b in WINS]}
    with open(os.path.join(tmp, "labels.json"), "w") as f:
        json.dump(labels, f)


def test_command_line_by_hand():
    tmp = tempfile.mkdtemp(prefix="nab-score-test.")
    try:
        write_corpus(tmp)
        out = os.path.join(tmp, "out.json")
        r = subprocess.run([sys.executable, os.path.join(SRC, "bench", "nab", "score.py"),
                            "--labels", os.path.join(tmp, "labels.json"), "--json", out, "--detail",
                            "tiny=" + os.path.join(tmp, "res")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        j = json.load(open(out))["tiny"]
        assert j["windows"] == 2 and j["scored_rows"] == 17
        p = j["profiles"]
        for name, thr, raw, norm in (("standard", 0.6, 1.724359598, 93.108990),
                                     ("reward_low_FP_rate", 0.6, 1.621937541, 90.548439),
                                     ("reward_low_FN_rate", 0.6, 1.724359598, 95.405993)):
            assert p[name]["threshold"] == thr, (name, p[name])
            close(p[name]["raw"], raw)
            close(p[name]["score"], norm)
            assert p[name]["counts"] == {"windows": 2, "detected": 2, "missed": 0, "fp": 1}, p[name]
        assert "| tiny | 93.1 | 90.5 | 95.4 |" in r.stdout, r.stdout
        assert "| cat/f.csv | 2 | 2 | 0 | 1 | 1.724 |" in r.stdout, r.stdout

        # a results file with a bad row is an error naming file and line
        with open(os.path.join(tmp, "res", "cat", "f.csv"), "a") as f:
            f.write("2014-04-10 02:00:00,1,1.5\n")
        r = subprocess.run([sys.executable, os.path.join(SRC, "bench", "nab", "score.py"),
                            "--labels", os.path.join(tmp, "labels.json"),
                            "tiny=" + os.path.join(tmp, "res")], capture_output=True, text=True)
        assert r.returncode == 2 and "f.csv:22: anomaly_score 1.5 not in [0, 1]" in r.stderr, r.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    return benchtest.run((test_sigmoid_and_probation, test_points_by_hand, test_sweep_by_hand,
              test_ties_pick_the_highest_threshold, test_command_line_by_hand))


if __name__ == "__main__":
    sys.exit(main())
