#!/usr/bin/env python3
"""peer_windowed_gaussian.py: NAB's published "windowed Gaussian" baseline
detector (nab/detectors/gaussian/windowedGaussian_detector.py in numenta/NAB,
full-corpus standard score 39.6), re-implemented to be scored beside
`ippoc detect` by the same scorer in the same run.

    peer_windowed_gaussian.py DATA_DIR OUT_DIR

For every DATA_DIR/CATEGORY/FILE.csv writes OUT_DIR/CATEGORY/FILE.csv with
timestamp,value,anomaly_score, each file from scratch. The detector, as NAB's:
the score of a value is 1 - Q(|z|), the normal tail probability of the value
under the mean and (population) standard deviation of a window of past values
(0 for the very first row); the window fills up to 6400 values one at a time
(mean and deviation updated after each), then slides forward 100 values at a
time (updated after each step); a deviation of 0 counts as 1e-6. Scores are
written at full precision, as NAB's result files hold them.

NumPy (python3-numpy) computes the window's mean and deviation exactly as
NAB's code does; without it, the standard library does (the last bits may
differ).
"""
import math
import os
import sys

try:
    import numpy
except ImportError:  # pragma: no cover - depends on the machine
    numpy = None

WINDOW = 6400
STEP = 100
SQRT2 = math.sqrt(2)


def normal_probability(x, mean, std):
    """P(X > x) for x above the mean, mirrored below it (NAB's version)."""
    if x < mean:
        x = 2 * mean - x
    z = (x - mean) / std
    return 0.5 * math.erfc(z / SQRT2)


class WindowedGaussian:
    """One detector; feed values in order. The window is kept as a NumPy
    array when NumPy is there (the same values in the same order as NAB's
    list, so the same mean and deviation), else as a list."""

    def __init__(self):
        self.n = 0
        self.window = numpy.empty(WINDOW) if numpy is not None else []
        self.step = []
        self.mean = 0.0
        self.std = 1.0

    def _update(self):
        if numpy is not None:
            w = self.window[:self.n]
            self.mean, self.std = float(numpy.mean(w)), float(numpy.std(w))
        else:
            w = self.window
            self.mean = math.fsum(w) / len(w)
            self.std = math.sqrt(math.fsum((v - self.mean) ** 2 for v in w) / len(w))
        if self.std == 0.0:
            self.std = 0.000001

    def feed(self, value):
        score = 0.0
        if self.n:
            score = 1 - normal_probability(value, self.mean, self.std)
        if self.n < WINDOW:
            if numpy is not None:
                self.window[self.n] = value
            else:
                self.window.append(value)
            self.n += 1
            self._update()
        else:
            self.step.append(value)
            if len(self.step) == STEP:
                if numpy is not None:
                    self.window = numpy.concatenate((self.window[STEP:], numpy.asarray(self.step)))
                else:
                    self.window = self.window[STEP:] + self.step
                self.step = []
                self._update()
        return score


def run_file(src, dst):
    with open(src, encoding="utf-8") as f:
        lines = f.read().splitlines()
    det = WindowedGaussian()
    out = ["timestamp,value,anomaly_score"]
    for line in lines[1:]:  # NAB's files: a header, then timestamp,value
        if not line.strip():
            continue
        ts, val = line.split(",")
        out.append(f"{ts},{val},{det.feed(float(val))!r}")
    tmp = dst + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, dst)
    return len(out) - 1


def main(argv):
    if len(argv) != 3:
        print("usage: peer_windowed_gaussian.py DATA_DIR OUT_DIR", file=sys.stderr)
        return 2
    data, out = argv[1], argv[2]
    rows = files = 0
    for cat in sorted(os.listdir(data)):
        d = os.path.join(data, cat)
        if not os.path.isdir(d):
            continue
        os.makedirs(os.path.join(out, cat), exist_ok=True)
        for name in sorted(os.listdir(d)):
            if name.endswith(".csv"):
                rows += run_file(os.path.join(d, name), os.path.join(out, cat, name))
                files += 1
    how = "numpy" if numpy is not None else "standard library (no numpy)"
    print(f"windowed Gaussian: {files} files, {rows} rows ({how})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
