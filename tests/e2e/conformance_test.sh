#!/bin/bash
# conformance_test.sh - libiscsi's conformance suite against fileio_tgt.
#
# What a storage engineer would type: serve a fresh thin scratch image with
# fileio_tgt, then run every iscsi-test-cu test (destructive and SANITIZE
# ones included) from two initiator names, the same URL again as the
# multipath URL. Prints passed / failed / skipped; CUnit counts a skipped
# test as passed, so skips are counted from the suite's "[SKIPPED]" lines.
#
# Then the tests the suite skips on a writable fixed disk run again against a
# unit where they apply: --removable for PREVENT ALLOW MEDIUM REMOVAL and
# START STOP UNIT eject/load, --read-only for the write-protect test,
# --physical-block-size 4096 for those that need LBPPB > 1. Each of
# those runs alone on a fresh target: several reset the logical unit, and the
# suite does not clear the reset unit attention its multipath session is then
# owed (SAM-5 6.3), which would fail the next test's first command there.
#
# Sanitize.Reset runs alone too, on a larger disk-backed image: it starts a
# SANITIZE OVERWRITE and checks 3 s later, and again after resets and a new
# login, that the sanitize is still in progress (NOT READY, SANITIZE IN
# PROGRESS). On the 256 MiB image the sanitize is over before it looks. The
# image size is SANITIZE_IMAGE_SIZE (default 4G; on this project's 2-core VM
# 1G took from 4 to 12 s to write and flush, too close to the test's 4 s; raise
# it on faster storage). The test then
# waits in 60 s steps for the sanitize to end, sleeping without reading its
# connection: the target runs with --nop-interval 0, else the NOP-In
# keepalive drops it after 15 s and each reconnection brings a POWER ON unit
# attention that the test's wait loop takes for "not ready yet", forever.
#
# Fails if any test of any run fails, except the known failures below: each is
# printed with its reason on every run and stays listed in the open issue until
# fixed.
#
#   FILEIO_TGT=build/fileio_tgt/fileio_tgt bash tests/e2e/conformance_test.sh
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

command -v iscsi-test-cu >/dev/null || fail "iscsi-test-cu not found (Debian package libiscsi-bin)"

IQN=iqn.2026-11.io.scstu:conformance
TOTAL_FAILED=0
TOTAL_KNOWN=0
RUNS=0

# SUITE.TEST -> why it fails today. Keep this list short and honest.
declare -A KNOWN_FAILURES=(
  # libiscsi 1.19's test sends WRITE SAME(10) UNMAP=1 with a block of 0xFF and
  # expects zeroes back; SBC-3 5.45 / SBC-4 4.7.3.6 require the device to write
  # the block it was sent when it is not the unmapped pattern (its WRITE SAME(16)
  # twin sends zeroes and passes).
  [WriteSame10.UnmapUntilEnd]="test contradicts SBC: data block is 0xFF, not the LBPRZ pattern"
)

# run_suite TESTS FILEIO_OPTIONS...: a fresh sparse image of $IMAGE_SIZE
# (reservation tests leave state behind) served by a new fileio_tgt,
# iscsi-test-cu -t TESTS (names, or a file listing them); prints the counts,
# the skips with their reasons and the failures.
IMAGE_SIZE=256M
run_suite() {
  local tests=$1
  shift
  RUNS=$((RUNS + 1))
  local name=run$RUNS image=$WORK/run$RUNS.img log=$WORK/run$RUNS-suite.out
  truncate -s "$IMAGE_SIZE" "$image"
  start_fileio "$name" "$@" --target "$IQN" disk0 "$image"
  local pid=$LAST_PID url=iscsi://127.0.0.1:$PORT/$IQN/0
  step "fileio_tgt $* / iscsi-test-cu -t $tests"
  local rc=0
  timeout 600 iscsi-test-cu --dataloss --allow-sanitize -t "$tests" \
    -i iqn.2026-11.test:ini1 -I iqn.2026-11.test:ini2 "$url" "$url" >"$log" 2>&1 || rc=$?
  stop_pid "$pid"
  [ "$rc" -ne 124 ] || fail "iscsi-test-cu -t $tests did not finish within 600 s"

  # Run Summary line: "tests  TOTAL  RAN  PASSED  FAILED  INACTIVE".
  local summary total ran passed failed skipped
  summary=$(grep -E '^ +tests +[0-9]+' "$log" | tail -n 1) ||
    fail "no CUnit run summary in the output of -t $tests (exit $rc)"
  read -r _ total ran passed failed _ <<<"$summary"
  skipped=$(grep -c '\[SKIPPED\]' "$log" || true)
  echo "tests: $total  ran: $ran  passed: $((passed - skipped))  failed: $failed  skipped: $skipped"
  [ "$ran" -eq "$total" ] || { echo "only $ran of $total tests ran"; failed=$((failed + 1)); }
  if [ "$skipped" -ne 0 ]; then
    echo "skipped (SUITE.TEST: the suite's reason):"
    awk '/^Suite: /{suite=$2} /^  Test: /{t=$2}
         /\[SKIPPED\]/{sub(/.*\[SKIPPED\] */, ""); print "  " suite "." t ": " $0}' "$log"
  fi
  if [ "$failed" -ne 0 ]; then
    echo "failed:"
    # A failed test's "Test:" line comes before its lone "FAILED" line.
    local name known=0
    while read -r name; do
      if [ -n "${KNOWN_FAILURES[$name]:-}" ]; then
        echo "  $name (known: ${KNOWN_FAILURES[$name]})"
        known=$((known + 1))
      else
        echo "  $name"
      fi
    done < <(awk '/^Suite: /{suite=$2} /^  Test: /{t=$2} /^FAILED$/{print suite "." t}' "$log")
    cp "$log" "${TMPDIR:-/var/tmp}/scstu-conformance-run$RUNS.log"
    echo "(suite output kept in ${TMPDIR:-/var/tmp}/scstu-conformance-run$RUNS.log)"
    TOTAL_KNOWN=$((TOTAL_KNOWN + known))
    failed=$((failed - known))
  fi
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
}

# Every test of ALL but Sanitize.Reset, in ALL's order: whole suites, and the
# Sanitize suite test by test. ALL is the SCSI and iSCSI families; a name
# under ALL would match the suite in every family, so each suite is named
# by its own family.
ALL_TESTS=$WORK/all-tests.txt
iscsi-test-cu -l | awk -F. '
  NF == 2 && ($1 == "SCSI" || $1 == "iSCSI") {family[$2] = $1}
  NF == 2 && $1 == "ALL" {order[++n] = $2}
  NF == 3 && $1 == "SCSI" && $2 == "Sanitize" && $3 != "Reset" {sanitize[++m] = $0}
  END {
    for (i = 1; i <= n; i++) {
      s = order[i]
      if (!(s in family)) { print "unknown suite " s > "/dev/stderr"; exit 1 }
      if (s != "Sanitize") { print family[s] "." s; continue }
      for (j = 1; j <= m; j++) print sanitize[j]
    }
  }' >"$ALL_TESTS" || fail "cannot list the suite's tests"
[ -s "$ALL_TESTS" ] || fail "iscsi-test-cu -l listed no tests"

step "the whole suite against a thin disk (Sanitize.Reset apart)"
run_suite "$ALL_TESTS" --thin

step "a sanitize still in progress across resets and a new login"
IMAGE_SIZE=${SANITIZE_IMAGE_SIZE:-4G}
run_suite SCSI.Sanitize.Reset --thin --nop-interval 0
IMAGE_SIZE=256M

step "tests that need a removable medium"
for t in Simple Eject ITNexusLoss Logout WarmReset ColdReset LUNReset 2ITNexuses; do
  run_suite "SCSI.PreventAllow.$t" --thin --removable
done
run_suite SCSI.StartStopUnit --thin --removable

step "tests that need a write-protected unit"
run_suite SCSI.ReadOnly --read-only

# The suites whose tests skip with "LBPPB < 2" (UNMAP alignment and Data-Out
# size checks), again on 512-byte logical blocks in 4096-byte physical
# blocks (LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT 3, UNMAP GRANULARITY 8).
step "tests that need several logical blocks per physical block"
run_suite SCSI.CompareAndWrite,SCSI.WriteSame10,SCSI.WriteSame16,SCSI.Unmap,SCSI.ReadCapacity16 \
  --thin --physical-block-size 4096

echo "known failures: $TOTAL_KNOWN of ${#KNOWN_FAILURES[@]} listed"
[ "$TOTAL_FAILED" -eq 0 ] || fail "$TOTAL_FAILED unexpected conformance test failure(s)"
echo "PASS"
