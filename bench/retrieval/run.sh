#!/usr/bin/env bash
# bench/retrieval/run.sh: the knowledge store's known-item search over every
# man page installed here (issue 12's retrieval benchmark).
#
# 1. renders the pages to text with groff and writes the corpus
#    (extract.py; cached in $BUILD/bench-retrieval/corpus.jsonl, rebuilt when
#    a man directory is newer or with --fresh);
# 2. builds and runs the benchmark (retrieval.c) on one core (taskset -c 0
#    when there is taskset): every page added to a fresh store through
#    mem_know_add, each page's description asked in three modes (BM25 alone,
#    the peer; vector alone; hybrid), recall@1, recall@10 and MRR over all
#    pages and over the two halves of a fixed-seed split (tune / held out),
#    index time, query latency p50/p95, then the same queries' latency with
#    the store padded with synthetic pages to 100,000 chunks;
# 3. prints the table with hybrid vs BM25 and the targets (hybrid recall@10
#    at least 5 points above BM25's; p95 at most 20 ms at 100,000 chunks),
#    also written to bench/out/retrieval-DATE.md.
#
# Usage: bench/retrieval/run.sh [--fresh] [--queries N] [--pad N] [--embed-only] [--fusions]
#   --queries N    ask N of the pages' queries (spread over the corpus; default all)
#   --pad N        chunks to pad the store to for the latency at scale (default 100000)
#   --embed-only   score the built-in embedding alone (no store; for tuning it)
#   --fusions      also score weighted reciprocal-rank fusions of the BM25 and
#                  vector lists, computed by the benchmark (for choosing the store's)
#   --fresh        render the man pages again
# Environment: BUILD (build dir), BENCH_OUT (where the table goes).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OUTDIR=${BENCH_OUT:-$ROOT/bench/out}
ARGS=()
FRESH=()
while [ $# -gt 0 ]; do
    case "$1" in
        --fresh) FRESH=(--force); shift ;;
        --queries) ARGS+=(--queries "${2:?--queries needs a number}"); shift 2 ;;
        --pad) ARGS+=(--pad "${2:?--pad needs a number}"); shift 2 ;;
        --embed-only) ARGS+=(--embed-only); shift ;;
        --fusions) ARGS+=(--fusions); shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

command -v groff >/dev/null || { echo "run.sh: groff is not installed (apt-get install groff-base)" >&2; exit 2; }
[ -d /usr/share/man/man2 ] || echo "run.sh: note: no /usr/share/man/man2: install manpages and manpages-dev (make deps-test)" >&2
CORPUS=$BUILD/bench-retrieval/corpus.jsonl
python3 "$HERE/extract.py" "$CORPUS" "${FRESH[@]+"${FRESH[@]}"}"

[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" -Dwerror=true >/dev/null
ninja -C "$BUILD" bench/retrieval >/dev/null
BIN=$BUILD/bench/retrieval
PIN=()
command -v taskset >/dev/null && PIN=(taskset -c 0)

machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
echo "retrieval: $BIN on ${PIN[*]:-any core}; machine: $machine"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("corpus: %d page files, %d kept; dropped: %s" % (c["files"], c["kept"], ", ".join("%d %s" % (v, k) for k, v in sorted(c["dropped"].items()))))' "$CORPUS.counts" 2>/dev/null || true
OUT=$("${PIN[@]}" "$BIN" "$CORPUS" --kv "${ARGS[@]+"${ARGS[@]}"}")
echo "$OUT" | grep -v '^kv '
case " ${ARGS[*]-} " in *" --embed-only "*) exit 0 ;; esac

DATE=$(date -u +%Y-%m-%d)
mkdir -p "$OUTDIR"
MD=$OUTDIR/retrieval-$DATE.md
echo "$OUT" | python3 -c '
import sys
kv = {}
for ln in sys.stdin:
    if ln.startswith("kv "):
        k, v = ln[3:].strip().split("=", 1)
        kv[k] = v.split()
def row(mode, part):
    n, r1, r10, mrr = map(float, kv[mode + "_" + part])
    return n, r1 * 100, r10 * 100, mrr
pages, chunks, secs = kv["index"]
print("| mode | pages | recall@1 | recall@10 | MRR | held-out recall@10 | held-out MRR | p50 ms | p95 ms | p50 / p95 ms at %s chunks |" % (kv.get("pad", ["", chunks])[1]))
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for mode in ("bm25", "vector", "hybrid"):
    n, r1, r10, mrr = row(mode, "all")
    _, _, h10, hmrr = row(mode, "held")
    p50, p95 = map(float, kv[mode + "_lat"])
    pad = kv.get(mode + "_lat_pad")
    padtxt = "%.2f / %.2f" % tuple(map(float, pad)) if pad else "-"
    print("| %s | %d | %.1f%% | %.1f%% | %.3f | %.1f%% | %.3f | %.2f | %.2f | %s |" % (mode, n, r1, r10, mrr, h10, hmrr, p50, p95, padtxt))
_, _, b10, bm = row("bm25", "all")
_, _, y10, ym = row("hybrid", "all")
_, _, hb10, _ = row("bm25", "held")
_, _, hy10, _ = row("hybrid", "held")
print()
print("- index: %s pages, %s chunks in %s s" % (pages, chunks, secs))
print("- hybrid vs BM25: recall@10 %+.1f points (held-out half %+.1f), MRR x%.2f" % (y10 - b10, hy10 - hb10, ym / bm if bm else 0))
print("- target: hybrid recall@10 >= BM25 + 5 points: **%s**" % ("met" if y10 - b10 >= 5 else "not met"))
pad = kv.get("hybrid_lat_pad")
if pad:
    p95 = max(float(pad[1]), float(kv["bm25_lat_pad"][1]))
    print("- target: query p95 <= 20 ms at %s chunks (one core): **%s** (%.2f ms)" % (kv["pad"][1], "met" if p95 <= 20 else "not met", p95))
' | tee "$MD"
echo "- machine: $machine; $(date -u +%Y-%m-%dT%H:%MZ)" >>"$MD"
echo
echo "markdown written to $MD"
