#!/usr/bin/env bash
# fuzz.sh [TARGET...] - build the libFuzzer targets (fuzz/*_fuzz.cpp) with clang
# and ASan+UBSan, and run each (or only the named ones) for FUZZ_SECONDS
# (default 60). FUZZ_TOTAL_SECONDS, when set, caps the whole run instead: the
# seconds are split evenly between the targets (CI uses it to keep the fuzz
# stage inside its budget as targets are added). The corpus grows under
# build-fuzz/corpus/<target>; crashes are saved under build-fuzz/crashes and
# make the script fail. FUZZ_NO_BUILD=1 skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${FUZZ_NO_BUILD:-} ]]; then
  scripts/install-deps.sh
  CC=clang CXX=clang++ scripts/build.sh build-fuzz -DSCSTU_FUZZ=ON -DSCSTU_TESTS=OFF \
    -DSCSTU_BENCH=OFF >/dev/null
fi
targets=()
if (($#)); then
  for t in "$@"; do targets+=("build-fuzz/fuzz/${t%_fuzz}_fuzz"); done
else
  for f in build-fuzz/fuzz/*_fuzz; do [[ -x $f ]] && targets+=("$f"); done
fi
SECONDS_EACH=${FUZZ_SECONDS:-60}
if [[ -n ${FUZZ_TOTAL_SECONDS:-} ]]; then
  SECONDS_EACH=$((FUZZ_TOTAL_SECONDS / ${#targets[@]}))
  ((SECONDS_EACH >= 5)) || SECONDS_EACH=5
fi
mkdir -p build-fuzz/crashes
status=0
for f in "${targets[@]}"; do
  name=$(basename "$f")
  corpus=build-fuzz/corpus/$name
  mkdir -p "$corpus"
  seeds=()
  [[ -d fuzz/seeds/$name ]] && seeds=("fuzz/seeds/$name")
  # -timeout: one input taking longer is a hang. Targets that wait for work
  # in other threads report a hang themselves sooner (cdb_decode 10 s,
  # iscsi_connection 60 s, with every thread's stack).
  if "$f" -max_total_time="$SECONDS_EACH" -timeout=120 -print_final_stats=1 \
      -artifact_prefix=build-fuzz/crashes/"$name"- "$corpus" "${seeds[@]}" \
      >"build-fuzz/$name.log" 2>&1; then
    echo "fuzz: $name ok ($(grep -o 'cov: [0-9]*' "build-fuzz/$name.log" | tail -1)," \
      "$(grep -o 'stat::number_of_executed_units: [0-9]*' "build-fuzz/$name.log" |
        grep -o '[0-9]*$') runs, ${SECONDS_EACH}s)"
  else
    echo "fuzz: $name FAILED"; tail -40 "build-fuzz/$name.log"; status=1
  fi
done
exit $status
