#!/usr/bin/env bash
# bench/quiet/run.sh: how often ippocd's default anomaly detection raises an
# episode on a healthy machine (issue 11: at most 2 per machine-day after a
# warm-up of at most 10 minutes), and whether it still catches the faults of
# the heal scenarios (--inject).
#
# 1. builds quiet-replay if needed (meson + ninja in $BUILD, default build/);
# 2. with --export NAME=DB: turns an ippocd store (a copy of a recorder's
#    ippoc.db, taken with sqlite3 LIVE ".backup COPY") into the recording
#    bench/quiet/data/NAME.csv.xz (bench/quiet/export.py; every series, one
#    row per second, xz -9);
# 3. replays each recording (default: every bench/quiet/data/*.csv.xz)
#    through ippocd's own detection path (a temporary memory store and the
#    detect registry with the default [detect] settings, the recorded
#    timestamps, as fast as it goes: bench/quiet/replay.c) and prints per
#    recording the hours replayed, series, episodes after the warm-up,
#    episodes per machine-day against the target, and the series that opened
#    them with their reason;
# 4. with --inject: adds a leak, a CPU hog, a filling disk and a hang to
#    copies of each recording (bench/quiet/inject.py) and prints whether and
#    how fast each was caught, the episode and the series that fired;
# 5. writes the markdown to bench/out/quiet-DATE.md.
#
# Usage: bench/quiet/run.sh [--export NAME=DB]... [--inject] [--warmup DUR]
#                           [--config FILE] [RECORDING...]
#   --export NAME=DB  export DB to bench/quiet/data/NAME.csv.xz first (repeatable)
#   --inject          also the injected faults
#   --warmup DUR      episodes opened in the first DUR are not counted (default 10m)
#   --at MINUTES      when the injected faults start (default: warm-up + 50 min)
#   --config FILE     an ippocd configuration whose [detect] section is used
#                     instead of the defaults (to try settings)
# Environment: BUILD (build dir), QUIET_REPLAY (the binary), PYTHON.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
BIN=${QUIET_REPLAY:-$BUILD/bench/quiet-replay}
OUTDIR=${BENCH_OUT:-$ROOT/bench/out}
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
EXPORTS=()
RECS=()
INJECT=0
WARMUP=10m
AT=()
CONFIG=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --export) EXPORTS+=("${2:?--export needs NAME=DB}"); shift 2 ;;
        --export=*) EXPORTS+=("${1#*=}"); shift ;;
        --inject) INJECT=1; shift ;;
        --warmup) WARMUP=${2:?--warmup needs a duration}; shift 2 ;;
        --at) AT=(--at "${2:?--at needs minutes}"); shift 2 ;;
        --config) CONFIG=(--config "${2:?--config needs a file}"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) RECS+=("$1"); shift ;;
    esac
done

# ---- 1. build -------------------------------------------------------------------
if [ -z "${IPPOC_NO_BUILD:-}" ] && [ "$BIN" = "$BUILD/bench/quiet-replay" ]; then
    [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" -Dwerror=true >/dev/null
    ninja -C "$BUILD" bench/quiet-replay >/dev/null
fi
[ -x "$BIN" ] || { echo "run.sh: no quiet-replay binary at $BIN" >&2; exit 2; }

# ---- 2. export --------------------------------------------------------------------
for e in "${EXPORTS[@]+"${EXPORTS[@]}"}"; do
    name=${e%%=*}
    db=${e#*=}
    [ "$name" != "$e" ] && [ -n "$name" ] && [ -n "$db" ] || { echo "run.sh: --export '$e': expected NAME=DB" >&2; exit 2; }
    "$PY" "$HERE/export.py" "$db" "$name"
    RECS+=("$HERE/data/$name.csv.xz")
done

if [ ${#RECS[@]} -eq 0 ]; then
    for f in "$HERE"/data/*.csv.xz; do
        [ -e "$f" ] && RECS+=("$f")
    done
fi
[ ${#RECS[@]} -gt 0 ] || { echo "run.sh: no recordings in $HERE/data (export one with --export NAME=DB)" >&2; exit 2; }

# ---- 3-4. replay (and inject) -------------------------------------------------------
DATE=$(date +%Y-%m-%d)
mkdir -p "$OUTDIR"
MD=$OUTDIR/quiet-$DATE.md
{
    settings="ippocd's default [detect] settings"
    [ ${#CONFIG[@]} -gt 0 ] && settings="the [detect] settings of ${CONFIG[1]}"
    echo "## bench/quiet: episodes per machine-day, $settings ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    for rec in "${RECS[@]}"; do
        size=$(stat -c %s "$rec" 2>/dev/null || echo 0)
        echo "Recording \`${rec#"$ROOT"/}\` ($(awk -v s="$size" 'BEGIN{printf "%.2f", s / 1048576}') MiB):"
        echo
        "$BIN" --warmup "$WARMUP" "${CONFIG[@]+"${CONFIG[@]}"}" "$rec"
        if [ "$INJECT" = 1 ]; then
            QUIET_REPLAY=$BIN "$PY" "$HERE/inject.py" --warmup "$WARMUP" "${AT[@]+"${AT[@]}"}" \
                "${CONFIG[@]+"${CONFIG[@]}"}" "$rec"
        fi
    done
    echo "Target (issue 11): at most 2 episodes per machine-day on a healthy machine after a warm-up of at most"
    echo "10 minutes, while still catching the injected leak, CPU hog, filling disk and hang."
} | tee "$MD"
echo
echo "markdown written to $MD"
