#!/usr/bin/env bash
# bench/quiet/record-vm.sh: records a real idle Linux machine with ippocd, for
# bench/quiet's false-alarm count: Debian's kernel booted under QEMU (KVM when
# the kernel boots with it, TCG otherwise), 1 vCPU, 1 GiB RAM, no network,
# doing nothing but running ippocd with `[memory] ram_window = 6h` (every
# 1 s sample kept as a raw row, as in the busy host's recording).
#
# 1. builds an initramfs (gzip cpio): busybox-static, build/src/daemon/ippocd,
#    the libraries ldd lists for it and the loader, /etc (passwd, group,
#    os-release, hostname "idle"), virtio_pci, virtio_blk, ext4 and their
#    dependencies from modules.dep (insmod in order);
# 2. makes a sparse raw disk (mkfs.ext4), attached as virtio; the guest mounts
#    it at /var/lib/ippoc and runs ippocd with state dir /var/lib/ippoc/state
#    and the API on 127.0.0.1:17171 inside the guest;
# 3. at the end (--duration or --until) the guest sends SIGTERM, waits for
#    ippocd to exit (clean flush), syncs, unmounts and powers off;
# 4. extracts state/ippoc.db (and the guest's ippocd.log) from the image with
#    debugfs into the out dir and prints the db's size, series and raw rows.
#
# Usage: bench/quiet/record-vm.sh (--duration S | --until HH:MM) [--out DIR]
#                                 [--background] [--disk-size SIZE]
#   --duration S   record for S seconds of ippocd run time
#   --until HH:MM  record until that wall-clock time (UTC; tomorrow if past)
#   --out DIR      where disk.img, serial.log, ippoc.db go (/work/rec/idle)
#   --background   run detached (setsid nohup): pid in DIR/record.pid, log in
#                  DIR/record.log; the guest's console is DIR/serial.log
#   --disk-size    the sparse disk image's size (2G)
#   --workload build  a busy machine instead of an idle one: the guest runs a
#                  steady build-like loop beside ippocd (archive /bin and /lib,
#                  compress, decompress, checksum, remove, rest 3 s, again)
# Progress: DIR/serial.log shows "rec: ippocd started" and a line every
# 10 minutes; the db appears in DIR when the guest has powered off.
# Environment: IPPOCD (the binary, default build/src/daemon/ippocd),
# IPPOC_KVER (kernel version; default the newest /boot/vmlinuz-*-amd64 or
# .cache/kernel/boot/vmlinuz-*-amd64), BUSYBOX (/bin/busybox, static).
# The kernel's modules come from /lib/modules/$kver or .cache/kernel/lib/
# modules/$kver; when neither has them, linux-image-$kver is fetched with
# `apt-get download` and unpacked into .cache/kernel (never installed).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${IPPOC_ROOT:-$(cd "$HERE/../.." && pwd)}
IPPOCD=${IPPOCD:-$ROOT/build/src/daemon/ippocd}
BUSYBOX=${BUSYBOX:-/bin/busybox}
OUT=/work/rec/idle
DURATION=
UNTIL=
BACKGROUND=0
DISK_SIZE=2G
WORKLOAD=none
ARGS=("$@")

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "record-vm: $*" >&2; exit 1; }
say() { echo "record-vm: $(date -u +%H:%M:%S) $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
        --until) UNTIL=${2:?--until needs HH:MM}; shift 2 ;;
        --out) OUT=${2:?--out needs a directory}; shift 2 ;;
        --background) BACKGROUND=1; shift ;;
        --disk-size) DISK_SIZE=${2:?--disk-size needs a size}; shift 2 ;;
        --workload) WORKLOAD=${2:?--workload needs none or build}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

case "$WORKLOAD" in none | build) ;; *) die "--workload: none or build, not '$WORKLOAD'" ;; esac
VMNAME=idle
[ "$WORKLOAD" = build ] && VMNAME=busy

# the end, as a Unix time the guest compares its UTC clock against
now=$(date -u +%s)
if [ -n "$DURATION" ] && [ -n "$UNTIL" ]; then
    die "--duration and --until exclude each other"
elif [ -n "$DURATION" ]; then
    [[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -gt 0 ] || die "--duration: not a positive number of seconds: $DURATION"
    END=0 # counted from ippocd's start in the guest
elif [ -n "$UNTIL" ]; then
    [[ "$UNTIL" =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] || die "--until: not HH:MM (UTC): $UNTIL"
    END=$(date -u -d "$(date -u +%F) $UNTIL" +%s)
    [ "$END" -gt "$now" ] || END=$((END + 86400))
    DURATION=0
else
    usage >&2; die "give --duration S or --until HH:MM"
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ "$BACKGROUND" = 1 ]; then
    # run a copy, so that editing or checking out the tree cannot change the
    # script under the running bash; the copy reads the tree's binaries now
    [ -f "$OUT/record.pid" ] && kill -0 "$(cat "$OUT/record.pid")" 2>/dev/null &&
        die "a recording already runs in $OUT (pid $(cat "$OUT/record.pid"))"
    cp "$0" "$OUT/record-vm.sh"
    fg=()
    for a in "${ARGS[@]}"; do [ "$a" = --background ] || fg+=("$a"); done
    IPPOC_ROOT=$ROOT IPPOCD=$IPPOCD BUSYBOX=$BUSYBOX setsid nohup \
        bash "$OUT/record-vm.sh" "${fg[@]}" --out "$OUT" > "$OUT/record.log" 2>&1 < /dev/null &
    echo $! > "$OUT/record.pid"
    say "running in the background: pid $(cat "$OUT/record.pid"), log $OUT/record.log, console $OUT/serial.log"
    exit 0
fi

for t in qemu-system-x86_64 cpio gzip mkfs.ext4 debugfs ldd; do
    command -v $t > /dev/null || die "$t not installed (qemu-system-x86, cpio, gzip, e2fsprogs, libc-bin)"
done
[ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" > /dev/null 2>&1 ||
    die "no static busybox at $BUSYBOX (Debian package busybox-static)"
[ -x "$IPPOCD" ] || die "$IPPOCD missing: build it first (meson setup build && ninja -C build)"

# the kernel, as tests/kernel/run.sh finds it
if [ -n "${IPPOC_KVER:-}" ]; then
    kver=$IPPOC_KVER
    vmlinuz=$(ls /boot/vmlinuz-"$kver" "$ROOT"/.cache/kernel/boot/vmlinuz-"$kver" 2>/dev/null | head -1 || true)
else
    vmlinuz=$(ls /boot/vmlinuz-*-amd64 "$ROOT"/.cache/kernel/boot/vmlinuz-*-amd64 2>/dev/null |
        awk -F/vmlinuz- '{ print $NF, $0 }' | sort -V -r | cut -d' ' -f2 | head -1 || true)
    kver=${vmlinuz##*/vmlinuz-}
fi
[ -n "$vmlinuz" ] && [ -r "$vmlinuz" ] ||
    die "no Debian kernel in /boot or $ROOT/.cache/kernel/boot (make deps)"

# its modules: /lib/modules/$kver, else .cache/kernel (fetched when missing)
moddir=/lib/modules/$kver
if [ ! -d "$moddir/kernel" ]; then
    moddir=$ROOT/.cache/kernel/lib/modules/$kver
    if [ ! -d "$moddir/kernel" ]; then
        say "fetching linux-image-$kver for its modules (unpacked into $ROOT/.cache/kernel)"
        mkdir -p "$ROOT/.cache/kernel"
        (cd "$ROOT/.cache/kernel" && apt-get download -qq "linux-image-$kver" 2>/dev/null &&
            dpkg-deb -x linux-image-"${kver}"_*.deb . && rm -f linux-image-*.deb) ||
            die "cannot fetch linux-image-$kver (apt-get download)"
    fi
fi
if [ ! -s "$moddir/modules.dep" ]; then
    # dpkg-deb -x leaves it out (depmod runs at install); busybox makes one
    "$BUSYBOX" depmod -b "${moddir%/lib/modules/$kver}" "$kver" ||
        die "$moddir/modules.dep missing and busybox depmod failed"
fi

WORK=$(mktemp -d /tmp/ippoc-record-vm.XXXXXX)
qpid=
cleanup() {
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# KVM when it works: /dev/kvm opening is not enough (nested under another
# hypervisor QEMU may abort on an MSR or the guest hang after real mode), so
# the kernel is booted with it for up to 20 s and must print its banner
kvm_boots() {
    [ -w /dev/kvm ] || return 1
    local p i
    qemu-system-x86_64 -machine q35 -enable-kvm -cpu host -smp 1 -m 256 -display none -vga none \
        -no-reboot -nic none -monitor none -serial file:"$WORK/kvm-probe.log" -kernel "$vmlinuz" \
        -append "console=ttyS0 panic=-1" < /dev/null > "$WORK/kvm-probe.err" 2>&1 &
    p=$!
    for i in $(seq 40); do
        grep -q 'Linux version' "$WORK/kvm-probe.log" 2>/dev/null && break
        kill -0 $p 2>/dev/null || break
        sleep 0.5
    done
    kill $p 2>/dev/null; wait $p 2>/dev/null
    grep -q 'Linux version' "$WORK/kvm-probe.log" 2>/dev/null
}
if kvm_boots 2> /dev/null; then
    accel=(-enable-kvm -cpu host)
else
    accel=(-accel tcg -cpu max)
    say "WARNING: KVM not usable ($( [ -w /dev/kvm ] && { grep -m1 -o 'error: .*' "$WORK/kvm-probe.err" ||
        echo 'the guest does not boot with it'; } || echo 'no /dev/kvm')): TCG, an emulated CPU"
fi

# modules in load order: each one's dependencies (modules.dep, deepest first)
declare -A seen=()
modorder=()
add_mod() { # $1: path relative to $moddir
    local m=$1 d
    [ -n "${seen[$m]:-}" ] && return 0
    seen[$m]=1
    for d in $(awk -v m="$m:" '$1 == m { $1 = ""; print }' "$moddir/modules.dep"); do
        add_mod "$d"
    done
    modorder+=("$m")
}
for name in virtio_pci virtio_blk crc32c_generic crc32c-intel ext4; do
    rel=$(awk -F: -v n="/$name.ko" 'index($1, n) && substr($1, length($1) - length(n) + 1) == n { print $1; exit }' \
        "$moddir/modules.dep")
    [ -n "$rel" ] || { [ "$name" = crc32c-intel ] && continue; die "module $name not in $moddir/modules.dep"; }
    add_mod "$rel"
done

# 1. the initramfs
R=$WORK/root
mkdir -p "$R"/{bin,sbin,etc/ippoc,proc,sys,dev,run,tmp,var/lib/ippoc,usr/sbin,lib/modules,root}
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"
done
cp "$IPPOCD" "$R/usr/sbin/ippocd"
for lib in $(ldd "$IPPOCD" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
done
mkdir -p "$R/lib/modules/$kver"
for m in "${modorder[@]}"; do
    cp "$moddir/$m" "$R/lib/modules/$kver/"
    echo "${m##*/}" >> "$R/lib/modules/$kver/load-order"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
cp -L /etc/os-release "$R/etc/os-release"
echo "$VMNAME" > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$VMNAME" > "$R/etc/hosts"
cat > "$R/etc/ippoc/ippoc.conf" <<'EOF'
# the idle VM's recording: the host recording's config, state on the virtio disk
[daemon]
state_dir = /var/lib/ippoc/state
[api]
listen = 127.0.0.1:17171
[memory]
ram_window = 6h
EOF
printf 'END=%s\nDURATION=%s\nWORKLOAD=%s\nVMNAME=%s\n' "$END" "$DURATION" "$WORKLOAD" "$VMNAME" > "$R/etc/record.env"
cat > "$R/init" <<'EOF'
#!/bin/sh
# the idle VM's init: mount as a real machine does, run ippocd on the virtio
# disk until the end, stop it cleanly, unmount and power off
export PATH=/bin:/sbin:/usr/sbin
. /etc/record.env
log() { echo "rec: $(date -u +%FT%TZ) $*"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /sys/fs/cgroup
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
hostname "$VMNAME"
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
kver=$(uname -r)
while read -r m; do
    insmod "/lib/modules/$kver/$m" || log "insmod $m failed"
done < "/lib/modules/$kver/load-order"
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 -o noatime /dev/vda /var/lib/ippoc || { log "FAIL: cannot mount /dev/vda"; poweroff -f; }
mkdir -p /var/lib/ippoc/state
cd /
ippocd -c /etc/ippoc/ippoc.conf >> /var/lib/ippoc/ippocd.log 2>&1 &
pid=$!
if [ "$WORKLOAD" = build ]; then
    # a steady build-like loop: read, compress, decompress, checksum, write, rest
    ( while :; do
        tar -cf - /bin /lib 2>/dev/null | gzip -1 > /tmp/w.tgz
        gzip -dc /tmp/w.tgz | md5sum > /dev/null
        rm -f /tmp/w.tgz
        sleep 3
      done ) &
    log "workload: build loop (pid $!)"
fi
start=$(date +%s)
[ "$END" -gt 0 ] || END=$((start + DURATION))
log "ippocd started: pid $pid, kernel $kver, $(nproc) cpu, $(awk '/MemTotal/ { print $2 " kB" }' /proc/meminfo), until $(date -u -d @$END +%FT%TZ)"
beat=$((start + 600))
while kill -0 $pid 2>/dev/null; do
    now=$(date +%s)
    [ $now -ge $END ] && break
    if [ $now -ge $beat ]; then
        log "alive: load $(cut -d' ' -f1-3 /proc/loadavg), db $(ls -l /var/lib/ippoc/state/ippoc.db 2>/dev/null | awk '{ print $5 }') bytes"
        beat=$((beat + 600))
    fi
    left=$((END - now))
    [ $left -gt 30 ] && left=30
    sleep $left
done
if kill -0 $pid 2>/dev/null; then
    log "stopping ippocd (SIGTERM)"
    kill -TERM $pid
    wait $pid
    rc=$?
else
    wait $pid
    rc=$?
    log "ippocd exited on its own before the end"
fi
log "ippocd exit status $rc"
tail -5 /var/lib/ippoc/ippocd.log
sync
umount /var/lib/ippoc || log "umount failed"
log "done"
poweroff -f
EOF
chmod 755 "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initrd.gz"

# 2. the disk
img=$OUT/disk.img
rm -f "$img" "$OUT/ippoc.db" "$OUT/ippoc.db-wal" "$OUT/ippoc.db-shm" "$OUT/ippocd.log"
truncate -s "$DISK_SIZE" "$img"
mkfs.ext4 -q -F -L ippoc "$img"

# 3. boot, and wait for the guest to power off
if [ "$END" -gt 0 ]; then limit=$((END - $(date -u +%s) + 600)); else limit=$((DURATION + 600)); fi
say "booting $kver (${accel[*]}, 1 vCPU, 1 GiB, no network), ippocd $(
    [ "$END" -gt 0 ] && date -u -d @"$END" +'until %FT%TZ' || echo "for $DURATION s"), console $OUT/serial.log"
timeout --signal=KILL "$limit" qemu-system-x86_64 \
    -machine q35 "${accel[@]}" -smp 1 -m 1024 \
    -display none -vga none -no-reboot -nic none -monitor none -rtc base=utc \
    -serial file:"$OUT/serial.log" \
    -drive file="$img",if=virtio,format=raw \
    -kernel "$vmlinuz" -initrd "$WORK/initrd.gz" \
    -append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init" < /dev/null &
qpid=$!
wait $qpid && qrc=0 || qrc=$?
qpid=
[ "$qrc" = 0 ] || say "WARNING: qemu exit status $qrc (137: killed at the $limit s limit)"
grep -q '^rec: .* done' "$OUT/serial.log" || say "WARNING: the guest did not finish cleanly (see $OUT/serial.log)"

# 4. the db, from the image
for f in state/ippoc.db state/ippoc.db-wal state/ippoc.db-shm ippocd.log; do
    if debugfs -R "stat /$f" "$img" 2>/dev/null | grep -q '^Inode:'; then
        debugfs -R "dump /$f $OUT/${f##*/}" "$img" 2>/dev/null
    fi
done
[ -s "$OUT/ippoc.db" ] || die "no state/ippoc.db on $img"
python3 - "$OUT/ippoc.db" <<'EOF'
import os, sqlite3, sys
path = sys.argv[1]
db = sqlite3.connect(path)
series = db.execute("SELECT count(*) FROM series").fetchone()[0]
rows, lo, hi = db.execute("SELECT count(*), min(ts), max(ts) FROM raw").fetchone()
span = (hi - lo) / 1000 if rows else 0
print(f"record-vm: {path}: {os.path.getsize(path)} bytes, {series} series, {rows} raw rows "
      f"(one per second: {span:.0f} s from first to last)")
EOF
say "done"
