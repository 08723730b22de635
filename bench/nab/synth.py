#!/usr/bin/env python3
"""synth.py: a held-out corpus of labelled machine-metric series, the kind a
user gives the detector, in NAB's layout, from a fixed seed. No detector's
settings were ever chosen on it; it was written (and committed) before any
detector was scored on it, and is not to be changed to suit one.

    synth.py [--out DIR] [--seed N]

Writes DIR/data/CATEGORY/FILE.csv (timestamp,value), DIR/labels/
combined_windows.json (NAB-style windows) and DIR/labels/combined_labels.json
(the anomaly onsets). DIR defaults to bench/out/nab/synth. Standard library
only; the same seed gives the same bytes.

Every kind of series comes at 1-minute steps (7 days, 10,080 rows) and at
5-minute steps (21 days, 6,048 rows, or 28 days for request rates, whose
cycle is weekly), two draws of each (a, b), from 2026-03-02 00:00 UTC (a
Monday):

  synthCpu       CPU %: a working-hours daily cycle (weekends lower), an
                 hourly cron burst, noise; anomalies: a runaway process
                 (+35..55 points for 2..6 h), a stall (the load falls to
                 near 0 for 1..3 h), a working day with no daily rise (from
                 08:00); two of the three per file.
  synthMemory    bytes used: a base, garbage-collector sawtooth, a daily
                 cache swell; anomaly: a leak (growth of 2..6 % of the base
                 per hour from its onset until it has doubled, then flat at
                 the machine's limit).
  synthDisk      % used: slow growth, a nightly log rotation drop, small
                 noise; anomaly: a runaway log filling it at 1..4 % per hour
                 until 100 % (then flat at 100).
  synthRequests  requests/s: daily and weekly cycles, Poisson-like noise;
                 anomalies: an outage (down to 2..10 % for 15..60 min), a
                 surge (x2.5..4 for 1..2 h).
  synthLatency   ms: a log-normal around a load-dependent median, rare
                 single benign spikes; anomalies: a degradation (x2..3 for
                 1..3 h), a burst of spikes (50x as many for 1..2 h).
  synthNoAnomaly white noise, a mean-reverting random walk, a daily CPU
                 cycle, bursty log-normal values, small error counts: no
                 windows (only false alarms count).

Anomalies start after the first 30 % of a file (beyond NAB's probation) and
before the last 10 %, at least a window apart. Windows as NAB draws them:
10 % of the file's rows divided by its number of anomalies, centred on the
onset.
"""
import argparse
import json
import math
import os
import random
import sys
from datetime import datetime, timedelta, timezone

START = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday
DAY = 1440  # minutes


def hour_of(t):
    return (t % DAY) / 60.0


def weekday_of(t):
    return (t // DAY) % 7  # 0 Monday


def workday_shape(h):
    """0 at night, 1 in the early afternoon: a smooth working-hours bump."""
    return math.exp(-((h - 14.0) / 3.5) ** 2)


def series_times(step, days):
    return [i * step for i in range(days * DAY // step)]


def onsets(rng, n, k, step):
    """k anomaly rows between 30 % and 90 % of n rows, a window apart."""
    wl = int(0.10 * n / k)
    for _ in range(1000):
        rows = sorted(rng.randint(int(0.30 * n), int(0.90 * n)) for _ in range(k))
        if all(b - a > wl + 6 * 60 // step for a, b in zip(rows, rows[1:])):
            return rows
    raise RuntimeError("no room for the anomalies")


def span(rng, lo_min, hi_min, step):
    return max(1, int(rng.uniform(lo_min, hi_min) / step))


# ---- generators: (times in minutes, rng, step) -> (values, anomaly rows) ----------

def nopeak_row(t, r, step):
    """08:00 of the working day of row r (a weekend goes back to Friday)."""
    day0 = t[r] - t[r] % DAY
    while weekday_of(day0) >= 5:
        day0 -= DAY
    return (day0 + 8 * 60 - t[0]) // step


def gen_cpu(t, rng, step):
    n = len(t)
    base, amp, noise = rng.uniform(8, 20), rng.uniform(25, 45), rng.uniform(2, 4)
    kinds = rng.sample(["hog", "stall", "nopeak"], 2)
    wl = int(0.10 * n / 2)
    while True:  # onsets whose windows stay apart once a missing peak starts at 08:00
        rows = [nopeak_row(t, r, step) if k == "nopeak" else r for k, r in zip(kinds, onsets(rng, n, 2, step))]
        if abs(rows[0] - rows[1]) > wl + 6 * 60 // step and all(0.25 * n <= r <= 0.92 * n for r in rows):
            break
    v = []
    for tm in t:
        week = 0.35 if weekday_of(tm) >= 5 else 1.0
        cron = 12.0 if (tm % 60) < 2 else 0.0
        v.append(base + amp * week * workday_shape(hour_of(tm)) + cron + rng.gauss(0, noise))
    for kind, r in zip(kinds, rows):
        if kind == "hog":
            add, end = rng.uniform(35, 55), r + span(rng, 120, 360, step)
            for i in range(r, min(end, n)):
                v[i] += add
        elif kind == "stall":
            end = r + span(rng, 60, 180, step)
            for i in range(r, min(end, n)):
                v[i] = abs(rng.gauss(1.0, 0.5))
        else:  # a working day without its daily rise
            for i in range(r, min(r + 10 * 60 // step, n)):
                v[i] -= amp * workday_shape(hour_of(t[i]))
    return [round(min(100.0, max(0.0, x)), 2) for x in v], sorted(rows)


def gen_memory(t, rng, step):
    n = len(t)
    base = rng.uniform(2e9, 6e9)
    saw, period = base * rng.uniform(0.02, 0.05), rng.uniform(20, 60)
    cache = base * rng.uniform(0.05, 0.12)
    (r,) = onsets(rng, n, 1, step)
    leak = base * rng.uniform(0.02, 0.06) / 60.0  # per minute
    v, extra = [], 0.0
    for i, tm in enumerate(t):
        x = base + saw * ((tm % period) / period) + cache * workday_shape(hour_of(tm))
        if i >= r:
            extra = min(base, extra + leak * step)  # up to the memory the machine has, then flat
        v.append(x + extra + rng.gauss(0, base * 0.002))
    return [round(x) for x in v], [r]


def gen_disk(t, rng, step):
    n = len(t)
    level, grow = rng.uniform(20, 60), rng.uniform(0.2, 0.8) / DAY  # % per minute
    rot = rng.uniform(0.3, 1.0)
    (r,) = onsets(rng, n, 1, step)
    fill = rng.uniform(1, 4) / 60.0
    v = []
    for i, tm in enumerate(t):
        level += grow * step + (fill * step if i >= r else 0.0)
        if 0 <= tm % DAY - 180 < step:  # 03:00 log rotation
            level -= rot
        level = min(100.0, level)
        v.append(min(100.0, max(0.0, level + rng.gauss(0, 0.02))))
    return [round(x, 3) for x in v], [r]


def gen_requests(t, rng, step):
    n = len(t)
    base = rng.uniform(50, 400)
    kinds = ["outage", "surge"]
    rng.shuffle(kinds)
    rows = onsets(rng, n, 2, step)
    mult = [1.0] * n
    for kind, r in zip(kinds, rows):
        if kind == "outage":
            f, end = rng.uniform(0.02, 0.10), r + span(rng, 15, 60, step)
        else:
            f, end = rng.uniform(2.5, 4.0), r + span(rng, 60, 120, step)
        for i in range(r, min(end, n)):
            mult[i] = f
    v = []
    for i, tm in enumerate(t):
        week = 0.45 if weekday_of(tm) >= 5 else 1.0
        mu = base * (0.15 + week * (0.25 + workday_shape(hour_of(tm)))) * mult[i]
        v.append(max(0.0, rng.gauss(mu, math.sqrt(mu * 4))))
    return [round(x, 1) for x in v], rows


def gen_latency(t, rng, step):
    n = len(t)
    med, sigma = rng.uniform(20, 80), rng.uniform(0.15, 0.3)
    kinds = ["slow", "spikes"]
    rng.shuffle(kinds)
    rows = onsets(rng, n, 2, step)
    slow, spiky = [1.0] * n, [0.002] * n
    for kind, r in zip(kinds, rows):
        if kind == "slow":
            f, end = rng.uniform(2, 3), r + span(rng, 60, 180, step)
            for i in range(r, min(end, n)):
                slow[i] = f
        else:
            end = r + span(rng, 60, 120, step)
            for i in range(r, min(end, n)):
                spiky[i] = 0.1
    v = []
    for i, tm in enumerate(t):
        load = 1.0 + 0.5 * workday_shape(hour_of(tm)) * (0.4 if weekday_of(tm) >= 5 else 1.0)
        x = med * load * slow[i] * math.exp(rng.gauss(0, sigma))
        if rng.random() < spiky[i]:
            x *= rng.uniform(3, 8)
        v.append(x)
    return [round(x, 2) for x in v], rows


def gen_quiet(kind):
    def g(t, rng, step):
        n = len(t)
        if kind == "white":
            mu, sd = rng.uniform(10, 100), rng.uniform(1, 10)
            return [round(rng.gauss(mu, sd), 3) for _ in range(n)], []
        if kind == "walk":
            x, mu, sd, v = 0.0, rng.uniform(40, 60), rng.uniform(0.5, 2), []
            for _ in range(n):
                x = 0.995 * x + rng.gauss(0, sd)
                v.append(round(mu + x, 3))
            return v, []
        if kind == "daily":
            base, amp = rng.uniform(8, 20), rng.uniform(25, 45)
            return [round(min(100.0, max(0.0, base + amp * workday_shape(hour_of(tm)) + rng.gauss(0, 3))), 2)
                    for tm in t], []
        if kind == "bursty":
            med = rng.uniform(5, 50)
            return [round(med * math.exp(rng.gauss(0, 0.8)), 2) for _ in range(n)], []
        lam = rng.uniform(0.1, 0.5)  # error counts: Poisson, by inversion
        v = []
        for _ in range(n):
            k, p, u = 0, math.exp(-lam), rng.random()
            c = p
            while u > c:
                k += 1
                p *= lam / k
                c += p
            v.append(k)
        return v, []
    return g


KINDS = [  # category, file stem, generator, (step, days) variants
    ("synthCpu", "cpu", gen_cpu, [(1, 7), (5, 21)]),
    ("synthMemory", "memory_used", gen_memory, [(1, 7), (5, 21)]),
    ("synthDisk", "disk_used", gen_disk, [(1, 7), (5, 21)]),
    ("synthRequests", "requests", gen_requests, [(1, 7), (5, 28)]),
    ("synthLatency", "latency", gen_latency, [(1, 7), (5, 21)]),
]
QUIET = [("white", (1, 7)), ("walk", (5, 21)), ("daily", (5, 21)), ("bursty", (1, 7)), ("errors", (1, 7))]


def fmt_time(minutes, frac=False):
    s = (START + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")
    return s + ".000000" if frac else s


def windows(t, rows):
    """NAB's: 10 % of the rows over the anomalies, centred on each onset."""
    n = len(t)
    if not rows:
        return []
    wl = int(0.10 * n / len(rows))
    return [[fmt_time(t[max(0, r - wl // 2)], True), fmt_time(t[min(n - 1, r + wl // 2)], True)] for r in rows]


def write(out, cat, name, t, values):
    d = os.path.join(out, "data", cat)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "w", encoding="utf-8", newline="\n") as f:
        f.write("timestamp,value\n")
        for tm, x in zip(t, values):
            f.write(f"{fmt_time(tm)},{x}\n")


def generate(out, seed):
    wins, onset_labels, nrows = {}, {}, 0
    jobs = [(cat, f"{stem}_{step}m_{draw}.csv", gen, step, days)
            for cat, stem, gen, variants in KINDS for step, days in variants for draw in "ab"]
    jobs += [("synthNoAnomaly", f"{kind}_{step}m.csv", gen_quiet(kind), step, days)
             for kind, (step, days) in QUIET]
    for cat, name, gen, step, days in jobs:
        key = f"{cat}/{name}"
        rng = random.Random(f"{seed}:{key}")
        t = series_times(step, days)
        values, rows = gen(t, rng, step)
        write(out, cat, name, t, values)
        wins[key] = windows(t, rows)
        onset_labels[key] = [fmt_time(t[r]) for r in rows]
        nrows += len(t)
    os.makedirs(os.path.join(out, "labels"), exist_ok=True)
    with open(os.path.join(out, "labels", "combined_windows.json"), "w", encoding="utf-8") as f:
        json.dump(wins, f, indent=1, sort_keys=True)
    with open(os.path.join(out, "labels", "combined_labels.json"), "w", encoding="utf-8") as f:
        json.dump(onset_labels, f, indent=1, sort_keys=True)
    return len(jobs), nrows, sum(len(w) for w in wins.values())


def main(argv=None):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap = argparse.ArgumentParser(description="a synthetic held-out corpus of labelled machine metrics")
    ap.add_argument("--out", default=os.path.join(root, "bench", "out", "nab", "synth"))
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    nfiles, nrows, nwin = generate(args.out, args.seed)
    print(f"synth.py: seed {args.seed}: {nfiles} files, {nrows} rows, {nwin} windows in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
