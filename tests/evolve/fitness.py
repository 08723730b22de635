#!/usr/bin/env python3
"""A synthetic fitness command for the experiment tests: reads KEY from the
knob FILE and prints a lognormal measurement whose mean depends on it.

usage: fitness.py FILE KEY MODE [NOISE]
  MODE knob:  value 8 -> mean 100, 16 -> mean 130, else 90
  MODE noise: mean 100 whatever the value
  MODE fail:  exits 3 when the value is 16 (a "killed" candidate)
Each call is seeded by its own counter (FILE.count beside FILE), so a run is
reproducible."""
import math
import os
import random
import sys

path, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
noise = float(sys.argv[4]) if len(sys.argv) > 4 else 0.05
value = None
with open(path) as f:
    for line in f:
        k, sep, v = line.partition("=")
        if sep and k.strip() == key:
            value = v.strip()
count_path = path + ".count"
try:
    with open(count_path) as f:
        n = int(f.read() or 0)
except FileNotFoundError:
    n = 0
with open(count_path, "w") as f:
    f.write(str(n + 1))
rng = random.Random(n * 7919 + 17)
if mode == "knob":
    mean = {"8": 100.0, "16": 130.0}.get(value, 90.0)
elif mode == "fail" and value == "16":
    sys.exit(3)
else:
    mean = 100.0
print("warming up 1 2 3")
print("tps = %.3f" % (mean * math.exp(rng.gauss(0, noise))))
