#!/bin/bash
# setup.sh: prepares the nginx example of docs/evolve.md in PREFIX (default
# /var/tmp/ippoc-nginx): the page it serves, nginx's directories, the knob
# file (knobs.conf, nginx's defaults) and PREFIX/nginx.space, the space with
# PREFIX filled in; prints the `ippoc evolve run` command to try.
#
#   docs/examples/nginx/setup.sh [PREFIX]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${1:-/var/tmp/ippoc-nginx}
case "$PREFIX" in
/*) ;; *) PREFIX=$(pwd)/$PREFIX ;;
esac
case "$PREFIX" in
/tmp/*) echo "setup.sh: $PREFIX: use a directory outside /tmp (the sandbox gives each trial a private /tmp)" >&2; exit 2 ;;
esac
command -v ab >/dev/null || { echo "setup.sh: ab not found (apt-get install apache2-utils)" >&2; exit 2; }
[ -x /usr/sbin/nginx ] || { echo "setup.sh: /usr/sbin/nginx not found (apt-get install nginx-light)" >&2; exit 2; }
mkdir -p "$PREFIX/conf" "$PREFIX/logs" "$PREFIX/html" "$PREFIX/tmp"
chmod 755 "$PREFIX" "$PREFIX/html"
# a 16 KiB page
head -c 12288 /dev/zero | tr '\0' 'x' | fold -w 80 | sed '1i <html><body><pre>' >"$PREFIX/html/index.html"
echo '</pre></body></html>' >>"$PREFIX/html/index.html"
chmod 644 "$PREFIX/html/index.html"
cp "$HERE/knobs.conf" "$PREFIX/conf/knobs.conf"
# Inside the sandbox the port is on a private loopback; outside, it must be free.
/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' >"$PREFIX/port"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@HERE@|$HERE|g" "$HERE/nginx.space" >"$PREFIX/nginx.space"
echo "ready: $PREFIX (port $(cat "$PREFIX/port")). Try:"
echo "  ippoc evolve run --space $PREFIX/nginx.space --budget 8m"
