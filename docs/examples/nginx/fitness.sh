#!/bin/bash
# fitness.sh: one measured run of the nginx example (docs/evolve.md, "Example:
# nginx in ten minutes"): writes PREFIX/conf/nginx.conf from nginx.conf.in and
# the knob file PREFIX/conf/knobs.conf, starts nginx on PREFIX's private loopback
# port, loads it with ApacheBench (ab, keep-alive), stops it, and prints the
# requests per second as its last line. Fails (exit 1, no number) when nginx
# does not start, when any request failed or was not a 2xx, or when the 95th
# percentile of the request time is over P95_MS.
#
#   fitness.sh PREFIX             PREFIX made by setup.sh
# Environment: REQUESTS (default 100000), CONCURRENCY (32), P95_MS (50).
set -uo pipefail
PREFIX=${1:?usage: fitness.sh PREFIX}
HERE=$(cd "$(dirname "$0")" && pwd)
REQUESTS=${REQUESTS:-100000}
CONCURRENCY=${CONCURRENCY:-32}
P95_MS=${P95_MS:-50}
NGINX=${NGINX:-/usr/sbin/nginx}
PORT=$(cat "$PREFIX/port") || exit 2
fail() { echo "fitness: $*" >&2; exit 1; }

# knobs.conf -> the template's @NAME@ placeholders, in nginx's syntax
sed_args=(-e "s|@PORT@|$PORT|g")
while IFS='=' read -r k v; do
    k=$(echo "$k" | tr -d ' \t'); v=$(echo "$v" | sed 's/^[ \t]*//; s/[ \t]*$//')
    case "$k" in ''|'#'*) continue ;; esac
    case "$k" in
    access_log_buffer)                      # 0: unbuffered, else buffer=SIZE (nginx says k, not kB)
        n=${v%%[!0-9]*}
        if [ "${n:-0}" = 0 ]; then v=""; else v="buffer=$(echo "$v" | sed 's/kB$/k/; s/MB$/m/; s/B$//') flush=1s"; fi ;;
    open_file_cache)                        # 0: off, else max=N
        if [ "$v" = 0 ]; then v=off; else v="max=$v inactive=20s"; fi ;;
    esac
    sed_args+=(-e "s|@$k@|$v|g")
done <"$PREFIX/conf/knobs.conf"
sed "${sed_args[@]}" "$HERE/nginx.conf.in" >"$PREFIX/conf/nginx.conf.new" || exit 2
if grep -q '@[a-z_]*@' "$PREFIX/conf/nginx.conf.new"; then
    fail "knobs.conf lacks $(grep -o '@[a-z_]*@' "$PREFIX/conf/nginx.conf.new" | head -1)"
fi
mv "$PREFIX/conf/nginx.conf.new" "$PREFIX/conf/nginx.conf"

# a server left by a killed trial
[ -f "$PREFIX/logs/nginx.pid" ] && kill -QUIT "$(cat "$PREFIX/logs/nginx.pid")" 2>/dev/null
rm -f "$PREFIX/logs/nginx.pid" "$PREFIX/logs/access.log"
"$NGINX" -p "$PREFIX/" -c conf/nginx.conf -e logs/error.log || fail "nginx did not start (tail $PREFIX/logs/error.log)"
stop() {
    local pid
    pid=$(cat "$PREFIX/logs/nginx.pid" 2>/dev/null) || return 0
    kill -QUIT "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null
}
trap stop EXIT
up=0
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then up=1; break; fi
    sleep 0.05
done
[ "$up" = 1 ] || fail "nginx is not listening on 127.0.0.1:$PORT"

out=$(ab -q -k -n "$REQUESTS" -c "$CONCURRENCY" "http://127.0.0.1:$PORT/index.html" 2>&1) || fail "ab failed: $(echo "$out" | tail -2)"
rps=$(echo "$out" | awk '/^Requests per second:/ {print $4}')
failed=$(echo "$out" | awk '/^Failed requests:/ {print $3}')
non2xx=$(echo "$out" | awk '/^Non-2xx responses:/ {print $3}')
p95=$(echo "$out" | awk '$1 == "95%" {print $2}')
echo "ab: $rps req/s, failed ${failed:-?}, non-2xx ${non2xx:-0}, p95 ${p95:-?} ms" >&2
[ -n "$rps" ] || fail "no 'Requests per second' in ab's output"
[ "${failed:-1}" = 0 ] || fail "$failed failed requests"
[ "${non2xx:-0}" = 0 ] || fail "$non2xx non-2xx responses"
[ -n "$p95" ] && [ "$p95" -le "$P95_MS" ] || fail "p95 ${p95:-?} ms is over the guard of $P95_MS ms"
echo "$rps"
