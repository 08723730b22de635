#!/usr/bin/env bash
# bench/gpu-pack.sh: packs what bench/gpu-check.sh needs on a machine with an
# NVIDIA GPU and no Debian packages into one folder: build/src/daemon/ippocd,
# build/src/cli/ippoc, bench/gpu-check.sh, and in lib/ every shared library
# the two binaries load (as `ldd` lists them) except glibc's own (libc, libm,
# libdl, libpthread, librt, libresolv, libutil, ld-linux), which the target
# has. NVML is not packed: ippocd dlopen()s the target's libnvidia-ml.so.1.
# Copy the folder over and run ./gpu-check.sh inside it.
#
# Usage: bench/gpu-pack.sh [DIR]     (default bench/out/gpu-pack; replaced)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/bench/out/gpu-pack}
BINS=("$ROOT/build/src/daemon/ippocd" "$ROOT/build/src/cli/ippoc")

case "${1:-}" in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
for b in "${BINS[@]}"; do
    [ -x "$b" ] || { echo "gpu-pack: no $b: build first (meson setup build && ninja -C build)" >&2; exit 1; }
done
command -v ldd >/dev/null || { echo "gpu-pack: ldd is needed" >&2; exit 1; }

if ldd "${BINS[@]}" | grep -q 'not found'; then
    ldd "${BINS[@]}" | grep 'not found' >&2
    echo "gpu-pack: a library the binaries need is missing here" >&2
    exit 1
fi
rm -rf "$OUT"
mkdir -p "$OUT/lib"
cp "${BINS[@]}" "$ROOT/bench/gpu-check.sh" "$OUT/"

n=0
while read -r lib; do
    case "$(basename "$lib")" in
        libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libresolv.so.*|libutil.so.*|ld-linux*) continue ;;
    esac
    cp -L "$lib" "$OUT/lib/"
    n=$((n + 1))
done < <(ldd "${BINS[@]}" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)

echo "gpu-pack: $OUT: ippocd, ippoc, gpu-check.sh and $n libraries ($(du -sh "$OUT" | cut -f1)), built against glibc $(ldd --version | awk 'NR==1 { print $NF }')"
echo "gpu-pack: on the GPU machine: cd $(basename "$OUT") && ./gpu-check.sh"
