#!/bin/bash
# conformance_test.sh - libiscsi's conformance suite against fileio_tgt.
#
# What a storage engineer would type: serve a fresh thin scratch image with
# fileio_tgt, then run every iscsi-test-cu test (destructive and SANITIZE
# ones included) from two initiator names, the same URL again as the
# multipath URL. Prints passed / failed / skipped; CUnit counts a skipped
# test as passed, so skips are counted from the suite's "[SKIPPED]" lines.
# Fails if any test fails.
#
#   FILEIO_TGT=build/fileio_tgt/fileio_tgt bash tests/e2e/conformance_test.sh
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

command -v iscsi-test-cu >/dev/null || fail "iscsi-test-cu not found (Debian package libiscsi-bin)"

IQN=iqn.2026-11.io.scstu:conformance
IMAGE=$WORK/disk0.img

step "fresh thin 256 MiB image (reservation tests leave state behind)"
truncate -s 256M "$IMAGE"

step "fileio_tgt --thin serving $IQN"
start_fileio target --thin --target "$IQN" disk0 "$IMAGE"
URL=iscsi://127.0.0.1:$PORT/$IQN/0

step "iscsi-test-cu -t ALL $URL $URL"
set +e
timeout 600 iscsi-test-cu --dataloss --allow-sanitize -t ALL \
  -i iqn.2026-11.test:ini1 -I iqn.2026-11.test:ini2 "$URL" "$URL" >"$WORK/suite.log" 2>&1
suite_rc=$?
set -e
[ "$suite_rc" -ne 124 ] || fail "iscsi-test-cu did not finish within 600 s"

# Run Summary line: "tests  TOTAL  RAN  PASSED  FAILED  INACTIVE".
summary=$(grep -E '^ +tests +[0-9]+' "$WORK/suite.log" | tail -n 1) ||
  fail "no CUnit run summary in the suite output (exit $suite_rc)"
read -r _ total ran passed failed _ <<<"$summary"
skipped=$(grep -c '\[SKIPPED\]' "$WORK/suite.log" || true)

echo "tests: $total  ran: $ran  passed: $((passed - skipped))  failed: $failed  skipped: $skipped"
echo "skipped tests:"
grep -E '^  Test: .*\[SKIPPED\]' "$WORK/suite.log" | sed -E 's/^  Test: /  /' || true
if [ "$failed" -ne 0 ]; then
  echo "failed tests:"
  # A failed test's "Test:" line comes before its lone "FAILED" line.
  awk '/^  Test: /{t=$2} /^FAILED$/{print "  " suite "." t} /^Suite: /{suite=$2}' \
    "$WORK/suite.log"
  cp "$WORK/suite.log" "${TMPDIR:-/var/tmp}/scstu-conformance-suite.log"
  fail "$failed conformance test(s) failed (suite log kept in ${TMPDIR:-/var/tmp}/scstu-conformance-suite.log)"
fi
[ "$ran" -eq "$total" ] || fail "only $ran of $total tests ran"
echo "PASS"
