#!/usr/bin/env bash
# xcopy_bench.sh - EXTENDED COPY through fileio_tgt's copy manager against the
# initiator moving the same data itself, same run, same images (tmpfs):
#   xcopy        one EXTENDED COPY (LID1) of SIZE_MIB from LUN 0 to LUN 1
#                (tests/e2e xcopy_client: VPD 83h of both LUNs, then the copy)
#   read_write   qemu-img convert of LUN 0 to LUN 1 over iSCSI: the
#                initiator's own READs and WRITEs (its default 8 requests in
#                flight, 2 MiB each), every byte crossing TCP twice
#   local_dd     dd of the source image file onto the destination file, the
#                same host, no SCSI at all: the ceiling of the copy itself
# The source holds random data (no zero detection helps anyone). Each is run
# RUNS times; the best run counts (the machine is shared). One JSON line with
# MB/s of each and xcopy's ratios.
#
# Usage: bench/xcopy_bench.sh [BUILD_DIR]        (default: ./build)
# Env:   SIZE_MIB=256 (at most 511: xcopy_client sends up to 16 segments of
#        65535 blocks of 512 bytes), RUNS=3
# Needs: libiscsi-bin's library (xcopy_client is built with the tests),
#        qemu-utils.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
FILEIO_TGT=$BUILD/fileio_tgt/fileio_tgt
XCOPY_CLIENT=$BUILD/tests/e2e/xcopy_client
SIZE_MIB=${SIZE_MIB:-256}
RUNS=${RUNS:-3}
IQN=iqn.2026-11.org.scstu:bench-xcopy
[ "$SIZE_MIB" -ge 1 ] && [ "$SIZE_MIB" -le 511 ] || { echo "xcopy_bench: SIZE_MIB must be 1..511" >&2; exit 1; }

command -v qemu-img >/dev/null || { echo "xcopy_bench: qemu-img not found (apt-get install qemu-utils)" >&2; exit 1; }
for b in "$FILEIO_TGT" "$XCOPY_CLIENT"; do
  [ -x "$b" ] || { echo "xcopy_bench: $b not built (cmake --build $BUILD --target fileio_tgt xcopy_client)" >&2; exit 1; }
done

SRC=/dev/shm/scstu-xcopy-src-$$.img
DST=/dev/shm/scstu-xcopy-dst-$$.img
LOG=$(mktemp)
PID=
cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -f "$SRC" "$DST" "$LOG"
}
trap cleanup EXIT

head -c $((SIZE_MIB << 20)) /dev/urandom >"$SRC"
truncate -s $((SIZE_MIB << 20)) "$DST"
BLOCKS=$((SIZE_MIB << 11))  # 512-byte blocks

"$FILEIO_TGT" --iscsi 127.0.0.1:0 --target "$IQN" src "$SRC" dst "$DST" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 100); do
  grep -q 'serving .* on 127\.0\.0\.1:' "$LOG" && break
  sleep 0.1
done
PORT=$(grep -o 'on 127\.0\.0\.1:[0-9]*' "$LOG" | head -n 1 | cut -d: -f2)
[ -n "$PORT" ] || { echo "xcopy_bench: fileio_tgt did not start:" >&2; cat "$LOG" >&2; exit 1; }
URL=iscsi://127.0.0.1:$PORT/$IQN

now() { date +%s.%N; }
# MB/s of SIZE_MIB in the seconds between $1 and $2.
mbps() { awk -v s="$1" -v e="$2" -v m="$SIZE_MIB" 'BEGIN { printf "%.1f", m * 1.048576 / (e - s) }'; }
best() { tr ' ' '\n' | sort -g | tail -n 1; }
verify() { cmp -s "$SRC" "$DST" || { echo "xcopy_bench: $1 left a destination unlike the source" >&2; exit 1; }; }

xcopy=() read_write=() local_dd=()
for run in $(seq "$RUNS"); do
  truncate -s 0 "$DST" && truncate -s $((SIZE_MIB << 20)) "$DST"
  t0=$(now)
  out=$("$XCOPY_CLIENT" copy "$URL/0" 0 1 0 0 "$BLOCKS" $((run % 250)))
  t1=$(now)
  grep -q '^STATUS GOOD' <<<"$out" || { echo "xcopy_bench: EXTENDED COPY: $out" >&2; exit 1; }
  verify "EXTENDED COPY"
  xcopy+=("$(mbps "$t0" "$t1")")

  truncate -s 0 "$DST" && truncate -s $((SIZE_MIB << 20)) "$DST"
  t0=$(now)
  qemu-img convert -n -f raw -O raw "$URL/0" "$URL/1"
  t1=$(now)
  verify "qemu-img convert"
  read_write+=("$(mbps "$t0" "$t1")")

  truncate -s 0 "$DST" && truncate -s $((SIZE_MIB << 20)) "$DST"
  t0=$(now)
  dd if="$SRC" of="$DST" bs=1M conv=notrunc status=none
  t1=$(now)
  local_dd+=("$(mbps "$t0" "$t1")")
done

X=$(echo "${xcopy[@]}" | best)
RW=$(echo "${read_write[@]}" | best)
DD=$(echo "${local_dd[@]}" | best)
awk -v x="$X" -v rw="$RW" -v dd="$DD" -v m="$SIZE_MIB" -v r="$RUNS" -v xs="${xcopy[*]}" \
  -v rws="${read_write[*]}" -v dds="${local_dd[*]}" 'BEGIN {
  printf "{\"bench\":\"xcopy\",\"MiB\":%d,\"runs\":%d,\"xcopy_MBps\":%s,\"read_write_MBps\":%s,", m, r, x, rw
  printf "\"local_dd_MBps\":%s,\"xcopy_vs_read_write\":%.2f,\"xcopy_vs_local_dd\":%.2f,", dd, x / rw, x / dd
  printf "\"all_xcopy\":\"%s\",\"all_read_write\":\"%s\",\"all_local_dd\":\"%s\"}\n", xs, rws, dds
}'
