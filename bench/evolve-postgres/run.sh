#!/bin/bash
# run.sh: the evolve-postgres benchmark of issue 13, end to end.
#
#   1. setup.sh: a private PostgreSQL 15 cluster in a temp dir under /var/tmp
#      (never the system cluster), pgbench scale 17 as a template database;
#   2. pgtune.py: PGTune's recommendation for this machine;
#   3. ippocd (build/src/daemon/ippocd) on a temp state dir and a free
#      loopback port, then `ippoc evolve run --space BENCH/postgres.space
#      --fitness "fitness.sh BENCH" --budget 30m` (no LLM): the evolution,
#      each trial in the sandbox; its incumbent at the end (the knob file as
#      the run leaves it, checked against the genome's commit) is IPPOC's
#      configuration;
#   4. compare.py: default, PGTune and IPPOC in randomised interleaved rounds,
#      the statistics and the verdict; the table goes to stdout and
#      bench/out/evolve-postgres-DATE.md.
# Everything it started is stopped and the temp dir removed on exit, also on
# failure or Ctrl-C (--keep keeps the dir).
#
# Usage: bench/evolve-postgres/run.sh [--budget 30m] [--rounds 10] [--confirm 5]
#                                     [--scale 17] [--evolved FILE] [--keep]
#   --evolved FILE   skip the evolution and compare FILE (a knob file) as IPPOC's
#   --budget 0       skip the evolution: IPPOC's configuration is the default
# Environment: BUDGET, ROUNDS, CONFIRM, SCALE (the same), IPPOCD, IPPOC
# (the binaries), DURATION, CLIENTS, THREADS, P95_MS (fitness.sh's).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IPPOCD=${IPPOCD:-$ROOT/build/src/daemon/ippocd}
IPPOC=${IPPOC:-$ROOT/build/src/cli/ippoc}
BUDGET=${BUDGET:-30m}
ROUNDS=${ROUNDS:-10}
CONFIRM=${CONFIRM:-5}
SCALE=${SCALE:-17}
EVOLVED=""
KEEP=0
PY=/usr/bin/python3

while [ $# -gt 0 ]; do
    case "$1" in
    --budget) BUDGET=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --confirm) CONFIRM=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --evolved) EVOLVED=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (--help)" >&2; exit 2 ;;
    esac
done

log() { echo "[evolve-postgres $(date -u +%H:%M:%S)] $*" >&2; }

BENCH=$(mktemp -d /var/tmp/ippoc-pgbench.XXXXXX)
DAEMON_PID=""
cleanup() {
    local rc=$?
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
    fi
    if [ -f "$BENCH/data/postmaster.pid" ]; then
        if [ "$(id -u)" = 0 ]; then
            setpriv --reuid=postgres --regid=postgres --init-groups -- \
                /usr/lib/postgresql/15/bin/pg_ctl -D "$BENCH/data" -m immediate -w stop >/dev/null 2>&1 || true
        else
            /usr/lib/postgresql/15/bin/pg_ctl -D "$BENCH/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
    fi
    if [ "$KEEP" = 1 ]; then log "kept $BENCH"; else rm -rf "$BENCH"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "setup in $BENCH (scale $SCALE)"
"$HERE/setup.sh" "$BENCH" "$SCALE" >&2

# The space file, with the bench's paths and the machine's RAM-based seeds.
"$PY" - "$HERE/postgres.space" "$BENCH/postgres.space" "$BENCH" "$HERE" <<'EOF'
import sys
sys.path.insert(0, sys.argv[4])
from pgtune import machine_ram_kb
src, dst, bench, here = sys.argv[1:5]
ram_mb = machine_ram_kb() // 1024
mb = lambda v: "%dMB" % v
# shared_buffers up to RAM/3, at most 8GB; the sandbox's memory limit leaves room above it
sb_max = min(ram_mb // 3, 8192)
subst = {"@BENCH@": bench, "@HERE@": here, "@RAM@": mb(ram_mb), "@SB_MAX@": mb(sb_max),
         "@SB_QUARTER@": mb(min(ram_mb // 4, sb_max)), "@ECS@": mb(ram_mb * 3 // 4),
         "@ECS_HALF@": mb(ram_mb // 2), "@SBX_MEMORY@": mb(min(ram_mb * 3 // 4, sb_max + 4096))}
text = open(src).read()
for k, v in subst.items():
    text = text.replace(k, v)
open(dst, "w").write(text)
EOF
"$PY" "$HERE/pgtune.py" >"$BENCH/pgtune.conf"
log "PGTune: $(head -1 "$BENCH/pgtune.conf")"

IPPOC_CONF="$BENCH/ippoc-evolved.conf"
if [ -n "$EVOLVED" ]; then
    cp "$EVOLVED" "$IPPOC_CONF"
    log "IPPOC's configuration from $EVOLVED (no evolution)"
elif [ "$BUDGET" = 0 ]; then
    cp "$HERE/defaults.conf" "$IPPOC_CONF"
    log "budget 0: no evolution, IPPOC's configuration is the default"
else
    for b in "$IPPOCD" "$IPPOC"; do
        [ -x "$b" ] || { log "$b: not built (meson setup build && ninja -C build)"; exit 2; }
    done
    mkdir -p "$BENCH/state"
    PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$IPPOCD" --state-dir "$BENCH/state" --listen "127.0.0.1:$PORT" >"$BENCH/ippocd.log" 2>&1 &
    DAEMON_PID=$!
    URL=""
    for _ in $(seq 1 300); do
        [ -s "$BENCH/state/ippocd.url" ] && { URL=$(head -n1 "$BENCH/state/ippocd.url"); break; }
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$URL" ]; then tail -20 "$BENCH/ippocd.log" >&2; log "ippocd did not start"; exit 1; fi
    URL=${URL%/}
    log "ippocd pid $DAEMON_PID at $URL; evolution budget $BUDGET"
    "$IPPOC" --url "$URL" evolve run --space "$BENCH/postgres.space" \
        --fitness "$HERE/fitness.sh $BENCH" --budget "$BUDGET" | tee "$BENCH/evolve.log" >&2 || {
        log "ippoc evolve run failed (log above); its incumbent so far is compared"
    }
    "$IPPOC" --url "$URL" evolve status >"$BENCH/evolve-status.txt" 2>&1 || true
    "$IPPOC" --url "$URL" --json evolve status >"$BENCH/evolve-status.json" 2>/dev/null || true
    # The run leaves the knob file at its incumbent; the genome's latest
    # commit of that file (if a candidate was accepted) must say the same.
    cp "$BENCH/data/conf.d/ippoc.conf" "$IPPOC_CONF"
    GPATH="files$BENCH/data/conf.d/ippoc.conf"
    if curl -fsS "$URL/v1/genome/show?rev=HEAD&path=$GPATH" -o "$BENCH/genome-ippoc.conf" 2>/dev/null; then
        if cmp -s "$BENCH/genome-ippoc.conf" "$IPPOC_CONF"; then
            log "the genome's HEAD holds the same knob file"
        else
            log "the genome's HEAD differs from the knob file as the run left it: comparing the genome's"
            cp "$BENCH/genome-ippoc.conf" "$IPPOC_CONF"
        fi
    else
        log "no accepted candidate in the genome: IPPOC's configuration is the run's incumbent as left"
    fi
    "$IPPOC" --url "$URL" history 2>/dev/null | head -20 >&2 || true
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
fi
log "IPPOC's configuration:"
grep -v '^#' "$IPPOC_CONF" | sed 's/^/    /' >&2

mkdir -p "$ROOT/bench/out"
STAMP=$(date -u +%Y-%m-%d-%H%M)
cp "$IPPOC_CONF" "$ROOT/bench/out/evolve-postgres-$STAMP-ippoc.conf"
cp "$BENCH/pgtune.conf" "$ROOT/bench/out/evolve-postgres-$STAMP-pgtune.conf"
[ -f "$BENCH/evolve-status.txt" ] && cp "$BENCH/evolve-status.txt" "$ROOT/bench/out/evolve-postgres-$STAMP-status.txt"
log "comparison: $ROUNDS interleaved rounds + $CONFIRM confirmation rounds"
"$PY" "$HERE/compare.py" --bench "$BENCH" --rounds "$ROUNDS" --confirm "$CONFIRM" \
    --out "$ROOT/bench/out/evolve-postgres-$STAMP.md" \
    default="$HERE/defaults.conf" pgtune="$BENCH/pgtune.conf" ippoc="$IPPOC_CONF"
log "table written to bench/out/evolve-postgres-$STAMP.md"
