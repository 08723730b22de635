"""test_logparse_score.py: bench/logparse/run.py's scorer (GA, FGA, PA as
METRICS.md of the Loghub-2k data set defines them) on a case worked out by
hand, and its settings table against the data set's METRICS.md when the data
set is there.

The case: 8 messages, true templates T = [a a a b b c d d], parsed P = [x x x y
y y z w]:
  parsed group x = {0,1,2}: all true a, and true a has 3 messages: correct (3)
  parsed group y = {3,4,5}: true b and c mixed: wrong
  parsed group z = {6}, w = {7}: true d split: wrong
  GA = 3/8 = 0.375; groups: parsed 4, true 4, correct 1:
  precision = recall = 1/4, FGA = 0.25.
  PA: P[i] == T[i] nowhere: 0; with P = T on messages 0..2 only: 3/8.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get("IPPOC_SRC", os.path.join(os.path.dirname(__file__), "..", "..")),
                                "bench", "logparse"))
import run as logparse  # noqa: E402


def main():
    t = ["a", "a", "a", "b", "b", "c", "d", "d"]
    p = ["x", "x", "x", "y", "y", "y", "z", "w"]
    ga, fga, pa = logparse.scores(p, t)
    assert abs(ga - 0.375) < 1e-12, ga
    assert abs(fga - 0.25) < 1e-12, fga
    assert pa == 0.0, pa
    ga, fga, pa = logparse.scores(["a", "a", "a", "b", "b", "b", "d", "d"], t)
    assert abs(ga - 5 / 8) < 1e-12, ga  # a and d exact; b+c merged
    prec, rec = 2 / 3, 2 / 4
    assert abs(fga - 2 * prec * rec / (prec + rec)) < 1e-12, fga
    assert abs(pa - 7 / 8) < 1e-12, pa
    assert logparse.scores(t, t) == (1.0, 1.0, 1.0)
    # the settings table has the 12 systems, and its mask counts follow METRICS.md §3
    assert len(logparse.SYSTEMS) == 12
    counts = {n: len(v[1]) for n, v in logparse.SYSTEMS.items()}
    assert counts == {"HDFS": 2, "Hadoop": 1, "Spark": 3, "Zookeeper": 1, "BGL": 1, "HPC": 1, "Windows": 1,
                      "Android": 3, "HealthApp": 0, "Proxifier": 4, "OpenStack": 3, "Mac": 1}, counts
    metrics = os.path.join(logparse.DATA, "METRICS.md")
    if os.path.exists(metrics):
        text = open(metrics, encoding="utf-8").read()
        for name, v in logparse.SYSTEMS.items():
            assert v[0] in text, (name, v[0])  # the format, verbatim
            for m in v[1]:
                assert m in text, (name, m)
    else:
        print("   (Loghub-2k METRICS.md not found: formats not cross-checked)")
    print("ok")


if __name__ == "__main__":
    main()
