#!/usr/bin/env bash
# xcopy_bench.sh - EXTENDED COPY through the target's copy manager against the
# initiator moving the same data itself, same run, same images (tmpfs).
# MODE=embedded (default): one fileio_tgt --iscsi serves both LUNs; MODE=split:
# the scstu-target daemon (whose copy manager moves the data) with two
# handler processes (fileio_tgt --attach), one per LUN, over the ring.
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
# Env:   MODE=embedded|split, SCSTU_TARGET=<BUILD_DIR>/tools/scstu-target,
#        SIZE_MIB=256 (at most 511: xcopy_client sends up to 16 segments of
#        65535 blocks of 512 bytes), RUNS=3
# Needs: libiscsi-bin's library (xcopy_client is built with the tests),
#        qemu-utils.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
FILEIO_TGT=$BUILD/fileio_tgt/fileio_tgt
XCOPY_CLIENT=$BUILD/tests/e2e/xcopy_client
SCSTU_TARGET=${SCSTU_TARGET:-$BUILD/tools/scstu-target}
MODE=${MODE:-embedded}
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
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$SRC" "$DST" "$TMP"
}
trap cleanup EXIT

head -c $((SIZE_MIB << 20)) /dev/urandom >"$SRC"
truncate -s $((SIZE_MIB << 20)) "$DST"
BLOCKS=$((SIZE_MIB << 11))  # 512-byte blocks

# wait_for FILE REGEX: up to 10 s; prints the last matching line.
wait_for() {
  for _ in $(seq 100); do
    grep -Eq "$2" "$1" && { grep -E "$2" "$1" | tail -n 1; return 0; }
    sleep 0.1
  done
  echo "xcopy_bench: no '$2' in $1:" >&2
  cat "$1" >&2
  exit 1
}
case $MODE in
  embedded)
    "$FILEIO_TGT" --iscsi 127.0.0.1:0 --target "$IQN" src "$SRC" dst "$DST" >"$TMP/tgt.log" 2>&1 &
    PIDS+=($!)
    line=$(wait_for "$TMP/tgt.log" 'serving .* on 127\.0\.0\.1:[0-9]+')
    ;;
  split)
    [ -x "$SCSTU_TARGET" ] || { echo "xcopy_bench: $SCSTU_TARGET not built" >&2; exit 1; }
    cat >"$TMP/scstu.conf" <<CONF
portals: "127.0.0.1:0"
handler_socket: "$TMP/handler.sock"
admin_socket: "$TMP/admin.sock"
targets { name: "$IQN" }
devices { name: "src" handler { device_type: 0 block_size: 512 } }
devices { name: "dst" handler { device_type: 0 block_size: 512 } }
groups { name: "Default_$IQN" luns { lun: 0 device: "src" } luns { lun: 1 device: "dst" } }
CONF
    "$SCSTU_TARGET" --config "$TMP/scstu.conf" >"$TMP/daemon.log" 2>&1 &
    PIDS+=($!)
    line=$(wait_for "$TMP/daemon.log" 'serving iSCSI on 127\.0\.0\.1:[0-9]+')
    wait_for "$TMP/daemon.log" 'admin socket' >/dev/null
    for dev in src dst; do
      img=$SRC
      [ "$dev" = dst ] && img=$DST
      "$FILEIO_TGT" --attach "$TMP/handler.sock" "$dev" "$img" >"$TMP/$dev.log" 2>&1 &
      PIDS+=($!)
      wait_for "$TMP/$dev.log" "$dev (re-)?attached" >/dev/null
    done
    ;;
  *) echo "xcopy_bench: MODE=embedded or MODE=split" >&2; exit 1 ;;
esac
PORT=${line##*:}
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
awk -v mode="$MODE" -v x="$X" -v rw="$RW" -v dd="$DD" -v m="$SIZE_MIB" -v r="$RUNS" -v xs="${xcopy[*]}" \
  -v rws="${read_write[*]}" -v dds="${local_dd[*]}" 'BEGIN {
  printf "{\"bench\":\"xcopy\",\"mode\":\"%s\",\"MiB\":%d,\"runs\":%d,\"xcopy_MBps\":%s,\"read_write_MBps\":%s,", mode, m, r, x, rw
  printf "\"local_dd_MBps\":%s,\"xcopy_vs_read_write\":%.2f,\"xcopy_vs_local_dd\":%.2f,", dd, x / rw, x / dd
  printf "\"all_xcopy\":\"%s\",\"all_read_write\":\"%s\",\"all_local_dd\":\"%s\"}\n", xs, rws, dds
}'
