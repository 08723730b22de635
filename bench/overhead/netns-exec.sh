#!/bin/sh
# bench/overhead/netns-exec.sh MOUNTS CMD...: run by `ip netns exec NS`, which
# gives the command a private mount namespace with a fresh /sys (so that
# /sys/class/net shows the namespace's interfaces) and so without the cgroup
# mounts. This mounts them again, as MOUNTS (a copy of /proc/self/mounts taken
# outside) lists them under /sys/fs/cgroup (the same hierarchies: a cgroup
# mount with the same options attaches the existing one), then execs CMD, so
# the pid stays the command's. The mounts live in that private namespace
# only and go with it.
m=$1
shift
mount -t tmpfs -o mode=755 cgroup-root /sys/fs/cgroup || { echo "netns-exec.sh: cannot mount /sys/fs/cgroup" >&2; exit 1; }
while read -r dev dir type opts _; do
    case "$type:$dir" in
        cgroup:/sys/fs/cgroup/* | cgroup2:/sys/fs/cgroup/* | cgroup2:/sys/fs/cgroup) ;;
        *) continue ;;
    esac
    if [ "$dir" = /sys/fs/cgroup ]; then
        umount /sys/fs/cgroup && mount -t cgroup2 -o "$opts" "$dev" /sys/fs/cgroup
    else
        mkdir -p "$dir" && mount -t "$type" -o "$opts" "$dev" "$dir"
    fi || echo "netns-exec.sh: cannot mount $dir" >&2
done <"$m"
exec "$@"
