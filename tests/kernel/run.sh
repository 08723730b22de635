#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/kernel/run.sh - build drivers/kernel-bridge against Debian's kernel
# headers, boot Debian's kernel in QEMU (TCG, no KVM, no network) with an
# initramfs holding the module and tests/kernel/guest_test.c, and fail on
# any failed check, kernel warning, oops or timeout.
#
# Exit: 0 passed, 1 failed, 77 skipped (a tool or the Debian kernel is missing).
# Needs (Debian 12): qemu-system-x86 linux-image-amd64 linux-headers-amd64
#   busybox-static cpio gcc libc6-dev make; sparse is used when installed,
#   checkpatch.pl when CHECKPATCH= points at it, KDIR has it, or Debian's
#   linux-source-* tarball is installed (it is extracted from there).
# Environment: IPPOC_KVER=6.1.0-56-amd64 picks the kernel (default: the
#   newest /boot/vmlinuz-*-amd64 with headers), IPPOC_QEMU_TIMEOUT (s, 240),
#   IPPOC_KEEP=1 keeps the work dir, IPPOC_VERBOSE=1 prints every check,
#   IPPOC_VMLINUZ= / IPPOC_KDIR= use a kernel image / build tree from
#   elsewhere (e.g. unpacked with dpkg-deb -x instead of installed in /boot).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
src=$root/drivers/kernel-bridge

skip() { echo "kernel: SKIP: $*"; exit 77; }
fail() { echo "kernel: FAIL: $*"; exit 1; }

command -v qemu-system-x86_64 > /dev/null ||
	skip "qemu-system-x86_64 not installed (Debian package qemu-system-x86)"
for t in cpio gzip gcc make; do
	command -v $t > /dev/null || skip "$t not installed"
done
if [ -n "${IPPOC_KVER:-}" ]; then
	kver=$IPPOC_KVER
else
	kver=
	boot_image=
	# installed in /boot, or unpacked by `make deps` into .cache/kernel
	for f in $(ls /boot/vmlinuz-*-amd64 "$root"/.cache/kernel/boot/vmlinuz-*-amd64 2>/dev/null |
		awk -F/vmlinuz- '{ print $NF, $0 }' | sort -V -r | cut -d' ' -f2); do
		v=${f##*/vmlinuz-}
		if [ -d "/usr/src/linux-headers-$v" ] || [ -d "/lib/modules/$v/build" ]; then
			kver=$v
			boot_image=$f
			break
		fi
	done
fi
vmlinuz=${IPPOC_VMLINUZ:-${boot_image:-/boot/vmlinuz-$kver}}
[ -n "$kver" ] && [ -r "$vmlinuz" ] ||
	skip "no Debian kernel with matching headers (make deps: linux-headers-amd64, and linux-image unpacked into .cache/kernel)"
kdir=${IPPOC_KDIR:-/usr/src/linux-headers-$kver}
[ -d "$kdir" ] || kdir=/lib/modules/$kver/build
[ -d "$kdir/scripts" ] || skip "kernel headers for $kver missing (linux-headers-amd64)"
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] && ! ldd "$busybox" > /dev/null 2>&1 ||
	skip "no static busybox at $busybox (Debian package busybox-static)"

work=$(mktemp -d /tmp/ippoc-kernel-test.XXXXXX)
qpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
	if [ -n "${IPPOC_KEEP:-}" ]; then echo "kernel: work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
start=$(date +%s)

# 1. the module, with extra warnings and sparse; any warning fails
cp -r "$src" "$work/mod"
rm -f "$work/mod"/*.o "$work/mod"/*.ko
checker=
command -v sparse > /dev/null && checker="C=1"
echo "kernel: building ippoc_sensor.ko against $kdir (W=1 ${checker:-, no sparse})"
make -C "$kdir" M="$work/mod" W=1 $checker modules > "$work/build.log" 2>&1 ||
	{ cat "$work/build.log"; fail "module build failed"; }
if grep -E 'warning:|error:' "$work/build.log"; then
	fail "module build has warnings"
fi
checkpatch=${CHECKPATCH:-$kdir/scripts/checkpatch.pl}
srctar=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -1)
if [ ! -r "$checkpatch" ] && [ -n "$srctar" ]; then
	# Debian ships checkpatch.pl only inside linux-source-*'s tarball
	mkdir -p "$work/src"
	tar -C "$work/src" --wildcards -xJf "$srctar" '*/scripts/checkpatch.pl' \
		'*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch' 2>/dev/null
	checkpatch=$(ls "$work"/src/*/scripts/checkpatch.pl 2>/dev/null)
fi
if [ -r "$checkpatch" ]; then
	(cd "$work/mod" && perl "$checkpatch" --no-tree --strict --quiet -f ippoc_sensor.c) ||
		fail "checkpatch.pl reports style problems"
	echo "kernel: checkpatch.pl --strict clean"
else
	echo "kernel: checkpatch.pl not available, style check skipped"
fi

# 2. the guest program and the initramfs
gcc -static -O2 -Wall -Wextra -Wno-format-nonliteral -pthread \
	-o "$work/guest_test" "$here/guest_test.c" > "$work/gcc.log" 2>&1 ||
	{ cat "$work/gcc.log"; skip "cannot build a static program (libc6-dev)"; }
BUSYBOX=$busybox "$here/mkinitramfs.sh" "$work/initrd.gz" "$work/mod/ippoc_sensor.ko" \
	"$work/guest_test" || fail "initramfs build failed"

# 3. boot
echo "kernel: booting $kver in qemu (TCG, 2 vCPUs, 512 MiB)"
timeout "${IPPOC_QEMU_TIMEOUT:-240}" qemu-system-x86_64 \
	-machine q35 -accel tcg,thread=multi -cpu max -smp 2 -m 512 \
	-nographic -no-reboot -nic none -monitor none -serial stdio \
	-kernel "$vmlinuz" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 loglevel=5 panic=-1 oops=panic panic_on_warn=1 softlockup_panic=1 slub_debug=FZPU page_poison=1 init_on_free=1 rdinit=/init" \
	< /dev/null > "$work/serial.log" 2>&1 &
qpid=$!
wait $qpid
qrc=$?
qpid=
tr -d '\r' < "$work/serial.log" > "$work/serial.txt"
elapsed=$(( $(date +%s) - start ))

# 4. verdict
# failed checks and comments; IPPOC_VERBOSE=1 shows every check
sed -n '/IPPOC-GUEST-BEGIN/,/IPPOC-GUEST-RC=/p' "$work/serial.txt" |
	grep -aE '^(ok|not ok|#) ' | grep -avE "^${IPPOC_VERBOSE:+x}(ok |# snapshot)" || true
summary=$(grep -a '^guest: ' "$work/serial.txt" | tail -1)
if [ "$qrc" = 124 ]; then
	tail -40 "$work/serial.txt"
	fail "qemu timed out after ${IPPOC_QEMU_TIMEOUT:-240} s"
fi
if ! "$here/check_log.sh" "$work/serial.txt"; then
	[ -n "${IPPOC_KEEP:-}" ] || tail -60 "$work/serial.txt"
	fail "${summary:-guest did not finish} (${elapsed}s)"
fi
echo "kernel: PASS in ${elapsed}s, kernel log clean"
echo "kernel: ${summary#guest: }"
exit 0
