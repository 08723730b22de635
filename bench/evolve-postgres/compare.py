#!/usr/bin/python3
"""compare.py: Debian's default, PGTune's and IPPOC's configurations, measured
in one run, interleaved, with the statistics of issue 13.

    compare.py --bench BENCH [--rounds 10] [--confirm 5] [--seed N] [--out FILE.md]
               default=FILE pgtune=FILE ippoc=FILE

Each FILE is a knob file (conf.d/ippoc.conf). A round runs every
configuration once, in a random order (a fresh shuffle per round, seeded):
install its knob file, run fitness.sh (restart, fresh copy of the template,
pg_prewarm, pgbench). --rounds rounds make the main batch (at least 10 runs of
each configuration, interleaved, so that whatever else the machine does falls
on all three alike); then --confirm more rounds make a fresh confirmation
batch, tested on its own.

Statistics (stdlib; scipy, when installed, cross-checks the p values):
- one-sided Mann-Whitney U, exact null distribution (ties: normal
  approximation with tie correction and continuity), for ippoc > default,
  ippoc > pgtune and, for reference, pgtune > default; Holm's correction
  across the three;
- the Hodges-Lehmann estimate of the relative gain, on logarithms (median of
  log(b_j) - log(a_i), back as exp - 1), with its distribution-free 95%
  interval from the U distribution's quantiles;
- for reference only (not in the verdict): the median of the per-round
  ratios and a one-sided exact sign test over the rounds, since the load of
  a shared machine drifts from round to round.
Verdict against the issue's target: IPPOC better than both the default and
PGTune (Holm p < 0.05, HL interval above +2%), by at least +15% over the
default (HL estimate), and the confirmation batch significant again
(p < 0.05 for both, Holm).

A run that fails its guards (server did not start, a failed transaction, p95
over the bound) prints no number: it is counted as failed and left out of the
statistics, and the table shows the count.
"""
import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- statistics

def _u_counts(n, m):
    """counts[u] = number of arrangements of n x's and m y's with U = u
    (the exact null distribution of Mann-Whitney's U, no ties)."""
    # f[i][j] is a list indexed by u: the recurrence
    # f(i, j, u) = f(i-1, j, u-j) + f(i, j-1, u).
    f = [[None] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 or j == 0:
                f[i][j] = [1]
                continue
            a, b = f[i - 1][j], f[i][j - 1]
            size = i * j + 1
            c = [0] * size
            for u, v in enumerate(a):
                c[u + j] += v
            for u, v in enumerate(b):
                c[u] += v
            f[i][j] = c
    return f[n][m]


def mann_whitney_greater(base, cand):
    """U of cand over base and the one-sided p that cand > base."""
    n, m = len(cand), len(base)
    u = 0.0
    for c in cand:
        for b in base:
            u += 1.0 if c > b else 0.5 if c == b else 0.0
    allv = sorted(base + cand)
    ties = len(allv) != len(set(allv))
    if not ties and n * m <= 2500:
        counts = _u_counts(n, m)
        total = sum(counts)
        p = sum(counts[int(round(u)):]) / total
        return u, p, "exact"
    # normal approximation with tie correction and continuity
    N = n + m
    groups = {}
    for v in allv:
        groups[v] = groups.get(v, 0) + 1
    tie = sum(t ** 3 - t for t in groups.values())
    var = n * m / 12.0 * ((N + 1) - tie / (N * (N - 1)))
    z = (u - n * m / 2.0 - 0.5) / math.sqrt(var) if var > 0 else 0.0
    return u, 0.5 * math.erfc(z / math.sqrt(2)), "normal"


def hodges_lehmann(base, cand, conf=0.95):
    """Relative gain of cand over base, on logs, with its interval."""
    d = sorted(math.log(c) - math.log(b) for c in cand for b in base)
    nm = len(d)
    mid = (d[(nm - 1) // 2] + d[nm // 2]) / 2.0
    counts = _u_counts(len(cand), len(base))
    total = float(sum(counts))
    # k: the largest k with P(U <= k-1) <= (1-conf)/2; the interval is the
    # k-th smallest and the k-th largest difference.
    alpha2 = (1.0 - conf) / 2.0
    acc, k = 0.0, 0
    for u, c in enumerate(counts):
        if acc + c / total > alpha2:
            k = u
            break
        acc += c / total
    k = max(k, 1)
    lo, hi = d[k - 1], d[nm - k]
    return math.exp(mid) - 1, math.exp(lo) - 1, math.exp(hi) - 1


def holm(ps):
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    adj = [0.0] * len(ps)
    run = 0.0
    for rank, i in enumerate(order):
        run = max(run, min(1.0, (len(ps) - rank) * ps[i]))
        adj[i] = run
    return adj


def median(v):
    s = sorted(v)
    n = len(s)
    return (s[(n - 1) // 2] + s[n // 2]) / 2.0 if n else float("nan")


def quantile(v, q):
    """Linear interpolation between order statistics (numpy's default)."""
    s = sorted(v)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def scipy_p(base, cand):
    try:
        from scipy.stats import mannwhitneyu  # noqa: WPS433
    except ImportError:
        return None
    return float(mannwhitneyu(cand, base, alternative="greater").pvalue)


# ---------------------------------------------------------------- running

def install(bench, conf):
    dst = os.path.join(bench, "data", "conf.d", "ippoc.conf")
    tmp = dst + ".tmp"
    shutil.copyfile(conf, tmp)
    if os.geteuid() == 0:
        import pwd
        pw = pwd.getpwnam(open(os.path.join(bench, "osuser")).read().strip())
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    os.rename(tmp, dst)


def run_once(bench, fitness, timeout):
    t0 = time.monotonic()
    try:
        r = subprocess.run([fitness, bench], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - t0, "timeout"
    lines = [l for l in r.stdout.split() if l.strip()]
    info = r.stderr.strip().splitlines()
    note = info[-1] if info else ""
    if r.returncode != 0 or not lines:
        return None, time.monotonic() - t0, note
    return float(lines[-1]), time.monotonic() - t0, note


def batch(args, configs, rounds, label, rng, log, per_round):
    res = {name: [] for name, _ in configs}
    fails = {name: 0 for name, _ in configs}
    for r in range(rounds):
        order = list(configs)
        rng.shuffle(order)
        this = {}
        per_round.append(this)
        for name, conf in order:
            install(args.bench, conf)
            tps, secs, note = run_once(args.bench, args.fitness, args.timeout)
            this[name] = tps
            if tps is None:
                fails[name] += 1
            else:
                res[name].append(tps)
            print("%s round %2d/%d  %-8s %10s  (%.1f s)  %s" % (label, r + 1, rounds, name,
                  "FAILED" if tps is None else "%.1f" % tps, secs, note if tps is None else ""),
                  file=log, flush=True)
    return res, fails


def sign_test(rounds, base, cand):
    """For reference (the machine's load drifts between rounds): the median
    of the per-round ratios cand/base and a one-sided exact sign test."""
    ratios = [r[cand] / r[base] for r in rounds if r.get(cand) and r.get(base)]
    if not ratios:
        return None, None
    n, k = len(ratios), sum(1 for x in ratios if x > 1)
    p = sum(math.comb(n, i) for i in range(k, n + 1)) / 2.0 ** n
    return median(ratios) - 1, p


def compare(res, pairs, rounds):
    out = []
    for cand, base in pairs:
        b, c = res[base], res[cand]
        if len(b) < 2 or len(c) < 2:
            out.append({"cand": cand, "base": base, "error": "fewer than 2 runs"})
            continue
        u, p, method = mann_whitney_greater(b, c)
        gain, lo, hi = hodges_lehmann(b, c)
        pr, pp = sign_test(rounds, base, cand)
        out.append({"cand": cand, "base": base, "u": u, "p": p, "method": method, "scipy_p": scipy_p(b, c),
                    "gain": gain, "lo": lo, "hi": hi, "paired_ratio": pr, "paired_p": pp})
    ps = [x.get("p", 1.0) for x in out]
    for x, a in zip(out, holm(ps)):
        x["p_holm"] = a
    return out


def pct(x):
    return "%+.1f%%" % (100 * x)


def table(res, fails, comps, title):
    lines = ["**%s**" % title, "",
             "| config | runs (failed) | median TPS | IQR | min - max |",
             "|---|---|---|---|---|"]
    for name in res:
        v = res[name]
        if v:
            lines.append("| %s | %d (%d) | %.0f | %.0f - %.0f | %.0f - %.0f |" % (
                name, len(v), fails[name], median(v), quantile(v, 0.25), quantile(v, 0.75), min(v), max(v)))
        else:
            lines.append("| %s | 0 (%d) | - | - | - |" % (name, fails[name]))
    lines += ["", "| comparison (one-sided) | HL gain [95% interval] | U | p | p (Holm) | p (scipy) "
              "| per-round ratio, sign test p (reference) |",
              "|---|---|---|---|---|---|---|"]
    for x in comps:
        if "error" in x:
            lines.append("| %s > %s | %s | | | | | |" % (x["cand"], x["base"], x["error"]))
            continue
        lines.append("| %s > %s | %s [%s, %s] | %.1f | %.4f (%s) | %.4f | %s | %s |" % (
            x["cand"], x["base"], pct(x["gain"]), pct(x["lo"]), pct(x["hi"]), x["u"], x["p"], x["method"],
            x["p_holm"], "-" if x["scipy_p"] is None else "%.4f" % x["scipy_p"],
            "-" if x["paired_ratio"] is None else "%s, %.4f" % (pct(x["paired_ratio"]), x["paired_p"])))
    return "\n".join(lines)


def verdict(main, confirm, alpha, min_gain, target):
    byk = {(x["cand"], x["base"]): x for x in main}
    cbyk = {(x["cand"], x["base"]): x for x in confirm} if confirm else {}
    why = []
    ok = True
    for base in ("default", "pgtune"):
        x = byk.get(("ippoc", base))
        if not x or "error" in x:
            why.append("ippoc vs %s: not measured" % base)
            ok = False
            continue
        sig = x["p_holm"] < alpha and x["lo"] > min_gain
        why.append("ippoc > %s: %s (p Holm %.4f, HL %s [%s, %s])" % (
            base, "significant" if sig else "NOT significant", x["p_holm"], pct(x["gain"]), pct(x["lo"]),
            pct(x["hi"])))
        ok = ok and sig
        c = cbyk.get(("ippoc", base))
        if confirm is not None:
            csig = bool(c) and "error" not in c and c["p_holm"] < alpha
            why.append("  confirmation batch: %s (p Holm %s)" % (
                "confirmed" if csig else "NOT confirmed", "%.4f" % c["p_holm"] if c and "p_holm" in c else "-"))
            ok = ok and csig
    x = byk.get(("ippoc", "default"))
    if x and "gain" in x:
        met = x["gain"] >= target
        why.append("gain over default %s vs the target %s: %s" % (
            pct(x["gain"]), pct(target), "met" if met else "missed by %.1f points" % (100 * (target - x["gain"]))))
        ok = ok and met
    return ok, why


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True, help="the directory setup.sh made")
    ap.add_argument("--rounds", type=int, default=10, help="main batch: runs of each configuration (>= 10)")
    ap.add_argument("--confirm", type=int, default=5, help="fresh confirmation batch: rounds (0: none)")
    ap.add_argument("--seed", type=int, default=20261205, help="the shuffle's seed")
    ap.add_argument("--timeout", type=float, default=180, help="per run, seconds")
    ap.add_argument("--fitness", default=os.path.join(HERE, "fitness.sh"))
    ap.add_argument("--out", help="also write the tables (markdown) and raw runs (.json next to it)")
    ap.add_argument("configs", nargs="+", help="NAME=KNOBFILE (default, pgtune, ippoc)")
    a = ap.parse_args()
    configs = []
    for c in a.configs:
        name, _, path = c.partition("=")
        if not path or not os.path.isfile(path):
            ap.error("%s: expected NAME=FILE with an existing file" % c)
        configs.append((name, path))
    if a.rounds < 2:
        ap.error("--rounds: at least 2 (the bench's rule is 10)")
    rng = random.Random(a.seed)
    names = [n for n, _ in configs]
    pairs = [(c, b) for c, b in (("ippoc", "default"), ("ippoc", "pgtune"), ("pgtune", "default"))
             if c in names and b in names]
    t0 = time.time()
    rounds, crounds = [], []
    res, fails = batch(a, configs, a.rounds, "main", rng, sys.stderr, rounds)
    comps = compare(res, pairs, rounds)
    cres = cfails = ccomps = None
    if a.confirm > 0:
        cres, cfails = batch(a, configs, a.confirm, "confirm", rng, sys.stderr, crounds)
        ccomps = compare(cres, [p for p in pairs if p[0] == "ippoc"], crounds)
    elapsed = time.time() - t0
    out = [table(res, fails, comps, "Main batch: %d interleaved rounds" % a.rounds)]
    if cres is not None:
        out += ["", table(cres, cfails, ccomps, "Confirmation batch: %d fresh interleaved rounds" % a.confirm)]
    ok, why = verdict(comps, ccomps, 0.05, 0.02, 0.15)
    out += ["", "Verdict: **%s**" % ("target met" if ok else "target not met")] + ["- " + w for w in why]
    out += ["", "(%d runs in %.0f min)" % (sum(len(v) + fails[k] for k, v in res.items()) +
                                          (sum(len(v) + cfails[k] for k, v in cres.items()) if cres else 0),
                                          elapsed / 60)]
    text = "\n".join(out)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
        with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
            json.dump({"configs": dict(configs), "main": res, "main_failed": fails, "main_tests": comps,
                       "main_rounds": rounds, "confirm_rounds": crounds,
                       "confirm": cres, "confirm_failed": cfails, "confirm_tests": ccomps}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
