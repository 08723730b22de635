#!/usr/bin/env bash
# bench/detect-throughput/run.sh: what IPPOC's anomaly detection costs, against
# Netdata's ML (the anomaly detection Netdata runs on every metric).
#
# 1. builds the benchmark if needed (meson + ninja in $BUILD, default build/)
#    and runs it (throughput.c): points per second on one core and ns per
#    point for the whole ensemble (10,000 detectors fed interleaved as ippocd
#    feeds them, and one hot detector), bytes of state per metric, and what
#    10,000 metrics at 1 s cost as a share of one core;
# 2. the peer: Netdata. If the installed netdata was built with ML
#    (`netdata -W buildinfo`), it is run twice, alone, with `[ml] enabled =
#    yes` and `no`, and the CPU difference divided by the dimensions it
#    collects gives its ML cost per metric-second (the ML needs 15 minutes of
#    samples before its first model and trains every dimension within
#    `train every`, 30 minutes at least, hence the long warm-up). Debian 12's
#    netdata 1.37.1 is built without ML: then Netdata's documented figures are
#    used, and labelled as documented, not measured;
# 3. prints a markdown table with the ratios and the targets (at least 2
#    million points per second on one core, at most 4 KB of state per metric),
#    also written to bench/out/detect-throughput-DATE.md.
#
# Usage: bench/detect-throughput/run.sh [--quick] [--metrics N] [--no-netdata]
#            [--netdata-measure] [--netdata-warmup S] [--netdata-seconds S]
#   --quick              a smaller run of the benchmark (2,000 metrics)
#   --netdata-measure    run netdata twice even when its build has no ML (the
#                        difference is then noise: checks the machinery)
#   --netdata-warmup S   seconds before each netdata window (default 2700)
#   --netdata-seconds S  each netdata window (default 60)
# Environment: BUILD (build dir), BENCH_BIN (the benchmark binary).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
BIN=${BENCH_BIN:-$BUILD/bench/detect-throughput}
OUTDIR=${BENCH_OUT:-$ROOT/bench/out}
MEASURE=$ROOT/bench/overhead/measure.py
# shellcheck source=../lib/netdata.sh
. "$ROOT/bench/lib/netdata.sh"

ARGS=()
NETDATA=1
FORCE=0
ND_WARMUP=2700
ND_SECONDS=60

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ARGS+=(--quick); shift ;;
        --metrics) ARGS+=(--metrics "${2:?--metrics needs a number}"); shift 2 ;;
        --no-netdata) NETDATA=0; shift ;;
        --netdata-measure) FORCE=1; shift ;;
        --netdata-warmup) ND_WARMUP=${2:?}; shift 2 ;;
        --netdata-seconds) ND_SECONDS=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$ND_WARMUP$ND_SECONDS" in *[!0-9]*) echo "run.sh: --netdata-* take whole seconds" >&2; exit 2 ;; esac

# ---- 1. ours -----------------------------------------------------------------------
if [ -z "${BENCH_BIN:-}" ]; then
    [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" -Dwerror=true >/dev/null
    ninja -C "$BUILD" bench/detect-throughput >/dev/null
fi
[ -x "$BIN" ] || { echo "run.sh: no benchmark binary at $BIN" >&2; exit 2; }
if [ -f "$BUILD/meson-info/intro-buildoptions.json" ]; then
    btype=$(python3 -c 'import json,sys; print(next(o["value"] for o in json.load(open(sys.argv[1])) if o["name"]=="buildtype"))' \
        "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null || echo "?")
    sanit=$(python3 -c 'import json,sys; print(next(o["value"] for o in json.load(open(sys.argv[1])) if o["name"]=="b_sanitize"))' \
        "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null || echo "none")
    [ "$sanit" = none ] || echo "note: $BUILD is built with -Db_sanitize=$sanit: the figures mean nothing" >&2
else
    btype="?"
fi

machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), kernel $(uname -r)"
echo "detect-throughput: $BIN (buildtype $btype)"
echo "machine: $machine"
echo
OUT=$("$BIN" --kv "${ARGS[@]+"${ARGS[@]}"}")
echo "$OUT" | grep -v '^kv '
kv() { echo "$OUT" | awk -F= -v k="$1" '$1 == "kv " k {print $2}'; }
NS=$(kv ns_point_interleaved)
NS_HOT=$(kv ns_point_hot)
PPS=$(kv pps_interleaved)
PPS_HOT=$(kv pps_hot)
STATE=$(kv state_bytes)
NMET=$(kv metrics)
CORE=$(kv core_percent)

# ---- 2. the peer: Netdata's ML ----------------------------------------------------------
# Documented (Netdata's own sizing docs): ML costs "2 CPU cores per million
# unique time-series concurrently collected" (cpu-requirements.md, Parents),
# i.e. 2 us of CPU per metric per second at 1 s, and "5 KiB per metric" for
# the trained models (ram-requirements.md); ml/README.md: "Typical overhead
# ranges from 1-2% additional CPU at most".
DOC_NS=2000
DOC_BYTES=5120
PEER_NS=$DOC_NS
PEER_BYTES=$DOC_BYTES
PEER_HOW="documented, not measured"
PEER_NOTE=""

measure_netdata() {     # measure_netdata yes|no OUTJSON: one netdata run, alone
    local ml=$1 out=$2 nd d port user pid rc=0
    nd=$(command -v netdata || echo /usr/sbin/netdata)
    d="$TMP/netdata-ml-$ml"
    netdata_setup "$d" "$MEASURE" "bench/detect-throughput: netdata with ML $ml"
    port=$ND_PORT user=$ND_USER
    cat >>"$d/etc/netdata.conf" <<EOF
[ml]
	enabled = $ml
	minimum num samples to train = 900
	train every = 1800
EOF
    chown -R "$user" "$d/cache" "$d/lib" "$d/log" "$d/run" 2>/dev/null || true
    chmod 711 "$TMP"
    env DO_NOT_TRACK=1 "$nd" -D -c "$d/etc/netdata.conf" -P "$d/run/netdata.pid" >"$d/netdata.out" 2>&1 &
    pid=$!
    STARTED+=("$pid")
    if ! python3 "$MEASURE" wait-http "http://127.0.0.1:$port/api/v1/info" --timeout 60 --pid "$pid"; then
        tail -n 20 "$d/netdata.out" "$d/log/error.log" >&2 || true
        rc=1
    else
        echo "  netdata ML $ml: pid $pid, warm-up ${ND_WARMUP}s, window ${ND_SECONDS}s"
        python3 "$MEASURE" window --kind netdata --pid "$pid" --url "http://127.0.0.1:$port" \
            --seconds "$ND_SECONDS" --warmup "$ND_WARMUP" --out "$out" >/dev/null || rc=1
    fi
    python3 "$MEASURE" stop "$pid" --timeout 30 || true
    wait "$pid" 2>/dev/null || true
    return "$rc"
}

STARTED=()
TMP=""
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${STARTED[@]+"${STARTED[@]}"}"; do python3 "$MEASURE" stop "$p" --timeout 10 >/dev/null 2>&1 || true; done
    [ -z "$TMP" ] || rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

if [ "$NETDATA" = 1 ]; then
    echo
    if ! command -v netdata >/dev/null && [ ! -x /usr/sbin/netdata ]; then
        PEER_NOTE="netdata is not installed here"
    else
        nd=$(command -v netdata || echo /usr/sbin/netdata)
        ndver=$("$nd" -v 2>/dev/null | awk '{print $2}')
        ml=$("$nd" -W buildinfo 2>/dev/null | awk -F: '/Machine Learning/ {gsub(/ /, "", $2); print $2}')
        if [ "$ml" != "YES" ] && [ "$FORCE" = 0 ]; then
            PEER_NOTE="netdata $ndver here is built without ML (\`netdata -W buildinfo\`: Machine Learning: ${ml:-?}), so its ML cannot be measured"
        else
            TMP=$(mktemp -d "${TMPDIR:-/tmp}/ippoc-bench-ml.XXXXXX")
            echo "netdata $ndver (Machine Learning: ${ml:-?}): two runs, one after the other"
            if measure_netdata yes "$TMP/yes.json" && measure_netdata no "$TMP/no.json"; then
                read -r PEER_NS ML_DIMS CPU_YES CPU_NO < <(python3 - "$TMP/yes.json" "$TMP/no.json" <<'EOF'
import json, sys
y, n = (json.load(open(p)) for p in sys.argv[1:3])
dims = (y["metrics_per_s"] or 0) - (y.get("own_rate") or 0)   # netdata.* charts are not trained
delta = y["cpu_percent"] - n["cpu_percent"]                     # % of one core
ns = delta / 100.0 / dims * 1e9 if dims > 0 else float("nan")
print("%.1f %.0f %.3f %.3f" % (ns, dims, y["cpu_percent"], n["cpu_percent"]))
EOF
)
                PEER_HOW="measured: ML on ${CPU_YES}% vs off ${CPU_NO}% of a core, over $ML_DIMS dimensions/s"
                if [ "$ml" != "YES" ]; then
                    PEER_HOW="$PEER_HOW (this build has no ML: the difference is noise, and not used)"
                    PEER_NS=$DOC_NS
                fi
                PEER_NOTE="memory: documented 5 KiB per metric (not measured)"
            else
                PEER_NOTE="netdata runs failed (see above)"
            fi
        fi
    fi
fi

# ---- 3. the table ------------------------------------------------------------------------
DATE=$(date +%Y-%m-%d)
mkdir -p "$OUTDIR"
MD=$OUTDIR/detect-throughput-$DATE.md
report() {
    awk -v ns="$NS" -v nshot="$NS_HOT" -v pps="$PPS" -v ppshot="$PPS_HOT" -v st="$STATE" -v n="$NMET" \
        -v core="$CORE" -v pns="$PEER_NS" -v pb="$PEER_BYTES" -v how="$PEER_HOW" 'BEGIN {
        pcore = pns * n / 1e9 * 100
        printf "| | ippoc (detect_feed, whole ensemble) | Netdata ML (%s) | ippoc/Netdata |\n", how
        printf "|---|---:|---:|---:|\n"
        printf "| CPU per metric-second at 1 s (ns) | %.0f | %.0f | %.3f |\n", ns, pns, ns / pns
        printf "| points/s on one core | %.2f M (hot: %.2f M) | %.2f M | %.1f |\n", pps / 1e6, ppshot / 1e6, 1e3 / pns, pns / ns
        printf "| %d metrics at 1 s, %% of one core | %.3f%% | %.2f%% | %.3f |\n", n, core, pcore, core / pcore
        printf "| state per metric (bytes) | %d | %d (5 KiB) | %.2f |\n", st, pb, st / pb
        printf "\n"
        printf "- targets: at least 2 M points/s on one core: **%s** (%.2f M, interleaved); at most 4 KB of state per metric: **%s** (%d bytes)\n", \
            (pps >= 2e6 ? "yes" : "no"), pps / 1e6, (st <= 4096 ? "yes" : "no"), st
    }'
    [ -z "$PEER_NOTE" ] || echo "- Netdata: $PEER_NOTE"
    if [ "$PEER_HOW" = "documented, not measured" ]; then
        echo "- Netdata's documented ML cost: \"2 CPU cores per million unique time-series\" (sizing docs,"
        echo "  cpu-requirements.md), i.e. 2,000 ns per metric-second; \"5 KiB per metric\" for the trained"
        echo "  models (ram-requirements.md); ml/README.md: \"1-2% additional CPU at most\"."
    fi
}
echo
report | tee "$MD"
{
    echo
    echo "- machine: $machine; ippoc built with buildtype $btype"
} >>"$MD"
echo
echo "markdown written to $MD"
