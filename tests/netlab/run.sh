#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/netlab/run.sh - run a command as root inside Debian's own kernel
# under QEMU, for the network tests that need what this machine's kernel
# lacks (sch_netem: `tc qdisc add ... netem` says "Specified qdisc kind is
# unknown" here and on CI).
#
#   tests/netlab/run.sh [--timeout S] [--mem M] [--share DIR]... [--direct-if-netem] -- CMD ARGS...
#
# No root filesystem is built: the guest mounts the HOST's root read-only
# over virtio-9p and chroots into it, so CMD sees the same programs, build
# tree and sources as here, with tmpfs on /tmp, /run, /var/tmp and /dev/shm
# (write there) and each --share DIR mounted writable at the same path. The
# initramfs (mkinitramfs.sh: static busybox and the modules from the
# linux-image .deb that `make deps` unpacks into .cache/kernel) loads netem,
# veth, bridge, overlay and 9p, mounts it all, brings lo up and runs CMD in
# the current directory with the current environment (plus IPPOC_NETLAB=1).
# CMD's output streams to this terminal through the serial console; its exit
# status comes back through a writable 9p share.
#
# Options: --timeout S  kill the guest after S seconds (default 300)
#          --mem M      guest memory in MiB (default 1024)
#          --share DIR  a host directory the guest may write (same path)
#          --direct-if-netem  run CMD here, without QEMU, when this kernel
#                       has netem (netns.py --probe)
# Environment: IPPOC_NETLAB_ACCEL=kvm|tcg (default: kvm when /dev/kvm is
#   usable), IPPOC_NETLAB_SMP (vCPUs, 2), IPPOC_KVER / IPPOC_VMLINUZ /
#   IPPOC_NETLAB_MODULES pick the kernel, IPPOC_KEEP=1 keeps the work dir.
# Exit: CMD's status; 77 (skipped) when qemu, busybox-static or the kernel
# with its modules is missing and CI is not set (1 when it is); 1 when the
# guest times out, oopses or ends without a status.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

tmo=300 mem=1024 direct=
shares=()
usage() { echo "usage: tests/netlab/run.sh [--timeout S] [--mem M] [--share DIR]... [--direct-if-netem] -- CMD ARGS..." >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || { echo "netlab: --timeout needs seconds" >&2; usage; }; tmo=$2; shift 2 ;;
	--mem) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || { echo "netlab: --mem needs MiB" >&2; usage; }; mem=$2; shift 2 ;;
	--share) [ $# -ge 2 ] && [ -d "$2" ] || { echo "netlab: --share needs an existing directory" >&2; usage; }
		shares+=("$(cd "$2" && pwd)"); shift 2 ;;
	--direct-if-netem) direct=1; shift ;;
	--) shift; break ;;
	*) echo "netlab: unknown option '$1'" >&2; usage ;;
	esac
done
[ $# -gt 0 ] || usage

# The guest mounts tmpfs on /tmp, /run, /var/tmp and /dev/shm, which would
# hide a source tree or a working directory there (a clone in /tmp, as CI
# may make): such a directory is shared at its own path, like --share.
under_tmpfs() { case "$1/" in /tmp/*|/run/*|/var/tmp/*|/dev/shm/*) return 0 ;; esac; return 1; }
covered() { local s; for s in "${shares[@]}"; do case "$1/" in "$s"/*) return 0 ;; esac; done; return 1; }
for d in "$root" "$PWD"; do
	if under_tmpfs "$d" && ! covered "$d"; then
		shares+=("$d")
	fi
done

skip() {
	if [ -n "${CI:-}" ]; then echo "netlab: FAIL (CI is set): $*"; exit 1; fi
	echo "netlab: SKIP: $*"; exit 77
}
fail() { echo "netlab: FAIL: $*"; exit 1; }

if [ -n "$direct" ] && python3 "$here/netns.py" --probe > /dev/null 2>&1; then
	echo "netlab: this kernel has netem; running here, without QEMU" >&2
	export IPPOC_NETLAB=0
	exec "$@"
fi

command -v qemu-system-x86_64 > /dev/null ||
	skip "qemu-system-x86_64 not installed (Debian package qemu-system-x86; make deps)"
for t in cpio gzip; do
	command -v $t > /dev/null || skip "$t not installed"
done
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] && ! ldd "$busybox" > /dev/null 2>&1 ||
	skip "no static busybox at $busybox (Debian package busybox-static)"

# the kernel: one whose modules include sch_netem, newest first
kver='' vmlinuz='' moddir=''
for f in ${IPPOC_VMLINUZ:-} $(ls /boot/vmlinuz-*-amd64 "$root"/.cache/kernel/boot/vmlinuz-*-amd64 2>/dev/null |
	awk -F/vmlinuz- '{ print $NF, $0 }' | sort -V -r | cut -d' ' -f2); do
	v=${IPPOC_KVER:-${f##*/vmlinuz-}}
	[ -n "${IPPOC_KVER:-}" ] && [ -z "${IPPOC_VMLINUZ:-}" ] && [ "${f##*/vmlinuz-}" != "$v" ] && continue
	for d in ${IPPOC_NETLAB_MODULES:-} "${f%/boot/*}/lib/modules/$v" "/lib/modules/$v"; do
		if [ -r "$f" ] && ls "$d"/kernel/net/sched/sch_netem.ko* > /dev/null 2>&1; then
			kver=$v vmlinuz=$f moddir=$d
			break 2
		fi
	done
done
[ -n "$kver" ] ||
	skip "no Debian kernel with sch_netem among its modules (make deps unpacks linux-image's into .cache/kernel)"

# KVM when /dev/kvm is usable: a guest that has not reached init within
# $kvm_deadline s under KVM is taken for a KVM that does not work (nested KVM
# on this machine's host hangs Debian's kernel right after decompression);
# that verdict is kept in .cache/netlab/kvm-broken and TCG is used instead.
accel=${IPPOC_NETLAB_ACCEL:-}
kvm_deadline=${IPPOC_NETLAB_KVM_DEADLINE:-30}
verdict=$root/.cache/netlab/kvm-broken
kvm_key="$(uname -r) $(qemu-system-x86_64 --version | head -1) $kver"
if [ -z "$accel" ]; then
	accel=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ "$(cat "$verdict" 2>/dev/null)" != "$kvm_key" ]; then
		accel=kvm
	fi
fi
case $accel in kvm | tcg) ;; *) fail "IPPOC_NETLAB_ACCEL must be kvm or tcg, not '$accel'" ;; esac

work=$(mktemp -d /tmp/ippoc-netlab.XXXXXX)
qpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
	if [ -n "${IPPOC_KEEP:-}" ]; then echo "netlab: work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start=$(date +%s.%N)

BUSYBOX=$busybox "$here/mkinitramfs.sh" "$work/initrd.gz" "$moddir" || fail "initramfs build failed"

# the command, its directory and environment, for the guest's bash
share=$work/share
mkdir -p "$share"
{
	echo '#!/bin/bash'
	export -p | grep -vE '^declare -x (PWD|OLDPWD|SHLVL|_|BASHOPTS|SHELLOPTS|BASH_[A-Z_]*)(=|$)'
	echo 'export IPPOC_NETLAB=1'
	echo '[ -z "${TMPDIR:-}" ] || mkdir -p "$TMPDIR"'
	printf 'cd -- %q || { echo "netlab: cannot enter %q in the guest"; exit 1; }\n' "$PWD" "$PWD"
	printf 'exec'
	printf ' %q' "$@"
	echo
} > "$share/cmd.sh"
virtfs=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$share,mount_tag=netlab,security_model=none")
i=0
for d in "${shares[@]}"; do
	i=$((i + 1))
	virtfs+=(-virtfs "local,path=$d,mount_tag=rw$i,security_model=none,multidevs=remap")
	echo "rw$i" >> "$share/shares"
	echo "$d" >> "$share/share-paths"
done

smp=${IPPOC_NETLAB_SMP:-2}
# boot ACCEL: runs the guest; 3 when KVM did not reach init by its deadline
boot() {
	local accel=$1 opts deadline line buf='' n
	case $accel in
	kvm) opts=(-accel kvm -cpu 'host,-arch-capabilities') ;; # nested KVM here refuses MSR 0x10a
	tcg) opts=(-accel 'tcg,thread=multi' -cpu max) ;;
	esac
	echo "netlab: booting $kver under $accel ($smp vCPUs, $mem MiB), host root over 9p" >&2
	rm -f "$work/serial" "$work/serial.txt"
	mkfifo "$work/serial"
	timeout -k 5 "$tmo" qemu-system-x86_64 \
		-machine q35 "${opts[@]}" -smp "$smp" -m "$mem" \
		-nographic -no-reboot -nic none -monitor none -serial stdio \
		"${virtfs[@]}" \
		-kernel "$vmlinuz" -initrd "$work/initrd.gz" \
		-append "console=ttyS0 quiet loglevel=4 panic=-1 oops=panic rdinit=/init" \
		< /dev/null > "$work/serial" 2>&1 &
	qpid=$!
	deadline=$(( $(date +%s) + kvm_deadline ))
	booted='' finished=''
	# the serial console: kept in serial.txt; what CMD prints is shown as it comes
	while :; do
		IFS= read -r -t 1 line
		n=$?
		if [ $n -gt 128 ]; then # no whole line within 1 s
			buf+=$line
			if [ "$accel" = kvm ] && [ -z "$booted" ] && [ "$(date +%s)" -ge "$deadline" ]; then
				kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=
				return 3
			fi
			continue
		fi
		[ $n -ne 0 ] && [ -z "$buf$line" ] && break
		line=${buf}${line%$'\r'}
		buf=
		printf '%s\n' "$line" >> "$work/serial.txt"
		if [ -z "$booted" ]; then
			[[ $line == *IPPOC-NETLAB-BEGIN* ]] && booted=$(date +%s.%N)
		elif [[ $line == IPPOC-NETLAB-RC=* ]]; then
			finished=1
		elif [ -z "$finished" ]; then
			printf '%s\n' "$line"
		fi
		[ $n -ne 0 ] && break
	done < "$work/serial"
	wait "$qpid"
	qrc=$?
	qpid=
	return 0
}
qrc=0
boot "$accel"
if [ $? = 3 ]; then
	echo "netlab: KVM did not reach the guest's init within ${kvm_deadline}s; TCG from now on (rm $verdict to retry KVM)" >&2
	mkdir -p "${verdict%/*}" && echo "$kvm_key" > "$verdict"
	accel=tcg
	start=$(date +%s.%N)
	boot tcg
fi
end=$(date +%s.%N)

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	tail -40 "$work/serial.txt"
	fail "the guest did not finish within ${tmo}s"
fi
if [ ! -s "$share/rc" ]; then
	tail -40 "$work/serial.txt"
	fail "the guest ended without a status (qemu exit $qrc; see the console above)"
fi
if grep -aE 'Oops|BUG:|Kernel panic|WARNING: CPU|general protection fault|Call Trace' "$share/dmesg"; then
	fail "the guest kernel reported the problem above"
fi
rc=$(cat "$share/rc")
echo "netlab: $kver under $accel: boot $(secs "$start" "${booted:-$end}")s, command $(secs "${booted:-$end}" "$end")s, exit $rc" >&2
exit "$rc"
