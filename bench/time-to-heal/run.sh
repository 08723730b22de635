#!/usr/bin/env bash
# bench/time-to-heal/run.sh: how fast a supervisor brings a dead or hung
# service back.
#
# The same small HTTP service (server.py: python3 stdlib http.server on a free
# 127.0.0.1 port, 200 on /health) is supervised, one after the other, by
#   1. ippocd: build/src/daemon/ippocd, temporary state dir, API on a free
#      loopback port, the service as [service.tthweb] (ippocd starts it and
#      restarts it when it exits) with the rule
#      `if failed http://127.0.0.1:PORT/health every 1s timeout 500ms for 1 checks then restart`;
#   2. monit 5.33: `monit -I`, `set daemon 1`, `check process ... with pidfile`,
#      start/stop program (server.py --daemon: binds, forks, writes the pidfile,
#      returns) and `if failed port PORT protocol http request /health
#      for 1 cycles then restart`; temporary control file (mode 600), its own
#      pid, id, state and log files; under a child subreaper that reaps the
#      daemonized service at once, as init does (see measure.py reaper).
# For each: N kill -9 trials (kill the service's pid, poll GET /health every
# 5 ms, time from the kill to the first 200 from the new process). For ippocd
# also N SIGSTOP hangs (the HTTP probe must notice, ippocd must kill the stopped
# process and start a new one; time from the SIGSTOP to the first 200 from the
# new process). Before each trial the bench waits until the same pid has
# answered for --settle seconds, then a random 0-1 s more (so the fault lands
# anywhere in a supervisor's cycle). As a reference it also times N plain starts
# of the service with no supervisor (python3 start + import + bind).
# Prints min/median/p95/max per supervisor and scenario, ippocd/monit for the
# kill -9 median and p95, and the targets; writes the table as markdown to
# bench/out/time-to-heal-DATE.md. Loopback only, free ports, every process it
# starts is stopped on exit, error or Ctrl-C, and the temp dir is removed.
#
# Usage: bench/time-to-heal/run.sh [--trials N] [--only ippocd|monit] [--settle S]
#                                  [--no-install] [--keep]
# --only takes one supervisor or a comma list (default ippocd,monit);
# --keep leaves the temporary directory (configs and logs) for a look afterwards.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MEASURE="$HERE/measure.py"
SERVER="$HERE/server.py"
IPPOCD=${IPPOCD:-$ROOT/build/src/daemon/ippocd}
OUTDIR=${BENCH_OUT:-$ROOT/bench/out}
# The service runs on the system python3 by absolute path (no shell, no PATH
# lookup, no version-manager shim in front of it).
if [ -z "${SERVICE_PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then SERVICE_PYTHON=/usr/bin/python3; else SERVICE_PYTHON=$(command -v python3); fi
fi

TRIALS=20
ONLY="ippocd,monit"
SETTLE=3
INSTALL=1
KEEP=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --trials) TRIALS=${2:?--trials needs a value}; shift 2 ;;
        --trials=*) TRIALS=${1#*=}; shift ;;
        --only) ONLY=${2:?--only needs a value}; shift 2 ;;
        --only=*) ONLY=${1#*=}; shift ;;
        --settle) SETTLE=${2:?--settle needs a value}; shift 2 ;;
        --settle=*) SETTLE=${1#*=}; shift ;;
        --no-install) INSTALL=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$TRIALS" in ''|*[!0-9]*|0) echo "run.sh: --trials takes a positive integer" >&2; exit 2 ;; esac
case "$SETTLE" in ''|*[!0-9.]*) echo "run.sh: --settle takes a number of seconds" >&2; exit 2 ;; esac
for a in ${ONLY//,/ }; do
    case "$a" in ippocd|monit) ;; *) echo "run.sh: --only takes ippocd, monit or both" >&2; exit 2 ;; esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

log() { printf '%s\n' "$*"; }
note() { printf 'note: %s\n' "$*" >&2; }

# ---- clean-up: stop everything we started, remove the temp dir ------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ippoc-tth.XXXXXX")
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

sweep() {           # any process still holding $TMP on its command line is ours: kill it
    python3 "$MEASURE" sweep "$TMP" || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${STARTED[@]+"${STARTED[@]}"}"; do stop_pid "$p" 10; done
    sweep
    if [ "$KEEP" = 1 ]; then echo "run.sh: kept $TMP (logs, configs)" >&2; else rm -rf "$TMP"; fi
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

run_py() {          # run_py ARGS...: measure.py in the background, so Ctrl-C acts at once
    local mpid rc=0
    python3 "$MEASURE" "$@" &
    mpid=$!
    STARTED+=("$mpid")
    wait "$mpid" || rc=$?
    forget_pid "$mpid"
    return "$rc"
}

# ---- monit: install when missing (root only) -------------------------------------

have_pkg() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
monit_pids() { ps -eo pid=,stat=,comm= | awk '$2 !~ /^Z/ && $3 == "monit" {print $1}'; }

install_monit() {
    have_pkg monit && return 0
    if [ "$INSTALL" = 0 ]; then note "not installing monit (--no-install)"; return 0; fi
    if [ "$(id -u)" -ne 0 ]; then
        note "monit missing and not root: install with apt-get install -y --no-install-recommends monit"
        return 0
    fi
    local before after new p
    before=$(monit_pids | sort)
    log "installing monit (apt-get install -y --no-install-recommends)"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends monit \
        >"$TMP/apt.log" 2>&1 || { tail -20 "$TMP/apt.log" >&2; note "apt-get install monit failed"; }
    # The package's postinst may start the system monit; that one is ours to stop.
    after=$(monit_pids | sort)
    new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep . || true)
    if [ -n "$new" ]; then
        note "the package install started monit ($(echo "$new" | tr '\n' ' ')) - stopping it"
        if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
            systemctl stop monit 2>/dev/null || true
        else
            invoke-rc.d monit stop >/dev/null 2>&1 || true
        fi
        for p in $new; do python3 "$MEASURE" stop "$p" --timeout 15 || true; done
    fi
}

# ---- the runs ---------------------------------------------------------------------

RESULTS=()
SKIPPED=()
skip() { SKIPPED+=("--skipped" "$1=$2"); log "  $1: not run: $2"; }

trials() {          # trials AGENT SCENARIO URL: N trials, result in $TMP/AGENT-SCENARIO.json
    local out="$TMP/$1-$2.json"
    if run_py trials --agent "$1" --scenario "$2" --url "$3" --n "$TRIALS" --settle "$SETTLE" \
        --out "$out"; then
        RESULTS+=("$out")
    else
        note "$1 $2: the trials failed (see above)"
    fi
}

run_direct() {
    log ""
    log "== reference: the service started directly, no supervisor ($TRIALS starts)"
    if run_py direct --python "$SERVICE_PYTHON" --server "$SERVER" --n "$TRIALS" --out "$TMP/direct.json"; then
        RESULTS+=("$TMP/direct.json")
    else
        note "direct starts failed"
    fi
}

run_ippocd() {
    log ""
    log "== ippocd"
    if [ ! -x "$IPPOCD" ]; then skip ippocd "no binary at $IPPOCD (make build)"; return 0; fi
    local d="$TMP/ippocd" port sport pid url=""
    mkdir -p "$d/state" "$d/etc"
    port=$(python3 "$MEASURE" freeport)
    sport=$(python3 "$MEASURE" freeport)
    # Rate limits and flap detection are raised so that 2 x N faults in a few
    # minutes are all acted on; healthy_after is cut from 10 s to 2 s so that,
    # with the bench's 3 s between trials, every crash is a first crash (no
    # backoff), as an isolated crash in production is.
    cat >"$d/etc/ippoc.conf" <<EOF
# bench/time-to-heal: one supervised HTTP service with an HTTP probe
[heal]
mode = heal
max_actions = 1000 per 1m
service_max_actions = 1000 per 1m
flap = 1000 restarts within 1m

[service.tthweb]
command = "$SERVICE_PYTHON" "$SERVER" $sport "$d/svc.pid"
healthy_after = 2s
rule = if failed http://127.0.0.1:$sport/health every 1s timeout 500ms for 1 checks then restart
EOF
    if ! "$IPPOCD" --check-config --config "$d/etc/ippoc.conf" >"$d/check.log" 2>&1; then
        cat "$d/check.log" >&2
        skip ippocd "configuration rejected: $(head -n1 "$d/check.log")"
        return 0
    fi
    start_bg "$d/ippocd.log" "$IPPOCD" --config "$d/etc/ippoc.conf" --state-dir "$d/state" \
        --listen "127.0.0.1:$port"
    pid=$BG_PID
    for _ in $(seq 1 150); do
        [ -s "$d/state/ippocd.url" ] && { url=$(head -n1 "$d/state/ippocd.url"); break; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    url=${url:-http://127.0.0.1:$port}
    url=${url%/}
    if ! python3 "$MEASURE" wait-http "$url/v1/status" --timeout 30 --pid "$pid" ||
       ! python3 "$MEASURE" wait-http "http://127.0.0.1:$sport/health" --timeout 30 --pid "$pid"; then
        tail -20 "$d/ippocd.log" >&2
        stop_pid "$pid"; forget_pid "$pid"; sweep
        skip ippocd "ippocd or its service did not start (log above)"
        return 0
    fi
    log "  ippocd pid $pid, API $url, service on 127.0.0.1:$sport; $TRIALS kill -9, then $TRIALS SIGSTOP"
    trials ippocd kill "http://127.0.0.1:$sport/health"
    trials ippocd stop "http://127.0.0.1:$sport/health"
    stop_pid "$pid"; forget_pid "$pid"
    sweep
}

run_monit() {
    log ""
    log "== monit"
    if ! command -v monit >/dev/null; then skip monit "not installed"; return 0; fi
    local d="$TMP/monit" sport pid ver
    mkdir -p "$d"
    sport=$(python3 "$MEASURE" freeport)
    cat >"$d/monitrc" <<EOF
# bench/time-to-heal: monit at 1 s supervising one HTTP service
set daemon 1
set logfile $d/monit.log
set pidfile $d/monit.pid
set idfile $d/monit.id
set statefile $d/monit.state
set httpd unixsocket $d/monit.sock permission 0600
    allow localhost
check process tthweb with pidfile $d/svc.pid
    start program = "$SERVICE_PYTHON $SERVER $sport $d/svc.pid --daemon" with timeout 10 seconds
    stop program = "/usr/bin/pkill -F $d/svc.pid"
    if failed host 127.0.0.1 port $sport protocol http request "/health" for 1 cycles then restart
EOF
    chmod 600 "$d/monitrc"
    ver=$(monit -V 2>/dev/null | awk 'NR==1{print $NF}') || ver=""
    if ! monit -c "$d/monitrc" -t >"$d/check.log" 2>&1; then
        cat "$d/check.log" >&2
        skip monit "control file rejected"; return 0
    fi
    # monit starts the service itself on its first cycle. It runs under a
    # child subreaper (measure.py reaper) that reaps the daemonized service the
    # moment it dies, as init does on a usual machine: PID 1 of this kind of VM
    # reaps orphans only every 1-2 s, and monit counts an unreaped zombie as
    # still there.
    start_bg "$d/monit.out" python3 "$MEASURE" reaper monit -c "$d/monitrc" -I
    pid=$BG_PID
    if ! python3 "$MEASURE" wait-http "http://127.0.0.1:$sport/health" --timeout 30 --pid "$pid"; then
        tail -n 20 "$d/monit.out" "$d/monit.log" >&2 || true
        stop_pid "$pid"; forget_pid "$pid"; sweep
        skip monit "monit did not start the service (log above)"
        return 0
    fi
    log "  monit ${ver:-?} pid $pid, service on 127.0.0.1:$sport; $TRIALS kill -9"
    trials monit kill "http://127.0.0.1:$sport/health"
    stop_pid "$pid"; forget_pid "$pid"
    # monit leaves its service running when it stops: stop it by its pidfile
    if [ -s "$d/svc.pid" ]; then
        local spid; spid=$(head -n1 "$d/svc.pid")
        case "$spid" in ''|*[!0-9]*) ;; *) python3 "$MEASURE" stop "$spid" --timeout 5 || true ;; esac
    fi
    sweep
}

# ---- main ------------------------------------------------------------------------

mem_gib=$(awk '/^MemTotal:/ {printf "%.0f", $2/1048576}' /proc/meminfo)
machine="$(nproc) cores, ${mem_gib} GiB, $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -o), kernel $(uname -r)"
log "time-to-heal bench: $TRIALS trials per scenario, ${SETTLE}s stable before each; supervisors one at a time: $ONLY"
log "machine: $machine; service: $SERVICE_PYTHON $SERVER PORT"
read -r l1 l5 _ </proc/loadavg
if awk -v l="$l1" -v n="$(nproc)" 'BEGIN{exit !(l > 0.5*n)}'; then
    note "load average is $l1 $l5 on $(nproc) cores: the machine is busy, times will be noisier"
fi
others=$(monit_pids | tr '\n' ' ')
[ -z "$others" ] || note "monit already running here (pids $others), not started by this bench: left alone"

want monit && install_monit

run_direct
want ippocd && run_ippocd
want monit && run_monit

mkdir -p "$OUTDIR"
DATE=$(date +%Y-%m-%d)
python3 "$MEASURE" report --md "$OUTDIR/time-to-heal-$DATE.md" --date "$DATE" --machine "$machine" \
    "${SKIPPED[@]+"${SKIPPED[@]}"}" "${RESULTS[@]+"${RESULTS[@]}"}"
