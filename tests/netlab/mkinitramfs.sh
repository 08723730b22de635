#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/netlab/mkinitramfs.sh OUT.cpio.gz MODDIR
# Builds the netlab guest's initramfs: a static busybox, the kernel modules
# the guest needs from MODDIR (lib/modules/$kver of Debian's linux-image)
# with their dependencies first, and an /init that mounts the host's root
# read-only over virtio-9p, chroots into it and runs /run/netlab/cmd.sh
# (written by run.sh into a writable share), then writes its exit status and
# the kernel log into that share and powers off.
# Dependencies come from each .ko's modinfo "depends=" field (the .deb has no
# modules.dep and this machine may have no kmod); .ko.xz/.ko.zst are
# decompressed here, as busybox insmod reads only plain ones.
set -eu
out=$1 moddir=$2
busybox=${BUSYBOX:-/bin/busybox}
# what init loads: virtio PCI transport, the 9p root, the networking the tests use
want="virtio_pci 9pnet_virtio 9p overlay veth bridge sch_netem"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"
mkdir -p "$root"/{bin,proc,sys,dev,newroot,modules}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# name -> path of every module under MODDIR/kernel
declare -A path
while IFS= read -r f; do
	n=${f##*/}
	n=${n%%.ko*}
	path[$n]=$f
	path[${n//-/_}]=$f
done < <(find "$moddir/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')

plain() { # plain() FILE: the module's bytes, decompressed
	case $1 in
	*.xz) xz -dc "$1" ;;
	*.zst) zstd -dcq "$1" ;;
	*.gz) gzip -dc "$1" ;;
	*) cat "$1" ;;
	esac
}
declare -A done_
order=()
add() { # add NAME: its dependencies first, then itself
	local n=${1//-/_} f deps d
	[ -n "${done_[$n]:-}" ] && return 0
	done_[$n]=1
	f=${path[$n]:-}
	if [ -z "$f" ]; then
		grep -qE "/${n//_/[-_]}\.ko" "$moddir/modules.builtin" 2>/dev/null && return 0
		echo "netlab: module $n not found under $moddir (make deps keeps it)" >&2
		return 1
	fi
	plain "$f" > "$root/modules/$n.ko"
	deps=$(tr '\0' '\n' < "$root/modules/$n.ko" | sed -n 's/^depends=//p' | head -1)
	for d in ${deps//,/ }; do add "$d"; done
	order+=("$n")
}
for m in $want; do add "$m"; done
printf '%s\n' "${order[@]}" > "$root/modules/order"

cat > "$root/init" <<'INIT'
#!/bin/sh
# netlab guest init: modules, the host's root over 9p, the command, its status.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do
	insmod /modules/$m.ko || echo "netlab-init: insmod $m failed"
done
r=/newroot
die() { echo "netlab-init: $*"; echo "IPPOC-NETLAB-RC=1"; poweroff -f; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot $r ||
	die "cannot mount the host's root over 9p"
for d in tmp run var/tmp dev/shm; do mount -t tmpfs -o mode=1777 tmpfs $r/$d || die "tmpfs on /$d"; done
chmod 755 $r/run
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts devpts $r/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $r/dev/shm
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup 2>/dev/null
mkdir -p $r/run/netlab
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 netlab $r/run/netlab ||
	die "cannot mount the netlab share"
n=0
for tag in $(cat $r/run/netlab/shares 2>/dev/null); do
	n=$((n + 1))
	dir=$(sed -n "${n}p" $r/run/netlab/share-paths)
	mkdir -p "$r$dir" # a host dir under /tmp is not in the guest's tmpfs
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 $tag "$r$dir" ||
		die "cannot mount the writable share $dir"
done
ip link set lo up
chroot $r /bin/ip link set lo up 2>/dev/null
echo "IPPOC-NETLAB-BEGIN"
chroot $r /bin/bash /run/netlab/cmd.sh < /dev/null > /dev/console 2>&1
rc=$?
echo "IPPOC-NETLAB-RC=$rc"
echo $rc > $r/run/netlab/rc
dmesg > $r/run/netlab/dmesg
sync
poweroff -f
INIT
chmod 755 "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet --owner=0:0) | gzip -1 > "$out"
