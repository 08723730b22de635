#!/usr/bin/env python3
"""bench/quiet/export.py: turns the raw per-second rows of an ippocd store
(ippoc.db) into a compact recording for bench/quiet: a wide CSV, one row per
recorded second, compressed with xz -9.

  ts_ms,KEY1,KEY2,...     KEY = name{labels} (the store's canonical labels)
  1796430061000,12.5,,...  empty cell: the series had no sample that second

The store keeps one packed row per tick in its `raw` table (ts INTEGER, v BLOB:
one little-endian float32 per series id, NaN when the series had no value; see
src/memory/ring.c and store.c), for the RAM window plus a few minutes, so a
recorder runs ippocd with `[memory] ram_window = 6h`. Work on a copy of a live
store (`sqlite3 LIVE.db ".backup COPY.db"`); the file is only read.

Usage: export.py DB NAME [--out DIR] [--from MS] [--hours H] [--max-series N]
  writes DIR/NAME.csv.xz (DIR default bench/quiet/data) and prints its size.
Standard library only (and the xz program).
"""
import argparse
import csv
import io
import math
import os
import sqlite3
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def die(msg):
    print(f"export.py: {msg}", file=sys.stderr)
    sys.exit(2)


def series_keys(db):
    """{id: key} of every series in the store."""
    keys = {}
    for sid, name, labels in db.execute("SELECT id, name, labels FROM series"):
        keys[sid] = f"{name}{{{labels}}}" if labels else name
    return keys


_fmt_cache = {}


def fmt(v):
    """The shortest text that reads back as the same float32."""
    s = _fmt_cache.get(v)
    if s is not None:
        return s
    if v == int(v) and abs(v) < 1e15:
        s = str(int(v))
    else:
        want = struct.pack("<f", v)
        for p in range(6, 10):
            s = "%.*g" % (p, v)
            if struct.pack("<f", float(s)) == want:
                break
    if len(_fmt_cache) < 1_000_000:
        _fmt_cache[v] = s
    return s


def read_rows(db, t_from, t_to):
    q = "SELECT ts, v FROM raw WHERE ts >= ? AND ts <= ? ORDER BY ts"
    for ts, blob in db.execute(q, (t_from, t_to)):
        n = len(blob) // 4
        yield ts, struct.unpack("<%df" % n, blob[:n * 4])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db", help="an ippoc.db (a copy of a live one)")
    ap.add_argument("name", help="recording name (file NAME.csv.xz)")
    ap.add_argument("--out", default=os.path.join(HERE, "data"), help="output directory")
    ap.add_argument("--from", dest="t_from", type=int, default=0, help="first second, ms since the epoch")
    ap.add_argument("--hours", type=float, default=0, help="at most this many hours (0: all)")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.db):
        die(f"{args.db}: no such file")
    try:
        db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
        keys = series_keys(db)
        lo, hi, nrows = db.execute("SELECT min(ts), max(ts), count(*) FROM raw").fetchone()
    except sqlite3.Error as e:
        die(f"{args.db}: not an ippoc store: {e}")
    if not nrows:
        die(f"{args.db}: no raw rows (was ippocd run with [memory] ram_window long enough?)")
    t_from = max(lo, args.t_from)
    t_to = hi if args.hours <= 0 else min(hi, t_from + int(args.hours * 3600000) - 1)

    # pass 1: which series have at least one sample in the range
    seen = set()
    for _, vals in read_rows(db, t_from, t_to):
        for i, v in enumerate(vals):
            if v == v and i not in seen:
                seen.add(i)
    cols = sorted(i for i in seen if i in keys)
    if not cols:
        die(f"{args.db}: no samples between {t_from} and {t_to}")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{args.name}.csv.xz")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        xz = subprocess.Popen(["xz", "-9", "-c"], stdin=subprocess.PIPE, stdout=f)
        out = io.TextIOWrapper(xz.stdin, encoding="utf-8", newline="")
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["ts_ms"] + [keys[i] for i in cols])
        rows = 0
        for ts, vals in read_rows(db, t_from, t_to):
            n = len(vals)
            w.writerow([ts] + [fmt(vals[i]) if i < n and vals[i] == vals[i] and not math.isinf(vals[i]) else ""
                               for i in cols])
            rows += 1
        out.close()
        if xz.wait() != 0:
            os.unlink(tmp)
            die("xz failed")
    os.replace(tmp, path)
    size = os.path.getsize(path)
    hours = (t_to - t_from + 1000) / 3600000
    print(f"{path}: {rows} seconds ({hours:.2f} h, {rows / 3600:.2f} h recorded), {len(cols)} series, "
          f"{size} bytes ({size / 1048576:.2f} MiB)")
    recorder_episodes(db, t_from, t_to)
    return 0


def recorder_episodes(db, t_from, t_to, warmup_ms=600000):
    """What the recording ippocd itself raised over the same span (its own
    detector, whatever version it ran): a check on the replay, which gives
    the same episodes when it runs the same detector."""
    try:
        ts = [t for (t,) in db.execute(
            "SELECT ts FROM events WHERE type = 'anomaly.episode' AND json_extract(payload, '$.state') = 'open' "
            "AND ts >= ? AND ts <= ? ORDER BY ts", (t_from, t_to))]
    except sqlite3.Error:
        return
    after = [t for t in ts if t >= t_from + warmup_ms]
    days = (t_to - t_from - warmup_ms) / 86400000
    rate = f", {len(after) / days:.1f} per machine-day after the first 10 minutes" if days > 0 else ""
    print(f"  the recorder's own ippocd opened {len(ts)} anomaly episodes in this span{rate}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
