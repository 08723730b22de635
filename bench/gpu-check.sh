#!/usr/bin/env bash
# bench/gpu-check.sh: ippocd on a machine with an NVIDIA GPU, for 30 s.
#
# Runs ippocd (the default configuration: every sensor group at 1 s, the gpu
# group reading NVML through the machine's own libnvidia-ml.so.1) on a
# temporary state dir with its API on a free 127.0.0.1 port, then prints:
# what nvidia-smi sees (when it is there), the gpu collector's line of
# `ippoc status` (state, series, cost of its last run, note), `ippoc metrics
# gpu`, the dcgm-exporter families of /metrics, the daemon's log lines about
# the GPU, and over the window ippocd's CPU (% of one core, from
# /proc/PID/stat utime+stime) and its RSS and PSS at the end.
#
# Runs from the folder bench/gpu-pack.sh makes (ippocd, ippoc, lib/ beside
# this script; LD_LIBRARY_PATH is set to lib/, so no Debian package is
# needed), or from a checkout with a build/ dir. Needs bash and coreutils;
# curl when present (else bash's /dev/tcp) for /metrics. Stops ippocd on
# exit, error or Ctrl-C and removes the temporary dir.
#
# Usage: gpu-check.sh [--seconds N] [--keep]
# IPPOC_NVML_LIBRARY=PATH sets [sense] nvml_library (to try the script with
# the test suite's stand-in, build/tests/sense/libnvml_stub.so).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECS=30
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECS=${2:?--seconds needs a value}; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu-check: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$SECS" in ''|*[!0-9]*) echo "gpu-check: --seconds takes whole seconds" >&2; exit 2 ;; esac

if [ -x "$HERE/ippocd" ]; then
    IPPOCD=$HERE/ippocd IPPOC=$HERE/ippoc
    export LD_LIBRARY_PATH=$HERE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
    ROOT=$(cd "$HERE/.." && pwd)
    IPPOCD=$ROOT/build/src/daemon/ippocd IPPOC=$ROOT/build/src/cli/ippoc
fi
[ -x "$IPPOCD" ] || { echo "gpu-check: no ippocd beside this script nor in build/" >&2; exit 1; }

TMP=$(mktemp -d /tmp/ippoc-gpu-check.XXXXXX)
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    if [ "$KEEP" = 1 ]; then echo "gpu-check: kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section() { printf '\n== %s\n' "$*"; }
http_get() { # PATH -> body on stdout
    if command -v curl >/dev/null; then
        curl -fsS --max-time 10 "$URL$1"
    else
        local hp=${URL#http://}
        exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}"
        printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$hp" >&3
        sed '1,/^\r$/d' <&3
        exec 3<&-
    fi
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
sched_ns() { cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
kb_of() { awk -v k="$2" '$1 == k":" { print $2 }' "$1" 2>/dev/null; }

section "machine"
uname -srm
[ -r /etc/os-release ] && grep -m1 '^PRETTY_NAME=' /etc/os-release | cut -d= -f2- | tr -d '"'
echo "cpus: $(nproc)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi -L || true
    nvidia-smi --query-gpu=index,name,temperature.gpu,power.draw,utilization.gpu,memory.used,memory.total \
        --format=csv || true
else
    echo "no nvidia-smi"
fi

section "ippocd $("$IPPOCD" --version 2>&1 | head -1) for ${SECS}s"
mkdir -p "$TMP/state"
: >"$TMP/ippoc.conf" # the defaults, whatever /etc/ippoc holds
if [ -n "${IPPOC_NVML_LIBRARY:-}" ]; then # e.g. the test suite's stand-in, to try this script
    printf '[sense]\nnvml_library = %s\n' "$IPPOC_NVML_LIBRARY" >"$TMP/ippoc.conf"
fi
"$IPPOCD" --config "$TMP/ippoc.conf" --state-dir "$TMP/state" --listen 127.0.0.1:0 >"$TMP/ippocd.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
    [ -s "$TMP/state/ippocd.url" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/ippocd.log"; echo "gpu-check: ippocd exited" >&2; exit 1; }
    sleep 0.05
done
URL=$(head -1 "$TMP/state/ippocd.url")
export IPPOC_URL=$URL
for _ in $(seq 1 100); do "$IPPOC" status >/dev/null 2>&1 && break; sleep 0.1; done
sleep 2 # warm-up: the first ticks prime rates; not counted
CLK=$(getconf CLK_TCK)
T0=$(date +%s.%N) C0=$(cpu_ticks "$PID") S0=$(sched_ns "$PID")
sleep "$SECS"
T1=$(date +%s.%N) C1=$(cpu_ticks "$PID") S1=$(sched_ns "$PID")
kill -0 "$PID" || { cat "$TMP/ippocd.log"; echo "gpu-check: ippocd died" >&2; exit 1; }

section "ippoc status (collectors: gpu)"
"$IPPOC" status | awk 'NR <= 8 || /^ *(NAME|COLLECTOR)/ || /(^| )gpu /'
section "ippoc metrics gpu"
"$IPPOC" metrics gpu || true
section "/metrics: dcgm-exporter families"
http_get /metrics >"$TMP/metrics.txt" || true
grep -E '^(# (HELP|TYPE) )?DCGM_' "$TMP/metrics.txt" || echo "(none)"
echo "ippoc_gpu_* samples: $(grep -c '^ippoc_gpu_' "$TMP/metrics.txt" || true)"
if command -v promtool >/dev/null; then
    awk '/^# HELP /{k = ($3 ~ /^(DCGM_|ippoc_gpu_)/)} k' "$TMP/metrics.txt" | promtool check metrics \
        && echo "promtool: clean"
fi
section "log lines about the GPU"
grep -E 'sense: gpu|NVML|XID' "$TMP/ippocd.log" || echo "(none)"

section "cost over ${SECS}s"
awk -v c0="$C0" -v c1="$C1" -v s0="$S0" -v s1="$S1" -v t0="$T0" -v t1="$T1" -v hz="$CLK" 'BEGIN {
    printf "ippocd CPU: %.3f %% of one core (utime+stime: %d ticks in %.1f s)\n", (c1 - c0) / hz / (t1 - t0) * 100, c1 - c0, t1 - t0
    printf "ippocd CPU: %.3f %% of one core (threads'"'"' schedstat, ns)\n", (s1 - s0) / 1e9 / (t1 - t0) * 100 }'
rss=$(kb_of "/proc/$PID/status" VmRSS)
pss=$(kb_of "/proc/$PID/smaps_rollup" Pss)
echo "ippocd RSS: $((rss / 1024)).$(( (rss % 1024) * 10 / 1024 )) MiB (${rss} kB), PSS: ${pss:-?} kB"
echo "gpu series: $("$IPPOC" metrics gpu 2>/dev/null | tail -n +2 | grep -c . || true)"
