#!/usr/bin/env python3
"""loco.py: leave-one-category-out NAB scores, with score.py's rules.

    loco.py [--labels L] [--data D] [--profile standard] [--json OUT]
            [--tune NAME] [--fixed-from LOCO.json] [--corpus NAME]
            NAME=RESULTS_DIR [NAME=RESULTS_DIR ...]

For every detector and each of the three profiles: the in-sample score (one
threshold chosen on the whole corpus, as score.py does) and the
leave-one-category-out (LOCO) score: for each category, the threshold is
chosen on the other categories only and the held-out category is scored at
it; the held-out raw scores of all folds are summed and normalised as one
corpus (a category without windows, artificialNoAnomaly, adds only its false
positives, as in NAB). Then, for --profile (default standard), the
per-category scores (each category with its own best threshold: in-sample)
and every fold's threshold, setting and held-out score.

--tune NAME treats every NAME=DIR whose name starts with "NAME:" as one
candidate setting of a single detector NAME (e.g. "ippoc:warm-50=DIR"): in
each fold both the setting and the threshold are chosen on the other
categories, so the LOCO total is honest about tuning too; the in-sample
column picks the best setting on the whole corpus (and is what tuning on
all of the corpus would report). Among settings with equal training totals
the first one given wins (give the defaults first).

A NAME may itself contain "=" ("ippoc:warm=50=DIR"): the directory is what
follows the first "=" that leaves an existing directory.

Results directories may hold "category/file.csv" or NAB's published form
"category/DETECTOR_file.csv".

How: each setting's scored rows are sorted once; one sweep over them, highest
score first, keeps every category's running raw total, which gives at every
threshold the whole corpus's total, each category's and each fold's training
total (all minus the held-out category). The threshold a fold's training
sweep alone would choose is the same (a threshold that is only a held-out
score leaves the training total unchanged, and ties keep the highest). The
chosen thresholds are then scored exactly with score.score_at.
"""
import argparse
import functools
import glob
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score as S  # noqa: E402

# A tuning run reads the same timestamps once per setting: parse each text once
# (parse_time is pure), and count each data file's rows once.
S.parse_time = functools.lru_cache(maxsize=None)(S.parse_time)
_count_rows = functools.lru_cache(maxsize=None)(S.count_data_rows)

SHORT = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}


def find_result(results_dir, key):
    """RESULTS_DIR/category/file.csv, else NAB's category/DETECTOR_file.csv
    (DETECTOR: one name without '_', so "cpu.csv" is not taken for
    "numenta_ec2_cpu.csv")."""
    p = os.path.join(results_dir, key)
    if os.path.exists(p):
        return p
    cat, name = key.split("/", 1)
    hits = [h for h in glob.glob(os.path.join(results_dir, cat, "*_" + glob.escape(name)))
            if "_" not in os.path.basename(h)[:-len(name) - 1]]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise S.ScoreError(f"{results_dir}: {len(hits)} results for {key}: {', '.join(sorted(hits))}")
    raise S.ScoreError(f"{results_dir}: no result for {key}")


def load(results_dir, labels, data_dir=None):
    """score.load_detector that also finds NAB's published file names:
    {file key: (points, counted windows)}."""
    files = {}
    for key in sorted(labels):
        path = find_result(results_dir, key)
        times, scores = S.read_results(path)
        if data_dir:
            n = _count_rows(os.path.join(data_dir, key))
            if n != len(times):
                raise S.ScoreError(f"{path}: {len(times)} rows, the data file has {n}")
        wins, _ = S.window_rows(times, [(S.parse_time(a), S.parse_time(b)) for a, b in labels[key]])
        files[key] = S.file_points(len(times), wins, scores, key)
    return files


def category(key):
    return key.split("/", 1)[0]


def subset(files, cats, keep):
    return {k: v for k, v in files.items() if (category(k) in cats) == keep}


def nwin_of(files):
    return sum(len(c) for _, c in files.values())


class Setting:
    """One candidate's scored rows, sorted once, tagged by category."""

    def __init__(self, files, cats):
        self.files = files
        ci = {c: i for i, c in enumerate(cats)}
        self.nwin = [0] * len(cats)
        pts = []
        for key, (fp, counted) in files.items():
            i = ci[category(key)]
            self.nwin[i] += len(counted)
            pts.extend((s, w, u, i) for s, w, u in fp)
        pts.sort(key=lambda p: p[0], reverse=True)
        self.points = pts

    def sweep(self, prof):
        """Best (threshold, raw) of the whole corpus, of each category and of
        each fold's training set (all but that category), from one sweep;
        the highest threshold among equal totals, as score.best_threshold."""
        a_tp, a_fp, a_fn = prof
        ncat = len(self.nwin)
        tot = [-a_fn * n for n in self.nwin]
        total = -a_fn * sum(self.nwin)
        train = [-a_fn * (sum(self.nwin) - n) for n in self.nwin]  # own sums: no rounding from held-out rows
        b_all = (math.inf, total)
        b_cat = [(math.inf, t) for t in tot]
        b_train = [(math.inf, t) for t in train]
        best = {}
        pts, i, n = self.points, 0, len(self.points)
        while i < n:
            thr = pts[i][0]
            touched = set()
            while i < n and pts[i][0] == thr:
                _, win, unit, c = pts[i]
                if win is None:
                    d = unit * a_fp
                else:
                    v = unit * a_tp
                    b = best.get(win, -a_fn)
                    d = v - b if v > b else 0.0
                    if v > b:
                        best[win] = v
                if d:
                    tot[c] += d
                    total += d
                    for j in range(ncat):
                        if j != c:
                            train[j] += d
                    touched.add(c)
                i += 1
            if total > b_all[1]:
                b_all = (thr, total)
            for c in touched:
                if tot[c] > b_cat[c][1]:
                    b_cat[c] = (thr, tot[c])
            for c in range(ncat):
                if train[c] > b_train[c][1]:
                    b_train[c] = (thr, train[c])
        return b_all, b_cat, b_train


def thr_json(t):
    return None if t is None or math.isinf(t) else t


def choose(sweeps, nwin, cats, prof, files_of):
    """From each setting's sweep ({setting: Setting.sweep(prof)}, the defaults
    first), the in-sample, per-category and LOCO results for one profile,
    choosing the setting and threshold jointly; files_of(setting) gives the
    files to score a chosen threshold on exactly."""
    order = list(sweeps)
    total_win = sum(nwin)

    def pick(key):  # the first setting with the highest raw
        return max(order, key=lambda s: (key(s), -order.index(s)))

    s_in = pick(lambda s: sweeps[s][0][1])
    thr = sweeps[s_in][0][0]
    raw, counts, _ = S.score_at(files_of(s_in), thr, prof)
    out = {"in_sample": {"score": S.normalise(raw, total_win, prof), "raw": raw, "setting": s_in,
                         "threshold": thr_json(thr), "counts": counts}}
    per, folds, raw_sum = {}, {}, 0.0
    for i, c in enumerate(cats):
        nw = nwin[i]
        s_c = pick(lambda s: sweeps[s][1][i][1])
        t_c = sweeps[s_c][1][i][0]
        r_c, k_c, _ = S.score_at(subset(files_of(s_c), {c}, True), t_c, prof)
        per[c] = {"score": S.normalise(r_c, nw, prof) if nw else None, "raw": r_c, "setting": s_c,
                  "threshold": thr_json(t_c), "counts": k_c}
        s_f = pick(lambda s: sweeps[s][2][i][1])
        t_f = sweeps[s_f][2][i][0]
        r_f, k_f, _ = S.score_at(subset(files_of(s_f), {c}, True), t_f, prof)
        folds[c] = {"setting": s_f, "threshold": thr_json(t_f), "train_raw": sweeps[s_f][2][i][1],
                    "raw": r_f, "score": S.normalise(r_f, nw, prof) if nw else None, "counts": k_f}
        raw_sum += r_f
    out["per_category"] = per
    out["loco"] = {"score": S.normalise(raw_sum, total_win, prof), "raw": raw_sum, "folds": folds}
    return out


def evaluate_all(cands, profiles=S.PROFILE_ORDER):
    """cands: {setting: files, or a function returning them} (the defaults
    first). Returns ({profile: choose()'s result}, categories). Settings given
    as functions are loaded once to sweep and dropped (a grid of settings
    does not sit in memory), then again only if chosen somewhere."""
    loaded, sweeps, cats, nwin = {}, {}, None, None
    for s, f in cands.items():
        files = f() if callable(f) else f
        if cats is None:
            cats = sorted({category(k) for k in files})
        st = Setting(files, cats)
        if nwin is None:
            nwin = st.nwin
        elif st.nwin != nwin:
            raise S.ScoreError(f"setting '{s}': {sum(st.nwin)} windows, the first setting has {sum(nwin)}")
        sweeps[s] = {p: st.sweep(S.PROFILES[p]) for p in profiles}
        if not callable(f):
            loaded[s] = files

    def files_of(s):
        if s not in loaded:
            loaded[s] = cands[s]()
        return loaded[s]

    return {p: choose({s: sw[p] for s, sw in sweeps.items()}, nwin, cats, S.PROFILES[p], files_of)
            for p in profiles}, cats


def evaluate(cands, prof_name="standard"):
    """One profile's result for {setting: files}, and the categories."""
    res, cats = evaluate_all(cands, [prof_name])
    return res[prof_name], cats


def at_fixed(files, thr, pname):
    """The corpus scored at a threshold chosen elsewhere (None: never fires)."""
    prof = S.PROFILES[pname]
    t = math.inf if thr is None else thr
    raw, counts, _ = S.score_at(files, t, prof)
    return {"threshold": thr, "raw": raw, "score": S.normalise(raw, nwin_of(files), prof), "counts": counts}


def report_fixed(results, src):
    lines = [f"Held out entirely: each detector at the in-sample thresholds it chose in {os.path.basename(src)}",
             "", "| detector | standard | low FP | low FN | threshold (standard) | windows detected | FP |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for det, r in results.items():
        if "fixed" not in r["standard"]:
            continue
        fs = r["standard"]["fixed"]
        thr = "none" if fs["threshold"] is None else f"{fs['threshold']:.4f}"
        k = fs["counts"]
        lines.append(f"| {det} | **{fmt(fs['score'])}** | {fmt(r['reward_low_FP_rate']['fixed']['score'])} | "
                     f"{fmt(r['reward_low_FN_rate']['fixed']['score'])} | {thr} | {k['detected']}/{k['windows']} | "
                     f"{k['fp']} |")
    return "\n".join(lines)


def fmt(x):
    return "-" if x is None else f"{x:.1f}"


def split_spec(spec):
    """NAME=DIR, where NAME may hold '=': the first split whose DIR exists,
    else the first '='."""
    for i, ch in enumerate(spec):
        if ch == "=" and i > 0 and os.path.isdir(spec[i + 1:]):
            return spec[:i], spec[i + 1:]
    name, sep, path = spec.partition("=")
    return (name, path) if sep and name and path else (None, None)


def report(results, cats, profile, total_files, corpus="NAB"):
    lines = []
    add = lines.append
    add(f"{corpus}, {total_files} files: leave-one-category-out (LOCO: threshold and settings chosen on the "
        "other four categories, scored on the held-out one) beside the in-sample score (chosen on all)")
    add("")
    head = " | ".join(f"LOCO {SHORT[p]} | in-sample {SHORT[p]}" for p in S.PROFILE_ORDER)
    add(f"| detector | {head} |")
    add("|---|" + "---:|" * (2 * len(S.PROFILE_ORDER)))
    for det, r in results.items():
        cols = " | ".join(f"**{fmt(r[p]['loco']['score'])}** | {fmt(r[p]['in_sample']['score'])}"
                          if p == "standard" else
                          f"{fmt(r[p]['loco']['score'])} | {fmt(r[p]['in_sample']['score'])}"
                          for p in S.PROFILE_ORDER)
        add(f"| {det} | {cols} |")
    add("")
    add(f"Per category, {profile} profile: LOCO (held out) / in-sample (the category's own best threshold)")
    add("")
    add("| detector | " + " | ".join(cats) + " |")
    add("|---|" + "---:|" * len(cats))
    for det, r in results.items():
        rp = r[profile]
        cols = []
        for c in cats:
            f, pc = rp["loco"]["folds"][c], rp["per_category"][c]
            if f["score"] is None:  # no windows: only its false positives count
                cols.append(f"{f['raw']:+.2f} raw ({f['counts']['fp']} FP)")
            else:
                cols.append(f"{fmt(f['score'])} / {fmt(pc['score'])}")
        add(f"| {det} | " + " | ".join(cols) + " |")
    add("")
    add(f"LOCO folds, {profile} profile (held-out category: threshold and setting chosen on the others "
        "-> held-out score):")
    add("")
    for det, r in results.items():
        rp = r[profile]
        ins = rp["in_sample"]
        st = f", setting {ins['setting']}" if ins["setting"] else ""
        thr = "none" if ins["threshold"] is None else f"{ins['threshold']:.4f}"
        add(f"- {det}: in-sample thr {thr}{st} -> {fmt(ins['score'])} "
            f"({ins['counts']['detected']}/{ins['counts']['windows']} windows, {ins['counts']['fp']} FP)")
        for c, f in rp["loco"]["folds"].items():
            thr = "none" if f["threshold"] is None else f"{f['threshold']:.4f}"
            st = f" setting {f['setting']}" if f["setting"] else ""
            k = f["counts"]
            add(f"  - {c}: thr {thr}{st} -> {fmt(f['score'])} (raw {f['raw']:.2f}; "
                f"{k['detected']}/{k['windows']} windows, {k['fp']} FP)")
    return "\n".join(lines)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    nab = os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "datasets", "nab"))
    ap = argparse.ArgumentParser(description="leave-one-category-out NAB scores")
    ap.add_argument("results", nargs="+", metavar="NAME=RESULTS_DIR")
    ap.add_argument("--labels", default=os.path.join(nab, "labels", "combined_windows.json"))
    ap.add_argument("--data", help="data dir: check each result has as many rows as its data file")
    ap.add_argument("--profile", default="standard", choices=S.PROFILE_ORDER,
                    help="profile of the per-category table and the folds (the totals show all three)")
    ap.add_argument("--tune", action="append", default=[], metavar="NAME",
                    help="NAME:SETTING=DIR entries are candidate settings of detector NAME")
    ap.add_argument("--corpus", default="NAB", help="the corpus's name in the report")
    ap.add_argument("--fixed-from", metavar="LOCO.json",
                    help="also score each detector named in this earlier loco.py --json output at the "
                         "in-sample thresholds it chose there (per profile): a corpus held out entirely")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    fixed = {}
    if args.fixed_from:
        try:
            with open(args.fixed_from, encoding="utf-8") as f:
                fixed = json.load(f)
        except (OSError, ValueError) as e:
            print(f"loco.py: {args.fixed_from}: {e}", file=sys.stderr)
            return 2
    try:
        with open(args.labels, encoding="utf-8") as f:
            labels = json.load(f)
    except (OSError, ValueError) as e:
        print(f"loco.py: {args.labels}: {e}", file=sys.stderr)
        return 2
    groups = {}
    for spec in args.results:
        name, path = split_spec(spec)
        if not name:
            print(f"loco.py: '{spec}': expected NAME=RESULTS_DIR", file=sys.stderr)
            return 2
        det, setting = name, ""
        for t in args.tune:
            if name.startswith(t + ":"):
                det, setting = t, name[len(t) + 1:]
        if setting in groups.get(det, {}):
            print(f"loco.py: '{name}' given twice", file=sys.stderr)
            return 2
        if setting:  # one of a grid: loaded when needed
            groups.setdefault(det, {})[setting] = functools.partial(load, path, labels, args.data)
            continue
        try:
            groups.setdefault(det, {})[setting] = load(path, labels, args.data)
        except S.ScoreError as e:
            print(f"loco.py: {e}", file=sys.stderr)
            return 2
    for t in args.tune:
        if t not in groups:
            print(f"loco.py: --tune {t}: no {t}:SETTING=DIR given", file=sys.stderr)
            return 2
    results, cats = {}, None
    for det, cands in groups.items():
        try:
            results[det], cats = evaluate_all(cands)
        except S.ScoreError as e:
            print(f"loco.py: {e}", file=sys.stderr)
            return 2
    for det, r in results.items():
        for p in S.PROFILE_ORDER:
            if det in fixed and det in groups and "" in groups[det]:
                r[p]["fixed"] = at_fixed(groups[det][""], fixed[det][p]["in_sample"]["threshold"], p)
    if any("fixed" in r["standard"] for r in results.values()):
        print(report_fixed(results, args.fixed_from))
        print()
    print(report(results, cats, args.profile, len(labels), args.corpus))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
