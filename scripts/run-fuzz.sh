#!/bin/sh
# Runs each libFuzzer target for a few seconds, seeded from fuzz/corpus/<name>
# when present.  A crash fails the run and leaves the crashing input in
# build-fuzz/crashes/.
set -eu
build=${1:?usage: run-fuzz.sh BUILD_DIR [SECONDS]}
secs=${2:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build/crashes"
found=0
for t in "$build"/fuzz/fuzz_*; do
  [ -x "$t" ] || continue
  found=1
  name=$(basename "$t")
  corpus="$build/corpus/$name"
  mkdir -p "$corpus"
  seeds=""
  [ -d "$root/fuzz/corpus/$name" ] && seeds="$root/fuzz/corpus/$name"
  echo "== fuzz $name (${secs}s)"
  "$t" -max_total_time="$secs" -max_len=65536 -artifact_prefix="$build/crashes/$name-" \
    "$corpus" $seeds >"$build/$name.log" 2>&1 || { tail -40 "$build/$name.log"; exit 1; }
  grep -E "^(Done|#[0-9]+ *DONE)" "$build/$name.log" | tail -1 || true
done
[ $found = 1 ] || echo "ferry: no fuzz targets built"
