#!/usr/bin/env python3
"""plot.py: a picture of `ippoc detect` on a few NAB series: each series with
its labelled anomaly windows shaded and the rows it detected marked, and
beneath it the anomaly score with the corpus threshold (standard profile)
drawn, the probation rows greyed, and the peer's score for comparison.

    plot.py --data DATA_DIR --results OURS_DIR --scores scores.json
            [--labels combined_windows.json] [--peer PEER_DIR]
            [--name NAME] [--peer-name NAME] [--out nab.png] [FILE_KEY ...]

scores.json is score.py --json's output (the thresholds come from it). Needs
matplotlib (python3-matplotlib).
"""
import argparse
import json
import os
import sys
from datetime import datetime

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import score  # noqa: E402

DEFAULT_FILES = [
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",
    "realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv",
    "realAdExchange/exchange-2_cpc_results.csv",
    "realTraffic/speed_6005.csv",
]


def read_series(path):
    """(datetimes, values, scores); scores is None without that column."""
    ts, vals, scores = [], [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        si = header.index("anomaly_score") if "anomaly_score" in header else None
        for line in f:
            cols = line.rstrip("\r\n").split(",")
            if len(cols) < 2:
                continue
            ts.append(datetime.fromisoformat(cols[0]))
            vals.append(float(cols[1]))
            if si is not None:
                scores.append(float(cols[si]))
    return ts, vals, (scores if si is not None else None)


def main(argv=None):
    here_nab = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "datasets", "nab"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(here_nab, "data"))
    ap.add_argument("--labels", default=os.path.join(here_nab, "labels", "combined_windows.json"))
    ap.add_argument("--results", required=True)
    ap.add_argument("--scores", required=True)
    ap.add_argument("--name", help="the detector's name in scores.json (default: the first)")
    ap.add_argument("--peer")
    ap.add_argument("--peer-name", default="peer")
    ap.add_argument("--out", default=os.path.join(HERE, "nab.png"))
    ap.add_argument("files", nargs="*")
    args = ap.parse_args(argv)

    labels = json.load(open(args.labels, encoding="utf-8"))
    scores_json = json.load(open(args.scores, encoding="utf-8"))
    name = args.name or next(iter(scores_json))
    prof = scores_json[name]["profiles"]["standard"]
    thr = prof["threshold"]
    peer_thr = None
    if args.peer and args.peer_name in scores_json:
        peer_thr = scores_json[args.peer_name]["profiles"]["standard"]["threshold"]
    files = args.files or DEFAULT_FILES
    thr_txt = "none (never fires)" if thr is None else f"{thr:.3f}"

    fig = plt.figure(figsize=(13, 3.3 * len(files) + 0.6))
    outer = fig.add_gridspec(len(files), 1, hspace=0.42, top=1 - 0.5 / (3.3 * len(files) + 0.6),
                             bottom=0.03, left=0.06, right=0.98)
    for k, key in enumerate(files):
        ts, vals, _ = read_series(os.path.join(args.data, key))
        _, _, ours = read_series(os.path.join(args.results, key))
        peer = read_series(os.path.join(args.peer, key))[2] if args.peer else None
        n = len(ts)
        prob = score.probation_rows(n)
        inner = outer[k].subgridspec(2, 1, height_ratios=[2.2, 1], hspace=0.06)
        ax = fig.add_subplot(inner[0])
        axs = fig.add_subplot(inner[1], sharex=ax)
        for a, b in labels.get(key, []):
            a, b = datetime.fromisoformat(a), datetime.fromisoformat(b)
            for x in (ax, axs):
                x.axvspan(a, b, color="tab:orange", alpha=0.22, lw=0)
        for x in (ax, axs):
            x.axvspan(ts[0], ts[prob - 1] if prob else ts[0], color="0.85", alpha=0.6, lw=0)
        ax.plot(ts, vals, lw=0.6, color="tab:blue")
        hits = [i for i in range(prob, n) if thr is not None and ours[i] >= thr]
        ax.scatter([ts[i] for i in hits], [vals[i] for i in hits], s=9, color="tab:red", zorder=3,
                   label=f"detected (score >= {thr_txt})")
        nw = len(labels.get(key, []))
        ax.set_title(f"{key}  ({n} rows, {nw} window{'s' if nw != 1 else ''})", fontsize=9, loc="left")
        ax.tick_params(labelbottom=False, labelsize=7)
        if peer is not None:
            axs.plot(ts, peer, lw=0.5, color="0.55", label=f"{args.peer_name} score")
        axs.plot(ts, ours, lw=0.7, color="tab:green", label=f"{name} score")
        if thr is not None:
            axs.axhline(thr, color="tab:red", lw=0.8, ls="--", label=f"threshold {thr_txt}")
        axs.set_ylim(-0.03, 1.03)
        axs.tick_params(labelsize=7)
        axs.set_ylabel("score", fontsize=7)
        if k == 0:
            ax.legend(fontsize=7, loc="upper left")
            axs.legend(fontsize=7, loc="upper left", ncol=3)
    s = prof["score"]
    title = (f"NAB: {name}, standard profile {s:.1f} (threshold {thr_txt}); orange: labelled windows, "
             f"grey: probation")
    if peer_thr is not None:
        title += f"; {args.peer_name} {scores_json[args.peer_name]['profiles']['standard']['score']:.1f}"
    fig.suptitle(title, fontsize=10, y=1 - 0.15 / (3.3 * len(files) + 0.6))
    fig.savefig(args.out, dpi=80, metadata={"Software": None})
    print(f"plot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
