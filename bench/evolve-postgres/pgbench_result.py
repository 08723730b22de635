#!/usr/bin/python3
"""pgbench_result.py: turns one pgbench run into the bench's fitness.

Reads pgbench's report and its per-transaction logs (-l), checks the guards
(pgbench exited 0, no failed transaction, no aborted client, p95 latency at
most --p95-ms) and prints the TPS (excluding connection time) as the only
line of stdout; a summary goes to stderr. Exit 1 without a number when a
guard fails, so that the run counts as failed.

    pgbench_result.py --rc RC --p95-ms MS REPORT TXLOG...
"""
import argparse
import re
import sys


def percentile(sorted_vals, q):
    """Nearest-rank percentile of a sorted list (q in 0..100)."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-q * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def read_latencies(paths):
    """Latencies in ms and the count of failed transactions from -l logs.

    PostgreSQL 15's format: client_id transaction_no time script_no
    time_epoch time_us [schedule_lag] [retries]; time is microseconds, or
    "failed" / "skipped"."""
    lat, failed, per_script = [], 0, {}
    for path in paths:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6:
                    continue
                if parts[2] in ("failed", "skipped"):
                    failed += 1
                    continue
                lat.append(int(parts[2]) / 1000.0)
                per_script[parts[3]] = per_script.get(parts[3], 0) + 1
    lat.sort()
    return lat, failed, per_script


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rc", type=int, required=True, help="pgbench's exit status")
    ap.add_argument("--p95-ms", type=float, required=True, help="the latency guard")
    ap.add_argument("report")
    ap.add_argument("txlogs", nargs="*")
    a = ap.parse_args()
    with open(a.report) as f:
        rep = f.read()
    m = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", rep, re.M)
    tps = float(m.group(1)) if m else None
    m = re.search(r"^number of failed transactions: (\d+)", rep, re.M)
    failed_rep = int(m.group(1)) if m else 0
    lat, failed_log, per_script = read_latencies([p for p in a.txlogs if not p.endswith("*")])
    p95 = percentile(lat, 95)
    p50 = percentile(lat, 50)
    summary = ("pgbench: rc=%d tps=%s transactions=%d (by script %s) failed=%d p50=%.2fms p95=%.2fms (guard %.0fms)"
               % (a.rc, tps, len(lat), per_script, max(failed_rep, failed_log), p50, p95, a.p95_ms))
    print(summary, file=sys.stderr)
    why = None
    if a.rc != 0:
        why = "pgbench exited with status %d (a client aborted)" % a.rc
    elif tps is None:
        why = "no tps line in %s" % a.report
    elif failed_rep or failed_log:
        why = "%d failed transactions" % max(failed_rep, failed_log)
    elif not lat:
        why = "no transaction in the logs"
    elif p95 > a.p95_ms:
        why = "p95 latency %.2f ms is over the guard of %.0f ms" % (p95, a.p95_ms)
    if why:
        print("pgbench: run rejected: " + why, file=sys.stderr)
        return 1
    print("%.3f" % tps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
