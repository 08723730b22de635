#!/bin/bash
# setup.sh: creates the private PostgreSQL 15 cluster the evolve-postgres
# bench measures: BENCH/data (initdb, Debian's defaults), BENCH/sock (its unix
# socket; no TCP), BENCH/run (logs), a pgbench database of SCALE (default 17,
# about twice the default shared_buffers) kept as the template "bench_tmpl",
# and BENCH/data/conf.d/ippoc.conf, the knob file (written here with
# PostgreSQL 15's own defaults, spelled out, so that the incumbent is
# Debian's configuration). Never touches the system cluster.
#
#   setup.sh BENCH [SCALE]        BENCH must not exist or be empty
#
# Environment: PGBIN (default /usr/lib/postgresql/15/bin), PG_PORT (the
# socket's number; default: a free TCP port number). pgbench -i's data is
# deterministic (it takes no seed in PostgreSQL 15).
set -euo pipefail

BENCH=${1:?usage: setup.sh BENCH [SCALE]}
SCALE=${2:-17}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
HERE=$(cd "$(dirname "$0")" && pwd)

[ -x "$PGBIN/postgres" ] || { echo "setup.sh: $PGBIN/postgres: not found (install postgresql-15)" >&2; exit 2; }

mkdir -p "$BENCH"
BENCH=$(cd "$BENCH" && pwd)
case "$BENCH" in
/tmp/*) echo "setup.sh: $BENCH: use a directory outside /tmp (the sandbox gives each trial a private /tmp)" >&2; exit 2 ;;
esac
if [ -n "$(ls -A "$BENCH")" ]; then
    echo "setup.sh: $BENCH: not empty" >&2
    exit 2
fi
chmod 755 "$BENCH"
mkdir -p "$BENCH/data" "$BENCH/sock" "$BENCH/run"

# PostgreSQL refuses to run as root: as root, the server runs as `postgres`.
if [ "$(id -u)" = 0 ]; then
    PGUSER_OS=postgres
    chown postgres:postgres "$BENCH/data" "$BENCH/sock" "$BENCH/run"
    as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
else
    PGUSER_OS=$(id -un)
    as_pg() { "$@"; }
fi
chmod 700 "$BENCH/data"

PORT=${PG_PORT:-$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}

as_pg "$PGBIN/initdb" -D "$BENCH/data" -U postgres -E UTF8 --locale=C.UTF-8 -A trust >"$BENCH/run/initdb.log"

# Fixed settings of the bench (not knobs): the private socket, no TCP, the
# knob file in conf.d, and dynamic shared memory in System V segments (the
# sandbox's /dev is a fresh one whose shm directory only root may write; the
# sandbox has its own IPC namespace). Everything else stays initdb's default.
cat >>"$BENCH/data/postgresql.conf" <<EOF

# ---- ippoc bench/evolve-postgres (fixed, not knobs) ----
listen_addresses = ''
port = $PORT
unix_socket_directories = '$BENCH/sock'
dynamic_shared_memory_type = sysv
include_dir = 'conf.d'
EOF
mkdir -p "$BENCH/data/conf.d"
cp "$HERE/defaults.conf" "$BENCH/data/conf.d/ippoc.conf"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$BENCH/data/conf.d"
echo "$PORT" >"$BENCH/port"
echo "$PGUSER_OS" >"$BENCH/osuser"

as_pg "$PGBIN/pg_ctl" -D "$BENCH/data" -l "$BENCH/run/setup.log" -w -t 60 start >/dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$BENCH/data" -m fast -w stop >/dev/null 2>&1 || true' EXIT
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$BENCH/sock" -p "$PORT" -U postgres)
as_pg "$PGBIN/createdb" -h "$BENCH/sock" -p "$PORT" -U postgres bench_tmpl
as_pg "$PGBIN/pgbench" -h "$BENCH/sock" -p "$PORT" -U postgres -i -q -s "$SCALE" bench_tmpl \
    >"$BENCH/run/pgbench-init.log" 2>&1
as_pg "${PSQL[@]}" -d bench_tmpl -c 'CREATE EXTENSION pg_prewarm' -c 'VACUUM ANALYZE' -c 'CHECKPOINT'
as_pg "${PSQL[@]}" -d postgres -c "ALTER DATABASE bench_tmpl WITH IS_TEMPLATE true"
SIZE=$(as_pg "${PSQL[@]}" -d bench_tmpl -At -c "SELECT pg_database_size('bench_tmpl')")
echo "$SIZE" >"$BENCH/dbsize"
echo "setup.sh: $BENCH: scale $SCALE, template bench_tmpl $((SIZE / 1048576)) MB, socket $BENCH/sock port $PORT, server user $PGUSER_OS"
