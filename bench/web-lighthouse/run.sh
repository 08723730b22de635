#!/usr/bin/env bash
# bench/web-lighthouse/run.sh: Lighthouse scores of the web dashboard ippocd
# serves, beside Netdata's own dashboard measured the same way in the same run.
#
# 1. ippocd: the build's binary (built when missing), temporary state dir, API
#    and dashboard on a free 127.0.0.1 port, no token (loopback), two real
#    supervised services (a python3 http.server with an HTTP probe rule, and a
#    sleeper) so the overview has data; it collects metrics for --collect
#    seconds (30) before the first measurement.
# 2. netdata 1.37 (Debian's netdata + netdata-web), foreground, its own
#    temporary config/cache/lib/log dirs (bench/lib/netdata.sh), web server on a
#    free 127.0.0.1 port, registry off, no cloud, anonymous statistics off;
#    the same --collect wait. Skipped with a message when it cannot start.
# Each page ("/") is measured --runs times (3) by Lighthouse 12.8.2 (npm,
# pinned in package-lock.json; `npm ci` here when node_modules is missing)
# driving Debian's chromium headless, with Lighthouse's defaults: mobile form
# factor, simulated throttling (slow 4G, 4x CPU slowdown). Categories:
# performance, accessibility, best-practices.
# Prints per agent the median of the runs: the three scores, first contentful
# paint, largest contentful paint, total blocking time, CLS, bytes transferred
# and requests for the first view (those started before the network first went
# quiet for 1 s after the load event) and for Lighthouse's whole load (its
# total-byte-weight; up to its 45 s limit when the page never goes quiet), and
# whether any request went to a host other than this machine (loopback); then
# the ratios ippocd/netdata, the targets (performance >= 90, accessibility >=
# 90, first view <= 250 KB), and ippocd's failing audits (id, title, score).
# The table goes to bench/out/web-lighthouse-DATE.md and every report (JSON
# and HTML) to bench/out/web-lighthouse-DATE/. Every process it starts is
# stopped on exit, error or Ctrl-C, and the temp dir is removed.
#
# Usage: bench/web-lighthouse/run.sh [--runs N] [--collect S] [--only ippocd|netdata]
#                                    [--no-install] [--keep]
# --only takes one agent or a comma list (default ippocd,netdata); --no-install
# neither apt-get installs chromium nor runs npm ci; --keep leaves the temp dir.
# Environment: BUILD (build dir, default build), IPPOCD (a binary to use
# instead of building), CHROME_PATH (default /usr/bin/chromium), BENCH_OUT;
# IPPOC_WEB_DIR reaches ippocd (measures a page being edited; ippocd serves
# those files uncompressed, so the bytes are then larger than the built-in's).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MEASURE="$ROOT/bench/overhead/measure.py"
LH_PY="$HERE/lh.py"
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
IPPOCD_SET=${IPPOCD:+1}
IPPOCD=${IPPOCD:-$BUILD/src/daemon/ippocd}
CHROME=${CHROME_PATH:-/usr/bin/chromium}
OUTDIR=${BENCH_OUT:-$ROOT/bench/out}
LIGHTHOUSE="$HERE/node_modules/.bin/lighthouse"
# shellcheck source=../lib/netdata.sh
. "$ROOT/bench/lib/netdata.sh"

RUNS=3
COLLECT=30
ONLY="ippocd,netdata"
INSTALL=1
KEEP=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --collect) COLLECT=${2:?--collect needs a value}; shift 2 ;;
        --collect=*) COLLECT=${1#*=}; shift ;;
        --only) ONLY=${2:?--only needs a value}; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --no-install) INSTALL=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$RUNS" in ''|*[!0-9]*|0) echo "run.sh: --runs takes a positive integer" >&2; exit 2 ;; esac
case "$COLLECT" in ''|*[!0-9]*) echo "run.sh: --collect takes a whole number of seconds" >&2; exit 2 ;; esac
for a in ${ONLY//,/ }; do
    case "$a" in ippocd|netdata) ;; *) echo "run.sh: --only takes ippocd, netdata or both" >&2; exit 2 ;; esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

log() { printf '%s\n' "$*"; }
note() { printf 'note: %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

# ---- clean-up: stop everything we started, remove the temp dir ------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ippoc-lh.XXXXXX")
STARTED=()          # pids of processes this script started (roots of their trees)

stop_pid() {        # stop_pid PID [TIMEOUT]: SIGTERM the tree, SIGKILL what stays, reap
    local pid=$1
    [ -n "$pid" ] || return 0
    python3 "$MEASURE" stop "$pid" --timeout "${2:-20}" || true
    wait "$pid" 2>/dev/null || true
}

forget_pid() {
    local keep=() p
    for p in "${STARTED[@]+"${STARTED[@]}"}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    STARTED=("${keep[@]+"${keep[@]}"}")
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${STARTED[@]+"${STARTED[@]}"}"; do stop_pid "$p" 10; done
    if [ "$KEEP" = 1 ]; then echo "run.sh: kept $TMP (configs, logs)" >&2; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

start_bg() {        # start_bg LOGFILE CMD...: start in the background, remember the pid
    local logf=$1; shift
    "$@" >"$logf" 2>&1 &
    BG_PID=$!
    STARTED+=("$BG_PID")
}

run_fg() {          # run_fg CMD...: in the background and waited for, so Ctrl-C acts at once
    local p rc=0
    "$@" &
    p=$!
    STARTED+=("$p")
    wait "$p" || rc=$?
    forget_pid "$p"
    return "$rc"
}

collect_wait() {    # collect_wait PID: let the agent collect metrics for $COLLECT s (ends early if it dies)
    local pid=$1 end=$((SECONDS + COLLECT))
    log "  collecting metrics for ${COLLECT}s before measuring"
    while [ "$SECONDS" -lt "$end" ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 1
    done
}

# ---- what the bench needs: chromium, lighthouse, the build -------------------------

have_pkg() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

need_chromium() {
    [ -x "$CHROME" ] && return 0
    if [ "$INSTALL" = 1 ] && [ "$(id -u)" -eq 0 ] && [ "$CHROME" = /usr/bin/chromium ]; then
        log "installing chromium (apt-get install -y --no-install-recommends)"
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
            >"$TMP/apt.log" 2>&1 || { tail -20 "$TMP/apt.log" >&2; die "apt-get install chromium failed"; }
    fi
    [ -x "$CHROME" ] || die "no chromium at $CHROME (apt-get install chromium, or set CHROME_PATH)"
}

need_lighthouse() {
    [ -x "$LIGHTHOUSE" ] && return 0
    [ "$INSTALL" = 1 ] || die "lighthouse not installed in $HERE/node_modules (run: npm ci --prefix $HERE)"
    command -v npm >/dev/null || die "npm not found (Node.js 18.16+ with npm is needed)"
    log "installing lighthouse (npm ci in $HERE)"
    (cd "$HERE" && npm ci --no-audit --no-fund >"$TMP/npm.log" 2>&1) ||
        { tail -20 "$TMP/npm.log" >&2; die "npm ci failed"; }
}

need_ippocd() {
    if [ -n "$IPPOCD_SET" ]; then
        [ -x "$IPPOCD" ] || die "IPPOCD=$IPPOCD is not an executable"
        return 0
    fi
    if [ ! -f "$BUILD/build.ninja" ]; then
        log "configuring $BUILD (meson setup)"
        meson setup "$BUILD" "$ROOT" -Dwerror=true >"$TMP/meson.log" 2>&1 ||
            { tail -20 "$TMP/meson.log" >&2; die "meson setup failed"; }
    fi
    # ninja does nothing when the daemon is up to date
    ninja -C "$BUILD" src/daemon/ippocd >"$TMP/ninja.log" 2>&1 ||
        { tail -30 "$TMP/ninja.log" >&2; die "building ippocd failed"; }
}

# ---- one Lighthouse run ------------------------------------------------------------

CHROME_FLAGS="--headless=new --disable-gpu --no-first-run --no-default-browser-check --disable-dev-shm-usage"
# chromium refuses to run as root with its sandbox on
[ "$(id -u)" -ne 0 ] || CHROME_FLAGS="$CHROME_FLAGS --no-sandbox"

REPORTS=()

lighthouse_runs() { # lighthouse_runs AGENT URL: --runs reports in $RDIR/AGENT-N.report.json
    local agent=$1 url=$2 i
    for i in $(seq 1 "$RUNS"); do
        log "  lighthouse run $i/$RUNS on $url"
        local rc=0
        run_fg env CHROME_PATH="$CHROME" "$LIGHTHOUSE" "$url" --quiet \
            --only-categories=performance,accessibility,best-practices \
            --output=json --output=html --output-path="$RDIR/$agent-$i" \
            --chrome-flags="$CHROME_FLAGS" >"$TMP/lh-$agent-$i.log" 2>&1 || rc=$?
        # a page Lighthouse could not load still has a report, with its runtimeError
        [ -s "$RDIR/$agent-$i.report.json" ] && REPORTS+=("$agent=$RDIR/$agent-$i.report.json")
        if [ "$rc" -ne 0 ]; then
            tail -20 "$TMP/lh-$agent-$i.log" >&2
            note "$agent: lighthouse run $i exited with $rc (log above)"
        fi
    done
}

# ---- the agents --------------------------------------------------------------------

SKIPPED=()
skip() { SKIPPED+=("--skipped" "$1=$2"); log "  $1: not run: $2"; }

run_ippocd() {
    log ""
    log "== ippocd"
    local d="$TMP/ippocd" port wport pid url="" py
    mkdir -p "$d/state" "$d/etc" "$d/www"
    port=$(python3 "$MEASURE" freeport)
    wport=$(python3 "$MEASURE" freeport)
    if [ -x /usr/bin/python3 ]; then py=/usr/bin/python3; else py=$(command -v python3); fi
    echo "bench/web-lighthouse: a page for the supervised web service" >"$d/www/index.html"
    cat >"$d/etc/ippoc.conf" <<EOF
# bench/web-lighthouse: two real supervised services so the overview has data
[service.web]
command = "$py" -m http.server --bind 127.0.0.1 --directory "$d/www" $wport
rule = if failed http://127.0.0.1:$wport/ every 2s timeout 1s for 2 checks then restart

[service.sleeper]
command = /bin/sleep 100000
EOF
    if ! "$IPPOCD" --check-config --config "$d/etc/ippoc.conf" >"$d/check.log" 2>&1; then
        cat "$d/check.log" >&2
        skip ippocd "configuration rejected: $(head -n1 "$d/check.log")"
        return 0
    fi
    start_bg "$d/ippocd.log" "$IPPOCD" --config "$d/etc/ippoc.conf" --state-dir "$d/state" \
        --listen "127.0.0.1:$port"
    pid=$BG_PID
    url="http://127.0.0.1:$port"
    if ! python3 "$MEASURE" wait-http "$url/v1/status" --timeout 30 --pid "$pid" ||
       ! python3 "$MEASURE" wait-http "http://127.0.0.1:$wport/" --timeout 30 --pid "$pid"; then
        tail -20 "$d/ippocd.log" >&2
        stop_pid "$pid"; forget_pid "$pid"
        skip ippocd "ippocd or its services did not start (log above)"
        return 0
    fi
    log "  ippocd pid $pid ($("$IPPOCD" --version 2>/dev/null | head -n1 || echo '?')), dashboard $url/, services web (127.0.0.1:$wport) and sleeper"
    if ! collect_wait "$pid"; then
        tail -20 "$d/ippocd.log" >&2
        skip ippocd "ippocd exited while collecting (log above)"
        forget_pid "$pid"
        return 0
    fi
    lighthouse_runs ippocd "$url/"
    stop_pid "$pid"; forget_pid "$pid"
}

run_netdata() {
    log ""
    log "== netdata"
    local nd
    nd=$(command -v netdata || echo /usr/sbin/netdata)
    if [ ! -x "$nd" ]; then skip netdata "not installed (apt-get install netdata)"; return 0; fi
    if [ ! -f /usr/share/netdata/web/index.html ]; then
        skip netdata "its dashboard is not installed (/usr/share/netdata/web/index.html: apt-get install netdata-web)"
        return 0
    fi
    local d="$TMP/netdata" port user ver pid
    netdata_setup "$d" "$MEASURE" "bench/web-lighthouse: netdata's own dashboard"
    port=$ND_PORT user=$ND_USER
    chown -R "$user" "$d/cache" "$d/lib" "$d/log" "$d/run" 2>/dev/null || true
    chmod 711 "$TMP"    # netdata drops to $user: it must reach $d (mktemp made $TMP 0700)
    ver=$("$nd" -v 2>/dev/null | awk '{print $2}') || ver=""
    start_bg "$d/netdata.out" env DO_NOT_TRACK=1 "$nd" -D -c "$d/etc/netdata.conf" -P "$d/run/netdata.pid"
    pid=$BG_PID
    if ! python3 "$MEASURE" wait-http "http://127.0.0.1:$port/api/v1/info" --timeout 60 --pid "$pid"; then
        tail -n 20 "$d/netdata.out" "$d/log/error.log" >&2 || true
        stop_pid "$pid" 30; forget_pid "$pid"
        skip netdata "did not start (log above)"
        return 0
    fi
    log "  netdata ${ver:-?} pid $pid, dashboard http://127.0.0.1:$port/, running as $user"
    if ! collect_wait "$pid"; then
        tail -n 20 "$d/netdata.out" "$d/log/error.log" >&2 || true
        skip netdata "netdata exited while collecting (log above)"
        forget_pid "$pid"
        return 0
    fi
    lighthouse_runs netdata "http://127.0.0.1:$port/"
    stop_pid "$pid" 30; forget_pid "$pid"
}

# ---- main ------------------------------------------------------------------------

STAMP=$(date -u +%Y%m%d-%H%M%S)
RDIR="$OUTDIR/web-lighthouse-$STAMP"
mkdir -p "$RDIR"

need_chromium
need_lighthouse
want ippocd && need_ippocd

machine="$(nproc) cores, $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -o), kernel $(uname -r)"
chromium_ver=$("$CHROME" --version 2>/dev/null | awk 'NR == 1 {print $1, $2}' || echo "?")
lh_ver=$("$LIGHTHOUSE" --version 2>/dev/null || echo "?")
log "web-lighthouse bench: lighthouse $lh_ver, $chromium_ver, $RUNS run(s) per page, mobile, simulated throttling"
log "machine: $machine; load $(cut -d' ' -f1-3 /proc/loadavg)"

want ippocd && run_ippocd
want netdata && run_netdata

log ""
python3 "$LH_PY" summarize --machine "$machine" --lighthouse "$lh_ver" --chromium "$chromium_ver" \
    --out "$OUTDIR/web-lighthouse-$STAMP.md" --reports-dir "$RDIR" \
    ${SKIPPED[@]+"${SKIPPED[@]}"} ${REPORTS[@]+"${REPORTS[@]}"}
