#!/usr/bin/env bash
# bench/overhead/run.sh: what it costs to watch this machine every second.
#
# Runs three agents one after another, each alone, for the same window after a
# warm-up that is not counted, and measures CPU (% of one core, whole process
# tree, exited children included), RSS and PSS at the end, and how many metrics
# each collects per second:
#   1. ippocd, default configuration (1 s resolution), temporary state dir;
#   2. monit 5.33, `set daemon 1`, one process check with an HTTP test against a
#      python3 http.server the bench starts on 127.0.0.1 (not counted);
#   3. netdata 1.37, foreground, default collection as Debian ships it, web
#      server on 127.0.0.1 only, registry off, no cloud (the Debian build has
#      none), anonymous statistics off, every directory temporary.
# Everything is loopback-only, ports are picked at run time, and every process
# the bench starts is stopped on exit, error or Ctrl-C. The table goes to
# stdout and, as markdown, to bench/out/overhead-DATE.md.
#
# Usage: bench/overhead/run.sh [--seconds N] [--quick] [--warmup N]
#                              [--only ippocd,monit,netdata] [--no-install] [--keep]
#                              [--scale]
# --keep leaves the temporary directory (configs and logs) for a look afterwards.
# --scale (root): measures ippocd and netdata as above, then again with 2,000
# more processes (sleepers), 200 cgroups (under a cgroup v2 slice the bench
# creates; 10 sleepers in each) and 50 network interfaces (veth pairs, in a network
# namespace the bench creates, where both agents then run; no addresses, one
# frame sent on each so that their counters are not zero), and prints how
# each agent's CPU grows. SCALE_PROCS, SCALE_CGROUPS, SCALE_IFACES change the
# counts. Everything it creates is removed at the end, on error or Ctrl-C.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
MEASURE="$HERE/measure.py"
# shellcheck source=../lib/netdata.sh
. "$ROOT/bench/lib/netdata.sh"
IPPOCD=${IPPOCD:-$ROOT/build/src/daemon/ippocd}
OUTDIR=${BENCH_OUT:-$ROOT/bench/out}

SECONDS_WIN=60
WARMUP=10
ONLY="ippocd,monit,netdata"
INSTALL=1
KEEP=0
SCALE=0
ONLY_SET=0
SCALE_PROCS=${SCALE_PROCS:-2000}
SCALE_CGROUPS=${SCALE_CGROUPS:-200}
SCALE_IFACES=${SCALE_IFACES:-50}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_WIN=${2:?--seconds needs a value}; shift 2 ;;
        --seconds=*) SECONDS_WIN=${1#*=}; shift ;;
        --quick) SECONDS_WIN=15; shift ;;
        --warmup) WARMUP=${2:?--warmup needs a value}; shift 2 ;;
        --warmup=*) WARMUP=${1#*=}; shift ;;
        --only) ONLY=${2:?--only needs a value}; ONLY_SET=1; shift 2 ;;
        --only=*) ONLY=${1#*=}; ONLY_SET=1; shift ;;
        --scale) SCALE=1; shift ;;
        --no-install) INSTALL=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ "$SCALE" = 0 ] || [ "$ONLY_SET" = 1 ] || ONLY="ippocd,netdata"
case "$SCALE_PROCS$SCALE_CGROUPS$SCALE_IFACES" in *[!0-9]*) echo "run.sh: SCALE_* take whole numbers" >&2; exit 2 ;; esac
case "$SECONDS_WIN$WARMUP" in *[!0-9.]*) echo "run.sh: --seconds and --warmup take numbers" >&2; exit 2 ;; esac
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

log() { printf '%s\n' "$*"; }
note() { printf 'note: %s\n' "$*" >&2; }

# ---- clean-up: stop everything we started, remove the temp dir ------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ippoc-bench.XXXXXX")
STARTED=()          # pids of processes this script started (roots of their trees)

stop_pid() {        # stop_pid PID: SIGTERM the tree, SIGKILL what stays, reap
    local pid=$1
    [ -n "$pid" ] || return 0
    python3 "$MEASURE" stop "$pid" --timeout "${2:-20}" || true
    wait "$pid" 2>/dev/null || true
}

forget_pid() {
    local keep=() p
    for p in "${STARTED[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    STARTED=("${keep[@]+"${keep[@]}"}")
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${STARTED[@]+"${STARTED[@]}"}"; do stop_pid "$p" 10; done
    scale_teardown
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

# ---- --scale: sleepers, cgroups, interfaces in a network namespace ---------------

NSX=()              # prefix that runs a command in the scale namespace (empty: none)
SCALE_NS=""         # the namespace, once created
SCALE_CG=""         # the cgroup slice's name, once created
SCALE_CGROOTS=()    # hierarchies it was created in (v2, and v1 controllers on a hybrid system)
SLEEPERS=()

cg_name() { printf '%s/%s/cg%03d' "$1" "$SCALE_CG" "$2"; }

scale_setup() {
    if [ "$(id -u)" -ne 0 ]; then echo "run.sh: --scale needs root (network namespace, cgroups)" >&2; exit 2; fi
    command -v ip >/dev/null || { echo "run.sh: --scale needs ip (iproute2)" >&2; exit 2; }
    log ""
    log "== scale: $SCALE_PROCS more processes, $SCALE_CGROUPS cgroups, $SCALE_IFACES interfaces"
    local i names=() root=""
    SCALE_NS="ippoc-bench-$$"
    ip netns add "$SCALE_NS"
    # the agents run there with the cgroup mounts of this namespace (see netns-exec.sh)
    grep -E ' cgroup2? ' /proc/self/mounts >"$TMP/mounts" || true
    NSX=(ip netns exec "$SCALE_NS" "$HERE/netns-exec.sh" "$TMP/mounts")
    ip -n "$SCALE_NS" link set lo up
    # veth pairs, both ends in the namespace (not every kernel has dummy)
    for ((i = 0; i < SCALE_IFACES; i += 2)); do
        if [ $((i + 1)) -lt "$SCALE_IFACES" ]; then
            ip -n "$SCALE_NS" link add "bv$i" type veth peer name "bv$((i + 1))"
            ip -n "$SCALE_NS" link set "bv$((i + 1))" up
            names+=("bv$((i + 1))")
        else
            ip -n "$SCALE_NS" link add "bv$i" type bridge
        fi
        ip -n "$SCALE_NS" link set "bv$i" up
        names+=("bv$i")
    done
    [ ${#names[@]} -eq 0 ] || "${NSX[@]}" python3 "$MEASURE" kick-ifaces "${names[@]}"
    if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
        root=/sys/fs/cgroup
    elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
        root=/sys/fs/cgroup/unified
    fi
    if [ "$SCALE_CGROUPS" -gt 0 ] && [ -n "$root" ] && mkdir "$root/ippoc-bench-$$.slice" 2>/dev/null; then
        SCALE_CG="ippoc-bench-$$.slice"
        SCALE_CGROOTS=("$root")
        # hybrid: the v1 controllers too (netdata reads those there)
        local h
        for h in cpu cpuacct memory pids; do
            [ "$root" != /sys/fs/cgroup ] && [ "$(stat -fc %T "/sys/fs/cgroup/$h" 2>/dev/null)" = cgroupfs ] &&
                mkdir "/sys/fs/cgroup/$h/$SCALE_CG" 2>/dev/null && SCALE_CGROOTS+=("/sys/fs/cgroup/$h")
        done
        for h in "${SCALE_CGROOTS[@]}"; do
            for ((i = 0; i < SCALE_CGROUPS; i++)); do mkdir "$(cg_name "$h" "$i")"; done
        done
        log "  cgroups: $SCALE_CGROUPS in $SCALE_CG under ${SCALE_CGROOTS[*]}"
    elif [ "$SCALE_CGROUPS" -gt 0 ]; then
        note "cgroup v2 is not writable here (${root:-no cgroup2 mount}): the scale run has no extra cgroups"
        SCALE_CGROUPS=0
    fi
    for ((i = 0; i < SCALE_PROCS; i++)); do
        sleep 86400 &
        SLEEPERS+=("$!")
    done
    if [ -n "$SCALE_CG" ]; then
        local h
        for h in "${SCALE_CGROOTS[@]}"; do
            for ((i = 0; i < SCALE_PROCS; i++)); do
                echo "${SLEEPERS[$i]}" >"$(cg_name "$h" $((i % SCALE_CGROUPS)))/cgroup.procs"
            done
        done
    fi
    log "  processes: $SCALE_PROCS sleepers; interfaces: $SCALE_IFACES (veth pairs) in network namespace $SCALE_NS"
}

scale_teardown() {  # idempotent: what scale_setup made, in reverse
    local i
    if [ ${#SLEEPERS[@]} -gt 0 ]; then
        kill "${SLEEPERS[@]}" 2>/dev/null || true
        for i in "${SLEEPERS[@]}"; do wait "$i" 2>/dev/null || true; done
        SLEEPERS=()
    fi
    if [ -n "$SCALE_CG" ]; then
        local h
        for h in "${SCALE_CGROOTS[@]}"; do
            for ((i = 0; i < SCALE_CGROUPS; i++)); do rmdir "$(cg_name "$h" "$i")" 2>/dev/null || true; done
            rmdir "$h/$SCALE_CG" 2>/dev/null || note "could not remove $h/$SCALE_CG"
        done
        SCALE_CG=""
        SCALE_CGROOTS=()
    fi
    if [ -n "$SCALE_NS" ]; then
        ip netns del "$SCALE_NS" 2>/dev/null || note "could not remove network namespace $SCALE_NS"
        SCALE_NS=""
        NSX=()
    fi
}

# ---- peers: install when missing (root only) -----------------------------------

have_pkg() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

agent_pids() {      # pids of live (not zombie) netdata/monit processes, whoever started them
    ps -eo pid=,stat=,comm= | awk '$2 !~ /^Z/ && ($3 == "netdata" || $3 == "monit") {print $1}'
}

install_peers() {
    local missing=() p
    for p in monit netdata; do want "$p" && ! have_pkg "$p" && missing+=("$p"); done
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "$INSTALL" = 0 ]; then note "not installing ${missing[*]} (--no-install)"; return 0; fi
    if [ "$(id -u)" -ne 0 ]; then
        note "${missing[*]} missing and not root: install with apt-get install -y --no-install-recommends ${missing[*]}"
        return 0
    fi
    local before after
    before=$(agent_pids | sort)
    log "installing ${missing[*]} (apt-get install -y --no-install-recommends)"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >"$TMP/apt.log" 2>&1 || { tail -20 "$TMP/apt.log" >&2; note "apt-get install ${missing[*]} failed"; }
    # A package's postinst may start its system service; that one is ours to stop.
    after=$(agent_pids | sort)
    local new
    new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep . || true)
    if [ -n "$new" ]; then
        note "the package install started $(echo "$new" | tr '\n' ' ')- stopping them"
        for p in monit netdata; do
            if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
                systemctl stop "$p" 2>/dev/null || true
            else
                invoke-rc.d "$p" stop >/dev/null 2>&1 || true
            fi
        done
        for p in $new; do python3 "$MEASURE" stop "$p" --timeout 15 || true; done
    fi
}

# ---- one agent -------------------------------------------------------------------

RESULTS=()
SCALE_RESULTS=()
SKIPPED=()
skip() { SKIPPED+=("--skipped" "$1=$2"); log "  $1: not run: $2"; }

TAG=""              # "-scale" while measuring under --scale load
measure() {         # measure KIND PID [extra args]: warm-up + window, result in $TMP/KIND$TAG.json
    local kind=$1 pid=$2 mpid rc=0; shift 2
    # in the background so that a signal to this script is acted on at once
    ${NSX[@]+"${NSX[@]}"} python3 "$MEASURE" window --kind "$kind" --pid "$pid" --seconds "$SECONDS_WIN" \
        --warmup "$WARMUP" --out "$TMP/$kind$TAG.json" "$@" &
    mpid=$!
    STARTED+=("$mpid")
    wait "$mpid" || rc=$?
    forget_pid "$mpid"
    if [ "$rc" = 0 ] && [ -n "$TAG" ]; then
        SCALE_RESULTS+=("$kind:$TMP/$kind.json:$TMP/$kind$TAG.json")
    elif [ "$rc" = 0 ]; then
        RESULTS+=("$TMP/$kind.json")
    else
        skip "$kind" "measurement failed (see above)"
    fi
}

run_ippocd() {
    log ""
    log "== ippocd"
    if [ ! -x "$IPPOCD" ]; then skip ippocd "no binary at $IPPOCD (make build)"; return 0; fi
    local d="$TMP/ippocd$TAG" port ver
    mkdir -p "$d/state" "$d/etc"
    # An empty configuration file: the embedded defaults (1 s for every group),
    # whatever /etc/ippoc/ippoc.conf this machine may have.
    printf '# bench: embedded defaults\n' >"$d/etc/ippoc.conf"
    # --scale: also watch the bench's cgroups (none are watched by default;
    # netdata finds cgroups by itself)
    [ -z "$SCALE_CG" ] || printf '[sense]\ncgroups = %s/*\n' "$SCALE_CG" >>"$d/etc/ippoc.conf"
    port=$(python3 "$MEASURE" freeport)
    ver=$("$IPPOCD" --version 2>/dev/null | awk '{print $2}') || ver=""
    start_bg "$d/ippocd.log" ${NSX[@]+"${NSX[@]}"} "$IPPOCD" --config "$d/etc/ippoc.conf" --state-dir "$d/state" \
        --listen "127.0.0.1:$port"
    local pid=$BG_PID url=""
    for _ in $(seq 1 150); do
        [ -s "$d/state/ippocd.url" ] && { url=$(head -n1 "$d/state/ippocd.url"); break; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    url=${url:-http://127.0.0.1:$port}
    url=${url%/}
    if ! ${NSX[@]+"${NSX[@]}"} python3 "$MEASURE" wait-http "$url/v1/status" --timeout 30 --pid "$pid"; then
        tail -20 "$d/ippocd.log" >&2
        stop_pid "$pid"; forget_pid "$pid"
        skip ippocd "did not start (log above)"
        return 0
    fi
    log "  pid $pid, API $url, state $d/state; warm-up ${WARMUP}s, window ${SECONDS_WIN}s"
    measure ippocd "$pid" --url "$url" --version "${ver:-?}"
    stop_pid "$pid"; forget_pid "$pid"
}

run_monit() {
    log ""
    log "== monit"
    if ! command -v monit >/dev/null; then skip monit "not installed"; return 0; fi
    local d="$TMP/monit" hport pid hpid ver
    mkdir -p "$d/www"
    echo ok >"$d/www/index.html"
    hport=$(python3 "$MEASURE" freeport)
    # The HTTP server monit tests: started by the bench, its CPU not counted.
    start_bg "$d/http.log" python3 -u -m http.server --bind 127.0.0.1 --directory "$d/www" "$hport"
    hpid=$BG_PID
    echo "$hpid" >"$d/http.pid"
    python3 "$MEASURE" wait-http "http://127.0.0.1:$hport/" --timeout 15 --pid "$hpid" || {
        stop_pid "$hpid"; forget_pid "$hpid"; skip monit "test HTTP server did not start"; return 0; }
    cat >"$d/monitrc" <<EOF
# bench/overhead: monit at 1 s, one process check with an HTTP test
set daemon 1
set logfile $d/monit.log
set pidfile $d/monit.pid
set idfile $d/monit.id
set statefile $d/monit.state
set httpd unixsocket $d/monit.sock permission 0600
    allow localhost
check process benchhttp with pidfile $d/http.pid
    if failed host 127.0.0.1 port $hport protocol http request "/" then alert
EOF
    chmod 600 "$d/monitrc"
    ver=$(monit -V 2>/dev/null | awk 'NR==1{print $NF}') || ver=""
    if ! monit -c "$d/monitrc" -t >"$d/check.log" 2>&1; then
        cat "$d/check.log" >&2
        stop_pid "$hpid"; forget_pid "$hpid"; skip monit "control file rejected"; return 0
    fi
    start_bg "$d/monit.out" monit -c "$d/monitrc" -I
    pid=$BG_PID
    # ready when the first HTTP test has reached the server
    local n=0
    for _ in $(seq 1 50); do
        n=$(grep -c '"GET ' "$d/http.log" 2>/dev/null || true)
        [ "${n:-0}" -gt 1 ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if [ "${n:-0}" -lt 1 ]; then
        cat "$d/monit.out" >&2
        stop_pid "$pid"; forget_pid "$pid"; stop_pid "$hpid"; forget_pid "$hpid"
        skip monit "monit's HTTP test never reached the server"
        return 0
    fi
    log "  pid $pid, testing http://127.0.0.1:$hport/ (server pid $hpid, not counted); warm-up ${WARMUP}s, window ${SECONDS_WIN}s"
    measure monit "$pid" --http-log "$d/http.log" --version "${ver:-?}"
    stop_pid "$pid"; forget_pid "$pid"
    stop_pid "$hpid"; forget_pid "$hpid"
}

run_netdata() {
    log ""
    log "== netdata"
    if ! command -v netdata >/dev/null && [ ! -x /usr/sbin/netdata ]; then skip netdata "not installed"; return 0; fi
    local nd; nd=$(command -v netdata || echo /usr/sbin/netdata)
    local d="$TMP/netdata$TAG" port user ver pid
    netdata_setup "$d" "$MEASURE" "bench/overhead: netdata as Debian ships it"
    port=$ND_PORT user=$ND_USER
    chown -R "$user" "$d/cache" "$d/lib" "$d/log" "$d/run" 2>/dev/null || true
    chmod 711 "$TMP"    # netdata drops to $user: it must reach $d (mktemp made $TMP 0700)
    ver=$("$nd" -v 2>/dev/null | awk '{print $2}') || ver=""
    local sysstate_before
    sysstate_before=$(find /var/lib/netdata /var/cache/netdata /var/log/netdata -printf '%p %s %T@\n' 2>/dev/null | sort | md5sum)
    start_bg "$d/netdata.out" ${NSX[@]+"${NSX[@]}"} env DO_NOT_TRACK=1 \
        "$nd" -D -c "$d/etc/netdata.conf" -P "$d/run/netdata.pid"
    pid=$BG_PID
    # `env` execs netdata, so $pid is netdata itself
    if ! ${NSX[@]+"${NSX[@]}"} python3 "$MEASURE" wait-http "http://127.0.0.1:$port/api/v1/info" --timeout 60 --pid "$pid"; then
        tail -n 20 "$d/netdata.out" "$d/log/error.log" >&2 || true
        stop_pid "$pid"; forget_pid "$pid"
        skip netdata "did not start (log above)"
        return 0
    fi
    log "  pid $pid, API http://127.0.0.1:$port (statsd on 127.0.0.1:$ND_SPORT), running as $user; warm-up ${WARMUP}s, window ${SECONDS_WIN}s"
    measure netdata "$pid" --url "http://127.0.0.1:$port" --version "${ver:-?}"
    stop_pid "$pid" 30; forget_pid "$pid"
    local sysstate_after
    sysstate_after=$(find /var/lib/netdata /var/cache/netdata /var/log/netdata -printf '%p %s %T@\n' 2>/dev/null | sort | md5sum)
    [ "$sysstate_before" = "$sysstate_after" ] || note "something under /var/{lib,cache,log}/netdata changed during the run"
}

# ---- main ------------------------------------------------------------------------

machine="$(nproc) cores, $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -o), kernel $(uname -r)"
log "overhead bench: window ${SECONDS_WIN}s, warm-up ${WARMUP}s, agents one at a time: $ONLY"
log "machine: $machine"
read -r l1 l5 _ </proc/loadavg
if awk -v l="$l1" -v n="$(nproc)" 'BEGIN{exit !(l > 0.5*n)}'; then
    note "load average is $l1 $l5 on $(nproc) cores: the machine is busy, CPU figures will be noisier (each agent's own CPU is still measured from its process tree)"
fi
others=$(agent_pids | tr '\n' ' ')
[ -z "$others" ] || note "netdata/monit already running here (pids $others), not started by this bench: left alone, but they load the machine"

install_peers

want ippocd && run_ippocd
want monit && run_monit
want netdata && run_netdata

mkdir -p "$OUTDIR"
DATE=$(date +%Y-%m-%d)
python3 "$MEASURE" report --md "$OUTDIR/overhead-$DATE.md" --date "$DATE" --machine "$machine" \
    "${SKIPPED[@]+"${SKIPPED[@]}"}" "${RESULTS[@]+"${RESULTS[@]}"}"

if [ "$SCALE" = 1 ]; then
    scale_setup
    TAG="-scale"
    want ippocd && run_ippocd
    want netdata && run_netdata
    TAG=""
    scale_teardown
    python3 "$MEASURE" scale-report --md "$OUTDIR/overhead-scale-$DATE.md" --date "$DATE" \
        --machine "$machine" --procs "$SCALE_PROCS" --cgroups "$SCALE_CGROUPS" --ifaces "$SCALE_IFACES" \
        "${SCALE_RESULTS[@]+"${SCALE_RESULTS[@]}"}"
fi

# Nothing of ours may be left running.
left=""
for p in "${STARTED[@]+"${STARTED[@]}"}"; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
[ -z "$left" ] || note "still running after the bench:$left (stopping them now)"
now=$(agent_pids | tr '\n' ' ')
[ "$now" = "$others" ] || note "netdata/monit processes now: '${now}' (before: '${others}')"
