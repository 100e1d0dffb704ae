#!/usr/bin/env bash
# The C builders' differential tests (the load's row builder, validation's digest builder) under
# AddressSanitizer and UBSan, with random examples: each extension is rebuilt instrumented in place for
# the run, and the normal builds put back after it.
set -euo pipefail
cd "$(dirname "$0")/.."
inc=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
keep=$(mktemp -d)
trap 'for m in "$keep"/*.so; do cp "$m" "$(cat "$m.path")"; done; rm -rf "$keep"' EXIT
for mod in mongo2pg.transform._fastrow mongo2pg.validation._fastdigest; do
  so=$(.venv/bin/python -c "import $mod as f; print(f.__file__)")
  cp "$so" "$keep/$mod.so"
  echo "$so" > "$keep/$mod.so.path"
  gcc -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -fPIC -shared \
    -I"$inc" "$(tr . / <<<"$mod").c" -o "$so"
done
ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
  M2P_HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest -q -p no:cacheprovider tests/test_fastrow.py tests/test_fastdigest.py
