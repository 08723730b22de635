#!/usr/bin/env bash
# bench/nab/run.sh: `ippoc detect` on the Numenta Anomaly Benchmark corpus,
# side by side with the published detectors and NAB's windowed-Gaussian
# baseline, all scored by the same scorer and threshold search in one run.
# The headline is the leave-one-category-out (LOCO) total; the in-sample
# score is printed beside it.
#
# 1. builds ippoc if needed (meson + ninja in $BUILD, default build/);
# 2. runs `ippoc detect` (default settings) over every file of the corpus
#    (each file from scratch) into bench/out/nab/ippoc/CATEGORY/FILE.csv;
# 3. runs the windowed-Gaussian baseline, bench/nab/peer_windowed_gaussian.py,
#    into bench/out/nab/windowed_gaussian/;
# 4. bench/nab/tune.py: ippoc once per setting of bench/nab/grid.txt into
#    bench/out/nab/tune/SETTING/, then bench/nab/loco.py over ippoc (default
#    settings), ippoc tuned (setting and threshold chosen inside each fold),
#    HTM (NAB's results/numenta), ARTime, CAD OSE (results/contextOSE) and
#    the windowed Gaussian: LOCO and in-sample, three profiles, per category;
# 5. the in-sample details of ippoc and the baseline (bench/nab/score.py:
#    thresholds, counts; --detail: per file) and bench/out/nab/scores.json;
# 6. the synthetic held-out check: bench/nab/synth.py's corpus of machine
#    metrics (fixed seed) scored for ippoc and the windowed Gaussian, at the
#    threshold each chose on NAB and by LOCO within it;
# 7. draws bench/nab/nab.png (bench/nab/plot.py; needs python3-matplotlib).
# The tables also go to bench/out/nab-DATE.md.
#
# Usage: bench/nab/run.sh [--nab DIR] [--detail] [--no-peer] [--no-tune]
#                         [--no-synth] [--no-plot]
#   --nab DIR   the NAB copy (data/, labels/, results/; default
#               ../shared/datasets/nab beside the checkout, or $NAB_DIR)
#   --detail    per-file rows at the standard-profile threshold
#   --no-peer   no windowed Gaussian and no published detectors
#   --no-tune   no grid (the LOCO of ippoc's default settings only): about
#               10 s for the whole run instead of about a minute
#   --no-synth  no synthetic held-out check
# Environment: BUILD (build dir), IPPOC (the binary), PYTHON (default
# /usr/bin/python3: Debian's, which has numpy and matplotlib).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
IPPOC=${IPPOC:-$BUILD/src/cli/ippoc}
OUTDIR=${BENCH_OUT:-$ROOT/bench/out}
NAB=${NAB_DIR:-$(cd "$ROOT/.." && pwd)/shared/datasets/nab}
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
DETAIL=()
PEER=1
PLOT=1
TUNE=1
SYNTH=1

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --nab) NAB=${2:?--nab needs a directory}; shift 2 ;;
        --nab=*) NAB=${1#*=}; shift ;;
        --detail) DETAIL=(--detail); shift ;;
        --no-peer) PEER=0; shift ;;
        --no-plot) PLOT=0; shift ;;
        --no-tune) TUNE=0; shift ;;
        --no-synth) SYNTH=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

DATA=$NAB/data
LABELS=$NAB/labels/combined_windows.json
[ -d "$DATA" ] && [ -f "$LABELS" ] || { echo "run.sh: no NAB corpus at $NAB (data/, labels/combined_windows.json)" >&2; exit 2; }

# ---- 1. build -------------------------------------------------------------------
if [ -z "${IPPOC_NO_BUILD:-}" ] && [ "$IPPOC" = "$BUILD/src/cli/ippoc" ]; then
    [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" -Dwerror=true >/dev/null
    ninja -C "$BUILD" src/cli/ippoc >/dev/null
fi
[ -x "$IPPOC" ] || { echo "run.sh: no ippoc binary at $IPPOC" >&2; exit 2; }

OURS=$OUTDIR/nab/ippoc
WG=$OUTDIR/nab/windowed_gaussian
rm -rf "$OURS"
mkdir -p "$OURS"

now_s() { date +%s.%N; }

# ---- 2. ippoc detect --------------------------------------------------------------
rows=0
t0=$(now_s)
for dir in "$DATA"/*/; do
    cat=$(basename "$dir")
    set -- "$dir"*.csv
    [ -e "$1" ] || continue
    mkdir -p "$OURS/$cat"
    "$IPPOC" detect "$@" -o "$OURS/$cat"
done
t1=$(now_s)
nfiles=$(find "$OURS" -name '*.csv' | wc -l)
rows=$(find "$OURS" -name '*.csv' -exec cat {} + | wc -l)
rows=$((rows - nfiles))
version=$("$IPPOC" --version | awk '{print $2}')
echo "ippoc detect $version: $nfiles files, $rows rows in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s (process start, CSV parse and output included)"

# ---- 3. the peer ------------------------------------------------------------------
DATE=$(date +%Y-%m-%d)
mkdir -p "$OUTDIR"
MD=$OUTDIR/nab-$DATE.md
IPPOC_NAME="ippoc detect $version"
WG_NAME="windowed Gaussian (NAB baseline)"
NAMES=("$IPPOC_NAME=$OURS")
if [ "$PEER" = 1 ]; then
    rm -rf "$WG"
    t0=$(now_s)
    "$PY" "$HERE/peer_windowed_gaussian.py" "$DATA" "$WG"
    t1=$(now_s)
    echo "  in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
    NAMES+=("$WG_NAME=$WG")
fi

# ---- 4. LOCO: ippoc, ippoc tuned per fold, the published detectors, the baseline ----
LOCO_ARGS=("${NAMES[@]}")
if [ "$PEER" = 1 ]; then
    for p in "HTM (numenta, published)=numenta" "ARTime (published)=ARTime" "CAD OSE (published)=contextOSE"; do
        if [ -d "$NAB/results/${p#*=}" ]; then
            LOCO_ARGS+=("${p%=*}=$NAB/results/${p#*=}")
        else
            echo "run.sh: no $NAB/results/${p#*=}: ${p%=*} left out" >&2
        fi
    done
fi
echo
{
    echo "# NAB: ippoc detect $version, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    t0=$(now_s)
    if [ "$TUNE" = 1 ]; then
        rm -rf "$OUTDIR/nab/tune"
        "$PY" "$HERE/tune.py" --ippoc "$IPPOC" --nab "$NAB" --out "$OUTDIR/nab/tune" \
            --name "$IPPOC_NAME, tuned per fold" --json "$OUTDIR/nab/loco.json" "${LOCO_ARGS[@]}"
    else
        "$PY" "$HERE/loco.py" --labels "$LABELS" --data "$DATA" --json "$OUTDIR/nab/loco.json" "${LOCO_ARGS[@]}"
    fi
    t1=$(now_s)
    echo
    echo "(LOCO step: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s)"
} | tee "$MD"

# ---- 5. in-sample details ------------------------------------------------------------
{
    echo
    echo "## In-sample details (thresholds chosen on all $nfiles files: the LOCO table above is the honest number)"
    echo
    "$PY" "$HERE/score.py" --labels "$LABELS" --data "$DATA" --json "$OUTDIR/nab/scores.json" \
        "${DETAIL[@]+"${DETAIL[@]}"}" "${NAMES[@]}"
    echo
    echo "- corpus: $nfiles files, $rows rows of NAB ($NAB); NAB's published scores are on its full"
    echo "  58-file corpus (windowed Gaussian: 39.6 standard), so they differ from these."
} | tee -a "$MD"
thr=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); t=next(iter(d.values()))["profiles"]["standard"]["threshold"]; print("none" if t is None else "%.6f" % t)' "$OUTDIR/nab/scores.json")
def=$(awk '$1 == "#define" && $2 == "DETECT_THRESHOLD_DEFAULT" {print $3}' "$ROOT/src/detect/detect.h")
echo
echo "ippoc's standard-profile threshold here: $thr; DETECT_THRESHOLD_DEFAULT in src/detect/detect.h: ${def:-?} (ippocd's default: keep the two in step)"
echo "markdown written to $MD"

# ---- 6. synthetic held-out --------------------------------------------------------
if [ "$SYNTH" = 1 ]; then
    SYN=$OUTDIR/nab/synth
    rm -rf "$SYN"
    t0=$(now_s)
    "$PY" "$HERE/synth.py" --out "$SYN"
    for dir in "$SYN/data"/*/; do
        cat=$(basename "$dir")
        mkdir -p "$SYN/ippoc/$cat"
        "$IPPOC" detect "$dir"*.csv -o "$SYN/ippoc/$cat"
    done
    SYN_NAMES=("$IPPOC_NAME=$SYN/ippoc")
    if [ "$PEER" = 1 ]; then
        "$PY" "$HERE/peer_windowed_gaussian.py" "$SYN/data" "$SYN/windowed_gaussian"
        SYN_NAMES+=("$WG_NAME=$SYN/windowed_gaussian")
    fi
    {
        echo
        echo "## Synthetic held-out: bench/nab/synth.py (seed 11), machine metrics nothing was tuned on"
        echo
        echo "Generated series a user would give the detector (CPU, a memory leak, a filling disk, request"
        echo "rates, latency, noise only; 1 and 5 min). The published detectors have no outputs for it."
        echo "The first table is the held-out number (each detector at the thresholds it chose on NAB);"
        echo "the second is LOCO and in-sample within this corpus."
        echo
        "$PY" "$HERE/loco.py" --labels "$SYN/labels/combined_windows.json" --data "$SYN/data" \
            --corpus "synthetic held-out" --fixed-from "$OUTDIR/nab/loco.json" --json "$SYN/loco.json" "${SYN_NAMES[@]}"
        t1=$(now_s)
        echo
        echo "(synthetic step: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s)"
    } | tee -a "$MD"
fi

# ---- 7. plot -----------------------------------------------------------------------
if [ "$PLOT" = 1 ]; then
    if "$PY" -c 'import matplotlib' 2>/dev/null; then
        peer_args=()
        [ "$PEER" = 1 ] && peer_args=(--peer "$WG" --peer-name "$WG_NAME")
        "$PY" "$HERE/plot.py" --data "$DATA" --labels "$LABELS" --results "$OURS" \
            --scores "$OUTDIR/nab/scores.json" --out "$HERE/nab.png" "${peer_args[@]+"${peer_args[@]}"}"
    else
        echo "run.sh: no matplotlib for $PY (apt-get install python3-matplotlib): no plot" >&2
    fi
fi
