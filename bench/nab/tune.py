#!/usr/bin/env python3
"""tune.py: runs `ippoc detect` over the NAB corpus once per setting of a grid
and scores them with loco.py --tune, so that in each leave-one-category-out
fold the setting and the threshold are both chosen on the other categories.

    tune.py [--grid bench/nab/grid.txt] [--mode auto|full|one] [--max-full N]
            [--ippoc BIN] [--nab DIR] [--out DIR] [--name NAME] [--json OUT]
            [--profile P] [NAME=RESULTS_DIR ...]

The grid file has one line per tunable: NAME VALUE [VALUE ...] ('#' starts a
comment). The defaults (`ippoc detect --tunables`) are always candidates.
--mode full tries the product of every line; one varies one tunable at a time
around the defaults (1 + sum of (values - 1) settings); auto (the default)
runs the full grid when it has at most --max-full settings (default 100),
else one at a time, and says which. Each setting's outputs go to
OUT/SETTING/CATEGORY/FILE.csv (OUT default bench/out/nab/tune; SETTING is
"default" or the changed tunables, e.g. "warm=50,fire=0.5"). Any other
NAME=RESULTS_DIR arguments (peers, the untuned detector) are scored in the
same loco.py run, beside the tuned one (named --name, default "ippoc tuned"),
which is listed right after the first of them (give the untuned detector
first).

Prints loco.py's report; exit 2 on a bad grid (unknown tunable, bad value:
ippoc's reason is shown) or a failed run.
"""
import argparse
import itertools
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import loco  # noqa: E402


class GridError(Exception):
    pass


def read_grid(path):
    """[(name, [values as written])] in file order."""
    out = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise GridError(f"{path}: {e.strerror}") from None
    with f:
        for n, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) < 2:
                raise GridError(f"{path}:{n}: '{words[0]}' has no values (NAME VALUE [VALUE ...])")
            for v in words[1:]:
                try:
                    float(v)
                except ValueError:
                    raise GridError(f"{path}:{n}: {words[0]}: '{v}' is not a number") from None
            if any(words[0] == name for name, _ in out):
                raise GridError(f"{path}:{n}: {words[0]} listed twice")
            out.append((words[0], words[1:]))
    if not out:
        raise GridError(f"{path}: no tunables listed")
    return out


def tunables(ippoc):
    """{name: default value as text} from `ippoc detect --tunables`."""
    r = subprocess.run([ippoc, "detect", "--tunables"], capture_output=True, text=True)
    if r.returncode != 0:
        raise GridError(f"{ippoc} detect --tunables: exit {r.returncode}: {r.stderr.strip()}")
    return dict(line.split("=", 1) for line in r.stdout.split())


def check_values(ippoc, grid):
    """Every value through `ippoc detect --set NAME=VALUE --tunables`, so a
    bad one stops the run before anything is computed, with ippoc's reason."""
    for name, values in grid:
        for v in values:
            r = subprocess.run([ippoc, "detect", "--set", f"{name}={v}", "--tunables"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise GridError(f"grid: {name} {v}: {r.stderr.strip()}")


def settings(grid, defaults, mode, max_full):
    """(mode used, [{name: value}] of the non-default values, the defaults
    ({}) first)."""
    lines = []
    for name, values in grid:
        if name not in defaults:
            raise GridError(f"grid: unknown tunable '{name}' (ippoc detect --tunables lists "
                            f"{', '.join(defaults)})")
        d = float(defaults[name])
        vals = [v for v in values if float(v) != d]
        lines.append((name, list(dict.fromkeys(vals))))
    full = 1
    for _, vals in lines:
        full *= len(vals) + 1
    if mode == "auto":
        mode = "full" if full <= max_full else "one"
    out = [{}]
    if mode == "full":
        axes = [[None] + vals for _, vals in lines]
        for combo in itertools.product(*axes):
            s = {name: v for (name, _), v in zip(lines, combo) if v is not None}
            if s:
                out.append(s)
    else:
        for name, vals in lines:
            out.extend({name: v} for v in vals)
    return mode, full, out


def setting_name(s):
    return ",".join(f"{k}={v}" for k, v in s.items()) or "default"


def run_setting(ippoc, data, s, dest):
    """ippoc detect --set ... over every category of data into dest."""
    sets = [a for k, v in s.items() for a in ("--set", f"{k}={v}")]
    for cat in sorted(os.listdir(data)):
        src = os.path.join(data, cat)
        if not os.path.isdir(src):
            continue
        files = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".csv"))
        if not files:
            continue
        os.makedirs(os.path.join(dest, cat), exist_ok=True)
        r = subprocess.run([ippoc, "detect", *sets, *files, "-o", os.path.join(dest, cat)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise GridError(f"ippoc detect {' '.join(sets)} ({cat}): exit {r.returncode}: {r.stderr.strip()}")


def main(argv=None):
    root = os.path.normpath(os.path.join(HERE, "..", ".."))
    ap = argparse.ArgumentParser(description="tune ippoc's detector inside leave-one-category-out folds")
    ap.add_argument("others", nargs="*", metavar="NAME=RESULTS_DIR", help="also scored, untuned")
    ap.add_argument("--grid", default=os.path.join(HERE, "grid.txt"))
    ap.add_argument("--mode", choices=["auto", "full", "one"], default="auto")
    ap.add_argument("--max-full", type=int, default=100)
    ap.add_argument("--ippoc", default=os.environ.get("IPPOC", os.path.join(root, "build", "src", "cli", "ippoc")))
    ap.add_argument("--nab", default=os.environ.get("NAB_DIR", os.path.normpath(
        os.path.join(root, "..", "shared", "datasets", "nab"))))
    ap.add_argument("--out", default=os.path.join(root, "bench", "out", "nab", "tune"))
    ap.add_argument("--name", default="ippoc tuned")
    ap.add_argument("--profile", default="standard")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    data = os.path.join(args.nab, "data")
    try:
        grid = read_grid(args.grid)
        mode, full, cands = settings(grid, tunables(args.ippoc), args.mode, args.max_full)
        check_values(args.ippoc, grid)
        t0 = time.monotonic()
        specs = []
        for s in cands:
            name = setting_name(s)
            dest = os.path.join(args.out, name)
            run_setting(args.ippoc, data, s, dest)
            specs.append(f"{args.name}:{name}={dest}")
        t1 = time.monotonic()
    except GridError as e:
        print(f"tune.py: {e}", file=sys.stderr)
        return 2
    what = (f"full grid, {len(cands)} settings" if mode == "full" else
            f"one tunable at a time around the defaults, {len(cands)} settings "
            f"(the full grid would have {full})")
    print(f"tune.py: {args.grid}: {what}; ippoc detect ran in {t1 - t0:.1f} s")
    print()
    largs = ["--labels", os.path.join(args.nab, "labels", "combined_windows.json"), "--data", data,
             "--profile", args.profile, "--tune", args.name] + (["--json", args.json] if args.json else [])
    others = list(args.others)  # the tuned detector is listed after the first (the untuned one)
    rc = loco.main(largs + others[:1] + specs + others[1:])
    print()
    print(f"tune.py: scored in {time.monotonic() - t1:.1f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
