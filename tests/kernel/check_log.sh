#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# check_log.sh SERIAL.LOG
# Fails (exit 1, naming the line) on any kernel report of trouble in the
# guest's serial log, or when the guest did not finish (markers missing).
set -u
log=$1
bad='Oops|BUG:|BUG [a-z]|WARNING:|KASAN|UBSAN|KFENCE|kmemleak|possible circular locking|lockdep|Call Trace|Kernel panic|general protection fault|soft lockup|hard LOCKUP|blocked for more than|list_add corruption|list_del corruption|Poison overwritten|Redzone|refcount_t:|sleeping function called from invalid context|scheduling while atomic|bad page state|stack-protector|segfault at'
rc=0
if grep -naE "$bad" "$log" > /dev/null; then
	echo "kernel: trouble in the kernel log:"
	grep -naE -B2 -A8 "$bad" "$log" | head -60
	rc=1
fi
for m in IPPOC-GUEST-BEGIN 'IPPOC-GUEST-RC=' IPPOC-DMESG-BEGIN IPPOC-DMESG-END; do
	if ! grep -qa "$m" "$log"; then
		echo "kernel: marker $m missing: the guest crashed, hung or timed out"
		rc=1
		break
	fi
done
if grep -qa 'IPPOC-GUEST-RC=' "$log" && ! grep -qa 'IPPOC-GUEST-RC=0' "$log"; then
	echo "kernel: the guest test program failed"
	rc=1
fi
exit $rc
