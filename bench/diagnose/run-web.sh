#!/bin/sh
# run-web.sh DIR: how ippocd starts the bench's web service (bench/diagnose):
# in its own mount namespace, where /etc/resolv.conf is DIR/resolv.conf
# (bind-mounted, so the bench can break and ippoc can restore its resolver
# without touching the machine's), then as user nobody: svc.py web with the
# config, environment, credential and data dir of DIR. The process ippocd
# sees is the python one (unshare and setpriv execute in place).
set -e
dir=$1
if [ -z "$IPPOC_BENCH_NS" ]; then
    IPPOC_BENCH_NS=1 exec unshare -m --propagation private "$0" "$@"
fi
mount --bind "$dir/resolv.conf" /etc/resolv.conf
exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
    /usr/bin/python3 "$(dirname "$0")/svc.py" web --config "$dir/web.ini" --env "$dir/web.env" \
    --cred "$dir/token" --data "$dir/data"
