#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# mkinitramfs.sh OUT.cpio.gz MODULE.ko GUEST_TEST
# Builds the throwaway guest's initramfs: a static busybox for the shell,
# the module, the static test program and an /init that runs it, dumps the
# kernel log between markers and powers off.
set -eu
out=$1 ko=$2 prog=$3
busybox=${BUSYBOX:-/bin/busybox}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,etc}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$ko" "$root/ippoc_sensor.ko"
cp "$prog" "$root/guest_test"
echo 'nobody:x:65534:65534:nobody:/:/bin/sh' > "$root/etc/passwd"
cat > "$root/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "IPPOC-GUEST-BEGIN"
/guest_test /ippoc_sensor.ko
echo "IPPOC-GUEST-RC=$?"
echo "IPPOC-DMESG-BEGIN"
dmesg
echo "IPPOC-DMESG-END"
poweroff -f
INIT
chmod 755 "$root/init" "$root/guest_test"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet --owner=0:0) | gzip -1 > "$out"
