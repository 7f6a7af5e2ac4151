#!/usr/bin/env bash
# fuzz.sh - build every libFuzzer target (fuzz/*_fuzz.cpp) with clang and run
# each for FUZZ_SECONDS (default 60). Crashes are saved under build-fuzz/crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
CC=clang CXX=clang++ scripts/build.sh build-fuzz -DSCSTU_FUZZ=ON -DSCSTU_TESTS=OFF -DSCSTU_BENCH=OFF \
  >/dev/null
SECONDS_EACH=${FUZZ_SECONDS:-60}
mkdir -p build-fuzz/crashes
status=0
for f in build-fuzz/fuzz/*_fuzz; do
  [[ -x $f ]] || continue
  name=$(basename "$f")
  corpus=build-fuzz/corpus/$name
  mkdir -p "$corpus"
  seeds=()
  [[ -d fuzz/seeds/$name ]] && seeds=("fuzz/seeds/$name")
  if "$f" -max_total_time="$SECONDS_EACH" -print_final_stats=0 -artifact_prefix=build-fuzz/crashes/ \
      "$corpus" "${seeds[@]}" >"build-fuzz/$name.log" 2>&1; then
    echo "fuzz: $name ok ($(grep -o 'cov: [0-9]*' "build-fuzz/$name.log" | tail -1), ${SECONDS_EACH}s)"
  else
    echo "fuzz: $name FAILED"; tail -40 "build-fuzz/$name.log"; status=1
  fi
done
exit $status
