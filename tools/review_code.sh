#!/bin/sh
# review_code.sh: AI code review of files or a diff, a thin wrapper of
# `ippoc review` (docs/review.md): the configured language model, else
# cppcheck and clang-tidy. Uses the installed ippoc, else this checkout's
# build (build/src/cli/ippoc, or $IPPOC).
#   tools/review_code.sh src/cli/review.c
#   git diff | tools/review_code.sh --diff
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "$IPPOC" ]; then
    bin=$IPPOC
elif command -v ippoc >/dev/null 2>&1; then
    bin=ippoc
elif [ -x "$here/build/src/cli/ippoc" ]; then
    bin=$here/build/src/cli/ippoc
else
    echo "review_code.sh: ippoc not found: install it, or build this checkout (make build)" >&2
    exit 2
fi
exec "$bin" review "$@"
