#!/usr/bin/env python3
"""score.py: the NAB scorer, as /work/shared/datasets/nab/SCORING.md writes the
rules out (NAB v1), for any detector's results. Python 3 standard library only.

    score.py [--labels combined_windows.json] [--data DATA_DIR] [--detail]
             [--json OUT.json] NAME=RESULTS_DIR [NAME=RESULTS_DIR ...]

RESULTS_DIR holds one CSV per corpus file, at the same relative path as in the
labels ("realTraffic/speed_6005.csv"), with a header naming `timestamp` and
`anomaly_score` columns (what `ippoc detect` writes). With --data, every
result must have as many rows as its data file. Prints, as markdown ready to
paste: the three normalised profile scores per detector, and per profile the
threshold chosen, the raw score and the counts; with two detectors or more,
the ratio of the first one's scores to the second's. --detail adds one row per
file at each detector's standard-profile threshold.

The rules (each has its function below):
- probation: the first min(floor(0.15 * rows), 750) rows of a file are not
  scored (they still move the window bookkeeping); a window none of whose
  rows is scored does not count;
- s(y) = 2 / (1 + exp(5y)) - 1, and -1 when y > 3;
- a detection (score >= threshold) at row i inside a window of W rows whose
  last row is R is worth A_TP * s(-(R - i + 1) / W) / s(-1); a window keeps
  only its best detection, and costs -A_FN when it has none;
- a detection outside every window costs A_FP * s(|Rprev - i| / (Wprev - 1))
  after the window (Rprev, Wprev) that ended last before it, -A_FP when no
  window came before; every one counts;
- one threshold for the whole corpus per profile: the one that maximises the
  raw total (among equal totals, the highest threshold, as NAB's sweep does);
- normalised = 100 * (raw - null) / (perfect - null), perfect = A_TP * windows,
  null = -A_FN * windows.

Windows are matched to rows by timestamp: a window starts at the first row at
or after its start and ends at the first row equal to its end (NAB's
list.index), else at the last row before it. Exactness is reported.
"""
import argparse
import bisect
import json
import math
import os
import sys
import time
from datetime import datetime, timezone

PROFILES = {  # name: (A_TP, A_FP, A_FN)
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}
PROFILE_ORDER = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]
PROBATION_PERCENT = 15   # percent of rows
PROBATION_MAX = 750      # rows


class ScoreError(Exception):
    """A bad input: a missing or malformed results file, a bad label."""


def scaled_sigmoid(y):
    """s(y) = 2 / (1 + exp(5y)) - 1, and -1 when y > 3."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


S_MAX = scaled_sigmoid(-1.0)  # the worth of a window's first row, before scaling


def probation_rows(n):
    """min(floor(0.15 * n), 750), in exact integer arithmetic."""
    return min(PROBATION_PERCENT * n // 100, PROBATION_MAX)


def parse_time(text):
    """A timestamp as seconds since the epoch (float): ISO-like date-times
    (taken as UTC) or epoch seconds."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    if t.endswith("Z"):
        t = t[:-1]
    try:
        d = datetime.fromisoformat(t)
    except ValueError:
        raise ScoreError(f"bad timestamp '{text}'") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.timestamp()


def window_rows(times, windows):
    """[(L, R)] row indices of each [start, end] window (timestamps as
    seconds); windows must be in order and must not overlap. Returns the
    list and how many window edges did not match a row exactly."""
    ordered = all(times[i] <= times[i + 1] for i in range(len(times) - 1))

    def first_ge(t):  # the first row at or after t
        if ordered:
            return bisect.bisect_left(times, t)
        return next((i for i, x in enumerate(times) if x >= t), len(times))

    out, inexact = [], 0
    for start, end in windows:
        if end < start:
            raise ScoreError(f"window ends before it starts: {start} > {end}")
        lo, hi = first_ge(start), first_ge(end)
        if lo < len(times) and times[lo] != start:
            inexact += 1
        if hi >= len(times) or times[hi] != end:
            hi -= 1
            inexact += 1
        if lo > hi:
            continue  # no row inside the window
        if out and lo <= out[-1][1]:
            raise ScoreError("windows overlap or are not in time order")
        out.append((lo, hi))
    return out, inexact


def file_points(n, wins, scores, file_key):
    """The scored rows of one file: a list of (score, window id or None, unit
    worth), where unit worth is s(...) / s(-1) inside a window (times A_TP)
    and s(...) or -1 outside (times A_FP). wins: [(L, R)] row indices.
    Also returns the ids of the windows that count."""
    prob = probation_rows(n)
    pts = []
    counted = []
    wi = 0                    # next window to enter
    cur = None                # (L, R, id) of the window row i is in
    prev = None               # (R, W) of the last window that ended
    for i in range(n):
        if cur is None and wi < len(wins) and wins[wi][0] == i:
            L, R = wins[wi]
            cur = (L, R, f"{file_key}|{wi}")
            wi += 1
        if cur is not None:
            L, R, wid = cur
            W = R - L + 1
            unit = scaled_sigmoid(-(R - i + 1) / W) / S_MAX
            win = wid
        else:
            win = None
            if prev is None:
                unit = -1.0
            else:
                pr, pw = prev
                unit = -1.0 if pw <= 1 else scaled_sigmoid(abs(pr - i) / (pw - 1))
        if i >= prob:
            if win is not None and (not counted or counted[-1] != win):
                counted.append(win)
            pts.append((scores[i], win, unit))
        if cur is not None and i == cur[1]:
            prev = (cur[1], cur[1] - cur[0] + 1)
            cur = None
    return pts, counted


def sweep(points, nwin, profile):
    """Every distinct score as a threshold, highest first, with the raw total
    at that threshold (detections: score >= threshold). points must be sorted
    by score, highest first. Returns [(threshold, raw)], starting with
    (inf, -A_FN * nwin): nothing detected."""
    a_tp, a_fp, a_fn = profile
    total = -a_fn * nwin
    best = {}
    out = [(math.inf, total)]
    i, n = 0, len(points)
    while i < n:
        thr = points[i][0]
        while i < n and points[i][0] == thr:
            _, win, unit = points[i]
            if win is None:
                total += unit * a_fp
            else:
                v = unit * a_tp
                b = best.get(win, -a_fn)
                if v > b:
                    total += v - b
                    best[win] = v
            i += 1
        out.append((thr, total))
    return out


def best_threshold(curve):
    """The (threshold, raw) with the highest raw; the first (highest
    threshold) among equals."""
    best = curve[0]
    for t, raw in curve[1:]:
        if raw > best[1]:
            best = (t, raw)
    return best


def score_at(files, threshold, profile):
    """Exact raw score and counts at one threshold, per file and in all.
    files: {key: (points, counted windows)}. Returns (raw, counts, per_file)
    with counts = {windows, detected, missed, fp}."""
    a_tp, a_fp, a_fn = profile
    parts = []
    counts = {"windows": 0, "detected": 0, "missed": 0, "fp": 0}
    per_file = {}
    for key, (pts, counted) in files.items():
        best = {w: None for w in counted}
        fparts = []
        nfp = 0
        for s, win, unit in pts:
            if s < threshold:
                continue
            if win is None:
                fparts.append(unit * a_fp)
                nfp += 1
            elif best[win] is None or unit * a_tp > best[win]:
                best[win] = unit * a_tp
        det = sum(1 for v in best.values() if v is not None)
        fparts += [(-a_fn if v is None else v) for v in best.values()]
        raw = math.fsum(fparts)
        parts.append(raw)
        per_file[key] = {"windows": len(counted), "detected": det, "missed": len(counted) - det,
                         "fp": nfp, "raw": raw}
        counts["windows"] += len(counted)
        counts["detected"] += det
        counts["missed"] += len(counted) - det
        counts["fp"] += nfp
    return math.fsum(parts), counts, per_file


def normalise(raw, nwin, profile):
    a_tp, _, a_fn = profile
    perfect, null = a_tp * nwin, -a_fn * nwin
    return 100.0 * (raw - null) / (perfect - null) if nwin else 0.0


# ---- reading files ------------------------------------------------------------------

def read_results(path):
    """(timestamps as seconds, scores) of a results CSV."""
    times, scores = [], []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise ScoreError(f"{path}: {e.strerror}") from None
    with f:
        header = f.readline().strip().lower().split(",")
        if "timestamp" not in header or "anomaly_score" not in header:
            raise ScoreError(f"{path}:1: header must name timestamp and anomaly_score, got {','.join(header)}")
        ti, si = header.index("timestamp"), header.index("anomaly_score")
        cache_t, cache_v = None, None
        for lineno, line in enumerate(f, 2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            cols = line.split(",")
            try:
                ts = cols[ti]
                if ts != cache_t:  # consecutive equal texts are common only for duplicates
                    cache_t, cache_v = ts, parse_time(ts)
                s = float(cols[si])
            except (IndexError, ValueError, ScoreError) as e:
                raise ScoreError(f"{path}:{lineno}: bad row ({e})") from None
            if not 0.0 <= s <= 1.0:
                raise ScoreError(f"{path}:{lineno}: anomaly_score {s} not in [0, 1]")
            times.append(cache_v)
            scores.append(s)
    return times, scores


def count_data_rows(path):
    with open(path, encoding="utf-8") as f:
        f.readline()
        return sum(1 for line in f if line.strip())


def load_detector(results_dir, labels, data_dir=None):
    """{file key: (points, counted windows)} and the number of inexact
    window matches, for one detector's results."""
    files, inexact = {}, 0
    for key in sorted(labels):
        times, scores = read_results(os.path.join(results_dir, key))
        if data_dir:
            n_data = count_data_rows(os.path.join(data_dir, key))
            if n_data != len(times):
                raise ScoreError(f"{os.path.join(results_dir, key)}: {len(times)} rows, "
                                 f"the data file has {n_data}")
        wins_t = [(parse_time(a), parse_time(b)) for a, b in labels[key]]
        wins, bad = window_rows(times, wins_t)
        inexact += bad
        files[key] = file_points(len(times), wins, scores, key)
    return files, inexact


def evaluate(files):
    """The three profiles: {profile: {threshold, raw, score, counts,
    per_file}}."""
    points = [p for pts, _ in files.values() for p in pts]
    points.sort(key=lambda p: p[0], reverse=True)
    nwin = sum(len(c) for _, c in files.values())
    out = {}
    for name in PROFILE_ORDER:
        prof = PROFILES[name]
        thr, _ = best_threshold(sweep(points, nwin, prof))
        raw, counts, per_file = score_at(files, thr, prof)
        out[name] = {"threshold": thr, "raw": raw, "score": normalise(raw, nwin, prof),
                     "counts": counts, "per_file": per_file}
    return out, nwin, len(points)


# ---- report ------------------------------------------------------------------------

def fmt_thr(t):
    """6 decimals, or as many as it takes to tell it from its neighbours
    (e.g. a threshold just below 1)."""
    if math.isinf(t):
        return "none (never fires)"
    return f"{t:.6f}" if float(f"{t:.6f}") == t else repr(t)


def report(results, detail):
    names = list(results)
    lines = []
    add = lines.append
    add("| detector | standard | reward_low_FP_rate | reward_low_FN_rate |")
    add("|---|---:|---:|---:|")
    for name in names:
        r = results[name]["profiles"]
        add(f"| {name} | " + " | ".join(f"{r[p]['score']:.1f}" for p in PROFILE_ORDER) + " |")
    add("")
    add("| detector | profile | threshold | raw | windows detected | windows missed | false positives (rows) |")
    add("|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        r = results[name]["profiles"]
        for p in PROFILE_ORDER:
            c = r[p]["counts"]
            add(f"| {name} | {p} | {fmt_thr(r[p]['threshold'])} | {r[p]['raw']:.2f} | "
                f"{c['detected']}/{c['windows']} | {c['missed']} | {c['fp']} |")
    if len(names) >= 2:
        a, b = names[0], names[1]
        ra, rb = results[a]["profiles"], results[b]["profiles"]
        parts = []
        for p in PROFILE_ORDER:
            sa, sb = ra[p]["score"], rb[p]["score"]
            ratio = f"{sa / sb:.2f}" if sb > 0 else "n/a (peer <= 0)"
            parts.append(f"{p} {ratio} ({sa:+.1f} vs {sb:+.1f})")
        add("")
        add(f"- {a} / {b}: " + "; ".join(parts))
    if detail:
        for name in names:
            r = results[name]["profiles"]["standard"]
            add("")
            add(f"{name}, standard profile at threshold {fmt_thr(r['threshold'])}:")
            add("")
            add("| file | windows | detected | missed | FP rows | raw |")
            add("|---|---:|---:|---:|---:|---:|")
            for key, d in r["per_file"].items():
                add(f"| {key} | {d['windows']} | {d['detected']} | {d['missed']} | {d['fp']} | {d['raw']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_nab = os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "datasets", "nab"))
    ap = argparse.ArgumentParser(description="NAB scorer (SCORING.md rules).")
    ap.add_argument("results", nargs="+", metavar="NAME=RESULTS_DIR")
    ap.add_argument("--labels", default=os.path.join(default_nab, "labels", "combined_windows.json"))
    ap.add_argument("--data", help="data dir: check each result has as many rows as its data file")
    ap.add_argument("--detail", action="store_true", help="per-file rows at the standard threshold")
    ap.add_argument("--json", help="write the results (thresholds, scores, counts) as JSON here")
    args = ap.parse_args(argv)

    try:
        with open(args.labels, encoding="utf-8") as f:
            labels = json.load(f)
    except (OSError, ValueError) as e:
        print(f"score.py: {args.labels}: {e}", file=sys.stderr)
        return 2
    results = {}
    t0 = time.monotonic()
    for spec in args.results:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            print(f"score.py: '{spec}': expected NAME=RESULTS_DIR", file=sys.stderr)
            return 2
        try:
            files, inexact = load_detector(path, labels, args.data)
        except ScoreError as e:
            print(f"score.py: {e}", file=sys.stderr)
            return 2
        profiles, nwin, npts = evaluate(files)
        results[name] = {"profiles": profiles, "windows": nwin, "scored_rows": npts,
                         "files": len(files), "inexact_windows": inexact}
    elapsed = time.monotonic() - t0
    first = results[next(iter(results))]
    print(f"NAB: {first['files']} files, {first['windows']} windows, {first['scored_rows']} scored rows "
          f"(after probation); scored in {elapsed:.2f}s")
    for name, r in results.items():
        if r["inexact_windows"]:
            print(f"note: {name}: {r['inexact_windows']} window edges matched no row exactly")
    print()
    print(report(results, args.detail))
    if args.json:
        out = {name: {"windows": r["windows"], "scored_rows": r["scored_rows"],
                      "profiles": {p: {k: (None if k == "threshold" and math.isinf(v) else v)
                                       for k, v in d.items() if k != "per_file"}
                                   for p, d in r["profiles"].items()}}
               for name, r in results.items()}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
