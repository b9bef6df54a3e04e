#!/bin/sh
# make bench: every benchmark against a fresh build, each reporting ratios
# against a baseline measured in the same run (never absolute goals).
set -eu
build=${1:-build}
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
  echo
done
