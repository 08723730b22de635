#!/bin/bash
# fitness.sh: one measured pgbench run of the bench's private cluster, the
# fitness command of bench/evolve-postgres (what `ippoc evolve run --fitness`
# runs, in the sandbox, and what compare.py runs for every configuration).
#
#   fitness.sh BENCH              BENCH made by setup.sh
#
# Every run: stop the server if a previous trial left it, start it with the
# configuration as it is now (BENCH/data/conf.d/ippoc.conf holds the knobs),
# drop the run database and copy it afresh from the template (createdb -T,
# FILE_COPY: it checkpoints, so every run starts clean), load its tables and
# indexes into shared_buffers with pg_prewarm, then the measured run: pgbench
# with the built-in tpcb-like (read-write) and select-only scripts mixed one
# to one by transaction count, CLIENTS clients on THREADS threads for DURATION
# seconds, a fixed --random-seed. Then the server is stopped.
#
# stdout: the TPS (excluding connection time) as its last line, and nothing
# else. The run fails (exit 1, no number) when the server does not start,
# when any transaction failed or a client aborted, or when the 95th
# percentile of the transactions' latency exceeds P95_MS. Details go to stderr
# and BENCH/run/.
#
# Environment: DURATION (s, default 10), CLIENTS (8), THREADS (2), SEED (42),
# P95_MS (default 100), PGBIN (/usr/lib/postgresql/15/bin).
set -uo pipefail

BENCH=${1:?usage: fitness.sh BENCH}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
SEED=${SEED:-42}
P95_MS=${P95_MS:-100}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$BENCH/data
SOCK=$BENCH/sock
RUN=$BENCH/run
PORT=$(cat "$BENCH/port") || exit 2

if [ "$(id -u)" = 0 ]; then
    as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
else
    as_pg() { "$@"; }
fi
say() { echo "fitness: $*" >&2; }
fail() { say "$*"; exit 1; }

stop_server() {
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1
}

# A server left by a trial that was killed: in the sandbox its processes died
# with their PID namespace, but postmaster.pid stays. Stop it when it runs,
# else remove the stale file (its pid may be anyone's in a new namespace).
if [ -f "$DATA/postmaster.pid" ]; then
    pid=$(head -1 "$DATA/postmaster.pid")
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
        stop_server
    fi
    rm -f "$DATA/postmaster.pid"
fi

rm -f "$RUN"/txlog*
if ! as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$RUN/server.log" -w -t 60 start >/dev/null 2>&1; then
    tail -5 "$RUN/server.log" >&2
    fail "the server did not start with this configuration"
fi
trap stop_server EXIT

PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres)
as_pg "$PGBIN/dropdb" -h "$SOCK" -p "$PORT" -U postgres --if-exists bench_run || fail "dropdb failed"
as_pg "$PGBIN/createdb" -h "$SOCK" -p "$PORT" -U postgres -T bench_tmpl --strategy=file_copy bench_run \
    || fail "createdb -T bench_tmpl failed"
as_pg "${PSQL[@]}" -d bench_run -At -c "SELECT sum(pg_prewarm(c.oid::regclass)) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')" >/dev/null || fail "pg_prewarm failed"

# pgbench writes its per-transaction log in its working directory.
cd "$RUN" || exit 2
as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres -n \
    -b tpcb-like@1 -b select-only@1 -c "$CLIENTS" -j "$THREADS" -T "$DURATION" \
    --random-seed="$SEED" -l --log-prefix=txlog bench_run >"$RUN/pgbench.out" 2>"$RUN/pgbench.err"
rc=$?
stop_server
trap - EXIT
/usr/bin/python3 "$HERE/pgbench_result.py" --rc "$rc" --p95-ms "$P95_MS" "$RUN/pgbench.out" "$RUN"/txlog* \
    || { tail -3 "$RUN/pgbench.err" >&2; exit 1; }
