#!/usr/bin/env bash
# test.sh - install what is missing, build, and run the whole test suite
# (units, end-to-end tests against real initiators, the kernel shim in QEMU).
#   LABELS=unit scripts/test.sh        only some labels (a ctest -L regex)
#   BUILD=build-asan CMAKE_ARGS=-DSCSTU_SANITIZE=ON scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
BUILD=${BUILD:-build}
# shellcheck disable=SC2086
scripts/build.sh "$BUILD" ${CMAKE_ARGS:-}
args=(--output-on-failure --timeout 900 -j2)
[[ -n ${LABELS:-} ]] && args+=(-L "$LABELS")
[[ -n ${EXCLUDE_LABELS:-} ]] && args+=(-LE "$EXCLUDE_LABELS")
ctest --test-dir "$BUILD" "${args[@]}"
