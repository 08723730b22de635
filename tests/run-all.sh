#!/usr/bin/env bash
# Runs the whole suite in each build tree given (the normal one, then the
# ASan+UBSan one, then the TSan one), checks that no sanitizer wrote a report, and ends with one
# line "N passed, N failed".
set -uo pipefail
total_ok=0
total_fail=0
for dir in "$@"; do
    echo "== meson test -C $dir"
    san_dir=$(mktemp -d /tmp/ippoc-san.XXXXXX)
    export IPPOC_SAN_LOG_DIR=$san_dir
    export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:exitcode=99:log_path=$san_dir/asan"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=98:log_path=$san_dir/ubsan"
    export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:exitcode=97:log_path=$san_dir/tsan"
    meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier 3 >"$dir/test-summary.txt" 2>&1
    tail -n 40 "$dir/test-summary.txt"
    ok=$(grep -E '^Ok:' "$dir/test-summary.txt" | awk '{print $2}')
    bad=0
    for k in Fail 'Unexpected Pass' Timeout; do
        n=$(grep -E "^$k:" "$dir/test-summary.txt" | awk -F: '{gsub(/ /,"",$2); print $2}')
        bad=$((bad + ${n:-0}))
    done
    if [ -n "$(ls -A "$san_dir" 2>/dev/null)" ]; then
        echo "== sanitizer reports in $dir:"
        cat "$san_dir"/* | head -n 80
        bad=$((bad + 1))
    fi
    rm -rf "$san_dir"
    total_ok=$((total_ok + ${ok:-0}))
    total_fail=$((total_fail + bad))
done
echo "${total_ok} passed, ${total_fail} failed"
[ "$total_fail" -eq 0 ]
