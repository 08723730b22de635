#!/usr/bin/env python3
"""loco.py: leave-one-category-out NAB scores, with score.py's rules.

    loco.py [--labels L] [--data D] [--profile standard] [--json OUT]
            [--tune NAME] NAME=RESULTS_DIR [NAME=RESULTS_DIR ...]

For every detector: the in-sample score (one threshold chosen on the whole
corpus), the per-category scores (each category with its own best
threshold) and the leave-one-category-out (LOCO) score: for each category,
the threshold is chosen on the other categories only and the held-out
category is scored at it; the held-out raw scores of all folds are summed
and normalised as one corpus. A category without windows
(artificialNoAnomaly) counts only its false positives, as in NAB.

--tune NAME treats every NAME=DIR whose name starts with "NAME:" as one
candidate setting of a single detector NAME (e.g. "ippoc:warm=50"): in each
fold both the setting and the threshold are chosen on the other categories,
so the LOCO total is honest about tuning too; the in-sample row picks the
best setting on the whole corpus.

Results directories may hold "category/file.csv" or NAB's published form
"category/DETECTOR_file.csv".
"""
import argparse
import glob
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score as S  # noqa: E402


def find_result(results_dir, key):
    p = os.path.join(results_dir, key)
    if os.path.exists(p):
        return p
    cat, name = key.split("/", 1)
    hits = glob.glob(os.path.join(results_dir, cat, "*_" + name))
    if len(hits) == 1:
        return hits[0]
    raise S.ScoreError(f"{results_dir}: no result for {key}")


def load(results_dir, labels, data_dir=None):
    """score.load_detector that also finds NAB's published file names."""
    files = {}
    for key in sorted(labels):
        path = find_result(results_dir, key)
        times, scores = S.read_results(path)
        if data_dir:
            n = S.count_data_rows(os.path.join(data_dir, key))
            if n != len(times):
                raise S.ScoreError(f"{path}: {len(times)} rows, the data file has {n}")
        wins, _ = S.window_rows(times, [(S.parse_time(a), S.parse_time(b)) for a, b in labels[key]])
        files[key] = S.file_points(len(times), wins, scores, key)
    return files


def subset(files, cats, keep):
    return {k: v for k, v in files.items() if (k.split("/", 1)[0] in cats) == keep}


def nwin_of(files):
    return sum(len(c) for _, c in files.values())


def curve_of(files, prof):
    pts = sorted((p for pts, _ in files.values() for p in pts), key=lambda p: p[0], reverse=True)
    return S.sweep(pts, nwin_of(files), prof)


def best(files, prof):
    """(threshold, raw) best on files."""
    return S.best_threshold(curve_of(files, prof))


def evaluate(cands, prof):
    """cands: {setting: files}. Returns in-sample, per-category and LOCO
    results choosing the setting and threshold jointly."""
    any_files = next(iter(cands.values()))
    cats = sorted({k.split("/", 1)[0] for k in any_files})
    total_win = nwin_of(any_files)
    # in-sample
    ins = max(((best(f, prof)[1], s, best(f, prof)[0]) for s, f in cands.items()), key=lambda x: x[0])
    out = {"in_sample": {"score": S.normalise(ins[0], total_win, prof), "raw": ins[0],
                         "setting": ins[1], "threshold": ins[2]}}
    # per category, own best threshold (and setting)
    per = {}
    for c in cats:
        r = max(((best(subset(f, {c}, True), prof)[1], s) for s, f in cands.items()), key=lambda x: x[0])
        nw = nwin_of(subset(any_files, {c}, True))
        per[c] = {"score": S.normalise(r[0], nw, prof) if nw else None, "raw": r[0], "setting": r[1]}
    out["per_category"] = per
    # leave one category out
    folds, raw_sum = {}, 0.0
    for c in cats:
        train = max(((best(subset(f, {c}, False), prof), s) for s, f in cands.items()),
                    key=lambda x: x[0][1])
        (thr, _), setting = train
        held = subset(cands[setting], {c}, True)
        raw, counts, _ = S.score_at(held, thr, prof)
        nw = nwin_of(held)
        folds[c] = {"setting": setting, "threshold": None if math.isinf(thr) else thr, "raw": raw,
                    "score": S.normalise(raw, nw, prof) if nw else None, "counts": counts}
        raw_sum += raw
    out["loco"] = {"score": S.normalise(raw_sum, total_win, prof), "raw": raw_sum, "folds": folds}
    return out, cats


def fmt(x):
    return "-" if x is None else f"{x:.1f}"


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    nab = os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "datasets", "nab"))
    ap = argparse.ArgumentParser(description="leave-one-category-out NAB scores")
    ap.add_argument("results", nargs="+", metavar="NAME=RESULTS_DIR")
    ap.add_argument("--labels", default=os.path.join(nab, "labels", "combined_windows.json"))
    ap.add_argument("--data")
    ap.add_argument("--profile", default="standard", choices=S.PROFILE_ORDER)
    ap.add_argument("--tune", action="append", default=[], metavar="NAME",
                    help="NAME:SETTING=DIR entries are candidate settings of detector NAME")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    prof = S.PROFILES[args.profile]
    try:
        with open(args.labels, encoding="utf-8") as f:
            labels = json.load(f)
    except (OSError, ValueError) as e:
        print(f"loco.py: {args.labels}: {e}", file=sys.stderr)
        return 2
    groups = {}
    for spec in args.results:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            print(f"loco.py: '{spec}': expected NAME=RESULTS_DIR", file=sys.stderr)
            return 2
        det, setting = name, ""
        for t in args.tune:
            if name.startswith(t + ":"):
                det, setting = t, name[len(t) + 1:]
        try:
            groups.setdefault(det, {})[setting] = load(path, labels, args.data)
        except S.ScoreError as e:
            print(f"loco.py: {e}", file=sys.stderr)
            return 2
    results, cats = {}, None
    for det, cands in groups.items():
        results[det], cats = evaluate(cands, prof)
    print(f"NAB {args.profile} profile, {len(labels)} files")
    print()
    print("| detector | LOCO | in-sample | " + " | ".join(cats) + " |")
    print("|---|---|---|" + "---|" * len(cats))
    for det, r in results.items():
        cols = [fmt(r["per_category"][c]["score"]) for c in cats]
        print(f"| {det} | {fmt(r['loco']['score'])} | {fmt(r['in_sample']['score'])} | " + " | ".join(cols) + " |")
    print()
    print("LOCO folds (held-out category: threshold and setting chosen on the others -> held-out score):")
    for det, r in results.items():
        for c, f in r["loco"]["folds"].items():
            thr = "none" if f["threshold"] is None else f"{f['threshold']:.4f}"
            st = f" setting {f['setting']}" if f["setting"] else ""
            k = f["counts"]
            print(f"  {det}: {c}: thr {thr}{st} -> {fmt(f['score'])} (raw {f['raw']:.2f}; "
                  f"{k['detected']}/{k['windows']} windows, {k['fp']} FP)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, default=lambda x: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
