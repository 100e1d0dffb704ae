#!/usr/bin/env bash
# The C row builder's differential tests under AddressSanitizer and UBSan, with random examples:
# the extension is rebuilt instrumented in place for the run, and the normal build put back after it.
set -euo pipefail
cd "$(dirname "$0")/.."
so=$(.venv/bin/python -c 'import mongo2pg._fastrow as f; print(f.__file__)')
keep=$(mktemp)
cp "$so" "$keep"
trap 'cp "$keep" "$so"; rm -f "$keep"' EXIT
inc=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
gcc -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -fPIC -shared \
  -I"$inc" mongo2pg/_fastrow.c -o "$so"
ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
  M2P_HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest -q -p no:cacheprovider tests/test_fastrow.py
